"""What MHSAN's training needs beyond :mod:`repro.core.distributed` to give the same run in 1 or
N processes: dropout drawn for the global batch, and the global batch's embeddings for the
batch-wide triplet loss.

Under torchrun each rank embeds its rows ``rank, rank + world, ...`` of a global batch
(:meth:`repro.core.distributed.Dist.part`). Two things would then differ from one process:

- **Dropout.** Every rank's global RNG is seeded alike (``seed_period``), so masks drawn for
  each rank's rows would repeat across ranks and differ from one process's. Here, while a
  :class:`Shard` is set (:func:`sharded`), each dropout draws the mask of the *global* batch,
  laid out in memory as one process's input is (a random fill follows the layout), and keeps
  its rows: on a CPU exactly one process's mask (on a GPU one process uses the fused dropout
  kernel, another stream of draws). Without a shard the modules are ``torch.nn.Dropout`` and
  the SRU's variational dropout unchanged.
- **The triplet loss** (hardest negative over the batch) is no sum of per-sample terms:
  :func:`gather_rows` gives every rank the global batch's embeddings, its own rows with their
  gradient and the others' as constants, so each rank computes the global loss and
  back-propagates it into its own rows (see ``repro.vse.train.train_step`` for the weights).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Shard:
    """This rank's part of a global batch of ``total`` rows: rows ``rank::world``."""

    rank: int
    world: int
    total: int

    def rows(self, x: Tensor, dim: int = 0) -> Tensor:
        """This rank's rows of a global-batch tensor along ``dim``."""
        index = [slice(None)] * dim + [slice(self.rank, None, self.world)]
        return x[tuple(index)]

    def size(self, rank: int) -> int:
        """How many rows ``rank`` holds."""
        return len(range(rank, self.total, self.world))


def global_noise(x: Tensor, shard: Shard, dim: int, fill: Callable[[Tensor], Tensor]) -> Tensor:
    """``fill`` run on a tensor shaped like ``x`` but with the global batch along ``dim``, and
    strided as ``x`` (its dimensions in the same memory order, so a fill that follows the
    memory layout draws what it draws for one process's input); returns this rank's rows."""
    shape = list(x.shape)
    shape[dim] = shard.total
    order = sorted(range(x.dim()), key=x.stride, reverse=True)  # outermost dimension first
    noise = x.new_empty([shape[d] for d in order]).permute(
        *[order.index(d) for d in range(x.dim())]
    )
    return shard.rows(fill(noise), dim)


class Dropout(nn.Dropout):
    """``torch.nn.Dropout`` whose mask, while :attr:`shard` is set, is drawn for the global
    batch (its batch dimension ``batch_dim``) as torch's CPU kernel draws it: Bernoulli noise
    of the input's layout, divided by the keep probability."""

    def __init__(self, p: float = 0.5, batch_dim: int = 0) -> None:
        super().__init__(p)
        self.batch_dim = batch_dim
        self.shard: Shard | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.shard is None or not self.training or self.p == 0:
            return super().forward(x)
        keep = 1.0 - self.p
        return x * global_noise(
            x, self.shard, self.batch_dim, lambda t: t.bernoulli_(keep).div_(keep)
        )


def variational_mask(x: Tensor, keep: float, shard: Shard | None) -> Tensor:
    """One dropout mask per sequence of ``x`` (T, B, width), shared over time: Bernoulli(keep)
    / keep of shape (B, width), drawn for the global batch when ``shard`` is set."""
    if shard is None:
        return torch.bernoulli(x.new_full(x.shape[1:], keep)) / keep
    full = torch.bernoulli(x.new_full((shard.total, *x.shape[2:]), keep)) / keep
    return shard.rows(full)


@contextlib.contextmanager
def sharded(model: nn.Module, shard: Shard | None) -> Iterator[None]:
    """Every module of ``model`` with a ``shard`` attribute (:class:`Dropout`, the SRU) draws
    for the global batch of ``shard`` inside the block (nothing changes with None)."""
    modules = [m for m in model.modules() if hasattr(m, "shard")]
    for m in modules:
        m.shard = shard
    try:
        yield
    finally:
        for m in modules:
            m.shard = None


def gather_rows(x: Tensor, shard: Shard) -> Tensor:
    """The global batch's rows of ``x`` (this rank's rows of it) from every rank, in the global
    batch's order; this rank's rows keep their gradient, the others' are constants."""
    most = shard.size(0)
    buffer = x.new_zeros(most, *x.shape[1:])
    buffer[: len(x)] = x.detach()
    parts = [torch.empty_like(buffer) for _ in range(shard.world)]
    torch.distributed.all_gather(parts, buffer)
    rows = [x if r == shard.rank else parts[r][: shard.size(r)] for r in range(shard.world)]
    order = torch.cat([torch.arange(r, shard.total, shard.world) for r in range(shard.world)])
    where = torch.empty_like(order)
    where[order] = torch.arange(shard.total)  # global row g is row where[g] of the ranks' rows
    return torch.cat(rows)[where.to(x.device)]
