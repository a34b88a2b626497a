"""TensorBoard event files of a training run, written from its ``metrics.csv`` rows.

With ``logging.tensorboard: true`` (the workflow passes it to every job as the environment
variable ``REPRO_TENSORBOARD=1``), :class:`repro.core.training.TrainLoop` rewrites
``<run>/tensorboard/`` after each recorded period, so the events always equal
``metrics.csv`` (also after a resume); ``repro-core tensorboard DIR`` writes them for runs
trained without it. Start TensorBoard with ``uv run tensorboard --logdir results/<run>``.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: The environment variable that turns event files on (set by workflow/rules/common.smk).
ENV = "REPRO_TENSORBOARD"
FOLDER = "tensorboard"


def enabled() -> bool:
    return os.environ.get(ENV) == "1"


def configure(on: bool) -> None:
    """Turn event files on or off for this process and the jobs it starts (the workflow
    calls it with ``logging.tensorboard``)."""
    os.environ[ENV] = "1" if on else "0"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def write_events(
    run_dir: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]], step: str
) -> Path:
    """Write every numeric column of ``rows`` as scalars (tag = column, step = the ``step``
    column, else the row's position from 1) into a new event file in ``run_dir/tensorboard``,
    then remove older event files there: a crash in between leaves the old file."""
    from torch.utils.tensorboard import SummaryWriter

    folder = Path(run_dir) / FOLDER
    old = sorted(folder.glob("events.out.tfevents.*"))
    writer = SummaryWriter(log_dir=str(folder), filename_suffix=f".{len(old)}")
    for i, row in enumerate(rows, 1):
        at = _number(row.get(step))
        at = int(at) if at is not None else i
        for key, value in row.items():
            number = _number(value)
            if key != step and number is not None:
                writer.add_scalar(key, number, global_step=at)
    writer.close()
    (new,) = set(folder.glob("events.out.tfevents.*")) - set(old)  # the file just written
    for path in old:
        path.unlink(missing_ok=True)
    return new


def export(
    results: str | os.PathLike[str], step_keys: Sequence[str] = ("epoch", "period", "iteration")
) -> list[Path]:
    """Event files for every ``metrics.csv`` under ``results`` (runs trained without them)."""
    written = []
    for metrics in sorted(Path(results).rglob("metrics.csv")):
        with open(metrics, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        step = next((k for k in step_keys if rows and k in rows[0]), "")
        written.append(write_events(metrics.parent, rows, step))
    return written
