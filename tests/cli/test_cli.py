"""The CLI end to end on real photos: init, import, export, labels, stats, config, demo."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from annoloop.cli.main import app
from annoloop.demo.field_data import coin_shapes, write_coco, write_coralnet_points
from annoloop.samples import photo_path

runner = CliRunner()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    return result.output


@pytest.fixture()
def project(tmp_path: Path, photos: list[Path]) -> Path:
    folder = tmp_path / "proj"
    run("init", str(folder))
    shutil.copy(photo_path("coins.png"), photos[0].parent / "coins.png")
    run("import", "images", str(photos[0].parent), "-p", str(folder))
    return folder


def _sizes(folder: Path) -> dict[str, tuple[int, int]]:
    from annoloop.store import Project

    with Project.open(folder) as p:
        df = p.images()
    return {
        Path(str(loc)).name: (int(w), int(h))
        for loc, w, h in zip(df["location"], df["width"], df["height"], strict=True)
    }


def test_init_refuses_an_existing_project(project: Path) -> None:
    out = run("init", str(project), code=6)
    assert "already" in out.lower()


def test_import_images_json_counts(project: Path) -> None:
    stats = json.loads(run("stats", "--json", "-p", str(project)))
    assert stats["images"] == 11  # 10 colour photos + coins


def test_import_coco_then_export_and_reimport(project: Path, tmp_path: Path) -> None:
    coco = write_coco(tmp_path / "field.json", image_sizes=_sizes(project))
    media = str(project / "media")
    out = json.loads(
        run("import", "coco", str(coco), "--images-root", media, "-p", str(project), "--json")
    )
    assert out["annotations_added"] == len(coin_shapes()) + 10  # coin outlines + image labels
    stats = json.loads(run("stats", "--json", "-p", str(project)))
    assert stats["per_label"]["coin"] == 24
    assert stats["per_label"]["person"] == 2

    exported = tmp_path / "out.json"
    report = json.loads(
        run("export", str(exported), "--format", "coco", "-p", str(project), "--json")
    )
    assert report["annotations"] == 34
    data = json.loads(exported.read_text())
    assert len(data["annotations"]) == 34

    second = tmp_path / "second"
    run("init", str(second))
    run("import", "images", media, "-p", str(second))
    run("import", "coco", str(exported), "--images-root", str(second / "media"), "-p", str(second))
    again = json.loads(run("stats", "--json", "-p", str(second)))
    assert again["per_label"] == stats["per_label"]
    assert again["per_kind"] == stats["per_kind"]


def test_broken_coco_names_the_file_and_writes_nothing(project: Path, tmp_path: Path) -> None:
    coco = write_coco(tmp_path / "field.json", image_sizes=_sizes(project))
    text = coco.read_text()
    broken = tmp_path / "broken.json"
    broken.write_text(text[: len(text) // 2])
    out = run("import", "coco", str(broken), "-p", str(project), code=3)
    assert "broken.json" in out
    data = json.loads(text)
    data["annotations"][5]["category_id"] = 999  # an unknown category in the middle
    bad_ref = tmp_path / "badref.json"
    bad_ref.write_text(json.dumps(data))
    out = run(
        "import",
        "coco",
        str(bad_ref),
        "--images-root",
        str(project / "media"),
        "-p",
        str(project),
        code=3,
    )
    assert "annotations[5]" in out
    stats = json.loads(run("stats", "--json", "-p", str(project)))
    assert stats["annotations"] == 0


def test_coralnet_points_import(project: Path, tmp_path: Path) -> None:
    csv = write_coralnet_points(tmp_path / "points.csv", n=40)
    run("import", "coralnet", str(csv), "--images-root", str(project / "media"), "-p", str(project))
    stats = json.loads(run("stats", "--json", "-p", str(project)))
    assert stats["per_kind"] == {"point": 40}
    assert set(stats["per_label"]) == {"coin", "background"}


def test_labels_add_list_rename_retire(project: Path) -> None:
    run("labels", "add", "coral", "sand", "algae", "-p", str(project))
    run(
        "labels",
        "add",
        "acropora",
        "--parent",
        "coral",
        "--code",
        "ACR",
        "--color",
        "#ff8800",
        "-p",
        str(project),
    )
    run("labels", "rename", "sand", "sediment", "-p", str(project))
    run("labels", "retire", "algae", "-p", str(project))
    rows = json.loads(run("labels", "list", "--json", "-p", str(project)))
    names = {r["name"] for r in rows}
    assert names == {"coral", "sediment", "acropora"}
    acr = next(r for r in rows if r["name"] == "acropora")
    assert acr["code"] == "ACR"
    all_rows = json.loads(run("labels", "list", "--retired", "--json", "-p", str(project)))
    assert {r["name"] for r in all_rows} == names | {"algae"}
    run("labels", "rename", "nope", "x", "-p", str(project), code=4)


def test_stats_plot(project: Path, tmp_path: Path) -> None:
    png = tmp_path / "stats.png"
    run("stats", "--plot", str(png), "-p", str(project))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_project_exit_code(tmp_path: Path) -> None:
    run("stats", "-p", str(tmp_path / "nothing-here"), code=4)


def test_config_check_masks_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOLOOP_DATABASE_URL", "postgresql+psycopg://ann:hunter2@127.0.0.1/db")
    monkeypatch.setenv("ANNOLOOP_SECRET_KEY", "very-secret")
    out = run("config", "check", "-p", str(tmp_path), "--json")
    assert "hunter2" not in out and "very-secret" not in out
    rows = {r["name"]: r for r in json.loads(out)["settings"]}
    assert rows["database_url"]["source"] == "ANNOLOOP_DATABASE_URL"
    assert "****" in rows["database_url"]["value"]
    monkeypatch.setenv("ANNOLOOP_EXECUTOR", "carrier-pigeon")
    out = run("config", "check", "-p", str(tmp_path), code=3)
    assert "carrier-pigeon" in out


def test_config_file_and_environment_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "annoloop.yaml").write_text("executor: local:2\nlog_level: DEBUG\n")
    monkeypatch.setenv("ANNOLOOP_LOG_LEVEL", "WARNING")
    rows = {
        r["name"]: r
        for r in json.loads(run("config", "check", "-p", str(tmp_path), "--json"))["settings"]
    }
    assert rows["executor"]["value"] == "local:2"
    assert rows["executor"]["source"].endswith("annoloop.yaml")
    assert rows["log_level"]["value"] == "WARNING"


def test_every_command_group_is_registered() -> None:
    out = run("--help")
    for group in ("import", "export", "labels", "pipe", "worker", "points", "models", "al",
                  "detect", "experiment", "serve", "users", "projects", "demo"):  # fmt: skip
        assert f" {group} " in out, group


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    out = json.loads(run("demo", "--folder", str(folder), "--json"))
    names = [s["name"] for s in out["steps"]]
    assert names == [
        "project", "import", "preview", "export", "stats",
        "pipeline", "points", "models", "detect", "quality",
    ]  # fmt: skip
    assert out["url"].startswith("http://127.0.0.1:") and out["login"]["user"] == "demo"
    quality = out["steps"][names.index("quality")]["summary"]
    assert "jpeg_quality3" in quality and "blur_sigma6" in quality
    assert (folder / "preview_coins.png").read_bytes()[:4] == b"\x89PNG"
    assert (folder / "exports" / "annotations.coco.json").exists()
    assert (folder / "stats.png").exists()
    # running again replaces the earlier demo; an unrelated folder is never deleted
    run("demo", "--folder", str(folder), "--json")
    other = tmp_path / "precious"
    other.mkdir()
    (other / "thesis.txt").write_text("do not delete")
    run("demo", "--folder", str(other), code=5)
    assert (other / "thesis.txt").exists()
