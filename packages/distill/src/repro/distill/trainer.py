"""One trainer for teachers, students and every KD method, on the shared training loop.

It knows nothing of methods beyond the ``Distiller`` contract: batch in, logits and a dict of
named losses out. The run folder, checkpoints, ``metrics.csv``, progress lines and the
non-finite-loss guard are :class:`repro.core.training.TrainLoop`'s. Each epoch re-seeds torch
from ``(seed, epoch)``, so a run resumed from the checkpoint of epoch ``k`` draws exactly the
batches and augmentations an uninterrupted run draws from epoch ``k + 1`` on, and on CPU ends
with the same weights.

Under ``torchrun`` (``repro-core launch``) the trainer runs data-parallel with
:mod:`repro.core.distributed`: ``batch_size`` stays the global batch; every rank draws the same
global batch and augments it with the same random draws (array datasets: the whole batch, then
its rows ``rank::world``; folder datasets: each sample from its own seed), the student is
wrapped in DDP and each rank's loss is weighted by its share, so a step's gradient is that of
the global batch. Epoch metrics are sums and counts over all ranks; evaluation shards the test
split (each sample counted once). BatchNorm statistics are synchronised over the global batch
on GPUs (``sync_bn``; torch's SyncBatchNorm has no CPU kernel). Only rank 0 writes; the
checkpoint holds the plain student (no ``module.`` keys), so a run resumes on any number of
processes.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from repro.core import ReproError
from repro.core.distributed import Dist, plain_state
from repro.core.distributed import setup as setup_distributed
from repro.core.params import to_dict
from repro.core.progress import progress
from repro.core.training import TrainLoop, seed_period
from repro.distill.arraydata import ArrayData, BatchAugment
from repro.distill.methods import Distiller
from repro.distill.params import TESTING_AIDS, RunParams, TrainConfig

if TYPE_CHECKING:
    import os

    from repro.distill.folderdata import FolderData


@dataclass
class EpochSums:
    """Running sums of one epoch's training metrics (one trainer, this rank)."""

    lr: float
    sums: dict[str, float] = field(default_factory=dict)
    seen: int = 0
    correct: int = 0


