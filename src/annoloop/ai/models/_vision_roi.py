"""RoI Align through ``grid_sample``: no compiled op and no inductor compile.

Where torchvision's compiled ops do not load (the CPU torch of ENVIRONMENT.md), its
``roi_align`` falls back to a pure-PyTorch version that it compiles with the inductor on the
first call (a minute or more on a small CPU) and that needs a lot of memory in eager mode.
:class:`GridRoIAlign` samples the same bilinear points with one ``grid_sample`` per image
(the rois of an image stacked into one tall grid) and averages them per bin: eager, fast,
differentiable. It replaces a detector's ``MultiScaleRoIAlign`` with the same settings.
"""

from __future__ import annotations

from typing import Any


def roi_align_grid(
    features: Any, rois: Any, output_size: tuple[int, int], spatial_scale: float, sampling: int
) -> Any:
    """(K, C, oh, ow) pooled features of ``rois`` (K, 5: batch index, x1, y1, x2, y2 in image
    pixels) on ``features`` (B, C, H, W); ``sampling`` points per bin side (aligned=False)."""
    import torch
    import torch.nn.functional as F

    oh, ow = output_size
    s = max(1, int(sampling))
    k = rois.shape[0]
    b, c, h, w = features.shape
    out = features.new_zeros((k, c, oh, ow))
    if k == 0:
        return out
    box = rois[:, 1:] * spatial_scale
    bw = (box[:, 2] - box[:, 0]).clamp(min=1.0) / ow
    bh = (box[:, 3] - box[:, 1]).clamp(min=1.0) / oh
    # sample positions inside each bin, in feature pixels (pixel k's centre at k)
    fx = (torch.arange(ow * s, device=rois.device, dtype=features.dtype) + 0.5) / s
    fy = (torch.arange(oh * s, device=rois.device, dtype=features.dtype) + 0.5) / s
    xs = box[:, 0:1] + fx[None, :] * bw[:, None]  # (K, ow*s)
    ys = box[:, 1:2] + fy[None, :] * bh[:, None]  # (K, oh*s)
    gx = (2 * xs + 1) / w - 1  # grid_sample, align_corners=False
    gy = (2 * ys + 1) / h - 1
    grid = torch.stack(
        [gx[:, None, :].expand(k, oh * s, ow * s), gy[:, :, None].expand(k, oh * s, ow * s)],
        dim=-1,
    )
    index = rois[:, 0].long()
    for i in range(b):  # one grid_sample per image: its rois stacked into one tall grid
        pick = torch.nonzero(index == i).flatten()
        if pick.numel() == 0:
            continue
        g = grid[pick].reshape(1, -1, ow * s, 2)
        sampled = F.grid_sample(
            features[i : i + 1], g, mode="bilinear", padding_mode="border", align_corners=False
        )  # (1, C, n*oh*s, ow*s)
        sampled = sampled.reshape(c, pick.numel(), oh * s, ow * s).transpose(0, 1)
        out[pick] = F.avg_pool2d(sampled, s) if s > 1 else sampled
    return out


def grid_pooler(original: Any) -> Any:
    """A ``MultiScaleRoIAlign`` with ``original``'s settings that pools with
    :func:`roi_align_grid` (levels mapped as torchvision maps them)."""
    from torchvision.ops import MultiScaleRoIAlign
    from torchvision.ops.poolers import _convert_to_roi_format, _filter_input, _setup_scales

    class GridRoIAlign(MultiScaleRoIAlign):
        def forward(self, x: Any, boxes: Any, image_shapes: Any) -> Any:
            x_filtered = _filter_input(x, self.featmap_names)
            if self.scales is None or self.map_levels is None:
                self.scales, self.map_levels = _setup_scales(
                    x_filtered, image_shapes, self.canonical_scale, self.canonical_level
                )
            rois = _convert_to_roi_format(boxes)
            sampling = self.sampling_ratio if self.sampling_ratio > 0 else 2
            if len(x_filtered) == 1:
                return roi_align_grid(
                    x_filtered[0], rois, self.output_size, self.scales[0], sampling
                )
            levels = self.map_levels(boxes)
            first = x_filtered[0]
            result = first.new_zeros((rois.shape[0], first.shape[1], *self.output_size))
            for level, (feature, scale) in enumerate(zip(x_filtered, self.scales, strict=True)):
                idx = (levels == level).nonzero().flatten()
                result[idx] = roi_align_grid(feature, rois[idx], self.output_size, scale, sampling)
            return result

    return GridRoIAlign(
        featmap_names=list(original.featmap_names),
        output_size=original.output_size,
        sampling_ratio=original.sampling_ratio,
        canonical_scale=original.canonical_scale,
        canonical_level=original.canonical_level,
    )


def use_grid_pooling(net: Any) -> Any:
    """Swap the RoI pooler of a torchvision two-stage detector for :func:`grid_pooler`
    (where the compiled ``roi_align`` is missing); returns ``net``."""
    from annoloop.backbones.torchvision_shim import shim_active

    roi_heads = getattr(net, "roi_heads", None)
    pool = getattr(roi_heads, "box_roi_pool", None)
    if pool is not None and shim_active():
        roi_heads.box_roi_pool = grid_pooler(pool)
    return net
