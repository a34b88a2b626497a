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

Inputs other than the shared batch are matched by content within a step: a forward on a tensor
equal to one already seen since the last ``share`` (same shape, dtype, strides and values, not
modified in place since) reuses that output. Methods that make the same extra input from the
same draws share it: R2KD with and without pruning on one augmentation draw the same mixes from
the same run seed, so the teacher runs once on their augmented copy.

``copy.deepcopy`` of the wrapper is a deep copy of the inner teacher (R2KD prunes a copy of
its teacher: the copy must share neither the weights nor the cache). The pruned copies of the
R2KD cells of a group are equal (the same teacher, rate and L1 rule), so
:func:`share_pruned_copies` makes them one module, wrapped as a follower of the group's
teacher: its forward on the batch also runs once per step.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
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


#: at most this many other inputs are remembered per step (content matches)
MAX_SEEN = 8


class SharedTeacher(nn.Module):
    """The frozen ``teacher``, with its output on the shared batch computed once.

    With ``lead`` (the group's SharedTeacher) this wrapper follows the lead's ``share`` and
    ``release`` (e.g. the group's one pruned teacher copy)."""

    def __init__(self, teacher: nn.Module, lead: SharedTeacher | None = None) -> None:
        super().__init__()
        self.inner = teacher
        self._x: Tensor | None = None
        self._x_version = -1
        self._outputs: dict[tuple, tuple[Any, tuple[int, ...]]] = {}
        #: other inputs of this step: (input, its version, state, output, output versions)
        self._seen: list[tuple[Tensor, int, tuple, Any, tuple[int, ...]]] = []
        self._followers: list[SharedTeacher] = []
        if lead is not None:
            lead._followers.append(self)
        #: forwards computed and reused on the shared batch, and on other inputs within group
        #: steps (for tests and benchmarks)
        self.computed = self.reused = 0
        self.computed_other = self.reused_other = 0

    def share(self, x: Tensor) -> None:
        """Make ``x`` the shared batch (the previous one's outputs are dropped)."""
        self._x, self._x_version, self._outputs, self._seen = x, x._version, {}, []
        for follower in self._followers:
            follower.share(x)

    def release(self) -> None:
        """Forget the shared batch and its outputs (frees their memory)."""
        self._x, self._outputs, self._seen = None, {}, []
        for follower in self._followers:
            follower.release()

    def _state(self, x: Tensor) -> tuple:
        kind = x.device.type
        return (
            torch.is_autocast_enabled(kind),
            torch.get_autocast_dtype(kind),
            torch.is_grad_enabled(),
            self.inner.training,
        )

    def _other(self, x: Tensor) -> Any:
        """The forward on ``x`` (not the shared batch), reused if an equal input was seen."""
        key = self._state(x)
        for y, version, state, out, versions in self._seen:
            if (
                state == key
                and y.shape == x.shape
                and y.dtype == x.dtype
                and y.device == x.device
                and y.stride() == x.stride()
                and y._version == version
                and _versions(out) == versions
                and torch.equal(y, x)
            ):
                self.reused_other += 1
                return out
        out = self.inner(x)
        self.computed_other += 1
        if len(self._seen) < MAX_SEEN:
            self._seen.append((x, x._version, key, out, _versions(out)))
        return out

    def forward(self, x: Tensor) -> Any:
        if self._x is None:  # outside a group step
            return self.inner(x)
        if x is not self._x or x._version != self._x_version:
            return self._other(x)
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


def share_pruned_copies(distillers: Sequence[nn.Module], lead: SharedTeacher) -> int:
    """Make the equal pruned teacher copies of a group's R2KD cells (eval-mode BatchNorm) one
    module, a follower of ``lead``: its forwards then run once per input and step. Copies are
    compared weight for weight (``torch.equal``), so only truly equal ones are merged. Returns
    how many copies were replaced."""
    from repro.distill.pruning import BlendedTeacher

    kept: list[SharedTeacher] = []
    replaced = 0
    for distiller in distillers:
        blended = getattr(distiller, "teacher", None)
        if not isinstance(blended, BlendedTeacher) or blended.pruned_bn != "eval":
            continue
        state = blended.pruned.state_dict()
        for candidate in kept:
            other = candidate.inner.state_dict()
            if other.keys() == state.keys() and all(torch.equal(other[k], state[k]) for k in state):
                blended.pruned = candidate
                replaced += 1
                break
        else:
            blended.pruned = SharedTeacher(blended.pruned, lead=lead)
            kept.append(blended.pruned)
    return replaced
