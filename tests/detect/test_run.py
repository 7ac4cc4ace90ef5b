"""annoloop.detect.run end to end with real detectors on the bundled photos and the
generated video: MTCNN faces, RapidOCR's ONNX text detector, a torchvision weights file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import annoloop.detect as detect
from annoloop.errors import InvalidInput, NotFound
from annoloop.geometry.boxes import box_iou
from annoloop.samples import photo_path
from annoloop.store import Project

# hand-checked face boxes (xyxy pixels) in the bundled photos
ASTRONAUT_FACE = np.array([[181, 62, 268, 172]])
HOPPER_FACE = np.array([[175, 115, 352, 340]])


def _photos() -> list[str]:
    return [str(photo_path(n)) for n in ("astronaut.png", "grace_hopper.jpg", "coffee.png")]


def test_mtcnn_finds_the_faces_in_photos_and_video(
    tmp_path: Path, pan_video: Path, broken_video: Path
) -> None:
    project = Project.init(tmp_path / "proj")
    sources = [*_photos(), str(pan_video), str(broken_video)]
    seen: list[tuple[int, int | None]] = []
    report = detect.run(
        "mtcnn", sources, project=project, img_max_side=256, batch_size=4,
        keep_threshold=0.9, device="cpu", out_csv=tmp_path / "boxes.csv",
        out_coco=tmp_path / "boxes.json", label_attr="Species", confidence_attr="Confidence",
        progress=lambda d, t, m: seen.append((d, t)),
    )  # fmt: skip
    by_name = {Path(r.media).name: r for r in report.results}
    # one face in each portrait, none in the coffee cup, at the right place
    for name, face in (("astronaut.png", ASTRONAUT_FACE), ("grace_hopper.jpg", HOPPER_FACE)):
        r = by_name[name]
        assert r.ok and r.n_boxes == 1, r.summary()
        assert box_iou(r.boxes_pixels(), face)[0, 0] > 0.6
        assert r.scores[0] > 0.9
    assert by_name["coffee.png"].ok and by_name["coffee.png"].n_boxes == 0
    # the video: a face on (nearly) every frame, linked into one track that moves
    video = by_name["astronaut_pan.mp4"]
    assert video.ok and video.frames_processed == 12
    assert video.n_boxes >= 10 and video.n_tracks == 1
    centres = video.boxes[:, 0]
    assert centres[-1] < centres[0] - 0.1  # the pan moves the face left
    # the truncated video is reported, the rest went on
    assert [Path(r.media).name for r in report.failed] == ["broken.mp4"]
    assert "broken.mp4" in report.failed[0].error
    assert seen[-1] == (5, 5)
    # the project: predictions of a detector model state, media stamped, frames with tracks
    preds = project.predictions()
    assert len(preds) == report.summary()["boxes"] == len(report.prediction_ids)
    assert set(preds["label"]) == {"face"}
    images = project.images()
    stamped = images[[isinstance(m, dict) and detect.STAMP_KEY in m for m in images["meta"]]]
    assert len(stamped) == 4  # not the broken video
    stamp = stamped.iloc[0]["meta"][detect.STAMP_KEY]
    assert stamp["model"] == "mtcnn@facenet-pytorch-2.6" and stamp["seconds"] > 0
    assert stamp["label_attr"] == "Species"
    frames = images[images["frame"].notna()]
    assert len(frames) == video.n_boxes  # one record per video frame with a face
    assert all(m["track_ids"] == [0] for m in frames["meta"])
    # CSV and COCO with the configured attribute names
    rows = list(csv.DictReader((tmp_path / "boxes.csv").open()))
    assert len(rows) == len(preds) and rows[0]["Species"] == "face"
    coco = json.loads((tmp_path / "boxes.json").read_text())
    assert len(coco["annotations"]) == len(preds)
    assert coco["annotations"][0]["attributes"]["Species"] == "face"
    assert coco["categories"] == [{"id": 1, "name": "face"}]
    # re-running skips what was processed; the broken video is tried (and reported) again
    again = detect.run("mtcnn", sources, project=project, img_max_side=256, device="cpu")
    assert len(again.skipped) == 4 and [Path(r.media).name for r in again.failed] == ["broken.mp4"]
    assert len(project.predictions()) == len(preds)


def test_executor_runs_one_media_per_task(tmp_path: Path, pan_video: Path) -> None:
    from annoloop.execution import get_executor

    with get_executor("local") as ex:
        report = detect.run(
            "mtcnn", [str(pan_video), str(photo_path("astronaut.png"))], executor=ex,
            img_max_side=256, frame_stride=3, keep_threshold=0.9, device="cpu", tracker="greedy",
        )  # fmt: skip
    video, photo = report.results
    assert video.ok and video.frames_processed == 4 and video.n_tracks == 1
    assert photo.ok and photo.n_boxes == 1
    assert report.summary()["fps"] > 0


def test_onnx_text_detector_finds_the_lines_of_a_page(tmp_path: Path) -> None:
    from annoloop.backbones.builtin import _package_file

    page = _package_file("skimage", "data", "page.png")
    report = detect.run("onnx:rapidocr-text", [str(page)], keep_threshold=0.5,
                        out_coco=tmp_path / "text.json")  # fmt: skip
    (r,) = report.results
    assert r.ok and r.classes == ["text"]
    # page.png holds 7 lines of text; each box is a wide, short line
    assert 5 <= r.n_boxes <= 10
    assert np.all(r.boxes[:, 2] > 2 * r.boxes[:, 3])


def test_torchvision_weights_file(tmp_path: Path) -> None:
    """A user's torchvision detector weights by name (random weights: it must load, run,
    and give boxes in the image; quality is the trained detector's test)."""
    import torch

    from annoloop.ai.models._vision_frcnn import build_torchvision

    torch.manual_seed(0)
    net = build_torchvision("fasterrcnn_mobilenet_v3_large_320_fpn", 2)
    torch.save(net.state_dict(), tmp_path / "w.pth")
    spec = f"torchvision:fasterrcnn_mobilenet_v3_large_320_fpn={tmp_path / 'w.pth'}"
    report = detect.run(spec, [str(photo_path("coffee.png"))], classes=["cup", "spoon"],
                        keep_threshold=0.0, device="cpu")  # fmt: skip
    (r,) = report.results
    assert r.ok, r.error
    assert r.model == "fasterrcnn_mobilenet_v3_large_320_fpn"
    assert np.all((r.boxes >= 0) & (r.boxes <= 1))
    with pytest.raises(InvalidInput, match="class names"):
        detect.run(spec, [str(photo_path("coffee.png"))])


