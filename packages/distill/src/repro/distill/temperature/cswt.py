"""``cswt``: CSKD's cosine-similarity weighted temperature (Ham et al., arXiv 2311.14307).

Per batch: s_i = cos(softmax(z_s,i), softmax(z_t,i)) at T = 1 on detached logits, and
T_i = t_min + (t_max - t_min) (s_max - s_i) / (s_max - s_min), with s_min and s_max taken within
the batch: the sample on which student and teacher agree most gets t_min, the least t_max. A
batch whose similarities are all equal (or a batch of one) gets the midpoint for every sample
(the third-party code divides by zero there). See ``repro.distill.losses.cosine``.

Any KD-style method takes it as ``temperature: {policy: cswt}``; with ``cskd`` it is CSKD+CSWT.
Nothing is computed before training: the temperatures depend only on the batch.
"""

from __future__ import annotations

from torch import Tensor

from repro.distill.losses.cosine import CSWT_T_MAX, CSWT_T_MIN, cswt_temperatures
from repro.distill.temperature.base import TemperaturePolicy


class CSWTTemperature(TemperaturePolicy):
    """Per-sample temperatures in [t_min, t_max] from the student-teacher cosine similarity."""

    def __init__(
        self, *, t_min: float = CSWT_T_MIN, t_max: float = CSWT_T_MAX, min_span: float = 1e-6
    ) -> None:
        super().__init__()
        if not 0.0 < t_min <= t_max:
            raise ValueError(f"need 0 < t_min <= t_max, got t_min={t_min}, t_max={t_max}")
        self.t_min, self.t_max, self.min_span = float(t_min), float(t_max), float(min_span)

    def forward(self, logits_s: Tensor, logits_t: Tensor) -> Tensor:
        temps = cswt_temperatures(logits_s, logits_t, self.t_min, self.t_max, self.min_span)
        return temps.to(logits_t.dtype)

    def extra_repr(self) -> str:
        return f"t_min={self.t_min}, t_max={self.t_max}"


POLICY = CSWTTemperature