def fingerprint_params(params: RunParams) -> dict[str, Any]:
    """A run's params without what does not change its output (the testing aids such as
    ``train.stop_after_steps``): a run stopped by one resumes when rerun without it."""
    out = to_dict(params)
    out["train"] = {k: v for k, v in out["train"].items() if k not in TESTING_AIDS}
    return out


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    data: ArrayData | FolderData,
    augment: BatchAugment,
    batch_size: int = 256,
    amp: bool = False,
    dist: Dist | None = None,
) -> dict[str, float]:
    """Top-1 / top-5 accuracy (%) of ``model`` (returning logits or (logits, feats)); with
    ``dist``, each rank scores its shard of the split and the hits are summed over ranks."""
    rank, world = (dist.rank, dist.world) if dist is not None else (0, 1)
    was_training = model.training
    model.eval()
    correct1 = correct5 = 0
    for images, labels in data.batches(batch_size, shuffle=False, rank=rank, world_size=world):
        with autocast(images.device, amp):
            out = model(augment(images, train=False))
        logits = out[0] if isinstance(out, tuple) else out
        top = logits.float().topk(min(5, logits.shape[1]), dim=1).indices
        hits = top == labels[:, None]
        correct1 += int(hits[:, 0].sum())
        correct5 += int(hits.any(dim=1).sum())
    model.train(was_training)
    if dist is not None:
        correct1, correct5 = dist.sum([correct1, correct5])
    n = len(data)
    return {"top1": 100.0 * correct1 / n, "top5": 100.0 * correct5 / n}


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on ``device`` (CUDA or CPU) when ``enabled``, else a no-op."""
    if enabled and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class Trainer:
    """Train ``distiller``'s student on ``train`` and evaluate on ``test`` each epoch."""

    def __init__(
        self,
        distiller: Distiller,
        train: ArrayData | FolderData,
        test: ArrayData | FolderData,
        cfg: TrainConfig,
        out_dir: str | os.PathLike[str],
        name: str = "train",
        dist: Dist | None = None,
        params: RunParams | None = None,
    ) -> None:
        self.cfg = cfg
        self.dist = dist or setup_distributed(cfg.device, "train.device")
        self.rank, self.world = self.dist.rank, self.dist.world
        self.device = self.dist.device
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        cuda = self.device.type == "cuda"
        self.amp = cfg.amp if cuda else cfg.cpu_bf16
        self.distiller = distiller.to(self.device)
        if cfg.channels_last:
            self.distiller.to(memory_format=torch.channels_last)
        self.train_data, self.test_data = train, test
        mean = cfg.mean or [0.5] * train.in_channels
        std = cfg.std or [0.5] * train.in_channels
        # folder datasets flip each sample from its own seed (the same whatever the world size)
        flip = cfg.flip and getattr(train, "resident", True)
        self.augment = BatchAugment(mean, std, cfg.crop_padding, flip, train.size)
        self.augment.to(self.device)
        if self.world > 1 and not getattr(train, "resident", True) and cfg.batch_size % self.world:
            raise ReproError(
                f"train.batch_size {cfg.batch_size} is not a multiple of the {self.world} "
                "processes (folder datasets split each global batch evenly)"
            )
        if self.world > 1 and cfg.sync_bn and self.device.type == "cuda":
            distiller.student = torch.nn.SyncBatchNorm.convert_sync_batchnorm(distiller.student)
        # the method's own draws are seeded from the run's seed (a resume restores them)
        distiller.bind_run(cfg.seed, mean, std, cfg.teacher_precision)
        self.params = distiller.student_parameters()
        self.opt = torch.optim.SGD(
            self.params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
        self.student = distiller.student  # the plain student (DDP wraps it in fit)
        self.loop = TrainLoop(
            out_dir, total=cfg.epochs, unit="epoch", name=name, rank=self.rank,
            params=None if params is None else fingerprint_params(params),
        )  # fmt: skip
        self.steps = 0

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.loop.history

    # -- checkpoints -----------------------------------------------------------------------
    def _payload(self) -> dict[str, Any]:
        state = plain_state(self.distiller.state_dict(), "student")
        model = {k: v for k, v in state.items() if not k.startswith("teacher.")}
        return {"model": model, "optimizer": self.opt.state_dict(), "config": asdict(self.cfg)}

    def _restore(self, payload: dict[str, Any]) -> None:
        missing, unexpected = self.distiller.load_state_dict(payload["model"], strict=False)
        if unexpected or any(not k.startswith("teacher.") for k in missing):
            raise ReproError(
                f"{self.loop.ckpt_path}: does not match this model/method "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        self.opt.load_state_dict(payload["optimizer"])

    # -- training ------------------------------------------------------------------------
    def _prepare_batches(self):
        """Training batches for the method's prepare step (train-time augmentation), drawn
        only if the method asks for them."""
        gen = seed_period(self.cfg.seed, 0)
        for x, y in self.train_data.batches(self.cfg.batch_size, shuffle=True, generator=gen):
            yield self.augment(x), y

    def prepare(self) -> None:
        """Run the method's prepare step (every method; e.g. energy thresholds), at the
        training's precision (the teacher then gives the statistics it gives in training)."""
        with autocast(self.device, self.amp):
            self.distiller.prepare(self._prepare_batches(), drop_last=True)

    def train_step(
        self, images: Tensor, labels: Tensor, epoch: int
    ) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """One optimiser step on a uint8 batch: augment, forward, backward, update."""
        return self._step(self.augment(images), labels, epoch)

    def _step(
        self, x: Tensor, labels: Tensor, epoch: int, weight: float = 1.0
    ) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """One optimiser step on an augmented batch; ``weight`` scales the loss that is
        back-propagated (a rank's share of the global batch; see repro.core.distributed)."""
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.amp):
            logits, losses = self.distiller.forward_train(x, labels, epoch)
        loss = sum(losses.values())
        self.opt.zero_grad(set_to_none=True)
        (loss * weight if weight != 1.0 else loss).backward()
        self.opt.step()
        self.steps += 1
        return logits, losses, loss

    def _rank_batches(self, gen: torch.Generator):
        """``(augmented images, labels, global batch size)``: this rank's rows of each global
        batch, drawn and augmented the same way whatever the number of processes. A last
        global batch with fewer samples than processes is skipped (by every rank)."""
        data, size, dist = self.train_data, self.cfg.batch_size, self.dist
        if self.world == 1 or getattr(data, "resident", True):
            # every rank draws and augments the whole global batch (cheap: the split is on
            # the device), then keeps its rows
            for images, labels in data.batches(size, shuffle=True, generator=gen):
                if len(labels) >= self.world:
                    x, y = dist.part((self.augment(images), labels))
                    yield x, y, len(labels)
            return
        # folder datasets: each rank decodes only its rows (rows rank::world of each global
        # batch, since the batch size is a multiple of the world size)
        n = len(data)
        batches = data.batches(
            size // self.world, shuffle=True, generator=gen, rank=self.rank, world_size=self.world
        )
        for k, (images, labels) in enumerate(batches):
            total = min(size, n - k * size)
            if total >= self.world:
                yield self.augment(images), labels, total

    def open_epoch(self, epoch: int) -> EpochSums:
        """Set the epoch's learning rate and train mode; the epoch's running sums."""
        lr = self.cfg.lr_at(epoch)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.distiller.train()
        return EpochSums(lr)

    def train_batch(
        self, x: Tensor, labels: Tensor, total: int, epoch: int, step: int, sums: EpochSums
    ) -> None:
        """One step on this rank's augmented rows ``x`` of a global batch of ``total``
        samples, added to the epoch's ``sums``."""
        weight = self.dist.weight(len(labels), total)
        logits, losses, loss = self._step(x, labels, epoch, weight)
        hits = (logits.argmax(1) == labels).sum()
        # one host sync per step: the losses, their sum and the hits (NaN guard included)
        values = self.loop.check({**losses, "loss": loss, "_hits": hits}, epoch, step)
        b = len(labels)
        sums.seen += b
        sums.correct += int(values.pop("_hits"))
        for name, value in values.items():
            sums.sums[name] = sums.sums.get(name, 0.0) + value * b

    def close_epoch(self, sums: EpochSums) -> dict[str, float]:
        """The epoch's training metrics: means over the samples of all ranks."""
        totals, seen, correct = sums.sums, sums.seen, sums.correct
        if self.world > 1:  # sums and counts over all ranks: the global epoch's means
            names = list(totals)
            summed = self.dist.sum([*(totals[k] for k in names), seen, correct])
            totals = dict(zip(names, summed[:-2], strict=True))
            seen, correct = summed[-2:]
        row = {k: v / seen for k, v in totals.items()}
        row.update(lr=sums.lr, train_top1=100.0 * correct / seen)
        return row

    def train_epoch(self, epoch: int) -> dict[str, float]:
        sums = self.open_epoch(epoch)
        gen = seed_period(self.cfg.seed, epoch)
        n_batches = math.ceil(len(self.train_data) / self.cfg.batch_size)
        for step, (x, labels, total) in enumerate(
            progress(self._rank_batches(gen), f"epoch {epoch}", total=n_batches), 1
        ):
            self.train_batch(x, labels, total, epoch, step, sums)
            if self.cfg.stop_after_steps and self.steps >= self.cfg.stop_after_steps:
                raise SystemExit(f"stopping after {self.steps} steps (stop_after_steps)")
        return self.close_epoch(sums)

    def start(self, prepare: bool = True) -> int:
        """Resume from the checkpoint if there is one (else, with ``prepare``, run the
        method's prepare step) and wrap the student for data parallelism; returns the first
        epoch still to train (``cfg.epochs + 1`` when the run is complete)."""
        start = self.loop.resume(self._restore, map_location=str(self.device))
        if start == 1 and prepare:
            self.prepare()
        # gradients averaged over ranks; the teacher stays local (it is frozen)
        self.distiller.student = self.dist.wrap(self.student)
        return start

    def end_epoch(self, epoch: int, row: dict[str, Any], t0: float) -> None:
        """Evaluate after ``epoch``, record its metrics row (``seconds`` since ``t0``) and
        checkpoint."""
        self.dist.sync_buffers(self.student)  # every rank scores rank 0's model
        scores = evaluate(
            self.student, self.test_data, self.augment, self.cfg.eval_batch_size, self.amp,
            self.dist,
        )  # fmt: skip
        row = {"epoch": epoch, **row, **{f"test_{k}": v for k, v in scores.items()}}
        row["seconds"] = time.perf_counter() - t0
        self.loop.record(row)
        self.loop.save(epoch, self._payload())

    def fit(self) -> dict[str, Any]:
        """Train to ``cfg.epochs`` (resuming from the checkpoint if there is one); the method's
        prepare step runs first on a fresh run (a resumed one restores its result)."""
        for epoch in range(self.start(), self.cfg.epochs + 1):
            t0 = time.perf_counter()
            self.end_epoch(epoch, self.train_epoch(epoch), t0)
        return self.result()

    def result(self) -> dict[str, Any]:
        """Final and best-epoch accuracies (the papers report best-epoch; we report both),
        the test-set size and what the method's prepare step computed."""
        if not self.history:
            return {}
        last = self.history[-1]
        best = max(self.history, key=lambda r: r["test_top1"])
        return {
            "final_top1": last["test_top1"],
            "final_top5": last["test_top5"],
            "best_top1": best["test_top1"],
            "best_top5": best["test_top5"],
            "best_epoch": best["epoch"],
            "epochs": last["epoch"],
            "test_n": len(self.test_data),
            "prepared": self.distiller.prepared(),
        }

    def save_outputs(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Write the student's weights (``model.pt``) and ``result.json`` (rank 0 only)."""
        return self.loop.finish({"model": self.student.state_dict()}, {**self.result(), **extra})
