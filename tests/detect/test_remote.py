"""Remote mode against a real server (uvicorn on 127.0.0.1 in a thread): MTCNN over the
server's photos through the REST API gives the predictions a local run gives; re-runs skip;
wrong tokens and roles are refused with clear errors and write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import annoloop.detect as detect
from annoloop.cli.main import app
from annoloop.errors import AccessDenied, InvalidInput, NotFound
from annoloop.samples import photo_path
from annoloop.store import Project
from tests.detect.conftest import PORTRAITS, Served

OPTIONS = {"img_max_side": 256, "keep_threshold": 0.9, "device": "cpu"}


def _by_name(project: Project) -> dict[str, np.ndarray]:
    """File name -> (n, 5) rows of x, y, w, h, confidence of the project's predictions."""
    images = project.images()
    ids, locations = images["id"].tolist(), images["location"].tolist()
    names = {int(i): Path(str(loc)).name for i, loc in zip(ids, locations, strict=True)}
    preds = project.predictions()
    out: dict[str, np.ndarray] = {}
    for image_id, group in preds.groupby("image_id"):
        rows = group[["x", "y", "w", "h", "confidence"]].to_numpy(np.float64)
        out[names[int(image_id)]] = rows[np.argsort(rows[:, 0])]
    return out


def _nothing_written(project: Project) -> None:
    assert len(project.predictions()) == 0
    assert len(project.model_states()) == 0
    assert not any(isinstance(m, dict) and m for m in project.images()["meta"])


