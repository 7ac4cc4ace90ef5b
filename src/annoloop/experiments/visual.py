"""``ExperimentVisual``: plot an experiment's DataFrame (x, y, legend) and save it as PNG.

iquaflow's ``ExperimentVisual`` with matplotlib only (no seaborn)::

    df = ExperimentInfo("jpeg-vs-accuracy", tracking_uri=uri).frame()
    ExperimentVisual(df).visualize(xvar="quality", yvar="accuracy", legend_var="C",
                                   out_path="accuracy.png")

Rows with the same x and legend value (the repetitions) are averaged; ``kind="line"`` draws
the mean with a band of +/- one standard deviation, ``"bar"`` grouped bars with error bars,
``"scatter"`` every run. Numeric x values are placed by value, others in order of first
appearance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput

KINDS = ("line", "bar", "scatter")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class ExperimentVisual:
    """Plots of a DataFrame of runs (:meth:`ExperimentInfo.frame` or ``get_df``)."""

    def __init__(self, df: Any, out_path: str | Path | None = None) -> None:
        self.df = df
        self.out_path = Path(out_path) if out_path is not None else None

    def _flat(self) -> Any:
        df = self.df
        if getattr(df.columns, "nlevels", 1) > 1:  # iquaflow's grouped mean/std frame
            df = df.copy()
            df.columns = ["_".join(str(c) for c in col if c) for col in df.columns]
            df = df.reset_index()
        return df

    def visualize(
        self,
        xvar: str = "modifier",
        yvar: str = "accuracy",
        legend_var: str | None = None,
        *,
        kind: str = "line",
        title: str | None = None,
        out_path: str | Path | None = None,
    ) -> Path | None:
        """Plot ``yvar`` against ``xvar``, one series per ``legend_var`` value; save as PNG to
        ``out_path`` (or the one given to the constructor) and return its path."""
        if kind in ("lineplot", "bars", "scatterplot"):  # iquaflow's names
            kind = {"lineplot": "line", "bars": "bar", "scatterplot": "scatter"}[kind]
        if kind not in KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        df = self._flat()
        for col in (xvar, yvar) + ((legend_var,) if legend_var else ()):
            if col not in df.columns:
                raise InvalidInput(
                    f"no column {col!r}; columns: {', '.join(map(str, df.columns))}", "DataFrame"
                )
        if df.empty:
            raise InvalidInput("nothing to plot: the DataFrame has no rows")
        import pandas as pd

        y = pd.to_numeric(df[yvar], errors="coerce")
        x_raw = df[xvar]
        x_num = pd.to_numeric(x_raw, errors="coerce")
        numeric_x = bool(x_num.notna().all())
        if numeric_x:
            x_values = x_num.to_numpy(dtype=float)
            order = sorted(set(x_values.tolist()))
        else:
            order = list(dict.fromkeys(x_raw.astype(str)))
            x_values = x_raw.astype(str).to_numpy()
        position = {v: i for i, v in enumerate(order)}
        groups = list(dict.fromkeys(df[legend_var].astype(str))) if legend_var else [None]
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(7.0, 4.5))
        width = 0.8 / max(1, len(groups))
        for g_index, group in enumerate(groups):
            mask = (
                (df[legend_var].astype(str) == group).to_numpy()
                if legend_var
                else np.ones(len(df), bool)
            )
            xs, ys = x_values[mask], y.to_numpy(dtype=float)[mask]
            label = f"{legend_var}={group}" if legend_var else yvar
            if kind == "scatter":
                px = xs if numeric_x else np.array([position[v] for v in xs], float)
                ax.scatter(px, ys, label=label, s=22)
                continue
            keys = [v for v in order if np.any(xs == v)]
            means = np.array([np.nanmean(ys[xs == v]) for v in keys])
            stds = np.array([np.nanstd(ys[xs == v]) for v in keys])
            px = (
                np.array(keys, float) if numeric_x else np.array([position[v] for v in keys], float)
            )
            if kind == "line":
                ax.plot(px, means, marker="o", label=label)
                ax.fill_between(px, means - stds, means + stds, alpha=0.2)
            else:
                base = np.array([position[v] for v in keys], float)
                ax.bar(
                    base + (g_index - (len(groups) - 1) / 2) * width,
                    means,
                    width,
                    yerr=stds,
                    label=label,
                    capsize=3,
                )
        if not numeric_x or kind == "bar":
            ax.set_xticks(range(len(order)))
            ax.set_xticklabels([str(v) for v in order], rotation=30, ha="right", fontsize=8)
        ax.set_xlabel(xvar)
        ax.set_ylabel(yvar)
        ax.grid(alpha=0.3)
        if legend_var or kind == "scatter":
            ax.legend(fontsize=8)
        if title:
            ax.set_title(title)
        fig.tight_layout()
        target = Path(out_path) if out_path is not None else self.out_path
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(target, dpi=110)
        plt.close(fig)
        return target
