"""Plots a person would rather look at than read (matplotlib, Agg backend, saved as PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_stats(stats: dict[str, Any], path: str | Path) -> Path:
    """Bar charts of annotations per label, per kind and work items per state -> PNG."""
    plt = _pyplot()
    panels = [
        ("annotations per label", stats.get("per_label") or {}),
        ("annotations per kind", stats.get("per_kind") or {}),
        ("annotations per source", stats.get("per_source") or {}),
    ]
    states: dict[str, int] = {}
    for per in (stats.get("work_items") or {}).values():
        for state, count in per.items():
            states[state] = states.get(state, 0) + count
    panels.append(("work items per state", states))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    for ax, (title, counts) in zip(axes, panels, strict=True):
        ax.set_title(title, fontsize=10)
        if counts:
            names = [str(k) for k in counts]
            ax.barh(names, list(counts.values()), color="#3b7dd8")
            ax.invert_yaxis()
            ax.tick_params(labelsize=8)
        else:
            ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
    fig.suptitle(
        f"{stats.get('images', 0)} images · {stats.get('annotations', 0)} annotations", fontsize=11
    )
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


_PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4",
    "#42d4f4", "#f032e6", "#bfef45", "#fabed4", "#469990",
)  # fmt: skip


def draw_annotations(
    image: Any, annotations: Any, path: str | Path, *, label_names: list[str] | None = None
) -> Path:
    """Draw an :class:`~annoloop.geometry.Annotations` struct over an image and save a PNG.

    ``image`` is an HxWx3 uint8 array; boxes, points, lines and polygon outlines are drawn in
    one colour per label; image-level labels are listed in the top-left corner.
    """
    import numpy as np
    from PIL import Image, ImageDraw

    from annoloop.geometry import Kind

    canvas = Image.fromarray(np.asarray(image)).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    width, height = canvas.size
    names = label_names or annotations.label_names
    tags = []
    # colours by rank among the labels present, so neighbouring ids never share a colour
    labels_present = np.unique(annotations.label[annotations.label >= 0])
    present = {int(v): r for r, v in enumerate(labels_present)}
    for i in range(len(annotations)):
        label = int(annotations.label[i])
        colour = _PALETTE[present[label] % len(_PALETTE)] if label >= 0 else "#ffffff"
        kind = Kind(int(annotations.kind[i]))
        cx, cy, w, h = annotations.box[i]
        if kind is Kind.LABEL:
            tags.append(names[label] if 0 <= label < len(names) else str(label))
        elif kind is Kind.POINT:
            x, y = cx * width, cy * height
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=colour, width=2)
        elif kind is Kind.BBOX or kind is Kind.MASK:
            x0, y0 = (cx - w / 2) * width, (cy - h / 2) * height
            draw.rectangle([x0, y0, x0 + w * width, y0 + h * height], outline=colour, width=2)
        elif kind is Kind.LINE:
            pts = [(float(x) * width, float(y) * height) for x, y in annotations.shape[i]]
            draw.line(pts, fill=colour, width=2)
        elif kind is Kind.POLYGON:
            for polygon in annotations.shape[i]:
                for ring in polygon:
                    pts = [(float(x) * width, float(y) * height) for x, y in ring]
                    draw.line([*pts, pts[0]], fill=colour, width=2)
    if tags:
        draw.rectangle([0, 0, 8 + 7 * max(len(t) for t in tags), 4 + 12 * len(tags)], fill="black")
        for j, tag in enumerate(tags):
            draw.text((4, 2 + 12 * j), tag, fill="white")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    return out
