"""``annoloop experiment {run,info,plot}``: image-quality experiments from a YAML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from annoloop.cli._common import JsonOpt, console, emit_json, handle_errors, progress_bar

app = typer.Typer(help="Image-quality experiments (iquaflow-style).", no_args_is_help=True)

WhereOpt = Annotated[
    Path | None, typer.Option(help="Experiments folder when naming an experiment (not a file).")
]
TrackingOpt = Annotated[str | None, typer.Option(help="MLflow tracking URI.")]


@app.command("run")
@handle_errors
def run(
    file: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    json_out: JsonOpt = False,
) -> None:
    """Apply the modifiers, run every (modifier, hyper-parameters, repetition) and log to MLflow."""
    from annoloop.experiments.service import run_experiment_file

    with progress_bar("experiment", enabled=not json_out) as bar:
        result = run_experiment_file(file, progress=bar)
    summary = result.as_dict()
    summary["plot"] = result.plot
    if json_out:
        emit_json(summary)
        return
    ok = len(result.runs) - len(result.failed)
    console.print(f"experiment [bold]{result.name}[/]: {ok}/{len(result.runs)} runs finished")
    console.print(f"MLflow: {result.tracking_uri} (experiment id {result.experiment_id})")
    for record in result.failed:
        console.print(f"[red]failed[/] {record.__dict__}")
    if result.plot:
        console.print(f"plot: {result.plot}")
    if result.failed:
        raise typer.Exit(1)


@app.command("info")
@handle_errors
def info(
    experiment: Annotated[str, typer.Argument(help="Experiment YAML file or experiment name.")],
    params: Annotated[list[str] | None, typer.Option("--param", help="Params to show.")] = None,
    metrics: Annotated[list[str] | None, typer.Option("--metric", help="Metrics to show.")] = None,
    workdir: WhereOpt = None,
    tracking_uri: TrackingOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The experiment's runs as a table of params and metrics."""
    from annoloop.experiments.service import experiment_info

    df = experiment_info(
        experiment, tracking_uri=tracking_uri, workdir=workdir, params=params, metrics=metrics
    )
    if json_out:
        emit_json(df.to_dict(orient="records"))
        return
    table = Table(title=f"runs of {experiment}")
    for col in df.columns:
        table.add_column(str(col))
    for row in df.itertuples(index=False):
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)


@app.command("plot")
@handle_errors
def plot(
    experiment: Annotated[str, typer.Argument(help="Experiment YAML file or experiment name.")],
    x: Annotated[str | None, typer.Option(help="Param or metric on the x axis.")] = None,
    y: Annotated[str | None, typer.Option(help="Metric on the y axis.")] = None,
    legend: Annotated[str | None, typer.Option(help="Param that makes one line each.")] = None,
    kind: Annotated[str, typer.Option(help="line, bar or scatter.")] = "line",
    out: Annotated[Path | None, typer.Option(help="PNG file to write.")] = None,
    workdir: WhereOpt = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Plot a metric against a param (one line per legend value) as PNG."""
    from annoloop.experiments.service import plot_experiment

    path = plot_experiment(
        experiment,
        x=x,
        y=y,
        legend=legend,
        kind=kind,
        out=out,
        tracking_uri=tracking_uri,
        workdir=workdir,
    )
    console.print(f"plot saved to {path}")
