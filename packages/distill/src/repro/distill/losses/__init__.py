"""Logit-distillation losses (pure functions) and batch mixing helpers."""

from repro.distill.losses.functional import (
    DIRECTIONS,
    Direction,
    cutmix,
    dkd_loss,
    energy_score,
    energy_thresholds,
    kd_loss,
    mixup,
    per_sample_temperature,
    sample_beta,
)

__all__ = [
    "DIRECTIONS",
    "Direction",
    "cutmix",
    "dkd_loss",
    "energy_score",
    "energy_thresholds",
    "kd_loss",
    "mixup",
    "per_sample_temperature",
    "sample_beta",
]
