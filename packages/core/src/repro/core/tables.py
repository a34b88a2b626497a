"""Result tables written as CSV and Markdown (atomically)."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from repro.core.atomic import write_text

EMPTY = ""  # a cell we did not (or cannot) compute stays visibly empty


def _fmt(value: Any, digits: int) -> str:
    if value is None:
        return EMPTY
    if isinstance(value, float):
        return EMPTY if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None) -> list[str]:
    if columns is not None:
        return list(columns)
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows as CSV text; missing cells are empty, floats keep full precision."""
    cols = _columns(rows, columns)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for row in rows:
        writer.writerow(
            [
                _fmt(row.get(c), 6)
                if isinstance(row.get(c), float)
                else (EMPTY if row.get(c) is None else row.get(c))
                for c in cols
            ]
        )
    return buf.getvalue()


def to_markdown(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, digits: int = 2
) -> str:
    """Rows as a GitHub Markdown table; numbers right-aligned, missing cells shown as ``—``."""
    cols = _columns(rows, columns)
    numeric = {
        c: all(isinstance(r.get(c), int | float) or r.get(c) is None for r in rows) for c in cols
    }
    lines = [
        "| " + " | ".join(cols) + " |",
        "|" + "|".join("---:" if numeric[c] else "---" for c in cols) + "|",
    ]
    for row in rows:
        cells = [_fmt(row.get(c), digits) or "—" for c in cols]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_table(
    rows: Sequence[Mapping[str, Any]],
    csv_path: str | os.PathLike[str],
    md_path: str | os.PathLike[str] | None = None,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    notes: Sequence[str] = (),
) -> None:
    """Write ``rows`` to ``csv_path`` and, if given, a Markdown version with title and notes."""
    write_text(csv_path, to_csv(rows, columns))
    if md_path is not None:
        parts = [f"# {title}\n"] if title else []
        parts.append(to_markdown(rows, columns))
        if notes:
            parts.append("\n" + "\n".join(f"- {n}" for n in notes) + "\n")
        write_text(md_path, "\n".join(parts))
