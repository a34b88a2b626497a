"""Progress bars for long loops (tqdm), quiet when output is not a terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm bar unless stderr is not a TTY or ``REPRO_NO_PROGRESS`` is set.

    ``REPRO_PROGRESS=1`` forces the bar on (useful in Snakemake logs).
    """
    from tqdm.auto import tqdm

    forced = os.environ.get("REPRO_PROGRESS") == "1"
    disabled = bool(os.environ.get("REPRO_NO_PROGRESS")) or not (forced or sys.stderr.isatty())
    return tqdm(iterable, desc=desc, total=total, disable=disabled, leave=False, dynamic_ncols=True)
