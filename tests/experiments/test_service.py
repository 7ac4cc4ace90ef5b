"""The service functions behind ``annoloop experiment {run,info,plot}``, and project datasets."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from annoloop.errors import InvalidInput
from annoloop.experiments import ExperimentDataset
from annoloop.experiments.config import load_experiment_file
from annoloop.experiments.service import experiment_info, plot_experiment, run_experiment_file


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_yaml_experiment_run_info_plot(
    patch_sets: tuple[ExperimentDataset, ExperimentDataset], tmp_path: Path
) -> None:
    train, test = patch_sets
    yaml_file = _write(
        tmp_path / "experiment.yaml",
        f"""
        name: yaml-patches
        workdir: runs
        executor: local
        dataset: {train.root}
        test:
          path: {test.root}
          annotations: annotations.json
        modifiers:
          - original
          - {{name: jpeg, quality: [5, 50]}}
          - blur: {{sigma: 2}}
        task:
          model: histogram-classifier
          options: {{classifier: knn}}
        hyperparameters: {{bins: [4]}}
        repetitions: 1
        plot: {{x: modifier, y: accuracy, out: accuracy.png}}
        """,
    )
    messages: list[str] = []
    result = run_experiment_file(yaml_file, progress=lambda d, t=None, m="": messages.append(m))
    assert len(result.runs) == 4 and all(r.status == "FINISHED" for r in result.runs)
    assert result.tracking_uri == f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    assert result.plot == str(tmp_path / "accuracy.png") and Path(result.plot).stat().st_size > 0
    assert any("running 4 runs" in m for m in messages)
    df = experiment_info(yaml_file, params=["modifier", "bins"], metrics=["accuracy"])
    assert sorted(df["modifier"]) == sorted(
        ["original", "jpeg_quality5", "jpeg_quality50", "blur_sigma2"]
    )
    assert set(df["bins"]) == {4} and df["accuracy"].between(0, 1).all()
    same = experiment_info("yaml-patches", workdir=tmp_path / "runs")
    assert len(same) == 4 and "accuracy" in same.columns
    png = plot_experiment(yaml_file, y="f1_macro", kind="bar", out=tmp_path / "f1.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(InvalidInput, match="no column 'nope'"):
        plot_experiment(yaml_file, y="nope")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name: x\n  bad: [indent\n", r"experiment.yaml:\d+.*invalid YAML"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("name: x\ndataset: d\n", "experiment.yaml: task"),
        ("name: x\ndataset: d\ntask: {script: a.py, model: m}\n", "exactly one of"),
        ("name: x\ndataset: d\ntask: {model: m}\ncolour: red\n", "colour"),
        ("name: x\ndataset: d\ntask: {model: m}\nrepetitions: 0\n", "repetitions"),
        ("name: x\ndataset: {path: d, project: p}\ntask: {model: m}\n", "either path"),
    ],
)
def test_bad_experiment_files(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "experiment.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=match):
        load_experiment_file(path)


def test_modifier_lists_expand(tmp_path: Path) -> None:
    cfg = load_experiment_file(
        _write(
            tmp_path / "e.yaml",
            """
            name: x
            dataset: d
            task: {model: threshold-detector}
            modifiers: [{name: noise, snr: [5, 10], kind: [gaussian, poisson]}, original]
            """,
        )
    )
    expanded = cfg.expanded_modifiers()
    assert len(expanded) == 5 and expanded[-1] == ("original", {})
    assert ("noise", {"snr": 10, "kind": "poisson"}) in expanded


def test_dataset_from_project_task(tmp_path: Path) -> None:
    from annoloop.formats.coco import load_coco
    from annoloop.store import Project
    from tests.experiments.data import make_coins

    coins = make_coins(tmp_path / "src")
    data = load_coco(coins / "annotations.json")
    with Project.init(tmp_path / "proj", name="coins") as project:
        project.add_task("count", kinds=("bbox",))
        project.import_dataset(data, images_root=coins / "images", copy_images=True, task="count")
        ds = ExperimentDataset.from_project(project, tmp_path / "exported", task="count")
        other = project.add_task("other", kinds=("bbox",))
        none = ExperimentDataset.from_project(project, tmp_path / "none", task=other)
    assert ds.image_files() == ["coins.png"] and ds.coco is not None
    back = ds.load()
    assert len(back.annotations) == 24 and back.labels == ["coin"]
    assert (back.images[0].width, back.images[0].height) == (384, 303)
    assert len(none.load().annotations) == 0
    # a project given by its path
    by_path = ExperimentDataset.from_project(tmp_path / "proj", tmp_path / "all")
    assert len(by_path.load().annotations) == 24
