"""The lines the workflow prints for its user at the end of a run (Snakemake-free)."""

from __future__ import annotations

import shlex
from pathlib import Path

#: The config Snakemake loads when no --configfile is given (Snakefile).
DEFAULT_CONFIG = "config/quick.yaml"


def finished(results: str | Path, configfiles: list[str]) -> str:
    """One line naming the run's scorecards and the command that builds the HTML report
    (with the run's --configfile, so the report is of this run)."""
    results = Path(results)
    papers = sorted(p.parent.name for p in results.glob("*/summary.md"))
    if len(papers) > 1:
        where = f"{results}/{{{','.join(papers)}}}/summary.md"
    elif papers:
        where = f"{results}/{papers[0]}/summary.md"
    else:
        where = f"none yet under {results}/"
    command = ["uv", "run", "snakemake", "--report", "report.html"]
    if configfiles and configfiles != [DEFAULT_CONFIG]:
        command += ["--configfile", *configfiles]
    return f"repro: finished. Scorecards: {where}; the HTML report: {shlex.join(command)}"


def last_line(path: Path) -> str:
    """The last non-empty line of a log (a progress bar's last redraw after a carriage
    return counts as a line), read from the file's end only."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        fh.seek(max(0, fh.tell() - 4096))
        tail = fh.read().decode("utf-8", "replace")
    lines = [s.strip() for s in tail.replace("\r", "\n").split("\n")]
    return next((s for s in reversed(lines) if s), "")


def status(logs: str | Path, since_minutes: float, now: float | None = None) -> list[str]:
    """One line per job log written in the last ``since_minutes`` (the jobs running now, or
    just finished), newest first: its age, its path and its last line."""
    import time

    now = time.time() if now is None else now
    ages = [(now - p.stat().st_mtime, p) for p in Path(logs).rglob("*.log")]
    recent = sorted((age, p) for age, p in ages if age <= since_minutes * 60)
    return [f"{age / 60:5.1f} min ago  {p}  {last_line(p)}" for age, p in recent]
