"""CSKD: cosine-similarity KD with per-sample temperatures (CSWT). Its scorecard's own figure:
each test image's CSWT temperature against its student-teacher similarity, for the figure
run's trained student and its teacher."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repro.distill import plan
from repro.distill.papers.base import KDPaper

if TYPE_CHECKING:
    import numpy as np
    import torch

    from repro.distill.arraydata import ArrayData
    from repro.distill.report import FigureContext


def cswt_points(
    student: torch.nn.Module,
    teacher: torch.nn.Module,
    data: ArrayData,
    mean: list[float],
    std: list[float],
    batch_size: int,
    policy: Mapping[str, Any],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(similarity s_i, CSWT temperature T_i) of every image of ``data``, batch by batch in
    order (the batch size of training: the scaling is per batch)."""
    import torch

    from repro.distill.losses.cosine import row_cosine
    from repro.distill.temperature import as_policy

    with torch.no_grad():
        cswt = as_policy(dict(policy))
        student.eval()
        teacher.eval()
        m = torch.tensor(mean).view(1, -1, 1, 1)
        s = torch.tensor(std).view(1, -1, 1, 1)
        out = []
        for images, _ in data.batches(batch_size, shuffle=False):
            x = (images.float() / 255.0 - m) / s
            z_s, z_t = student(x), teacher(x)
            z_s = z_s[0] if isinstance(z_s, tuple) else z_s
            z_t = z_t[0] if isinstance(z_t, tuple) else z_t
            out.append((row_cosine(z_s, z_t).numpy(), cswt(z_s, z_t).numpy()))
        return out


def cswt_figure(points: Sequence[tuple[np.ndarray, np.ndarray]], path: Path, what: str) -> None:
    """Scatter of T_i against s_i for the first batches (one colour each), and the
    distribution of T_i over all test batches."""
    import matplotlib.pyplot as plt
    import numpy as np

    from repro.core.plotting import save_figure, use_style

    use_style()
    fig, (ax, hist) = plt.subplots(1, 2, figsize=(8.0, 3.4))
    shown = points[:6]
    for i, (sim, temp) in enumerate(shown):
        ax.scatter(sim, temp, s=8, alpha=0.7, label=f"batch {i + 1} (n = {len(sim)})")
    ax.set(
        xlabel="student-teacher cosine similarity s_i (softmax at T = 1)",
        ylabel="CSWT temperature T_i",
    )
    ax.set_title("Per-batch scaling: most similar -> T_min, least -> T_max", fontsize=8)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    temps = np.concatenate([t for _, t in points])
    hist.hist(temps, bins=30, color="C1")
    hist.set(xlabel="CSWT temperature T_i", ylabel="test images")
    hist.set_title(f"All {len(points)} test batches (n = {len(temps)})", fontsize=8)
    fig.suptitle(f"CSWT temperatures of {what}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


class CSKD(KDPaper):
    name = "cskd"
    title = "CSKD"
    figure_policy = "cswt"
    run_figures = ("cswt_temperature",)
    labels = {"cswt_temperature": "CSWT temperature vs similarity"}
    captions = {
        "cswt_temperature": "CSWT: each test image's temperature against its student-teacher "
        "cosine similarity, batch by batch (the scaling is per batch), for the trained "
        "CSKD+CSWT student.",
    }

    def figure_inputs(self, config: dict[str, Any], results: str) -> list[str]:
        """The figure run's teacher and dataset, and its trained student."""
        files = super().figure_inputs(config, results)
        cell = plan.figure_cell(config, self.name)
        return files + ([f"{plan.cell_dir(results, cell)}/model.pt"] if cell else [])

    def draw(self, names: list[str], figures: FigureContext) -> dict[str, Any]:
        """The CSWT temperatures of the figure run's student and teacher on the test split."""
        import numpy as np

        if "cswt_temperature" not in names:
            return {}
        run = figures.run
        data, teacher, classes = figures.figure_data("test")
        student = figures.figure_student(classes, data.in_channels)
        norm = run["normalize"]
        points = cswt_points(
            student, teacher, data, norm["mean"], norm["std"], run.get("batch_size", 64),
            run["args"]["temperature"],
        )  # fmt: skip
        cswt_figure(points, figures.fig_dir / "cswt_temperature.png", figures.what)
        temps = np.concatenate([t for _, t in points])
        return {"cswt_temperature_mean": float(temps.mean())}


PAPER = CSKD()
