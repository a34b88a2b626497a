"""Helpers shared by every package's command-line entry point."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from repro.core import ReproError


def json_arg(text: str) -> Any:
    """argparse type: a JSON document given inline (how rules pass their config section)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc


def run(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Call ``main`` with INFO logging to stderr (progress lines in the job's log); turn a
    ReproError into one line on stderr and exit status 2."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        return int(main(argv) or 0)
    except ReproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
