"""Distillation methods, one module each (``<name>.py`` with ``METHOD = <Class>``), behind one
contract (``Distiller``); :mod:`repro.distill.registry` is the list of names."""

from __future__ import annotations

from typing import Any

from torch import nn

from repro.distill.methods.base import Distiller, logits_of
from repro.distill.registry import method_class


def build_method(
    name: str, student: nn.Module, teacher: nn.Module | None = None, **args: Any
) -> Distiller:
    """Instantiate method ``name`` with its hyper-parameters ``args`` (a ``temperature``
    mapping is built into its policy by the method)."""
    return method_class(name)(student, teacher, **args)


__all__ = ["Distiller", "build_method", "logits_of"]
