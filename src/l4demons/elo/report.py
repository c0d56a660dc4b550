"""Learning curves: Elo and loss over cycles and over training hours, to one PNG.

matplotlib is an optional dependency (``l4demons[plot]``): the bot and the
training loop never need it, so it is imported only when a report is drawn.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from l4demons.atomic import atomic_write
from l4demons.elo.errors import PlotUnavailable


def _column(rows: Sequence[Mapping[str, Any]], x: str, y: str) -> tuple[list[float], list[float], list[int]]:
    """(xs, ys, row indices) for rows where both keys hold finite numbers."""
    xs, ys, idx = [], [], []
    for i, row in enumerate(rows):
        a, b = row.get(x), row.get(y)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isfinite(a) and math.isfinite(b):
            xs.append(float(a))
            ys.append(float(b))
            idx.append(i)
    return xs, ys, idx


def draw_report(metrics_rows: Sequence[Mapping[str, Any]], out_png: str | os.PathLike[str]) -> Path:
    """Draw Elo (with 95% error bars) and train/val loss against cycle and hours.

    ``metrics_rows`` are the lines of ``metrics.jsonl``; keys used:
    ``cycle``, ``hours``, ``elo``, ``elo_lo``, ``elo_hi``, ``train_loss``,
    ``val_loss``. Rows lacking a key are left out of that curve only.
    Written atomically. Returns the path written.

    :raises PlotUnavailable: matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailable("drawing the report needs matplotlib: pip install matplotlib "
                              "(or pip install 'l4demons[plot]')") from exc

    fig, axes = plt.subplots(2, 2, figsize=(12, 8), squeeze=False)
    for col, x in enumerate(("cycle", "hours")):
        ax = axes[0][col]
        xs, ys, idx = _column(metrics_rows, x, "elo")
        if xs:
            lo = [ys[k] - float(metrics_rows[i].get("elo_lo", ys[k])) for k, i in enumerate(idx)]
            hi = [float(metrics_rows[i].get("elo_hi", ys[k])) - ys[k] for k, i in enumerate(idx)]
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o-", capsize=3, label="Elo (95%)")
            ax.legend()
        ax.set(xlabel="training cycle" if x == "cycle" else "training hours", ylabel="Elo", title=f"Elo vs {x}")
        ax.grid(alpha=0.3)
        ax = axes[1][col]
        for key in ("train_loss", "val_loss"):
            xs, ys, _ = _column(metrics_rows, x, key)
            if xs:
                ax.plot(xs, ys, "o-", label=key.replace("_", " "))
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        ax.set(xlabel="training cycle" if x == "cycle" else "training hours", ylabel="loss", title=f"loss vs {x}")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    out = Path(out_png)
    atomic_write(out, png.getvalue())
    return out
