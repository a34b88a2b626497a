"""One trainer for teachers, students and every KD method, on the shared training loop.

It knows nothing of methods beyond the ``Distiller`` contract: batch in, logits and a dict of
named losses out. The run folder, checkpoints, ``metrics.csv``, progress lines and the
non-finite-loss guard are :class:`repro.core.training.TrainLoop`'s. Each epoch re-seeds torch
from ``(seed, epoch)``, so a run resumed from the checkpoint of epoch ``k`` draws exactly the
batches and augmentations an uninterrupted run draws from epoch ``k + 1`` on, and on CPU ends
with the same weights.

No global state: the distributed rank comes from ``torch.distributed`` when it is
initialised (torchrun), only rank 0 writes files or logs, and batches are sharded by rank.
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
from repro.core.config import check_keys
from repro.core.device import resolve_device
from repro.core.progress import progress
from repro.core.training import TrainLoop, dist_info, seed_period
from repro.distill.arraydata import ArrayData, BatchAugment
from repro.distill.methods import Distiller

if TYPE_CHECKING:
    import os

    from repro.distill.folderdata import FolderData


@dataclass
class TrainConfig:
    """Optimiser, schedule and run settings (defaults: mdistiller's CIFAR-100 recipe)."""

    epochs: int = 240
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_milestones: list[int] = field(default_factory=lambda: [150, 180, 210])
    lr_decay: float = 0.1
    seed: int = 0
    device: str = "auto"  # auto, cpu, cuda or cuda:<i> (repro.core.device)
    amp: bool = True  # bf16 autocast on CUDA
    cpu_bf16: bool = False  # bf16 autocast on CPU too (2x on CPUs with avx512_bf16/AMX)
    channels_last: bool = True  # NHWC activations: faster convs on CUDA and on CPU (oneDNN)
    eval_batch_size: int = 256
    crop_padding: int = 4
    flip: bool = True
    mean: list[float] | None = None
    std: list[float] | None = None
    threads: int | None = None
    workers: int = 0  # folder datasets: DataLoader processes decoding JPEGs
    image_size: int = 224  # folder datasets: train crop and eval centre-crop size
    stop_after_steps: int | None = None  # testing aid: simulate a crash after N steps

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> TrainConfig:
        check_keys(cfg, cls.__dataclass_fields__, "train", noun="setting")
        return cls(**cfg)

    def lr_at(self, epoch: int) -> float:
        """Step schedule, 1-based epochs, decayed once per milestone passed (``epoch > m``)."""
        return self.lr * self.lr_decay ** sum(epoch > m for m in self.lr_milestones)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    data: ArrayData | FolderData,
    augment: BatchAugment,
    batch_size: int = 256,
    amp: bool = False,
) -> dict[str, float]:
    """Top-1 / top-5 accuracy (%) of ``model`` (returning logits or (logits, feats))."""
    was_training = model.training
    model.eval()
    correct1 = correct5 = 0
    for images, labels in data.batches(batch_size, shuffle=False):
        with _autocast(images.device, amp):
            out = model(augment(images, train=False))
        logits = out[0] if isinstance(out, tuple) else out
        top = logits.float().topk(min(5, logits.shape[1]), dim=1).indices
        hits = top == labels[:, None]
        correct1 += int(hits[:, 0].sum())
        correct5 += int(hits.any(dim=1).sum())
    model.train(was_training)
    n = len(data)
    return {"top1": 100.0 * correct1 / n, "top5": 100.0 * correct5 / n}


def _autocast(device: torch.device, enabled: bool):
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
    ) -> None:
        self.cfg = cfg
        self.rank, self.world = dist_info()
        self.device = resolve_device(cfg.device, "train.device")
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
        self.augment = BatchAugment(mean, std, cfg.crop_padding, cfg.flip, train.size)
        self.augment.to(self.device)
        # the method's own draws are seeded from the run's seed (a resume restores them)
        distiller.bind_run(cfg.seed, mean, std)
        self.params = distiller.student_parameters()
        self.opt = torch.optim.SGD(
            self.params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
        self.student = distiller.student
        if self.world > 1:  # gradients averaged across ranks; the teacher stays local
            from torch.nn.parallel import DistributedDataParallel

            self.distiller.student = DistributedDataParallel(self.student)
        self.loop = TrainLoop(out_dir, total=cfg.epochs, unit="epoch", name=name, rank=self.rank)
        self.steps = 0

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.loop.history

    # -- checkpoints -----------------------------------------------------------------------
    def _payload(self) -> dict[str, Any]:
        model = {
            k: v for k, v in self.distiller.state_dict().items() if not k.startswith("teacher.")
        }
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
        """Run the method's prepare step (every method; e.g. energy thresholds)."""
        self.distiller.prepare(self._prepare_batches(), drop_last=True)

    def train_step(
        self, images: Tensor, labels: Tensor, epoch: int
    ) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """One optimiser step on a uint8 batch: augment, forward, backward, update."""
        x = self.augment(images)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(self.device, self.amp):
            logits, losses = self.distiller.forward_train(x, labels, epoch)
        loss = sum(losses.values())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.steps += 1
        return logits, losses, loss

    def train_epoch(self, epoch: int) -> dict[str, float]:
        lr = self.cfg.lr_at(epoch)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.distiller.train()
        gen = seed_period(self.cfg.seed, epoch)
        sums: dict[str, float] = {}
        seen = correct = 0
        batches = self.train_data.batches(
            self.cfg.batch_size, shuffle=True, generator=gen, rank=self.rank, world_size=self.world
        )
        n_batches = math.ceil(len(self.train_data) / self.world / self.cfg.batch_size)
        for step, (images, labels) in enumerate(
            progress(batches, f"epoch {epoch}", total=n_batches), 1
        ):
            logits, losses, loss = self.train_step(images, labels, epoch)
            hits = (logits.argmax(1) == labels).sum()
            # one host sync per step: the losses, their sum and the hits (NaN guard included)
            values = self.loop.check({**losses, "loss": loss, "_hits": hits}, epoch, step)
            b = len(labels)
            seen += b
            correct += int(values.pop("_hits"))
            for name, value in values.items():
                sums[name] = sums.get(name, 0.0) + value * b
            if self.cfg.stop_after_steps and self.steps >= self.cfg.stop_after_steps:
                raise SystemExit(f"stopping after {self.steps} steps (stop_after_steps)")
        row = {k: v / seen for k, v in sums.items()}
        row.update(lr=lr, train_top1=100.0 * correct / seen)
        return row

    def fit(self) -> dict[str, Any]:
        """Train to ``cfg.epochs`` (resuming from the checkpoint if there is one); the method's
        prepare step runs first on a fresh run (a resumed one restores its result)."""
        start = self.loop.resume(self._restore, map_location=str(self.device))
        if start == 1:
            self.prepare()
        for epoch in range(start, self.cfg.epochs + 1):
            t0 = time.perf_counter()
            row = {"epoch": epoch, **self.train_epoch(epoch)}
            scores = evaluate(
                self.student, self.test_data, self.augment, self.cfg.eval_batch_size, self.amp
            )
            row.update({f"test_{k}": v for k, v in scores.items()})
            row["seconds"] = time.perf_counter() - t0
            self.loop.record(row)
            self.loop.save(epoch, self._payload())
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
