"""The one training skeleton every paper package runs its training on.

A run lives in one folder::

    checkpoint.pt   state after the last finished period (atomic write; exact resume)
    metrics.csv     one row per recorded period
    tensorboard/    the same rows as TensorBoard events (logging.tensorboard)
    model.pt        the final weights, with what the package needs to rebuild the model
    result.json     the final numbers

A *period* is the unit of checkpointing: an epoch (KD) or a block of iterations (burst SR).
The package owns the model, optimiser and data; it builds each period's rows and the
checkpoint payload (weights, optimiser, random-generator states), and the loop owns the
folder: resume, atomic checkpoints, ``metrics.csv``, progress lines, ``model.pt`` and
``result.json``, and the guard that stops a run whose loss turns NaN or infinite.

A loss that is not finite stops the run with one line naming the period and the step; the
checkpoint of the last finished period is left as it was, so the run can be inspected or
resumed with other settings. Only rank 0 writes (torch.distributed runs).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repro.core import ReproError
from repro.core.atomic import write_json, write_text
from repro.core.checkpoint import load_checkpoint, save_checkpoint
from repro.core.provenance import config_hash
from repro.core.tables import to_csv

if TYPE_CHECKING:
    import torch

log = logging.getLogger("repro")


class NonFiniteLoss(ReproError):
    """A training loss became NaN or infinite (the run stops; its checkpoint is kept)."""


def seed_period(seed: int, period: int) -> torch.Generator:
    """A generator for one period, seeded from ``(seed, period)``; torch's global RNG is
    seeded the same way (kornia's augmentations draw from it), so period ``k`` draws the same
    batches and augmentations whether or not the run was resumed before it."""
    import torch

    value = seed * 100_003 + period
    torch.manual_seed(value)
    gen = torch.Generator()
    gen.manual_seed(value)
    return gen


def dist_info() -> tuple[int, int]:
    """(rank, world_size) from torch.distributed, or (0, 1) when not initialised."""
    import torch

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class TrainLoop:
    """Folder, checkpoints, metrics and the non-finite-loss guard of one training run.

    Typical use::

        loop = TrainLoop(out, total=cfg.epochs, unit="epoch", name="kd resnet8x4")
        start = loop.resume(restore)            # restore(payload) loads weights, optimiser...
        for period in range(start, loop.total + 1):
            for step, batch in enumerate(batches, 1):
                losses = ...                    # {name: scalar tensor}
                values = loop.check(losses, period, step)   # floats; raises if not finite
            loop.record({...})                  # metrics.csv row + progress line
            loop.save(period, payload())        # atomic checkpoint
        loop.finish(model_state, result)        # model.pt + result.json
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        *,
        total: int,
        unit: str = "epoch",
        name: str = "",
        rank: int | None = None,
        params: Mapping[str, Any] | None = None,
        tensorboard: bool | None = None,
    ) -> None:
        from repro.core import tensorboard as tb

        self.out = Path(out_dir)
        #: write metrics.csv's rows as TensorBoard events too (default: REPRO_TENSORBOARD=1)
        self.tensorboard = tb.enabled() if tensorboard is None else tensorboard
        self.total = int(total)
        # a checkpoint of other params (the job was replanned after an edit) is not resumed
        self.fingerprint = config_hash(dict(params)) if params is not None else None
        self.unit = unit
        self.name = name
        self.rank = dist_info()[0] if rank is None else rank
        self.history: list[dict[str, Any]] = []
        self.done = 0  # periods finished (and checkpointed)
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            self._remove_stale_temporaries()

    def _remove_stale_temporaries(self) -> None:
        """Delete half-written files of a killed run (``repro.core.atomic`` writes each file
        as ``.<name>.<random>.tmp`` and renames it; a SIGKILL or SLURM's cancel in between
        leaves the temporary behind). The files they would have replaced are intact."""
        for name in ("checkpoint.pt", "metrics.csv", "model.pt", "result.json"):
            for tmp in self.out.glob(f".{name}.*.tmp"):
                tmp.unlink(missing_ok=True)

    @property
    def ckpt_path(self) -> Path:
        return self.out / "checkpoint.pt"

    # -- resume ------------------------------------------------------------------------------
    def resume(self, restore: Callable[[dict[str, Any]], None], map_location: str = "cpu") -> int:
        """Load ``checkpoint.pt`` if present and hand its payload to ``restore``; returns the
        first period still to run (1 for a fresh run)."""
        if not self.ckpt_path.is_file():
            return 1
        state = load_checkpoint(self.ckpt_path, map_location=map_location)
        if "period" not in state or "payload" not in state:
            raise ReproError(f"{self.ckpt_path}: not a checkpoint of this trainer (delete it)")
        if state.get("fingerprint") != self.fingerprint:
            log.info(
                "%s: %s is from other parameters; training from the start", self.name,
                self.ckpt_path,
            )  # fmt: skip
            return 1
        restore(state["payload"])
        self.history = list(state.get("history", []))
        self.done = int(state["period"])
        log.info("%s: resumed from %s after %s %d", self.name, self.ckpt_path, self.unit, self.done)
        return self.done + 1

    # -- guard -------------------------------------------------------------------------------
    def check(
        self, losses: Mapping[str, Any], period: int, step: int | None = None
    ) -> dict[str, float]:
        """The step's losses as floats (one host sync for all of them); a NaN or infinite
        one stops the run with one line naming the period (and the step within it)."""
        import torch

        names = list(losses)
        values = (
            torch.stack([torch.as_tensor(losses[n]).detach().float().reshape(()) for n in names])
            .cpu()
            .tolist()
            if names
            else []
        )
        bad = [(n, v) for n, v in zip(names, values, strict=True) if not math.isfinite(v)]
        if bad:
            name, value = bad[0]
            kept = (
                f"the last good checkpoint is {self.ckpt_path} ({self.unit} {self.done})"
                if self.ckpt_path.is_file()
                else "no checkpoint was written yet"
            )
            where = f"{self.unit} {period}" + (f", step {step}" if step is not None else "")
            raise NonFiniteLoss(
                f"{self.name}: {name} became {value} at {where}; training stopped and {kept}"
            )
        return dict(zip(names, values, strict=True))

    # -- per period --------------------------------------------------------------------------
    def record(self, row: Mapping[str, Any]) -> None:
        """Append a metrics row, rewrite ``metrics.csv`` and print a progress line."""
        self.history.append(dict(row))
        if self.rank != 0:
            return
        write_text(self.out / "metrics.csv", to_csv(self.history))
        if self.tensorboard:
            from repro.core.tensorboard import write_events

            step = next((k for k in (self.unit, "epoch", "iteration") if k in row), "")
            write_events(self.out, self.history, step)
        shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
        log.info("%s: %s", self.name, json.dumps(shown))

    def save(self, period: int, payload: Mapping[str, Any]) -> None:
        """Checkpoint the state after ``period`` (atomic: a crash keeps the previous one)."""
        self.done = int(period)
        if self.rank != 0:
            return
        save_checkpoint(
            self.ckpt_path,
            {
                "period": self.done,
                "payload": dict(payload),
                "history": self.history,
                "fingerprint": self.fingerprint,
            },
        )

    # -- end ---------------------------------------------------------------------------------
    def finish(self, model: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, Any]:
        """Write ``model.pt`` and ``result.json`` (rank 0); returns the result."""
        result = dict(result)
        if self.rank == 0:
            save_checkpoint(self.out / "model.pt", dict(model))
            write_json(self.out / "result.json", result)
        return result
