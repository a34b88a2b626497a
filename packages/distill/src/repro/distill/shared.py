"""A frozen teacher shared by the students of a lockstep group: one forward per batch.

The students of a table row (one dataset, pair, seed and data settings; e.g. KD, DKD, Energy
KD, HE-DA) see the same batches and augmentations, so the teacher's forward on a batch is the
same for all of them. :class:`SharedTeacher` wraps the frozen teacher; every distiller of the
group gets the same instance. The lockstep trainer :meth:`~SharedTeacher.share`\\ s each
augmented batch before the students step: the first method that runs the teacher on exactly
that tensor computes it, the others get the same output. Anything else (HE-DA's mixed subset,
R2KD's augmented copy, CSKD's strong view, any call outside a group) is a plain forward.

A cached output is reused only when all of these are unchanged: the input is the same tensor
object with the same version counter (not modified in place since), the autocast state of its
device (enabled and dtype: with ``train.teacher_precision: float32`` a teacher runs outside
bf16 autocast, and it does not share with one that runs inside), grad mode, and the version
counters of the output tensors (a method
that modified the logits in place does not hand them on). The forward computed is the one the
method would compute alone, so a lockstep cell's results equal the alone run's bit for bit
on CPU.

``copy.deepcopy`` of the wrapper is a deep copy of the inner teacher (R2KD prunes a copy of
its teacher: the copy must share neither the weights nor the cache).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn


def _tensors(output: Any) -> list[Tensor]:
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, tuple | list):
        return [t for item in output for t in _tensors(item)]
    return []


def _versions(output: Any) -> tuple[int, ...]:
    return tuple(t._version for t in _tensors(output))


class SharedTeacher(nn.Module):
    """The frozen ``teacher``, with its output on the shared batch computed once."""

    def __init__(self, teacher: nn.Module) -> None:
        super().__init__()
        self.inner = teacher
        self._x: Tensor | None = None
        self._x_version = -1
        self._outputs: dict[tuple, tuple[Any, tuple[int, ...]]] = {}
        #: forwards computed and reused on the shared batch (for tests and benchmarks)
        self.computed = 0
        self.reused = 0

    def share(self, x: Tensor) -> None:
        """Make ``x`` the shared batch (the previous one's outputs are dropped)."""
        self._x, self._x_version, self._outputs = x, x._version, {}

    def release(self) -> None:
        """Forget the shared batch and its outputs (frees their memory)."""
        self._x, self._outputs = None, {}

    def _state(self, x: Tensor) -> tuple:
        kind = x.device.type
        return (
            torch.is_autocast_enabled(kind),
            torch.get_autocast_dtype(kind),
            torch.is_grad_enabled(),
            self.inner.training,
        )

    def forward(self, x: Tensor) -> Any:
        if x is not self._x or x._version != self._x_version:
            return self.inner(x)
        key = self._state(x)
        hit = self._outputs.get(key)
        if hit is not None and _versions(hit[0]) == hit[1]:
            self.reused += 1
            return hit[0]
        out = self.inner(x)
        self.computed += 1
        self._outputs[key] = (out, _versions(out))
        return out

    def __deepcopy__(self, memo: dict[int, Any]) -> nn.Module:
        return copy.deepcopy(self.inner, memo)
