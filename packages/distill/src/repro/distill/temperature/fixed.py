"""``fixed``: one temperature for every sample (Hinton et al.; mdistiller's T = 4)."""

from __future__ import annotations

from torch import Tensor

from repro.distill.temperature.base import TemperaturePolicy


class FixedTemperature(TemperaturePolicy):
    """T_i = ``temperature`` for every sample."""

    def __init__(self, *, temperature: float = 4.0) -> None:
        super().__init__()
        self.temperature = float(temperature)

    def forward(self, logits_s: Tensor, logits_t: Tensor) -> float:
        return self.temperature

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


POLICY = FixedTemperature
