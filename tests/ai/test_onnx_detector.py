"""``onnx-detector``: RapidOCR's real DBNet text detector on skimage's text.png / page.png,
and a tiny hand-built ONNX graph with box outputs (checks the output decoding)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from annoloop.ai.base import ImageItem, TrainingData
from annoloop.ai.models.onnx_detector import OnnxDetector, dbnet_options, rapidocr_text_detector
from annoloop.ai.registry import get_model
from annoloop.backbones.builtin import _package_file
from annoloop.errors import InvalidInput
from annoloop.samples import photo_path


def _skimage(name: str) -> str:
    return str(_package_file("skimage", "data", name))


def _images(*paths: str) -> TrainingData:
    return TrainingData([ImageItem(i + 1, p, 0, 0) for i, p in enumerate(paths)])


def test_dbnet_finds_the_text_lines_of_page_and_text() -> None:
    model = get_model("onnx-detector", {**dbnet_options(), "model": rapidocr_text_detector()})
    state = model.train(None, TrainingData([]))
    assert state.classes == ["text"] and state.metrics["onnx_bytes"] > 1e6
    pred = model.inference(state, _images(_skimage("page.png"), _skimage("text.png")))
    pred.validate([1, 2])
    page = pred.annotations[pred.annotations.image == 1]
    # page.png: seven lines of text, stacked, each wider than tall, none overlapping
    assert 6 <= len(page) <= 9
    assert np.all(page.box[:, 2] > 2 * page.box[:, 3])
    ys = np.sort(page.box[:, 1])
    assert np.all(np.diff(ys) > 0.03)
    assert page.box[:, 2].max() > 0.9  # full-width lines
    text = pred.annotations[pred.annotations.image == 2]
    assert len(text) >= 4  # the words of text.png
    assert np.all(pred.annotations.confidence >= 0.5)
    # a photo without text gives (almost) nothing
    none = model.inference(state, _images(str(photo_path("coffee.png"))))
    assert len(none) <= 2


def _box_model(path: Path) -> Path:
    """A graph with outputs boxes (N,4 in input pixels), scores (N,), labels (N,): two fixed
    boxes whose scores are the mean input value and 1 - it."""
    import onnx
    from onnx import TensorProto, helper

    boxes = helper.make_tensor("b", TensorProto.FLOAT, [2, 4], [8, 8, 24, 16, 0, 0, 32, 32])
    labels = helper.make_tensor("l", TensorProto.INT64, [2], [1, 2])
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    shape = helper.make_tensor("s", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("Constant", [], ["boxes"], value=boxes),
        helper.make_node("Constant", [], ["labels"], value=labels),
        helper.make_node("Constant", [], ["one"], value=one),
        helper.make_node("Constant", [], ["shape"], value=shape),
        helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0),
        helper.make_node("Reshape", ["m", "shape"], ["m1"]),
        helper.make_node("Sub", ["one", "m1"], ["m2"]),
        helper.make_node("Concat", ["m1", "m2"], ["scores"], axis=0),
    ]
    graph = helper.make_graph(
        nodes, "boxes", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [2, 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("labels", TensorProto.INT64, [2])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_box_outputs_are_decoded_into_image_coordinates(tmp_path: Path) -> None:
    path = _box_model(tmp_path / "boxes.onnx")
    opts = {"model": str(path), "classes": ["a", "b"], "input_size": [32, 32],
            "label_offset": 1, "score_threshold": 0.0}  # fmt: skip
    model = OnnxDetector(opts)
    state = model.train(None, TrainingData([]))
    pred = model.inference(state, _images(str(photo_path("astronaut.png"))))
    ann = pred.annotations
    assert ann.label.tolist() == [0, 1]
    # the first box is x 8..24, y 8..16 of 32: relative centre (0.5, 0.375), size (0.5, 0.25)
    assert ann.box[0] == pytest.approx([0.5, 0.375, 0.5, 0.25])
    assert ann.box[1] == pytest.approx([0.5, 0.5, 1.0, 1.0])
    mean = ann.confidence[0]
    assert 0.2 < mean < 0.8 and ann.confidence[1] == pytest.approx(1 - mean, abs=1e-5)


def test_broken_models_and_options_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x01garbage" * 100)
    with pytest.raises(InvalidInput, match="ONNX"):
        OnnxDetector({"model": str(bad)}).train(None, TrainingData([]))
    path = _box_model(tmp_path / "boxes.onnx")
    with pytest.raises(InvalidInput, match="no output 'dets'"):
        OnnxDetector({"model": str(path), "boxes_output": "dets"}).state_from_file()
    with pytest.raises(InvalidInput, match="no ONNX file"):
        OnnxDetector({}).train(None, TrainingData([]))
    report = OnnxDetector.verify_options({"postprocess": "yolo", "layout": "chw"})
    assert not report.valid and len(report.errors) == 2
    model = OnnxDetector({"model": str(path)})
    state = model.train(None, TrainingData([]))
    state.blob = b"PK\x03\x04 broken zip"
    with pytest.raises(InvalidInput):
        model.inference(state, _images(str(photo_path("coffee.png"))))
