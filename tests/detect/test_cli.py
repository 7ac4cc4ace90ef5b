"""``annoloop detect`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from annoloop.cli.main import app
from annoloop.samples import photo_path
from annoloop.store import Project


def test_detect_command_with_project_and_files(tmp_path: Path, pan_video: Path) -> None:
    Project.init(tmp_path / "proj").close()
    runner = CliRunner()
    args = [
        "detect", str(photo_path("astronaut.png")), str(pan_video), "--detector", "mtcnn",
        "--project", str(tmp_path / "proj"), "--img-max-side", "256", "--batch-size", "4",
        "--keep-threshold", "0.9", "--frame-stride", "4", "--device", "cpu",
        "--label-attr", "Kind", "--out-csv", str(tmp_path / "b.csv"), "--json",
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["processed"] == 2 and summary["frames"] == 4  # 1 photo + frames 0, 4, 8
    assert summary["boxes"] >= 3 and summary["tracks"] == 1
    assert (tmp_path / "b.csv").read_text().splitlines()[0].endswith("Kind,Confidence")
    # again: both media are stamped, so skipped
    again = json.loads(runner.invoke(app, args).output)
    assert again["skipped"] == 2 and again["processed"] == 0
    # plain output names what failed and exits non-zero
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    result = runner.invoke(app, ["detect", str(bad), "--device", "cpu"])
    assert result.exit_code == 1 and "bad.mp4" in result.output


def test_detect_command_usage_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["detect", "--detector", "nonsense", str(photo_path("coffee.png"))])
    assert result.exit_code == 3 and "unknown detector" in result.output
    result = runner.invoke(app, ["detect", str(tmp_path / "missing.png")])
    assert result.exit_code == 4
    result = runner.invoke(app, ["detect"])
    assert result.exit_code == 3 and "sources" in result.output
