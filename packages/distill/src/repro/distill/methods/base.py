"""The one contract every distillation method implements."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from repro.distill.temperature.base import TeacherStatistic

Batch = tuple[Tensor, Tensor]


def method_seed(run_seed: int) -> int:
    """The seed of a method's own random draws in a run of seed ``run_seed``: 2**32 + seed.

    It differs from every ``repro.core.training.seed_period(seed, epoch)`` value (the data order
    and the trainer's crops), so a method's draws do not repeat those streams.
    """
    return 2**32 + int(run_seed)


class RandomDraws(nn.Module):
    """A CPU ``torch.Generator`` for a method's own random draws (mixing partners, boxes,
    augmentation policies), never the global RNG, which the trainer's crops and flips use: so
    every method of a run seed sees the same data order and crops, whatever it draws.

    Seeded from ``seed`` when given, else from the run's seed (``Distiller.bind_run``, via
    :func:`method_seed`), so methods of the same run seed draw the same sequence. Its state is
    the module's extra state, saved in checkpoints: a resumed run continues the sequence.
    """

    def __init__(self, seed: int | None = None) -> None:
        super().__init__()
        self.fixed = seed is not None
        self.generator = torch.Generator().manual_seed(method_seed(0) if seed is None else seed)

    def bind(self, run_seed: int) -> None:
        """Seed from the run's seed (unless a ``seed`` argument fixed it)."""
        if not self.fixed:
            self.generator.manual_seed(method_seed(run_seed))

    def get_extra_state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


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
        #: (mean, std) of the batches ``forward_train`` gets (set by ``bind_run``).
        self.normalization: tuple[list[float], list[float]] | None = None
        #: under autocast, the teacher runs at the autocast precision or in "float32"
        self.teacher_precision = "autocast"
        if teacher is not None:
            teacher.requires_grad_(False)
            teacher.eval()

    def bind_run(
        self,
        seed: int,
        mean: Sequence[float],
        std: Sequence[float],
        teacher_precision: str = "autocast",
    ) -> None:
        """What a method may need of its run, given before training (fresh or resumed; a
        resumed run then restores its generators from the checkpoint): the run's seed, which
        seeds every :class:`RandomDraws`, the normalisation of the batches ``forward_train``
        receives (a method that augments in pixel space, e.g. AutoAugment, goes back to uint8
        with it), and the teacher's precision under autocast (``teacher_logits``)."""
        self.normalization = (list(mean), list(std))
        self.teacher_precision = teacher_precision
        for module in self.modules():
            if isinstance(module, RandomDraws):
                module.bind(seed)

    def require_normalization(self) -> tuple[list[float], list[float]]:
        """The batches' (mean, std); an error naming the method when ``bind_run`` was not called."""
        if self.normalization is None:
            raise RuntimeError(
                f"{type(self).__name__} needs the batches' normalisation: call bind_run first"
            )
        return self.normalization

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

        Under autocast the teacher runs at the autocast precision (``teacher_precision``
        "autocast", the default: every method of a lockstep row then shares one forward per
        batch) or in float32 ("float32"). The prepare step runs under the same autocast as
        training (``Trainer.prepare``), so teacher statistics (energy thresholds) come from the
        logits the method sees in training either way.
        """
        if self.teacher is None:
            raise RuntimeError(f"{type(self).__name__} has no teacher")
        self.teacher.eval()
        exact = contextlib.nullcontext()
        if self.teacher_precision == "float32" and torch.is_autocast_enabled(images.device.type):
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
        prepare_together([self], batches, drop_last)

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


@torch.no_grad()
def prepare_together(
    distillers: Sequence[Distiller], batches: Iterable[Batch], drop_last: bool = True
) -> None:
    """``Distiller.prepare`` of several distillers over one pass of ``batches``: each batch is
    drawn once and handed to each distiller with teacher statistics in turn (a lockstep group's
    shared teacher then runs once per batch; ``repro.distill.shared``). Each distiller's
    statistics are those its own ``prepare`` computes."""
    todo = [(d, d.teacher_statistics()) for d in distillers]
    todo = [(d, stats) for d, stats in todo if stats]
    if not todo:
        return
    first: int | None = None
    for images, _ in batches:
        first = images.shape[0] if first is None else first
        if drop_last and images.shape[0] < first:
            continue
        for distiller, stats in todo:
            device = next(iter([*distiller.parameters(), *distiller.buffers()])).device
            logits = distiller.teacher_logits(images.to(device))
            for stat in stats:
                stat.observe(logits)
    for _, stats in todo:
        for stat in stats:
            stat.finalize()
