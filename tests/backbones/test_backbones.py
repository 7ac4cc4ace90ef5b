"""The backbone registry, weight files, precision and device options."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch

from annoloop.backbones import get_backbone, list_backbones, register_backbone
from annoloop.backbones.base import Backbone
from annoloop.backbones.device import resolve_device
from annoloop.errors import AlreadyExists, InvalidInput, NotFound
from annoloop.storage import Location


def _patches(n: int = 3, size: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_listing_and_unknown_names() -> None:
    names = list_backbones()
    assert {"efficientnet-lite0", "mobilenet_v2", "spacer-efficientnet-b0"} <= set(names)
    with pytest.raises(NotFound, match="unknown backbone"):
        get_backbone("resnet9000")
    with pytest.raises(NotFound):
        get_backbone("torchvision:not_a_model")
    with pytest.raises(NotFound):
        get_backbone("no.such.module:factory")
    with pytest.raises(InvalidInput):
        get_backbone("torchvision:")


def tiny_factory(weights=None, **options):
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
    )
    return Backbone("tiny", net, 4, **options)


def test_register_and_dotted_path() -> None:
    register_backbone("tiny-test", tiny_factory, "a 4-d test network", replace=True)
    with pytest.raises(AlreadyExists):
        register_backbone("tiny-test", tiny_factory)
    a = get_backbone("tiny-test")
    b = get_backbone(f"{__name__}:tiny_factory")
    assert a.features(_patches()).shape == (3, 4) and b.feature_dim == 4
    with pytest.raises(InvalidInput):
        register_backbone("bad:name", tiny_factory)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_torchvision_weights_from_a_location(mem_root: Location, suffix: str) -> None:
    torch.manual_seed(0)
    first = get_backbone("torchvision:resnet18")
    full_state = {k: v for k, v in first.module.state_dict().items()}
    full_state["fc.weight"] = torch.zeros(1000, 512)
    full_state["fc.bias"] = torch.zeros(1000)
    loc = mem_root / f"resnet18{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save

        loc.write_bytes(save({k: v.contiguous() for k, v in full_state.items()}))
    else:
        buf = io.BytesIO()
        torch.save(full_state, buf)
        loc.write_bytes(buf.getvalue())
    torch.manual_seed(1)  # a different random init, overwritten by the file
    second = get_backbone("torchvision:resnet18", weights=loc.url, channels_last=False)
    p = _patches()
    np.testing.assert_allclose(first.features(p), second.features(p), rtol=1e-4, atol=1e-5)
    assert second.feature_dim == 512


def test_timm_backbone() -> None:
    bb = get_backbone("timm:resnet18")
    assert bb.features(_patches(2)).shape == (2, 512)


def test_bad_weight_files(mem_root: Location, tmp_path) -> None:
    junk = mem_root / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InvalidInput, match="cannot load weights safely"):
        get_backbone("mobilenet_v2", weights=junk.url)
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = mem_root / "evil.pth"
    evil.write_bytes(pickle.dumps({"net": Evil()}))
    with pytest.raises(InvalidInput):
        get_backbone("spacer-efficientnet-b0", weights=evil.url)
    assert not marker.exists()
    wrong = mem_root / "wrong.pth"
    buf = io.BytesIO()
    torch.save({"conv.weight": torch.zeros(3)}, buf)
    wrong.write_bytes(buf.getvalue())
    with pytest.raises(InvalidInput, match="do not fit"):
        get_backbone("mobilenet_v2", weights=wrong.url)
    with pytest.raises(InvalidInput, match="needs weights"):
        get_backbone("spacer-efficientnet-b0")


def test_precision_and_device_options() -> None:
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InvalidInput):
        resolve_device("tpu:7")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInput, match="CUDA"):
            resolve_device("cuda")
        with pytest.raises(InvalidInput, match="float16"):
            tiny_factory(precision="float16")
    with pytest.raises(InvalidInput, match="precision"):
        tiny_factory(precision="int3")
    bb = tiny_factory()
    with pytest.raises(InvalidInput, match="uint8"):
        bb.features(np.zeros((1, 8, 8, 3), np.float32))
    assert bb.features(np.zeros((0, 8, 8, 3), np.uint8)).shape == (0, 4)
    with pytest.raises(InvalidInput, match="no classification head"):
        bb.logits(_patches(1))
