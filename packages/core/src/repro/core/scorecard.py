"""The one scorecard writer: each paper table's cells with the reported number, ours and the
difference.

A *table* declares its cells (the rows a paper reports, identified by the table's key columns,
e.g. dataset, teacher, student, variant) and its metrics with the precision the paper prints.
Our results (one dict per run: key values and metric values) are matched to a cell when every
key is equal; several runs of a cell (seeds) give the mean, the sample standard deviation and
``n``. Reported rows (key values, metric values and their ``source``) are matched the same way.
A cell declared with ``comparable: false`` (ours measured on other data than the published
number) shows both numbers but no difference; its ``note`` should say why.
A cell we did not run keeps its ours-columns empty (``—`` in Markdown), and a reported number
is never shown without its source.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from repro.core import ReproError
from repro.core.atomic import write_text
from repro.core.tables import to_csv

EMPTY = "—"


@dataclass(frozen=True)
class Metric:
    """A reported quantity: its key in results, its column label and printed decimals.

    A ``text`` metric is qualitative (e.g. a claim that holds: "yes"/"no"): ours is the runs'
    common value ("mixed" if they differ) and the difference says whether it agrees."""

    name: str
    digits: int = 2
    label: str = ""
    text: bool = False

    @property
    def title(self) -> str:
        return self.label or self.name


@dataclass
class Table:
    """One paper table: key columns, metrics and the declared cells (dicts of key values;
    a cell may carry a ``note``). Reported rows are matched on ``match`` (default: all keys),
    e.g. a method and track when the keys also name our model. ``extras`` are columns of ours
    only (e.g. parameters, seconds). With ``include_reported``, reported rows that match no
    cell are listed too (ours empty), e.g. published methods we do not run."""

    title: str
    keys: Sequence[str]
    metrics: Sequence[Metric]
    cells: Sequence[Mapping[str, Any]] = field(default_factory=list)
    include_reported: bool = False
    match: Sequence[str] | None = None
    extras: Sequence[Metric] = ()
    size_label: str = "test images"
    counts: bool = True  # show n, the number of runs behind each cell

    @property
    def match_keys(self) -> Sequence[str]:
        return self.keys if self.match is None else self.match


def load_reported(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """A paper's published numbers: a YAML file ``{source: <default>, rows: [...]}`` whose
    rows hold key values, metric values and (unless the file's default applies) a ``source``.
    A row that ends up without a source is refused, naming the file and the row."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    if not isinstance(doc, Mapping) or not isinstance(doc.get("rows"), list):
        raise ReproError(f"{path}: expected a mapping with a 'rows' list")
    default = doc.get("source")
    rows = []
    for i, row in enumerate(doc["rows"]):
        row = {"source": default, **row}
        if not row.get("source"):
            raise ReproError(f"{path}: rows[{i}] has no source (every reported number needs one)")
        rows.append(row)
    return rows


def _matches(row: Mapping[str, Any], cell: Mapping[str, Any], keys: Sequence[str]) -> bool:
    return all(row.get(k) == cell.get(k) for k in keys)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _text_cells(
    name: str, runs: Sequence[Mapping[str, Any]], rep: Mapping[str, Any] | None
) -> dict[str, Any]:
    values = sorted({str(r[name]) for r in runs if r.get(name) is not None})
    ours = values[0] if len(values) == 1 else ("mixed" if values else None)
    published = None if rep is None or rep.get(name) is None else str(rep[name])
    agrees = None
    if ours is not None and published is not None:
        agrees = "agrees" if ours == published else "differs"
    return {
        f"{name}_reported": published,
        f"{name}_ours": ours,
        f"{name}_std": None,
        f"{name}_diff": agrees,
    }


def score_rows(
    table: Table, ours: Sequence[Mapping[str, Any]], reported: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One row per cell: keys, then per metric ``<m>_reported``, ``<m>_ours`` (mean over the
    matching runs), ``<m>_std`` (sample std, n > 1), ``<m>_diff`` (ours - reported); then
    ``n`` (runs), ``test_n`` (test-set size), ``source``, ``note`` and ``planned`` (false for a
    published row we do not run: listed by ``include_reported``, or a cell declared with
    ``planned: false``). A cell declared with ``comparable: false`` gets no difference."""
    match = table.match_keys
    cells = [dict(c) for c in table.cells]
    planned = len(cells)
    if table.include_reported:
        cells += [
            {k: rep.get(k) for k in table.keys}
            for rep in reported
            if not any(_matches(rep, c, match) for c in cells)
        ]
    rows = []
    for i, cell in enumerate(cells):
        runs = [r for r in ours if _matches(r, cell, table.keys)]
        rep = next((r for r in reported if _matches(r, cell, match)), None)
        row: dict[str, Any] = {k: cell.get(k) for k in table.keys}
        for metric in table.metrics:
            if metric.text:
                row.update(_text_cells(metric.name, runs, rep))
                if not cell.get("comparable", True):
                    row[f"{metric.name}_diff"] = None
                continue
            values = [v for r in runs if (v := _number(r.get(metric.name))) is not None]
            mean = statistics.fmean(values) if values else None
            published = _number(rep.get(metric.name)) if rep else None
            row[f"{metric.name}_reported"] = published
            row[f"{metric.name}_ours"] = mean
            row[f"{metric.name}_std"] = statistics.stdev(values) if len(values) > 1 else None
            row[f"{metric.name}_diff"] = (
                mean - published
                if mean is not None and published is not None and cell.get("comparable", True)
                else None
            )
        for extra in table.extras:
            values = [v for r in runs if (v := _number(r.get(extra.name))) is not None]
            row[extra.name] = statistics.fmean(values) if values else None
        row["n"] = len(runs) or None
        sizes = sorted({r["test_n"] for r in runs if r.get("test_n") is not None})
        row["test_n"] = sizes[0] if len(sizes) == 1 else (None if not sizes else "varies")
        row["source"] = rep.get("source") if rep else None
        notes = [cell.get("note")] + sorted({r.get("note") for r in runs if r.get("note")})
        row["note"] = "; ".join(n for n in notes if n) or None
        row["planned"] = i < planned and bool(cell.get("planned", True))
        rows.append(row)
    return rows


def _fmt(value: Any, digits: int, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return EMPTY
    if isinstance(value, float):
        return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")


def _layout(table: Table, rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, int, bool]]:
    """Shown columns: (row key, header, decimals, signed). Keys, then per metric reported /
    ours / ± std / difference, the extras, n, test-set size, source and note; columns that
    are empty in every row are left out (ours and, when anything is reported, reported stay)."""
    reported = any(r.get(f"{m.name}_reported") is not None for m in table.metrics for r in rows)
    # (column, header, decimals, signed, always shown)
    cols: list[tuple[str, str, int, bool, bool]] = [(k, k, 0, False, True) for k in table.keys]
    for m in table.metrics:
        cols += [
            (f"{m.name}_reported", f"{m.title} reported", m.digits, False, reported),
            (f"{m.name}_ours", f"{m.title} ours", m.digits, False, True),
            (f"{m.name}_std", "± std", m.digits, False, False),
            (f"{m.name}_diff", "difference", m.digits, True, False),
        ]
    cols += [(e.name, e.title, e.digits, False, False) for e in table.extras]
    cols += [
        *([("n", "n", 0, False, False)] if table.counts else []),
        ("test_n", table.size_label, 0, False, False),
        ("source", "source", 0, False, False),
        ("note", "note", 0, False, False),
    ]
    return [c[:4] for c in cols if c[4] or any(r.get(c[0]) is not None for r in rows)]


def _is_text(table: Table, column: str) -> bool:
    texts = {
        f"{m.name}_{part}" for m in table.metrics if m.text for part in ("reported", "ours", "diff")
    }
    return column in table.keys or column in ("source", "note") or column in texts


def to_markdown(table: Table, rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table at the paper's precision (see :func:`_layout` for the columns)."""
    cols = _layout(table, rows)
    lines = [
        "| " + " | ".join(c[1] for c in cols) + " |",
        "|" + "|".join("---" if _is_text(table, c[0]) else "---:" for c in cols) + "|",
    ]
    for row in rows:
        cells = [_fmt(row.get(name), digits, signed) for name, _, digits, signed in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_html(table: Table, rows: Sequence[Mapping[str, Any]]) -> str:
    """The same table as HTML (for the Snakemake report)."""
    from html import escape

    cols = _layout(table, rows)

    def cell(tag: str, text: str, name: str) -> str:
        align = "left" if _is_text(table, name) else "right"
        return f'<{tag} style="text-align:{align}">{escape(text)}</{tag}>'

    head = "".join(cell("th", c[1], c[0]) for c in cols)
    body = "".join(
        "<tr>"
        + "".join(cell("td", _fmt(r.get(n), d, s).replace("\\|", "|"), n) for n, _, d, s in cols)
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_HTML_STYLE = (
    "body{font-family:sans-serif;font-size:13px;margin:1em}"
    "table{border-collapse:collapse;margin-bottom:1.5em}"
    "th,td{border-bottom:1px solid #ddd;padding:3px 8px}th{background:#f3f3f3}"
)


def write_scorecard(
    tables: Sequence[Table],
    ours: Sequence[Mapping[str, Any]],
    reported: Sequence[Mapping[str, Any]],
    csv_path: str | os.PathLike[str],
    md_path: str | os.PathLike[str],
    title: str,
    notes: Sequence[str] = (),
    figures: Sequence[tuple[str, str]] = (),
    html_path: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """Write every table to one CSV (a ``table`` column first), one Markdown file (a section
    per table, the notes, then each figure as ``(path relative to the Markdown file,
    caption)``) and, if given, an HTML page of the tables and notes (the Snakemake report
    shows it); returns the CSV rows."""
    from html import escape

    all_rows: list[dict[str, Any]] = []
    parts = [f"# {title}\n"]
    html = [f"<h1>{escape(title)}</h1>"]
    for table in tables:
        rows = score_rows(table, ours, reported)
        all_rows += [{"table": table.title, **r} for r in rows]
        parts.append(f"## {table.title}\n\n" + to_markdown(table, rows))
        html.append(f"<h2>{escape(table.title)}</h2>" + to_html(table, rows))
    html.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    if notes:
        parts.append("\n".join(f"- {n}" for n in notes) + "\n")
    if figures:
        parts.append(
            "## Figures\n\n"
            + "\n\n".join(f"![{cap}]({path})\n\n{cap}" for path, cap in figures)
            + "\n"
        )
    write_text(csv_path, to_csv(all_rows))
    write_text(md_path, "\n".join(parts))
    if html_path is not None:
        write_text(
            html_path,
            f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{_HTML_STYLE}</style></head><body>{''.join(html)}</body></html>\n",
        )
    return all_rows
