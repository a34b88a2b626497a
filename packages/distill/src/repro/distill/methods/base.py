"""The one contract every distillation method implements."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

Batch = tuple[Tensor, Tensor]


def logits_of(output: Any) -> Tensor:
    """Logits from a model output: the first item of a ``(logits, feats)`` tuple, or the tensor."""
    return output[0] if isinstance(output, tuple | list) else output


class Distiller(nn.Module):
    """A student, an optional frozen teacher, and a loss.

    ``forward_train`` returns the student logits and a dict of named, already-weighted losses;
    the trainer sums the dict's values. The teacher is frozen (``requires_grad=False``), always
    in eval mode (``train()`` cannot switch it back) and only ever run under ``torch.no_grad()``.
    State that must survive a resume (e.g. energy thresholds) lives in buffers.
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

    @torch.no_grad()
    def teacher_logits(self, images: Tensor) -> Tensor:
        """Teacher forward, without gradient; the teacher is put in eval mode first."""
        if self.teacher is None:
            raise RuntimeError(f"{type(self).__name__} has no teacher")
        self.teacher.eval()
        return logits_of(self.teacher(images))

    def prepare(self, batches: Iterable[Batch], drop_last: bool = True) -> None:
        """Hook run once before training on (images, targets) batches; default: nothing.

        ``drop_last`` asks methods that gather statistics to skip a last, smaller batch.
        """

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