def test_bad_detector_specs(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="unknown detector"):
        detect.parse_detector("yolo-magic")
    with pytest.raises(NotFound):
        detect.parse_detector(str(tmp_path / "missing.onnx"))
    with pytest.raises(InvalidInput, match="needs a project"):
        detect.parse_detector("project:detector")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx at all")
    report = detect.run(str(bad), [str(photo_path("coffee.png"))])
    assert not report.results[0].ok and "ONNX" in report.results[0].error
    with pytest.raises(NotFound):
        detect.run("mtcnn", [str(tmp_path / "nothing.png")])


def test_detector_state_stored_in_the_project(tmp_path: Path) -> None:
    """``project:detector``: the current state of the built-in detector model, and its
    model state is the one the predictions point to."""
    import torch

    from annoloop.ai.models.detector import Detector, build_network
    from annoloop.ai.project_data import save_state

    options = Detector.default_options()
    torch.manual_seed(0)
    net = build_network("mobilenet_v2_frcnn", 1, options)
    torch.save(net.state_dict(), tmp_path / "net.pth")
    state = Detector.from_weights("mobilenet_v2_frcnn", tmp_path / "net.pth", ["coin"])
    project = Project.init(tmp_path / "proj")
    project.add_labels(["coin"])
    state_id = save_state(project, state)
    project.set_current_state(state_id)
    report = detect.run("project:detector", [str(photo_path("coins.png"))], project=project,
                        keep_threshold=0.0, device="cpu")  # fmt: skip
    (r,) = report.results
    assert r.ok, r.error
    assert report.model_state_id == state_id
    preds = project.predictions()
    assert len(preds) == r.n_boxes and set(preds["model_state_id"]) <= {state_id}
    with pytest.raises(NotFound):
        detect.run("project:segmentation", [str(photo_path("coins.png"))], project=project)
