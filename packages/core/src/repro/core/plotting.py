"""One matplotlib style for every figure, and atomic figure saving."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

STYLE: dict[str, Any] = {
    "figure.figsize": (5.0, 3.5),
    "figure.dpi": 120,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "image.cmap": "viridis",
}
#: Okabe-Ito palette: colour-blind safe, used as the colour cycle.
COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def use_style() -> None:
    """Select the headless Agg backend and apply :data:`STYLE`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import rcParams

    plt.close("all")
    from matplotlib import cycler

    rcParams.update(STYLE)
    rcParams["axes.prop_cycle"] = cycler(color=COLORS)


def save_figure(fig: Any, path: str | os.PathLike[str]) -> None:
    """Save ``fig`` atomically (format from the suffix) and close it."""
    import matplotlib.pyplot as plt

    from repro.core.atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