def test_remote_detect_matches_a_local_run_and_skips_on_rerun(
    served: Served, tmp_path: Path
) -> None:
    local = Project.init(tmp_path / "local")
    detect.run("mtcnn", [str(photo_path(n)) for n in PORTRAITS], project=local, **OPTIONS)
    # remote through the CLI: images listed and downloaded, boxes uploaded with the token
    args = ["detect", "--server", served.url, "--token", served.designer_key, "--images",
            "all", "--img-max-side", "256", "--keep-threshold", "0.9", "--device", "cpu",
            "--cache-dir", str(tmp_path / "cache"), "--label-attr", "Kind",
            "--out-csv", str(tmp_path / "remote.csv"), "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["processed"] == 3 and summary["predictions"] == 2 and not summary["failed"]
    # the server's project holds what the local run stored (same boxes and scores)
    remote_rows, local_rows = _by_name(served.project), _by_name(local)
    assert sorted(remote_rows) == sorted(local_rows) == ["astronaut.png", "grace_hopper.jpg"]
    for name, rows in local_rows.items():
        np.testing.assert_allclose(remote_rows[name], rows, atol=1e-5)
    assert set(served.project.predictions()["label"]) == {"face"}
    states = served.project.model_states()
    assert states["model"].tolist() == ["detect-mtcnn"]
    assert states.iloc[0]["options"]["detector"] == "mtcnn@facenet-pytorch-2.6"
    stamps = [m[detect.STAMP_KEY] for m in served.project.images()["meta"]]
    assert all(s["model"] == "mtcnn@facenet-pytorch-2.6" and s["seconds"] > 0 for s in stamps)
    assert [s["boxes"] for s in stamps] == [1, 1, 0] and stamps[0]["label_attr"] == "Kind"
    # CSV names media by their server URL
    assert f"{served.url}/api/images/1/file" in (tmp_path / "remote.csv").read_text()
    # the originals came through the API into the cache
    assert len(list((tmp_path / "cache").iterdir())) == 3
    # re-run through the API: every image is stamped, nothing is written again
    again = detect.run("mtcnn", server=served.url, token=served.designer_key,
                       cache_dir=tmp_path / "cache", **OPTIONS)  # fmt: skip
    assert len(again.skipped) == 3 and not again.processed
    assert len(served.project.predictions()) == 2
    # force: one image again, by id; its stamp is renewed and its face stored again
    forced = detect.run("mtcnn", server=served.url, token=served.designer_key, images=[1],
                        force=True, cache_dir=tmp_path / "cache", **OPTIONS)  # fmt: skip
    assert [r.media_id for r in forced.processed] == [1]
    assert len(served.project.predictions()) == 3


def test_wrong_token_role_or_server_is_refused_and_writes_nothing(
    served: Served, tmp_path: Path
) -> None:
    kw = {"cache_dir": tmp_path / "cache", **OPTIONS}
    with pytest.raises(AccessDenied, match=r"refused the token.*annoloop users token"):
        detect.run("mtcnn", server=served.url, token="alk_not-a-key", **kw)
    with pytest.raises(AccessDenied, match=r"designer role; ann is annotator"):
        detect.run("mtcnn", server=served.url, token=served.annotator_key, **kw)
    with pytest.raises(NotFound, match="has no image with id 99"):
        detect.run("mtcnn", server=served.url, token=served.designer_key, images=[1, 99], **kw)
    from annoloop.server.run import free_port

    nobody = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(NotFound, match=f"no annoloop server answers at {nobody}"):
        detect.run("mtcnn", server=nobody, token=served.designer_key, **kw)
    with pytest.raises(InvalidInput, match="API key"):
        detect.run("mtcnn", server=served.url, token="", **kw)
    with pytest.raises(InvalidInput, match="http"):
        detect.run("mtcnn", server="ftp://example", token="alk_x", **kw)
    with pytest.raises(InvalidInput, match="not both"):
        detect.run("mtcnn", server=served.url, token="alk_x", project=served.project)
    _nothing_written(served.project)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    # the CLI: a refused token exits with the access-denied code and says why
    result = CliRunner().invoke(
        app, ["detect", "--server", served.url, "--token", "alk_wrong", "--device", "cpu"]
    )
    assert result.exit_code == 5 and "refused the token" in result.output
    result = CliRunner().invoke(app, ["detect", "--server", served.url, "--images", "1,x"])
    assert result.exit_code == 3 and "'x' is not an image id" in result.output


def test_a_media_that_cannot_be_downloaded_is_reported_and_the_rest_go_on(
    served: Served, tmp_path: Path
) -> None:
    # a record whose file lies outside the server's storage: the server refuses to serve it
    outside = tmp_path / "outside.png"
    outside.write_bytes(photo_path("astronaut.png").read_bytes())
    (bad,) = served.project.add_images([outside], copy=False)
    report = detect.run("mtcnn", server=served.url, token=served.designer_key,
                        cache_dir=tmp_path / "cache", **OPTIONS)  # fmt: skip
    (failed,) = report.failed
    assert failed.media_id == int(bad) and "outside the project's storage" in failed.error
    assert len(report.processed) == 3
    metas = served.project.images()["meta"]
    assert [isinstance(m, dict) and detect.STAMP_KEY in m for m in metas] == [1, 1, 1, 0]


def test_remote_detect_into_another_project_of_the_server(served: Served, tmp_path: Path) -> None:
    """A project's API URL, as ``annoloop serve`` prints it, sends setup and teardown to that
    project of a multi-project server; members only."""
    from annoloop.server.projects import create_project, open_project

    entry = create_project(served.project, "alpha", created_by="des")
    alpha = open_project(served.project, entry)
    try:
        alpha.add_images([photo_path(n) for n in PORTRAITS[:2]])
        url = f"{served.url}/api/projects/alpha/"
        report = detect.run("mtcnn", server=url, token=served.designer_key,
                            cache_dir=tmp_path / "cache", **OPTIONS)  # fmt: skip
        assert len(report.processed) == 2 and not report.failed
        assert len(alpha.predictions()) == 2 and len(served.project.predictions()) == 0
        with pytest.raises(NotFound, match="no project 'alpha'"):  # not a member of alpha
            detect.run("mtcnn", server=url, token=served.annotator_key, **OPTIONS)
        with pytest.raises(InvalidInput, match=r"project's API URL"):
            detect.run("mtcnn", server=f"{served.url}/elsewhere", token="alk_x", **OPTIONS)
    finally:
        alpha.close()
