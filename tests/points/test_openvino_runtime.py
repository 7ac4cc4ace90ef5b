"""The OpenVINO extractor (bfloat16 and float32) against ONNX Runtime float32, on real photos."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from annoloop.backbones.openvino_runtime import native_bfloat16
from annoloop.errors import InvalidInput
from annoloop.points import ExtractorSpec
from annoloop.points.extractors import get_extractor, resolve_runtime
from annoloop.points.project import extractor_key
from tests.points.runtimes import PATCH, assert_same_float32, cosines, features, random_points, spec


def test_openvino_features_match_onnx_float32(
    onnx_cache: Path, photo_arrays: list[np.ndarray]
) -> None:
    photos = photo_arrays[:4]
    ref = features(spec("onnx", "float32"), photos, 24)
    fp32 = features(spec("openvino", "float32"), photos, 24)
    assert_same_float32(ref, fp32)
    bf16 = features(spec("openvino", "bfloat16"), photos, 24)
    cos = cosines(ref, bf16)
    # bfloat16 rounds every activation to 8 bits of mantissa: close to float32, not equal
    # (Lite0 on 96 px patches: cosine 0.97 at worst, 0.997 on average)
    assert cos.min() > 0.95 and cos.mean() > 0.99, (cos.min(), cos.mean())
    if native_bfloat16():  # without it OpenVINO runs the bfloat16 hint in float32
        assert not np.allclose(ref, bf16, atol=1e-3 * np.abs(ref).max())
    # one exported float32 graph serves both runtimes and both precisions
    assert len(list(onnx_cache.glob("*.onnx"))) == 1


def test_auto_precision_follows_the_cpu(onnx_cache: Path) -> None:
    runtime, precision = resolve_runtime(spec(None, None))
    if native_bfloat16():
        assert (runtime, precision) == ("openvino", "bfloat16")
    else:
        assert (runtime, precision) == ("onnx", "float32")
    assert resolve_runtime(spec(None, "bfloat16")) == ("openvino", "bfloat16")
    assert resolve_runtime(spec("openvino", None))[0] == "openvino"
    ext, _ = get_extractor(spec(None, None))
    assert (ext.runtime, ext.precision) == (runtime, precision)
    # the project's feature cache is keyed by what runs here, not by the word "auto"
    assert extractor_key(spec(None, None)) == extractor_key(spec(None, precision))
    assert extractor_key(spec(None, "bfloat16")) != extractor_key(spec(None, "float32"))


def test_openvino_refuses_what_it_cannot_run(onnx_cache: Path) -> None:
    with pytest.raises(InvalidInput, match="int8 runs on the onnx runtime"):
        resolve_runtime(spec("openvino", "int8"))
    with pytest.raises(InvalidInput, match="openvino runtime runs float32 or bfloat16"):
        resolve_runtime(spec("openvino", "float16"))
    with pytest.raises(InvalidInput, match="runs on the CPU"):
        resolve_runtime(ExtractorSpec(name="efficientnet-lite0", runtime="openvino",
                                      device="cuda"))  # fmt: skip
    ext, _ = get_extractor(spec("openvino", "bfloat16"))
    with pytest.raises(InvalidInput, match=f"must be \\(N, {PATCH}, {PATCH}, 3\\) uint8"):
        ext.runner.features(np.zeros((2, PATCH, PATCH, 3), np.float32))
    with pytest.raises(InvalidInput, match="uint8"):
        ext.runner.features(np.zeros((2, PATCH + 1, PATCH, 3), np.uint8))
    assert ext.runner.features(np.zeros((0, PATCH, PATCH, 3), np.uint8)).shape == (0, 1280)


def test_one_extractor_serves_several_threads(
    onnx_cache: Path, photo_arrays: list[np.ndarray]
) -> None:
    """A worker's threads share the cached extractor: each gets its own infer request."""
    ext, _ = get_extractor(spec("openvino", "bfloat16"))
    photos = photo_arrays[:4]
    alone = [ext.extract(img, random_points(img, 40, i))[1] for i, img in enumerate(photos)]
    together: list[np.ndarray | None] = [None] * len(photos)

    def run(i: int) -> None:
        together[i] = ext.extract(photos[i], random_points(photos[i], 40, i))[1]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(photos))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_network_that_does_not_export_runs_in_torch(
    onnx_cache: Path, photo_arrays: list[np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    name = "tests.points.runtimes:unexportable_backbone"
    ext, _ = get_extractor(ExtractorSpec(name=name, patch_size=PATCH))  # auto, auto
    assert (ext.runtime, ext.precision, ext.runner) == ("torch", "float32", None)
    assert "export of tests.points.runtimes:unexportable_backbone failed" in caplog.text
    img = photo_arrays[0]
    pts = random_points(img, 10, 0)
    got = ext.extract(img, pts)[1]
    torch_ext, _ = get_extractor(ExtractorSpec(name=name, patch_size=PATCH, runtime="torch",
                                               precision="float32"))  # fmt: skip
    np.testing.assert_array_equal(got, torch_ext.extract(img, pts)[1])
    # asked for by name, a runtime that cannot run the network is an error, not a fallback
    with pytest.raises(InvalidInput, match=r"the onnx runtime cannot run .*svdvals"):
        get_extractor(ExtractorSpec(name=name, patch_size=PATCH, runtime="onnx",
                                    precision="float32"))  # fmt: skip
