"""A real experiment end to end: a training script over modifiers x grid x repetitions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from annoloop.errors import InvalidInput
from annoloop.experiments import (
    Experiment,
    ExperimentDataset,
    ExperimentInfo,
    ExperimentVisual,
    ModelTask,
    ScriptTask,
    get_modifier,
)
from annoloop.metrics import Metric

SCRIPT = Path(__file__).parent / "scripts" / "patch_classifier.py"


class OutputAccuracy(Metric):
    """A metric applied afterwards: accuracy recomputed from each run's output.json."""

    name = "output_accuracy"
    needs_target = False

    def _compute(self, prediction: Any, target: Any) -> dict[str, float]:
        doc = json.loads(Path(prediction).read_text())
        return {"recomputed_accuracy": np.mean(np.array(doc["y_true"]) == np.array(doc["y_pred"]))}


@pytest.mark.slow
def test_script_experiment_grid_with_mlflow_info_and_plot(
    patch_sets: tuple[ExperimentDataset, ExperimentDataset], tracking_uri: str, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    train, test = patch_sets
    progress: list[tuple[int, int | None, str]] = []
    exp = Experiment(
        "patch-grid",
        ScriptTask(SCRIPT),
        train,
        [get_modifier("jpeg", quality=5), get_modifier("blur", sigma=3)],
        test=test,
        repetitions=2,
        hyperparameters={"C": [0.1, 10.0]},
        workdir=tmp_path / "runs",
        tracking_uri=tracking_uri,
        executor="local:2",
    )
    assert exp.run_count == 8
    result = exp.run(progress=lambda d, t=None, m="": progress.append((d, t, m)))
    assert [r.status for r in result.runs] == ["FINISHED"] * 8, [r.message for r in result.runs]
    assert progress[-1][:2] == (8, 8)

    # MLflow, through its own client
    client = MlflowClient(tracking_uri=tracking_uri)
    runs = client.search_runs([result.experiment_id], max_results=100)
    assert len(runs) == 8 and {r.info.status for r in runs} == {"FINISHED"}
    combos = sorted(
        (r.data.params["modifier"], r.data.params["C"], r.data.params["repetition"]) for r in runs
    )
    assert combos == sorted(
        (m, c, rep)
        for m in ("jpeg_quality5", "blur_sigma3")
        for c in ("0.1", "10.0")
        for rep in ("0", "1")
    )
    digests = {}
    for r in runs:
        p = r.data.params
        assert 0.0 <= r.data.metrics["accuracy"] <= 1.0
        assert r.data.params["classifier"] == "logistic"  # a string of results.json
        assert r.data.tags["task.kind"] == "script"
        assert p["ds_name"] == f"train#{p['modifier']}" and p["ds_name_test"].startswith("test#")
        assert len(p["ds_digest"]) == 64 and p["ds_image_count"] == "32"
        digests[p["modifier"]] = (p["ds_digest"], p["ds_digest_test"])
        history = client.get_metric_history(r.info.run_id, "loss_curve")
        assert [m.step for m in history] == [0, 1, 2]
        names = {a.path for a in client.list_artifacts(r.info.run_id)}
        assert {"results.json", "output.json", "task.log"} <= names
        assert {i.dataset.name for i in r.inputs.dataset_inputs} == {
            p["ds_name"],
            p["ds_name_test"],
        }
    assert len({d for pair in digests.values() for d in pair}) == 4  # one per dataset copy
    copy = ExperimentDataset.open(train.root.parent / "train#jpeg_quality5")
    assert digests["jpeg_quality5"][0] == copy.digest().digest != train.digest().digest

    # ExperimentInfo: dict and DataFrame
    info = ExperimentInfo("patch-grid", tracking_uri=tracking_uri)
    assert len(info.runs) == 8 and "train#jpeg_quality5_3" in info.runs
    df = info.frame(params=["modifier", "C", "repetition"], metrics=["accuracy"])
    assert list(df.columns) == [
        "name",
        "run_id",
        "status",
        "modifier",
        "C",
        "repetition",
        "accuracy",
    ]
    assert len(df) == 8 and set(df["C"]) == {0.1, 10.0} and set(df["repetition"]) == {0, 1}
    by_run = {r.run_id: r.metrics["accuracy"] for r in result.runs}
    assert all(by_run[row.run_id] == row.accuracy for row in df.itertuples())
    grouped = info.get_df(["modifier", "C"], ["accuracy"], grouped=["modifier", "C"])
    assert grouped.shape == (4, 2) and list(grouped.index.names) == ["ds_modifier", "ds_C"]
    results = info.results()
    assert results["train#blur_sigma3"]["classifier"] == "logistic"

    # a new metric on finished runs, logged back to MLflow
    applied = info.apply_metric(OutputAccuracy())
    assert len(applied) == 8
    for key, run in info.runs.items():
        assert run["metrics_dict"]["recomputed_accuracy"] == pytest.approx(
            run["metrics_dict"]["accuracy"]
        ), key

    # a PNG plot
    png = ExperimentVisual(df).visualize("modifier", "accuracy", "C", out_path=tmp_path / "a.png")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for kind in ("bar", "scatter"):
        out = ExperimentVisual(df).visualize(
            "C", "accuracy", "modifier", kind=kind, out_path=tmp_path / f"{kind}.png"
        )
        assert out is not None and out.stat().st_size > 1000

    # running again reuses the modified copies and adds the new runs to the experiment
    copy = train.root.parent / "train#blur_sigma3" / "images"
    mtimes = {p.name: p.stat().st_mtime_ns for p in copy.iterdir()}
    exp.grid, exp.repetitions = [{"C": 1.0}], 1
    assert [r.status for r in exp.run().runs] == ["FINISHED"] * 2
    assert {p.name: p.stat().st_mtime_ns for p in copy.iterdir()} == mtimes
    assert len(ExperimentInfo("patch-grid", tracking_uri=tracking_uri).runs) == 10


def _flaky_task(
    trainds: str, valds: Any, testds: Any, outputpath: str, level: int = 0, **kwargs: Any
) -> dict[str, Any]:
    """A callable task: fails for level 2, else reports what it was given."""
    if level == 2:
        raise ValueError("level 2 is not supported")
    assert kwargs["repetition"] in (0, 1) and "mlfrunid" in kwargs
    Path(outputpath, "output.json").write_text(json.dumps({"level": level}))
    return {"score": 1.0 / (1 + level), "dataset": Path(trainds).name, "steps": [[5, 0.5]]}


def test_callable_task_failures_are_recorded(
    patch_sets: tuple[ExperimentDataset, ExperimentDataset], tracking_uri: str, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    train, _ = patch_sets
    exp = Experiment(
        "callable-failures",
        _flaky_task,
        train,
        [get_modifier("original"), get_modifier("quantize", bits=2)],
        hyperparameters={"level": [1, 2]},
        workdir=tmp_path / "runs",
        tracking_uri=tracking_uri,
        executor="local",
    )
    result = exp.run()
    assert sorted(r.status for r in result.runs) == ["FAILED", "FAILED", "FINISHED", "FINISHED"]
    failed = result.failed[0]
    assert "ValueError: level 2 is not supported" in failed.message
    assert "ValueError" in Path(failed.output_path, "error.txt").read_text()
    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.get_run(failed.run_id)
    assert run.info.status == "FAILED" and "level 2" in run.data.tags["error"]
    ok = [r for r in result.runs if r.status == "FINISHED"]
    assert {r.metrics["score"] for r in ok} == {0.5}
    assert {client.get_run(r.run_id).data.params["dataset"] for r in ok} == {
        "train",
        "train#quantize_bits2",
    }
    assert [m.step for m in client.get_metric_history(ok[0].run_id, "steps")] == [5]
    info = ExperimentInfo("callable-failures", tracking_uri=tracking_uri)
    assert len(info.frame()) == 2 and len(info.frame(finished_only=False)) == 4


def test_builtin_models(
    coins: ExperimentDataset,
    patch_sets: tuple[ExperimentDataset, ExperimentDataset],
    tracking_uri: str,
    tmp_path: Path,
) -> None:
    detector = Experiment(
        "coins-detector",
        ModelTask("threshold-detector", min_area=200),
        coins,
        [get_modifier("original"), get_modifier("noise", snr=2)],
        hyperparameters={"threshold_scale": [1.0]},
        workdir=tmp_path / "runs",
        tracking_uri=tracking_uri,
        executor="local",
    )
    result = detector.run()
    assert [r.status for r in result.runs] == ["FINISHED", "FINISHED"], result.runs
    clean, noisy = (r.metrics for r in result.runs)
    assert clean["AP50"] > 0.5 and clean["detections"] >= 15
    assert noisy["AP50"] < clean["AP50"]
    # the COCO metric again, applied to the saved detections against the ground truth
    info = ExperimentInfo("coins-detector", tracking_uri=tracking_uri)
    again = info.apply_metric("coco_detection", str(coins.coco), log=False)
    assert again["coins"]["AP50"] == pytest.approx(clean["AP50"])

    train, test = patch_sets
    classifier = Experiment(
        "patch-histograms",
        "model:histogram-classifier",
        train,
        test=test,
        hyperparameters={"bins": [4]},
        workdir=tmp_path / "runs",
        tracking_uri=tracking_uri,
        executor="local",
    )
    (run,) = classifier.run().runs
    assert run.status == "FINISHED" and run.metrics["accuracy"] > 0.5
    assert run.metrics["n_test"] == 24


def test_experiment_argument_errors(
    patch_sets: tuple[ExperimentDataset, ...], tmp_path: Path
) -> None:
    train = patch_sets[0]
    with pytest.raises(InvalidInput, match="reserved"):
        Experiment("x", _flaky_task, train, hyperparameters={"outputpath": [1]}, workdir=tmp_path)
    with pytest.raises(InvalidInput, match="repetitions"):
        Experiment("x", _flaky_task, train, repetitions=0, workdir=tmp_path)
    with pytest.raises(InvalidInput, match=r"modifiers\[1\] repeats modifiers\[0\]"):
        Experiment(
            "x", _flaky_task, train, [get_modifier("blur"), get_modifier("blur")], workdir=tmp_path
        )
    with pytest.raises(InvalidInput, match="no values"):
        Experiment("x", _flaky_task, train, hyperparameters={"a": []}, workdir=tmp_path)
    with pytest.raises(InvalidInput, match="file store"):
        Experiment("x", _flaky_task, train, tracking_uri=str(tmp_path / "mlruns"))
