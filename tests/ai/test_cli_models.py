"""``annoloop models ...`` and ``annoloop al ...`` through the real CLI app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from annoloop.ai.base import TrainingData
from annoloop.cli.main import app
from annoloop.cli.models_cmd import parse_options
from annoloop.errors import InvalidInput
from tests.ai.conftest import make_digits_project

runner = CliRunner()
PIXELS = ["-o", "backbone=pixels", "-o", "image_size=8", "-o", "epochs=30"]


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    return result.output


def test_list_show_and_verify_options() -> None:
    rows = json.loads(run("models", "list", "--json"))
    names = [r["name"] for r in rows]
    assert names[:2] == ["image-classifier", "point-classifier"]
    assert "detector" in names
    assert "image-classifier" in run("models", "list")
    shown = json.loads(run("models", "show", "image-classifier", "--json"))
    assert shown["accepts"] == ["label"] and shown["default_options"]["head"] == "linear"
    assert "properties" in shown["options_schema"]
    assert "default options" in run("models", "show", "point-classifier")
    ok = json.loads(
        run("models", "verify-options", "image-classifier", "-o", "epochs=5", "-o", "x=1", "--json")
    )
    assert ok["valid"] and ok["corrected"]["epochs"] == 5 and ok["warnings"]
    bad = run(
        "models", "verify-options", "image-classifier", "--options", '{"head": "svm"}', code=3
    )
    assert "head" in bad and "invalid" in bad
    run("models", "show", "no-such-model", code=4)
    run("models", "verify-options", "image-classifier", "--options", "{nope", code=3)


def test_parse_options_hostile_input() -> None:
    assert parse_options('{"a": 1}', ["b=[1, 2]", "c=text", "a=2"]) == {
        "a": 2,
        "b": [1, 2],
        "c": "text",
    }
    with pytest.raises(InvalidInput, match="--set number 1"):
        parse_options(None, ["novalue"])
    with pytest.raises(InvalidInput, match="JSON object"):
        parse_options("[1, 2]", None)


def test_train_infer_states_rank_job_through_the_cli(tmp_path: Path, digits: TrainingData) -> None:
    folder = tmp_path / "proj"
    make_digits_project(folder, digits, 120, 100).close()
    p = ["-p", str(folder)]
    trained = json.loads(run("models", "train", "image-classifier", *PIXELS, *p, "--json"))
    assert trained["promoted"] and trained["metrics"]["accuracy"] > 0.6
    out = run("models", "train", "image-classifier", *PIXELS, "--margin", "0.5", *p)
    assert "kept as candidate" in out
    skipped = json.loads(
        run("models", "train", "image-classifier", *PIXELS, "--every", "500", *p, "--json")
    )
    assert skipped["trained"] is False
    inf = json.loads(run("models", "infer", "--model", "image-classifier", *p, "--json"))
    assert inf["n_predictions"] == 120 and inf["state_id"] == trained["state_id"]
    states = json.loads(run("models", "states", *p, "--json"))
    assert [s["is_current"] for s in states] == [True, False]
    assert states[1]["parent_id"] == states[0]["id"]
    assert "model states" in run("models", "states", *p)
    ranked = json.loads(run("al", "rank", str(trained["state_id"]), *p, "--json"))
    assert len(ranked) == 120
    assert ranked[0]["priority"] >= ranked[-1]["priority"]
    assert "image_id" in run("al", "rank", str(trained["state_id"]), "--top", "3", *p)
    job = json.loads(run("models", "job", str(trained["job_id"]), *p, "--json"))
    assert job["state"] == "finished"
    assert "finished" in run("models", "job", str(trained["job_id"]), *p)
    assert "already ended" in run("models", "cancel", str(trained["job_id"]), *p)
    run("models", "infer", "--model", "point-classifier", *p, code=3)
    run("models", "train", "image-classifier", "-o", "epochs=-1", *p, code=3)


def test_al_simulate_on_digits_writes_png_and_csv(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    result = json.loads(
        run(
            "al",
            "simulate",
            "--digits",
            "-s",
            "random",
            "-s",
            "margin",
            "--initial",
            "20",
            "--batch",
            "20",
            "--rounds",
            "3",
            "--out",
            str(out),
            "--json",
        )
    )
    assert result["metric"] == "accuracy"
    assert {r["strategy"] for r in result["summary"]} == {"random", "margin"}
    assert Path(result["files"]["plot"]).read_bytes()[:4] == b"\x89PNG"
    assert Path(result["files"]["curves"]).stat().st_size > 50
