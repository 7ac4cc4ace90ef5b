"""Tasks: iquaflow's script convention, failing and hanging scripts, messages, results files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from annoloop.errors import InvalidInput, NotFound
from annoloop.experiments import Experiment, ExperimentDataset, ScriptTask
from annoloop.experiments.tasks import (
    CallableTask,
    ModelTask,
    RunOutcome,
    RunSpec,
    execute_run,
    read_results,
)
from annoloop.experiments.tracking import split_results

SCRIPT = Path(__file__).parent / "scripts" / "patch_classifier.py"


def test_messages_round_trip_through_json() -> None:
    for cls in (RunSpec, RunOutcome):
        example = cls.example()
        assert cls.model_validate_json(example.model_dump_json()) == example


def test_script_arguments_follow_iquaflow(tmp_path: Path) -> None:
    spec = RunSpec.example()
    plain = ScriptTask(SCRIPT).arguments(spec)
    assert plain[:2] == [sys.executable, str(SCRIPT.resolve())]
    assert plain[2:] == [
        "--trainds",
        spec.trainds,
        "--testds",
        str(spec.testds),
        "--outputpath",
        spec.outputpath,
        "--lr",
        "0.01",
        "--epochs",
        "3",
    ]
    monitored = ScriptTask(SCRIPT, mlflow_monitoring=True).arguments(spec)
    i = monitored.index("--mlfuri")
    assert monitored[i : i + 6] == [
        "--mlfuri",
        str(spec.tracking_uri),
        "--mlfexpid",
        "1",
        "--mlfrunid",
        spec.run_id,
    ]
    with pytest.raises(NotFound, match="does not exist"):
        ScriptTask(tmp_path / "missing.py")


def test_script_logs_into_its_own_mlflow_run(
    patch_sets: tuple[ExperimentDataset, ExperimentDataset], tracking_uri: str, tmp_path: Path
) -> None:
    """A script file receives --trainds ... --mlfrunid, writes results.json and logs itself."""
    from mlflow import MlflowClient

    train, test = patch_sets
    exp = Experiment(
        "script-convention",
        ScriptTask(SCRIPT, mlflow_monitoring=True),
        train,
        test=test,
        hyperparameters={"C": 2.0, "bins": 4},
        workdir=tmp_path / "runs",
        tracking_uri=tracking_uri,
        executor="local",
    )
    (run,) = exp.run().runs
    assert run.status == "FINISHED", run.message
    data = MlflowClient(tracking_uri=tracking_uri).get_run(run.run_id).data
    assert data.metrics["script_accuracy"] == data.metrics["accuracy"]  # logged by the script
    assert data.params["C"] == "2.0" and data.params["bins"] == "4"
    results = json.loads(Path(run.output_path, "results.json").read_text())
    assert results["accuracy"] == run.metrics["accuracy"]
    assert "accuracy" in Path(run.output_path, "task.log").read_text()


def test_failing_and_hanging_scripts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nprint('about to fail')\nsys.exit(3)\n")
    spec = RunSpec.example().model_copy(update={"outputpath": str(tmp_path / "out1")})
    outcome = execute_run(ScriptTask(bad), spec)
    assert not outcome.ok and "exited with code 3" in outcome.message
    assert "about to fail" in outcome.message
    slow = tmp_path / "slow.py"
    slow.write_text("import time\ntime.sleep(30)\n")
    spec2 = spec.model_copy(update={"outputpath": str(tmp_path / "out2")})
    outcome = execute_run(ScriptTask(slow, timeout_s=0.5), spec2)
    assert not outcome.ok and "TimeoutError" in outcome.message and "0.5 s" in outcome.message
    junk = tmp_path / "junk.py"
    junk.write_text(
        "import sys, pathlib\n"
        "out = sys.argv[sys.argv.index('--outputpath') + 1]\n"
        "pathlib.Path(out, 'results.json').write_text('[1, 2')\n"
    )
    spec3 = spec.model_copy(update={"outputpath": str(tmp_path / "out3")})
    outcome = execute_run(ScriptTask(junk), spec3)
    assert not outcome.ok and "results.json" in outcome.message


def test_results_files_hostile_and_huge(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    assert read_results(path) == {}
    path.write_text('"just a string"')
    with pytest.raises(InvalidInput, match="JSON object"):
        read_results(path)
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidInput, match=r"results\.json"):
        read_results(path)
    metrics, params = split_results(
        {
            "acc": 0.5,
            "flag": True,
            "name": "x",
            "none": None,
            "curve": [0.1, 0.2],
            "pairs": [[3, 0.1], [7, 0.2]],
            "mixed": [1, "a"],
            "nested": {"a": {"b": 2}},
            "empty": [],
            "bad key!": 1,
        }
    )
    assert metrics["acc"] == [(0, 0.5)] and metrics["curve"] == [(0, 0.1), (1, 0.2)]
    assert metrics["pairs"] == [(3, 0.1), (7, 0.2)] and metrics["nested/a/b"] == [(0, 2.0)]
    assert params == {"flag": "True", "name": "x", "none": "None", "mixed": "[1, 'a']"}
    huge = {f"m{i}": float(i) for i in range(20000)}
    path.write_text(json.dumps(huge))
    assert len(split_results(read_results(path))[0]) == 20000


def _returns_list(trainds: str, valds: str, testds: str, outputpath: str) -> list[int]:
    return [1, 2]


def test_callable_and_model_tasks_validate(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="cannot import callable"):
        CallableTask("no_such_module_xyz:fn")
    with pytest.raises(NotFound, match="unknown built-in model"):
        ModelTask("no-such-model")
    spec = RunSpec.example().model_copy(
        update={"outputpath": str(tmp_path / "o"), "hyperparameters": {}}
    )
    outcome = execute_run(CallableTask(_returns_list), spec)
    assert not outcome.ok and "return a dict" in outcome.message
    by_name = CallableTask(f"{__name__}:_returns_list")
    assert by_name.describe()["task.callable"].endswith(":_returns_list")
