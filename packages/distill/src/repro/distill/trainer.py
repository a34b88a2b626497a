"""One trainer for teachers, students and every KD method.

It knows nothing of methods beyond the ``Distiller`` contract: batch in, logits and a dict of
named losses out. Each epoch re-seeds torch from ``(seed, epoch)``, so a run resumed from the
checkpoint of epoch ``k`` draws exactly the batches and augmentations an uninterrupted run
draws from epoch ``k + 1`` on, and on CPU ends with the same weights.

No global state: the distributed rank comes from ``torch.distributed`` when it is
initialised (torchrun), only rank 0 writes files or logs, and batches are sharded by rank.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from repro.core.atomic import write_json, write_text
from repro.core.checkpoint import load_checkpoint, save_checkpoint
from repro.core.config import check_keys
from repro.core.progress import progress
from repro.core.tables import to_csv
from repro.distill.arraydata import ArrayData, BatchAugment
from repro.distill.methods import Distiller

if TYPE_CHECKING:
    from repro.distill.folderdata import FolderData

log = logging.getLogger("repro.distill")


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
    device: str = "cpu"
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


def dist_info() -> tuple[int, int]:
    """(rank, world_size) from torch.distributed, or (0, 1) when not initialised."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


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
    ) -> None:
        self.cfg = cfg
        self.out = Path(out_dir)
        self.rank, self.world = dist_info()
        self.device = torch.device(cfg.device)
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
        self.params = distiller.student_parameters()
        self.opt = torch.optim.SGD(
            self.params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
        self.student = distiller.student
        if self.world > 1:  # gradients averaged across ranks; the teacher stays local
            from torch.nn.parallel import DistributedDataParallel

            self.distiller.student = DistributedDataParallel(self.student)
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 1
        self.steps = 0

    # -- checkpoints -----------------------------------------------------------------------
    @property
    def ckpt_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def _state(self, epoch: int) -> dict[str, Any]:
        model = {
            k: v for k, v in self.distiller.state_dict().items() if not k.startswith("teacher.")
        }
        return {
            "epoch": epoch,
            "model": model,
            "optimizer": self.opt.state_dict(),
            "history": self.history,
            "config": asdict(self.cfg),
        }

    def resume(self) -> bool:
        """Load ``checkpoint.pt`` if present; returns whether training resumes from it."""
        if not self.ckpt_path.is_file():
            return False
        state = load_checkpoint(self.ckpt_path, map_location=str(self.device))
        missing, unexpected = self.distiller.load_state_dict(state["model"], strict=False)
        if unexpected or any(not k.startswith("teacher.") for k in missing):
            from repro.core import ReproError

            raise ReproError(
                f"{self.ckpt_path}: does not match this model/method "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        self.opt.load_state_dict(state["optimizer"])
        self.history = list(state["history"])
        self.start_epoch = int(state["epoch"]) + 1
        log.info("resumed from %s at epoch %d", self.ckpt_path, state["epoch"])
        return True

    # -- training ------------------------------------------------------------------------
    def _epoch_generator(self, epoch: int) -> torch.Generator:
        torch.manual_seed(self.cfg.seed * 100_003 + epoch)  # kornia draws from the global RNG
        gen = torch.Generator()
        gen.manual_seed(self.cfg.seed * 100_003 + epoch)
        return gen

    def prepare(self) -> None:
        """Run the method's pre-training hook on augmented training batches (e.g. thresholds)."""
        has = getattr(self.distiller, "has_thresholds", True)
        if has:
            return
        gen = self._epoch_generator(0)
        batches = (
            (self.augment(x), y)
            for x, y in self.train_data.batches(self.cfg.batch_size, shuffle=True, generator=gen)
        )
        self.distiller.prepare(batches, drop_last=True)

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
        gen = self._epoch_generator(epoch)
        sums: dict[str, float] = {}
        seen = correct = 0
        batches = self.train_data.batches(
            self.cfg.batch_size, shuffle=True, generator=gen, rank=self.rank, world_size=self.world
        )
        n_batches = math.ceil(len(self.train_data) / self.world / self.cfg.batch_size)
        for images, labels in progress(batches, f"epoch {epoch}", total=n_batches):
            logits, losses, loss = self.train_step(images, labels, epoch)
            b = len(labels)
            seen += b
            correct += int((logits.argmax(1) == labels).sum())
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach()) * b
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach()) * b
            if self.cfg.stop_after_steps and self.steps >= self.cfg.stop_after_steps:
                raise SystemExit(f"stopping after {self.steps} steps (stop_after_steps)")
        row = {k: v / seen for k, v in sums.items()}
        row.update(lr=lr, train_top1=100.0 * correct / seen)
        return row

    def fit(self) -> dict[str, Any]:
        """Train to ``cfg.epochs`` (resuming if a checkpoint exists); returns the result."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.resume()
        self.prepare()
        for epoch in range(self.start_epoch, self.cfg.epochs + 1):
            t0 = time.perf_counter()
            row = {"epoch": epoch, **self.train_epoch(epoch)}
            row.update(
                {
                    f"test_{k}": v
                    for k, v in evaluate(
                        self.student,
                        self.test_data,
                        self.augment,
                        self.cfg.eval_batch_size,
                        self.amp,
                    ).items()
                }
            )
            row["seconds"] = time.perf_counter() - t0
            self.history.append(row)
            if self.rank == 0:
                save_checkpoint(self.ckpt_path, self._state(epoch))
                write_text(self.out / "metrics.csv", to_csv(self.history))
                log.info(
                    "epoch %d: %s",
                    epoch,
                    json.dumps(
                        {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
                    ),
                )
        return self.result()

    def result(self) -> dict[str, Any]:
        """Final and best-epoch accuracies (the papers report best-epoch; we report both)."""
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
        }

    def save_outputs(self, extra: dict[str, Any]) -> None:
        """Write the student's weights (``model.pt``) and ``result.json`` (rank 0 only)."""
        if self.rank != 0:
            return
        save_checkpoint(self.out / "model.pt", {"model": self.student.state_dict()})
        write_json(self.out / "result.json", {**self.result(), **extra})
