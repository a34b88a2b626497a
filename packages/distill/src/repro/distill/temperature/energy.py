"""``energy``: Energy KD's per-sample temperature from the teacher's energy score.

E_i = -T_E logsumexp(z_t,i / T_E) (T_E = 4). Global thresholds tau_low / tau_high are
percentiles of E over the whole training set, computed once before training (teacher in eval
mode, train-time augmentation, a last smaller batch skipped; official ``cal_energy``):
sorted ascending, tau_low = e[floor(N r_low)], tau_high = e[-(floor(N r_high) + 1)].
tau_low <= E_i <= tau_high gets t_mid.

Temperature direction conflict: the paper's abstract gives low-energy (confident) samples the
higher temperature (E < tau_low -> t_high = 6, E > tau_high -> t_low = 2); the official code
(Seonghak35/EnergyKD) does the opposite. Which one the published tables used is not known.
Default ``direction="paper"``; ``direction="code"`` reproduces the official code.

Energies are computed in float32 from the teacher's logits. Under bf16 autocast the thresholds
are computed at the precision the teacher runs at in training (``train.teacher_precision``:
bf16 logits by default, float32 on request; the prepare step runs under the training's
autocast), so thresholds and training-time energies come from the same computation.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from repro.distill.losses import (
    DIRECTIONS,
    Direction,
    energy_score,
    energy_thresholds,
    per_sample_temperature,
)
from repro.distill.registry import energy_band_problem
from repro.distill.temperature.base import TeacherStatistic, TemperaturePolicy


def _check_rate(name: str, rate: float) -> None:
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {rate}")


class EnergySplit(TeacherStatistic):
    """Global teacher-energy thresholds ``tau_low`` / ``tau_high`` (buffers; NaN until set)."""

    def __init__(
        self, *, energy_temperature: float = 4.0, r_low: float = 0.2, r_high: float = 0.2
    ) -> None:
        super().__init__()
        _check_rate("r_low", r_low)
        _check_rate("r_high", r_high)
        problem = energy_band_problem(r_low, r_high)
        if problem:
            raise ValueError(problem)
        self.energy_temperature = energy_temperature
        self.r_low = r_low
        self.r_high = r_high
        self.tau_low: Tensor
        self.tau_high: Tensor
        self.register_buffer("tau_low", torch.tensor(math.nan))
        self.register_buffer("tau_high", torch.tensor(math.nan))
        self._seen: list[Tensor] = []

    def energy(self, logits_t: Tensor) -> Tensor:
        """Per-sample teacher energy at ``energy_temperature`` (float32), shape (B,)."""
        return energy_score(logits_t.float(), self.energy_temperature)

    def observe(self, logits_t: Tensor) -> None:
        self._seen.append(self.energy(logits_t))

    def finalize(self) -> None:
        if not self._seen:
            raise ValueError("no batches to compute energy thresholds from")
        self.set_thresholds(*energy_thresholds(torch.cat(self._seen), self.r_low, self.r_high))
        self._seen = []

    def set_thresholds(self, tau_low: float | Tensor, tau_high: float | Tensor) -> None:
        """Set the thresholds directly (e.g. in tests)."""
        self.tau_low.fill_(float(tau_low))
        self.tau_high.fill_(float(tau_high))

    @property
    def ready(self) -> bool:
        return not bool(torch.isnan(self.tau_low) | torch.isnan(self.tau_high))

    def require(self) -> None:
        if not self.ready:
            raise RuntimeError("energy thresholds not set; the trainer runs prepare() first")

    def prepared(self) -> dict[str, float]:
        return {"tau_low": float(self.tau_low), "tau_high": float(self.tau_high)}


class EnergyTemperature(TemperaturePolicy):
    """t_low / t_mid / t_high by the teacher energy against the global thresholds."""

    def __init__(
        self,
        *,
        t_low: float = 2.0,
        t_mid: float = 4.0,
        t_high: float = 6.0,
        r_low: float = 0.2,
        r_high: float = 0.2,
        energy_temperature: float = 4.0,
        direction: Direction = "paper",
    ) -> None:
        super().__init__()
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        self.split = EnergySplit(energy_temperature=energy_temperature, r_low=r_low, r_high=r_high)
        self.t_low, self.t_mid, self.t_high = t_low, t_mid, t_high
        self.direction: Direction = direction

    def forward(self, logits_s: Tensor, logits_t: Tensor) -> Tensor:
        self.split.require()
        return per_sample_temperature(
            self.split.energy(logits_t),
            self.split.tau_low,
            self.split.tau_high,
            self.t_low,
            self.t_mid,
            self.t_high,
            self.direction,
        ).to(logits_t.dtype)


POLICY = EnergyTemperature
