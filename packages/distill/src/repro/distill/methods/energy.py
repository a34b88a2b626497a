"""Shared machinery of the Energy KD family: teacher energies and global thresholds.

Temperature direction conflict: the paper's abstract gives low-energy (confident) samples the
higher temperature (E < tau_low -> t_high = 6, E > tau_high -> t_low = 2); the official code
(Seonghak35/EnergyKD) does the opposite (E < tau_low -> 2, E > tau_high -> 6). Which one the
published tables used is not known. Default: ``direction="paper"``; ``direction="code"``
reproduces the official code.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from repro.distill.losses import (
    DIRECTIONS,
    Direction,
    energy_score,
    energy_thresholds,
    per_sample_temperature,
)
from repro.distill.methods.base import Batch, Distiller


def _check_rate(name: str, rate: float) -> None:
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {rate}")


class EnergyDistiller(Distiller):
    """A distiller with teacher-energy thresholds ``tau_low`` / ``tau_high``.

    The thresholds are global percentiles of the teacher energy E = -T_E logsumexp(z_t / T_E)
    over the whole training set, computed once by ``prepare`` (teacher in eval mode, a last
    smaller batch skipped when ``drop_last``) or set with ``set_thresholds``. They are buffers,
    so they are saved in and restored from ``state_dict``; NaN means "not computed yet".
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None,
        *,
        energy_temperature: float = 4.0,
        r_low: float = 0.2,
        r_high: float = 0.2,
    ) -> None:
        super().__init__(student, teacher)
        _check_rate("r_low", r_low)
        _check_rate("r_high", r_high)
        self.energy_temperature = energy_temperature
        self.r_low = r_low
        self.r_high = r_high
        self.tau_low: Tensor
        self.tau_high: Tensor
        self.register_buffer("tau_low", torch.tensor(math.nan))
        self.register_buffer("tau_high", torch.tensor(math.nan))

    @property
    def has_thresholds(self) -> bool:
        """Whether both thresholds are set."""
        return not bool(torch.isnan(self.tau_low) | torch.isnan(self.tau_high))

    def set_thresholds(self, tau_low: float | Tensor, tau_high: float | Tensor) -> None:
        """Set the thresholds directly (e.g. from a cached computation)."""
        self.tau_low.fill_(float(tau_low))
        self.tau_high.fill_(float(tau_high))

    def teacher_energy(self, logits_t: Tensor) -> Tensor:
        """Per-sample teacher energy at ``energy_temperature`` (float32), shape (B,)."""
        return energy_score(logits_t.float(), self.energy_temperature)

    @torch.no_grad()
    def prepare(self, batches: Iterable[Batch], drop_last: bool = True) -> None:
        """Compute the global thresholds from the teacher energies on ``batches``.

        With ``drop_last``, any batch smaller than the first one (a last partial batch) is
        skipped, as in the official ``cal_energy``. Images are moved to the buffers' device.
        """
        energies: list[Tensor] = []
        first: int | None = None
        for images, _ in batches:
            size = images.shape[0]
            first = size if first is None else first
            if drop_last and size < first:
                continue
            logits_t = self.teacher_logits(images.to(self.tau_low.device))
            energies.append(self.teacher_energy(logits_t))
        if not energies:
            raise ValueError("prepare() got no batches to compute energy thresholds from")
        self.set_thresholds(*energy_thresholds(torch.cat(energies), self.r_low, self.r_high))

    def require_thresholds(self) -> None:
        """Raise unless ``prepare`` or ``set_thresholds`` has run (or a state_dict was loaded)."""
        if not self.has_thresholds:
            raise RuntimeError(
                f"{type(self).__name__}: energy thresholds not set; call prepare() before training"
            )


class EnergyTemperatureDistiller(EnergyDistiller):
    """An ``EnergyDistiller`` that maps each sample's teacher energy to a KD temperature.

    The temperature rule is in ``per_sample_temperature``; ``direction`` picks between the
    paper's abstract ("paper": low energy -> t_high) and the official code ("code": low
    energy -> t_low). The two sources contradict each other; "paper" is the default.
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None,
        *,
        t_low: float = 2.0,
        t_mid: float = 4.0,
        t_high: float = 6.0,
        direction: Direction = "paper",
        energy_temperature: float = 4.0,
        r_low: float = 0.2,
        r_high: float = 0.2,
    ) -> None:
        super().__init__(
            student, teacher, energy_temperature=energy_temperature, r_low=r_low, r_high=r_high
        )
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        self.t_low = t_low
        self.t_mid = t_mid
        self.t_high = t_high
        self.direction: Direction = direction

    def sample_temperatures(self, logits_t: Tensor) -> Tensor:
        """Per-sample temperatures (B,) from the teacher logits and the global thresholds."""
        self.require_thresholds()
        return per_sample_temperature(
            self.teacher_energy(logits_t),
            self.tau_low,
            self.tau_high,
            self.t_low,
            self.t_mid,
            self.t_high,
            self.direction,
        ).to(logits_t.dtype)
