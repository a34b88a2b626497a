"""The temperature-policy contract, and statistics of the teacher gathered before training."""

from __future__ import annotations

from torch import Tensor, nn


class TeacherStatistic(nn.Module):
    """A quantity computed once before training from the teacher's logits on the training set
    (e.g. global energy percentiles). ``Distiller.prepare`` streams the logits through
    ``observe`` and calls ``finalize``; the result lives in buffers (saved in checkpoints) and
    ``prepared()`` reports it for ``result.json``."""

    def observe(self, logits_t: Tensor) -> None:
        raise NotImplementedError

    def finalize(self) -> None:
        raise NotImplementedError

    def prepared(self) -> dict[str, float]:
        return {}


class TemperaturePolicy(nn.Module):
    """Maps a batch's student and teacher logits to the KD temperature: a float (one for the
    batch) or a per-sample tensor of shape (B,), which the losses scale by T_i^2."""

    def forward(self, logits_s: Tensor, logits_t: Tensor) -> Tensor | float:
        raise NotImplementedError
