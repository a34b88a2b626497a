"""Distillation methods behind one contract (``Distiller``) and a name registry."""

from __future__ import annotations

from typing import Any

from torch import nn

from repro.distill.methods.base import Distiller, logits_of
from repro.distill.methods.dkd import DKD, warmup_factor
from repro.distill.methods.energy import EnergyDistiller, EnergyTemperatureDistiller
from repro.distill.methods.energy_dkd import EnergyDKD
from repro.distill.methods.energy_kd import EnergyKD
from repro.distill.methods.heda import HEDA
from repro.distill.methods.kd import KD
from repro.distill.methods.vanilla import Vanilla

METHODS: dict[str, type[Distiller]] = {
    "ce": Vanilla,
    "kd": KD,
    "dkd": DKD,
    "energy_kd": EnergyKD,
    "energy_dkd": EnergyDKD,
    "heda": HEDA,
}


def build_method(
    name: str, student: nn.Module, teacher: nn.Module | None = None, **cfg: Any
) -> Distiller:
    """Instantiate ``METHODS[name](student, teacher, **cfg)``; ``cfg`` holds hyper-parameters."""
    try:
        cls = METHODS[name]
    except KeyError:
        raise KeyError(
            f"unknown method {name!r}; valid methods: {', '.join(sorted(METHODS))}"
        ) from None
    return cls(student, teacher, **cfg)


__all__ = [
    "DKD",
    "HEDA",
    "KD",
    "METHODS",
    "Distiller",
    "EnergyDKD",
    "EnergyDistiller",
    "EnergyKD",
    "EnergyTemperatureDistiller",
    "Vanilla",
    "build_method",
    "logits_of",
    "warmup_factor",
]
