"""The ONNX Runtime extractor (float32 and int8) against torch float32, on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from annoloop.errors import InvalidInput
from annoloop.points import ExtractorSpec
from annoloop.points.extractors import clear_extractor_cache, get_extractor, resolve_runtime
from tests.points.runtimes import PATCH, assert_same_float32, cosines, features, spec


@pytest.mark.slow
def test_onnx_features_match_torch_float32(
    onnx_cache: Path, photo_arrays: list[np.ndarray]
) -> None:
    photos = photo_arrays[:4]
    ref = features(spec("torch", "float32"), photos, 20)
    fp32 = features(spec("onnx", "float32"), photos, 20)
    assert_same_float32(ref, fp32)
    int8 = features(spec("onnx", "int8"), photos, 20)
    cos = cosines(ref, int8)
    # int8 changes the features (a few patches noticeably: cosine ~0.75 at worst here), but
    # on average they stay close to float32's
    assert cos.mean() > 0.95 and cos.min() > 0.6, (cos.mean(), cos.min())
    assert not np.allclose(ref, int8, atol=1e-3)  # really quantized, not float32 again
    files = sorted(p.name for p in onnx_cache.iterdir())
    assert len(files) == 2 and any("-int8-" in f for f in files), files


def test_the_model_is_converted_once_per_backbone(
    onnx_cache: Path, photo_arrays: list[np.ndarray]
) -> None:
    ext, built = get_extractor(spec("onnx", "float32"))
    assert built and ext.runtime == "onnx" and ext.onnx is not None
    path = ext.onnx.path
    assert path.parent == onnx_cache and path.suffix == ".onnx"
    stamp = path.stat().st_mtime_ns
    clear_extractor_cache()  # a new process would start here: the file is reused
    again, built = get_extractor(spec("onnx", "float32"))
    assert built and again.onnx.path == path and path.stat().st_mtime_ns == stamp
    assert [p.name for p in onnx_cache.iterdir()] == [path.name]  # nothing half-written left
    # a different patch size is a different graph
    other, _ = get_extractor(ExtractorSpec(name="efficientnet-lite0", patch_size=64,
                                           runtime="onnx"))  # fmt: skip
    assert other.onnx.path != path and len(list(onnx_cache.iterdir())) == 2
    feats = other.extract(photo_arrays[0], [(10, 10), (200, 300)])[1]
    assert feats.shape == (2, 1280) and np.isfinite(feats).all()


def test_auto_runtime_picks_onnx_for_float32_on_the_cpu(onnx_cache: Path) -> None:
    ext, _ = get_extractor(ExtractorSpec(name="efficientnet-lite0", patch_size=PATCH,
                                         device="cpu", precision="float32"))  # fmt: skip
    assert (ext.runtime, ext.precision) == ("onnx", "float32") and ext.onnx is not None
    int8 = resolve_runtime(ExtractorSpec(name="efficientnet-lite0", precision="int8"))
    assert int8 == ("onnx", "int8")
    # torch asked for: auto precision is float32 there (bfloat16 only on OpenVINO)
    torch_auto = resolve_runtime(ExtractorSpec(name="efficientnet-lite0", runtime="torch"))
    assert torch_auto == ("torch", "float32")


def test_bad_runtime_options_are_refused(onnx_cache: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="int8 runs on the onnx runtime"):
        get_extractor(spec("torch", "int8"))
    with pytest.raises(InvalidInput, match="onnx runtime runs float32 or int8"):
        get_extractor(spec("onnx", "bfloat16"))
    with pytest.raises(InvalidInput, match="runs on the CPU"):
        get_extractor(ExtractorSpec(name="efficientnet-lite0", runtime="onnx", device="cuda"))
    with pytest.raises(ValidationError):
        ExtractorSpec(name="efficientnet-lite0", runtime="tensorrt")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(InvalidInput, match="cannot create the ONNX cache folder"):
        from annoloop.backbones import get_backbone
        from annoloop.backbones.onnx_runtime import OnnxRunner

        OnnxRunner(get_backbone("efficientnet-lite0", device="cpu"), PATCH,
                   cache_dir=blocker / "sub")  # fmt: skip


def test_onnx_runner_checks_the_patch_shape(onnx_cache: Path) -> None:
    ext, _ = get_extractor(spec("onnx", "float32"))
    with pytest.raises(InvalidInput, match=f"must be \\(N, {PATCH}, {PATCH}, 3\\) uint8"):
        ext.onnx.features(np.zeros((2, PATCH + 1, PATCH, 3), np.uint8))
    with pytest.raises(InvalidInput, match="uint8"):
        ext.onnx.features(np.zeros((2, PATCH, PATCH, 3), np.float32))
    assert ext.onnx.features(np.zeros((0, PATCH, PATCH, 3), np.uint8)).shape == (0, 1280)
