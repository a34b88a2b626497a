"""The one contract every distillation method implements."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from repro.distill.temperature.base import TeacherStatistic

Batch = tuple[Tensor, Tensor]


def logits_of(output: Any) -> Tensor:
    """Logits from a model output: the first item of a ``(logits, feats)`` tuple, or the tensor."""
    return output[0] if isinstance(output, tuple | list) else output


class Distiller(nn.Module):
    """A student, an optional frozen teacher, and a loss.

    ``forward_train`` returns the student logits and a dict of named, already-weighted losses;
    the trainer sums the dict's values. The teacher is frozen (``requires_grad=False``), always
    in eval mode (``train()`` cannot switch it back) and only ever run under ``torch.no_grad()``.

    Before training, the trainer always calls ``prepare`` (every method): parts that need
    statistics of the teacher over the training set (:class:`TeacherStatistic`, e.g. energy
    thresholds) get them there; ``prepared()`` returns them for ``result.json``. Such state
    lives in buffers, so it is saved in checkpoints and restored on resume.
    """

    requires_teacher: ClassVar[bool] = True

    def __init__(self, student: nn.Module, teacher: nn.Module | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        if self.requires_teacher and teacher is None:
            raise ValueError(f"{name} needs a teacher")
        if not self.requires_teacher and teacher is not None:
            raise ValueError(f"{name} takes no teacher")
        self.student = student
        self.teacher = teacher
        if teacher is not None:
            teacher.requires_grad_(False)
            teacher.eval()

    def train(self, mode: bool = True) -> Distiller:
        """Set train/eval mode on the student; the teacher stays in eval mode."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def student_parameters(self) -> list[nn.Parameter]:
        """The student's trainable parameters (what the optimizer should get)."""
        return [p for p in self.student.parameters() if p.requires_grad]

    def student_logits(self, images: Tensor) -> Tensor:
        """Student forward (with gradient)."""
        return logits_of(self.student(images))

    def teacher_statistics(self) -> list[TeacherStatistic]:
        """The parts that are fitted on the teacher's training-set logits before training."""
        return [m for m in self.modules() if isinstance(m, TeacherStatistic)]

    @torch.no_grad()
    def teacher_logits(self, images: Tensor) -> Tensor:
        """Teacher forward, without gradient; the teacher is put in eval mode first.

        A method with teacher statistics (energies) runs its teacher in float32 even under
        autocast, so training-time statistics match the ones computed before training.
        """
        if self.teacher is None:
            raise RuntimeError(f"{type(self).__name__} has no teacher")
        self.teacher.eval()
        exact = contextlib.nullcontext()
        if self.teacher_statistics() and torch.is_autocast_enabled(images.device.type):
            exact = torch.autocast(images.device.type, enabled=False)
            images = images.float()
        with exact:
            return logits_of(self.teacher(images))

    @torch.no_grad()
    def prepare(self, batches: Iterable[Batch], drop_last: bool = True) -> None:
        """Fit the teacher statistics on (images, targets) batches of the training set.

        The batches are drawn only if a part needs them. With ``drop_last`` a batch smaller
        than the first (a last partial batch) is skipped, as the official ``cal_energy``.
        """
        stats = self.teacher_statistics()
        if not stats:
            return
        device = next(iter([*self.parameters(), *self.buffers()])).device
        first: int | None = None
        for images, _ in batches:
            first = images.shape[0] if first is None else first
            if drop_last and images.shape[0] < first:
                continue
            logits = self.teacher_logits(images.to(device))
            for stat in stats:
                stat.observe(logits)
        for stat in stats:
            stat.finalize()

    def prepared(self) -> dict[str, float]:
        """What ``prepare`` computed (e.g. ``tau_low``/``tau_high``), for ``result.json``."""
        out: dict[str, float] = {}
        for stat in self.teacher_statistics():
            out.update(stat.prepared())
        return out

    def forward_train(
        self, images: Tensor, targets: Tensor, epoch: int
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Student logits and ``{loss_name: weighted loss}`` for one training batch."""
        raise NotImplementedError

    def forward_test(self, images: Tensor) -> Tensor:
        """Student logits."""
        return self.student_logits(images)

    def forward(
        self, images: Tensor, targets: Tensor | None = None, epoch: int = 0
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """``forward_train`` in training mode when targets are given, else ``forward_test``."""
        if self.training and targets is not None:
            return self.forward_train(images, targets, epoch)
        return self.forward_test(images)
