"""``ExperimentInfo``: an experiment's runs as a dict or a DataFrame; new metrics on old runs.

iquaflow's ``ExperimentInfo`` over an MLflow tracking store::

    info = ExperimentInfo("jpeg-vs-accuracy", tracking_uri="sqlite:///runs/mlflow.db")
    info.runs["patches#jpeg_quality10"]        # run_id, run_status, params_dict, metrics_dict,
                                               # artifact_path, output_pred_path
    info.frame(params=["modifier", "C"], metrics=["accuracy"])
    info.get_df(ds_params=["modifier"], metrics=["accuracy"], grouped=["modifier"])  # iquaflow
    info.apply_metric("coco_detection", target="data/coins/annotations.json")

Run names repeat (one per repetition and grid point); in ``runs`` the second and later get
``_1``, ``_2`` suffixes in start order, as in iquaflow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from annoloop.errors import InvalidInput, NotFound
from annoloop.experiments import tracking
from annoloop.experiments.tasks import OUTPUT_FILE, RESULTS_FILE


def _number(text: Any) -> Any:
    """A param string as int or float when it is one (MLflow stores params as text)."""
    if not isinstance(text, str):
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


class ExperimentInfo:
    """The runs of experiment ``name`` in ``tracking_uri`` (default: the sqlite store under
    ``workdir``, ``./annoloop-experiments``)."""

    def __init__(
        self,
        name: str,
        *,
        tracking_uri: str | None = None,
        workdir: str | Path | None = None,
    ) -> None:
        self.name = name
        self.tracking_uri = tracking_uri or tracking.default_tracking_uri(
            Path(workdir or "annoloop-experiments")
        )
        self._client = tracking.client(self.tracking_uri)
        found = self._client.get_experiment_by_name(name)
        if found is None:
            raise NotFound(f"no experiment {name!r} in {self.tracking_uri}")
        self.experiment_id = str(found.experiment_id)
        self.runs: dict[str, dict[str, Any]] = {}
        self.refresh()

    def refresh(self) -> dict[str, dict[str, Any]]:
        """Read the runs again (iquaflow's ``get_mlflow_run_info``)."""
        found = []
        token = None
        while True:
            page = self._client.search_runs(
                [self.experiment_id],
                max_results=1000,
                page_token=token,
                order_by=["start_time ASC"],
            )
            found.extend(page)
            token = page.token
            if not token:
                break
        runs: dict[str, dict[str, Any]] = {}
        counts: dict[str, int] = {}
        for run in found:
            name = run.data.tags.get("mlflow.runName") or run.info.run_name or run.info.run_id
            n = counts.get(name, 0)
            counts[name] = n + 1
            key = name if n == 0 else f"{name}_{n}"
            local = tracking.local_artifact_dir(run.info.artifact_uri)
            artifact_path = str(local) if local is not None else run.info.artifact_uri
            runs[key] = {
                "run_id": run.info.run_id,
                "run_name": name,
                "run_status": run.info.status,
                "params_dict": dict(run.data.params),
                "metrics_dict": dict(run.data.metrics),
                "tags": dict(run.data.tags),
                "artifact_path": artifact_path,
                "output_pred_path": str(Path(artifact_path) / OUTPUT_FILE),
                "start_time": run.info.start_time,
            }
        self.runs = runs
        return runs

    get_mlflow_run_info = refresh  # iquaflow's name

    def frame(
        self,
        params: list[str] | None = None,
        metrics: list[str] | None = None,
        *,
        finished_only: bool = True,
    ) -> Any:
        """A DataFrame, one row per run: ``name``, ``run_id``, ``status``, then the chosen params
        (all when None; numbers parsed) and metrics (all when None). A metric missing from a run
        is looked up among its params, as iquaflow does (results.json strings)."""
        import pandas as pd

        rows = []
        chosen = [
            r for r in self.runs.items() if not finished_only or r[1]["run_status"] == "FINISHED"
        ]
        all_params = (
            params
            if params is not None
            else sorted({k for _, r in chosen for k in r["params_dict"]})
        )
        all_metrics = (
            metrics
            if metrics is not None
            else sorted({k for _, r in chosen for k in r["metrics_dict"]})
        )
        for key, run in chosen:
            row: dict[str, Any] = {
                "name": key,
                "run_id": run["run_id"],
                "status": run["run_status"],
            }
            for p in all_params:
                row[p] = _number(run["params_dict"].get(p))
            for m in all_metrics:
                value = run["metrics_dict"].get(m)
                row[m] = value if value is not None else _number(run["params_dict"].get(m))
            rows.append(row)
        columns = ["name", "run_id", "status", *all_params, *all_metrics]
        return pd.DataFrame(rows, columns=list(dict.fromkeys(columns)))

    def get_df(
        self,
        ds_params: list[str],
        metrics: list[str],
        grouped: list[str] | None = None,
        dropna: bool = True,
        fields_to_float_lst: list[str] | None = None,
        fields_to_int_lst: list[str] | None = None,
    ) -> Any:
        """iquaflow's DataFrame: ``name``, ``ds_<param>`` columns, metrics; ``grouped`` gives
        mean and std of the metrics per group (over repetitions)."""
        df = self.frame(list(ds_params), list(metrics)).drop(columns=["run_id", "status"])
        df = df.rename(columns={p: p if p.startswith("ds_") else f"ds_{p}" for p in ds_params})
        if grouped:
            keys = [g if g.startswith("ds_") else f"ds_{g}" for g in grouped]
            df = df.groupby(keys).agg({m: ["mean", "std"] for m in metrics})
        if dropna:
            df = df.dropna()
        if fields_to_float_lst:
            df[fields_to_float_lst] = df[fields_to_float_lst].astype(float)
        if fields_to_int_lst:
            df[fields_to_int_lst] = df[fields_to_int_lst].astype(int)
        return df

    def results(self) -> dict[str, dict[str, Any]]:
        """``results.json`` of every finished run (iquaflow's ``get_results_dict``)."""
        out = {}
        for key, run in self.runs.items():
            path = Path(run["artifact_path"]) / RESULTS_FILE
            if run["run_status"] == "FINISHED" and path.is_file():
                out[key] = json.loads(path.read_text())
        return out

    get_results_dict = results  # iquaflow's name

    def apply_metric(
        self,
        metric: Any,
        target: Any = None,
        *,
        prediction_file: str = OUTPUT_FILE,
        log: bool = True,
        prefix: str = "",
        **options: Any,
    ) -> dict[str, dict[str, float]]:
        """Compute ``metric`` on every finished run's predictions and log it to the run.

        ``metric``: an :class:`annoloop.metrics.Metric` or a registered name (``options`` go to
        it). It is called as ``metric.compute(<path of prediction_file>, target)``; a run
        without that file is skipped. Values are logged as metrics named ``prefix + key``
        unless ``log`` is False. Returns run key -> values.
        """
        from annoloop.metrics import Metric, get_metric

        m = get_metric(metric, **options) if isinstance(metric, str) else metric
        if not isinstance(m, Metric):
            raise InvalidInput(f"expected a Metric or a metric name, got {type(metric).__name__}")
        out: dict[str, dict[str, float]] = {}
        for key, run in self.runs.items():
            pred = Path(run["artifact_path"]) / prediction_file
            if run["run_status"] != "FINISHED" or not pred.is_file():
                continue
            values = m.compute(str(pred), target)
            out[key] = values
            if log:
                tracking.log_results(self._client, run["run_id"], values, prefix=prefix)
        if log and out:
            self.refresh()
        return out

    def apply_metric_per_run(self, metric: Any, gt_path: Any) -> dict[str, dict[str, Any]]:
        """iquaflow's name: :meth:`apply_metric` with the ground truth, then the runs."""
        self.apply_metric(metric, gt_path)
        return self.runs
