"""Per-sample KD temperatures as pluggable policies (``fixed``, ``energy``, ...).

KD- and DKD-style losses take a temperature from a policy: a number (``fixed``), or a mapping
``{policy: <name>, <its arguments>}`` from the config. See :mod:`repro.distill.registry`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from repro.distill.temperature.base import TeacherStatistic, TemperaturePolicy


def as_policy(spec: float | int | Mapping[str, Any] | TemperaturePolicy) -> TemperaturePolicy:
    """A policy from a number (fixed temperature), a config mapping, or a policy."""
    if isinstance(spec, TemperaturePolicy):
        return spec
    from repro.distill.registry import policy_class

    if isinstance(spec, Mapping):
        args = {k: v for k, v in spec.items() if k != "policy"}
        return policy_class(spec.get("policy", "fixed"))(**args)
    return policy_class("fixed")(temperature=float(spec))


__all__ = ["TeacherStatistic", "TemperaturePolicy", "as_policy"]
