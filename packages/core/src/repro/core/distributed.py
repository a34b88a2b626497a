"""Data-parallel training under ``torchrun``: the one place a process group is set up.

A trainer runs the same code in 1 or N processes::

    with distributed.session(cfg.device, "train.device") as dist:   # reads torchrun's env
        model = build(...).to(dist.device)
        ...restore a checkpoint into the plain model...
        ddp = dist.wrap(model)                 # DistributedDataParallel when world > 1
        for batch in global_batches:           # every rank draws the same global batch
            mine = dist.part(batch)            # ...and keeps its rows (rank::world)
            loss = ...ddp(mine)...             # weighted by dist.weight(len(mine), len(batch))
        sums = dist.sum([loss_sum, seen])      # metrics: sums and counts over all ranks
        TrainLoop(..., rank=dist.rank)         # rank 0 writes; checkpoints hold the plain
                                               # model's state (no `module.` prefix)

``session`` initialises the default process group from torchrun's variables (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``): NCCL when the device is a
GPU (``cuda:<LOCAL_RANK>``, one GPU per process), gloo on CPU. Outside torchrun it is a
no-op (rank 0 of 1) and the trainer runs exactly as before. Ranks other than 0 log warnings
only and show no progress bars.

Why the same result whatever the world size: gradients are averaged over ranks by DDP, and a
rank's loss is weighted by its share of the global batch (:meth:`Dist.weight`), so each step's
gradient is that of the global batch (exactly, when the loss is a mean over samples); random
draws come from generators seeded alike on every rank, taken for the whole global batch. What
differs is the order of floating-point sums (per-rank partial sums, then the all-reduce), so
weights agree to rounding, not bit for bit.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from repro.core import ReproError
from repro.core.device import resolve_device

T = TypeVar("T")
log = logging.getLogger("repro")


def torchrun_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's variables ((0, 1, 0) without)."""
    try:
        return (
            int(os.environ.get("RANK", 0)),
            int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)),
        )
    except ValueError as exc:
        raise ReproError(f"torchrun environment: {exc}") from exc


@dataclass(frozen=True)
class Dist:
    """This process's place in the job: rank, world size, local rank and device."""

    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes (checkpoints, results, logs)."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    # -- data ------------------------------------------------------------------------------
    def part(self, batch: T) -> T:
        """This rank's rows of a global batch (a tensor, or a tuple/list of tensors): rows
        ``rank, rank + world, ...``; the whole batch with one process."""
        if self.world == 1:
            return batch
        if isinstance(batch, tuple | list):
            return type(batch)(self.part(x) for x in batch)
        return batch[self.rank :: self.world]

    def weight(self, local: int, total: int) -> float:
        """Factor on a rank's mean loss so that DDP's average over ranks is the mean over the
        global batch: ``world * local / total`` (1 when ranks have equal shares)."""
        return self.world * local / total if total else 0.0

    # -- collectives -----------------------------------------------------------------------
    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sums over all ranks (float64; one collective); the values with one."""
        if self.world == 1:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self._comm)
        torch.distributed.all_reduce(t)
        return t.cpu().tolist()

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every rank, so a sharded
        evaluation scores one model: without synchronised BatchNorm each rank's last
        training step updated its own statistics."""
        if self.world == 1:
            return
        for buf in module.buffers():
            torch.distributed.broadcast(buf, src=0)

    @property
    def _comm(self) -> torch.device:
        """Where collective tensors live: the GPU for NCCL, the CPU for gloo."""
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    # -- models ----------------------------------------------------------------------------
    def wrap(self, module: torch.nn.Module, **ddp_args: Any) -> torch.nn.Module:
        """``module`` in DistributedDataParallel when world > 1 (gradients averaged over
        ranks; rank 0's weights broadcast first), else ``module`` itself."""
        if self.world == 1:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids, **ddp_args)


def plain_state(state: dict[str, Any], wrapped: str = "") -> dict[str, Any]:
    """A state dict without DDP's ``module.`` level below ``wrapped`` (the wrapped
    submodule's name, '' for the whole model): ``student.module.fc.w`` -> ``student.fc.w``.
    Checkpoints hold plain keys, so they load into any world size."""
    head = f"{wrapped}.module." if wrapped else "module."
    keep = f"{wrapped}." if wrapped else ""
    return {(keep + k[len(head) :] if k.startswith(head) else k): v for k, v in state.items()}


def _device_for(name: str, key: str, local_rank: int, world: int) -> torch.device:
    device = resolve_device(name, key)
    if world > 1 and device.type == "cuda":
        if name.startswith("cuda:"):
            raise ReproError(
                f"{key}: '{name}' pins every process to one GPU; use 'cuda' or 'auto' under "
                "torchrun (each process takes the GPU of its local rank)"
            )
        if local_rank >= torch.cuda.device_count():
            raise ReproError(
                f"{key}: local rank {local_rank} has no GPU ({torch.cuda.device_count()} visible)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def setup(device: str = "auto", key: str = "device") -> Dist:
    """Join torchrun's process group (if any) and pick this process's device."""
    rank, world, local_rank = torchrun_env()
    dev = _device_for(device, key, local_rank, world)
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        kwargs = {"device_id": dev} if dev.type == "cuda" else {}
        torch.distributed.init_process_group(backend, **kwargs)
    if world > 1 and rank != 0:  # one voice: rank 0 logs and shows progress
        logging.getLogger("repro").setLevel(logging.WARNING)
        os.environ["REPRO_NO_PROGRESS"] = "1"
    return Dist(rank, world, local_rank, dev)


def teardown() -> None:
    """Leave the process group (after a barrier, so no rank exits while others still talk)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        try:
            torch.distributed.barrier()
        finally:
            torch.distributed.destroy_process_group()


@contextlib.contextmanager
def session(device: str = "auto", key: str = "device") -> Iterator[Dist]:
    """:func:`setup` ... :func:`teardown` around a training run; on an error the group is
    left without the barrier (torchrun stops the other ranks)."""
    dist = setup(device, key)
    try:
        yield dist
    except BaseException:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        raise
    teardown()
