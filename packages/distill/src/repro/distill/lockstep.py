"""Train the students of a table row in lockstep: one batch, one teacher forward, K steps.

The cells of a row (one dataset, teacher, seed and data settings; e.g. KD, DKD, Energy KD,
Energy DKD and HE-DA on one pair) draw the same batches in the same order with the same crops
and flips (``seed_period(seed, epoch)`` seeds the data order and the global RNG the kornia
augmentation draws from). A :class:`LockstepTrainer` draws and augments each batch once and
steps every cell's :class:`~repro.distill.trainer.Trainer` on it in turn; the teacher is a
:class:`~repro.distill.shared.SharedTeacher`, so its forward on the batch runs once per
autocast state for the whole group. Everything else is per cell: method, optimiser, schedule,
the method's own ``RandomDraws``, the run folder (checkpoint, ``metrics.csv``, ``model.pt``,
``result.json``) and its fingerprint.

Why each cell's outputs equal its alone run's (bit for bit on CPU): nothing in a step but the
batch augmentation draws from the global RNG (methods draw from their own generators; torchvision
policies run inside ``fork_rng``), the augmentation runs once per batch in both cases, the
students are built from ``seed_everything(seed)`` each, and a shared teacher output is the
forward the method would have computed itself. The method prepare steps (energy thresholds)
also run over one pass of the same batches (``prepare_together``).

Epochs and resume: each cell resumes from its own checkpoint; the group trains epoch ``e``
with the cells that still need it (resumed past it, or finished with fewer epochs, they skip
it), so cells of different epoch counts share their common epochs and the longer ones go on
alone. ``seconds`` in a cell's ``metrics.csv`` is the group's time from the start of the epoch
to the end of that cell's evaluation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from repro.core import ReproError
from repro.core.progress import progress
from repro.core.training import seed_period
from repro.distill.methods.base import prepare_together
from repro.distill.plan import SHARED_SETTINGS
from repro.distill.shared import SharedTeacher
from repro.distill.trainer import Trainer, autocast


class LockstepTrainer:
    """Train ``trainers`` (one per cell, built on the same data) on the same batches.

    ``shared`` is the :class:`SharedTeacher` every cell's distiller holds (None: no teacher
    sharing, e.g. models trained alone). A ``stop_after_steps`` of any cell (a testing aid)
    stops the group after that many group steps.
    """

    def __init__(self, trainers: Sequence[Trainer], shared: SharedTeacher | None = None) -> None:
        if not trainers:
            raise ReproError("a lockstep group needs at least one cell")
        lead = trainers[0]
        for t in trainers[1:]:
            if t.train_data is not lead.train_data:
                raise ReproError(f"{t.loop.name}: a lockstep group trains on one dataset object")
            for key in SHARED_SETTINGS:
                if getattr(t.cfg, key) != getattr(lead.cfg, key):
                    raise ReproError(
                        f"train.{key}: {t.loop.name} has {getattr(t.cfg, key)!r}, "
                        f"{lead.loop.name} {getattr(lead.cfg, key)!r}; cells of a lockstep "
                        "group share their batches (group only cells that agree on it)"
                    )
        self.trainers = list(trainers)
        self.lead = lead
        self.shared = shared
        self.steps = 0
        stops = [t.cfg.stop_after_steps for t in trainers if t.cfg.stop_after_steps]
        self.stop_after_steps = min(stops) if stops else None

    def _shared(self, batches: Iterator[tuple[Tensor, Tensor]]):
        """Prepare batches, each made the shared teacher's batch before it is handed on."""
        for x, y in batches:
            if self.shared is not None:
                self.shared.share(x)
            yield x, y

    def start(self) -> list[int]:
        """Resume every cell; run the prepare step of the fresh ones over one pass of the
        prepare batches; the first epoch each cell still needs."""
        starts = [t.start(prepare=False) for t in self.trainers]
        fresh = [t.distiller for t, s in zip(self.trainers, starts, strict=True) if s == 1]
        with autocast(self.lead.device, self.lead.amp):  # as Trainer.prepare
            prepare_together(fresh, self._shared(self.lead._prepare_batches()), drop_last=True)
        if self.shared is not None:
            self.shared.release()
        return starts

    def fit(self, on_done=None) -> list[dict[str, Any]]:
        """Train every cell to its ``epochs``; ``on_done(index, trainer)`` is called as each
        cell finishes (its outputs can be written then). Returns each cell's result."""
        starts = self.start()
        cfg = self.lead.cfg
        last = max(t.cfg.epochs for t in self.trainers)
        done = [s > t.cfg.epochs for t, s in zip(self.trainers, starts, strict=True)]
        for i, finished in enumerate(done):
            if finished and on_done is not None:
                on_done(i, self.trainers[i])
        n_batches = math.ceil(len(self.lead.train_data) / cfg.batch_size)
        for epoch in range(min(starts), last + 1):
            active = [
                (i, t)
                for i, (t, s) in enumerate(zip(self.trainers, starts, strict=True))
                if s <= epoch <= t.cfg.epochs
            ]
            if not active:
                continue
            t0 = time.perf_counter()
            sums = {i: t.open_epoch(epoch) for i, t in active}
            gen = seed_period(cfg.seed, epoch)
            batches = progress(self.lead._rank_batches(gen), f"epoch {epoch}", total=n_batches)
            for step, (x, labels, total) in enumerate(batches, 1):
                if cfg.channels_last:  # once, so that every cell gets the same tensor
                    x = x.contiguous(memory_format=torch.channels_last)
                if self.shared is not None:
                    self.shared.share(x)
                for i, t in active:
                    t.train_batch(x, labels, total, epoch, step, sums[i])
                self.steps += 1
                if self.stop_after_steps and self.steps >= self.stop_after_steps:
                    raise SystemExit(f"stopping after {self.steps} steps (stop_after_steps)")
            if self.shared is not None:
                self.shared.release()
            for i, t in active:
                t.end_epoch(epoch, t.close_epoch(sums[i]), t0)
                if epoch == t.cfg.epochs and on_done is not None:
                    on_done(i, t)
        return [t.result() for t in self.trainers]
