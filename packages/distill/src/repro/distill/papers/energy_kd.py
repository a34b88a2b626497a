"""Energy KD (Kim et al.): the teacher's energy decides each sample's temperature. Its
scorecard's own figures: the teacher energies on the training images with the global
thresholds the figure run computed before training, and energy against confidence."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from repro.distill.papers.base import KDPaper

if TYPE_CHECKING:
    import numpy as np
    import torch

    from repro.distill.arraydata import ArrayData
    from repro.distill.report import FigureContext


def teacher_energy_stats(
    model: torch.nn.Module, data: ArrayData, mean: list[float], std: list[float], temperature: float
) -> tuple[np.ndarray, np.ndarray]:
    """Teacher energy (T = ``temperature``) and max-softmax confidence for every image."""
    import torch

    from repro.distill.losses import energy_score

    with torch.no_grad():
        model.eval()
        m = torch.tensor(mean).view(1, -1, 1, 1)
        s = torch.tensor(std).view(1, -1, 1, 1)
        energies, confidences = [], []
        for images, _ in data.batches(512, shuffle=False):
            out = model((images.float() / 255.0 - m) / s)
            logits = out[0] if isinstance(out, tuple) else out
            energies.append(energy_score(logits, temperature))
            confidences.append(logits.softmax(dim=1).amax(dim=1))
        return torch.cat(energies).numpy(), torch.cat(confidences).numpy()


def energy_figures(
    energy: np.ndarray, confidence: np.ndarray, tau: tuple[float, float], fig_dir: Path, what: str
) -> float:
    """The energy-vs-confidence scatter and the energy histogram with the thresholds used in
    training; returns Spearman's rho between energy and confidence."""
    import matplotlib.pyplot as plt
    from scipy.stats import spearmanr

    from repro.core.plotting import save_figure, use_style

    use_style()
    rho = float(spearmanr(energy, confidence).statistic)
    fig, ax = plt.subplots()
    ax.scatter(energy, confidence, s=4, alpha=0.4)
    ax.set(
        xlabel="teacher energy E = -T log sum exp(z / T), T = 4",
        ylabel="teacher max softmax probability",
        title=f"Low energy = confident (Spearman rho = {rho:.3f}, n = {len(energy)})",
    )
    save_figure(fig, fig_dir / "energy_vs_confidence.png")

    fig, ax = plt.subplots()
    ax.hist(energy, bins=50, color="C0", label=f"training images (n = {len(energy)})")
    for t, name, style in zip(tau, ("tau_low", "tau_high"), ("--", ":"), strict=True):
        ax.axvline(t, color="C1", linestyle=style, label=f"{name} = {t:.2f}")
    ax.set(xlabel="teacher energy (T = 4)", ylabel="training images")
    ax.set_title(f"Teacher energy and the global thresholds of {what}", fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3)
    save_figure(fig, fig_dir / "energy_histogram.png")
    return rho


class EnergyKD(KDPaper):
    name = "energy-kd"
    title = "Energy KD"
    figure_policy = "energy"
    run_figures = ("energy_histogram", "energy_vs_confidence")
    labels = {
        "energy_histogram": "teacher energy and thresholds",
        "energy_vs_confidence": "teacher energy vs confidence",
    }
    captions = {
        "energy_histogram": "Teacher energy on the training images with the global thresholds "
        "the Energy KD run computed before training.",
        "energy_vs_confidence": "Teacher energy against its max softmax probability: low "
        "energy = confident.",
    }

    def draw(self, names: list[str], figures: FigureContext) -> dict[str, Any]:
        """Both energy figures from the figure run's teacher on the training split."""
        if "energy_histogram" not in names:
            return {}
        run = figures.run
        data, teacher, _ = figures.figure_data("train")
        norm = run["normalize"]
        temperature = run["args"]["temperature"].get("energy_temperature", 4.0)
        energy, conf = teacher_energy_stats(teacher, data, norm["mean"], norm["std"], temperature)
        tau = (run["prepared"]["tau_low"], run["prepared"]["tau_high"])
        rho = energy_figures(energy, conf, tau, figures.fig_dir, figures.what)
        return {"spearman_energy_confidence": rho}


PAPER = EnergyKD()
