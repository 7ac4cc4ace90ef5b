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
