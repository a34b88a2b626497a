"""Pre-flight: every problem that would stop a run's planned jobs, and the papers it blocks.

``workflow/rules/common.smk`` calls :func:`collect` before any job: a real run stops on every
blocking problem (one line each, naming the papers it blocks), and a dry run lists them as
warnings while the DAG is built and again in a recap after the job list (:func:`recap`), so
they do not scroll away. The datasets a run needs follow from its papers (each plan's
``datasets``); a dataset that only the top-level ``datasets:`` list names is prepared when it
can be and skipped with a warning when it cannot, never a reason to stop. Snakemake-free, so
it is unit-tested on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from repro.core.papers import Paper, Planned


@dataclass
class Problem:
    """One problem line and the papers it blocks (none: a dataset only ``datasets:`` lists)."""

    text: str
    papers: list[str] = field(default_factory=list)
    dataset: str | None = None  # the dataset it concerns, when it is a dataset's problem

    @property
    def blocking(self) -> bool:
        return bool(self.papers)

    def line(self) -> str:
        return f"{', '.join(self.papers)}: {self.text}" if self.papers else self.text


def needed_datasets(config: Mapping[str, Any], plans: Mapping[str, Paper]) -> dict[str, list[str]]:
    """Each dataset the chosen papers read -> the papers that read it."""
    needed: dict[str, list[str]] = {}
    for name, plan in plans.items():
        for dataset in sorted(plan.datasets(dict(config))):
            needed.setdefault(dataset, []).append(name)
    return needed


def collect(
    config: Mapping[str, Any],
    plans: Mapping[str, Paper],
    planned: Planned,
    check_dataset: Callable[[str], list[str]],
    planned_datasets: Iterable[str] | None = None,
) -> list[Problem]:
    """The problems of the planned jobs (``planned`` None: everything the config implies).

    ``check_dataset(name)`` lists what stops one dataset from being prepared;
    ``planned_datasets`` are the datasets whose preparation is planned (None: those the
    papers need and those ``datasets:`` lists). A dataset a planned job prepares blocks the
    run even when no paper needs it (the user asked for it); one only ``datasets:`` lists
    does not. Problems with the same line are merged, their papers joined.
    """
    needed = needed_datasets(config, plans)
    if planned_datasets is None:
        names, asked = set(needed) | set(config.get("datasets", [])), set()
    else:
        names = asked = set(planned_datasets)
    found: dict[str, Problem] = {}

    def add(lines: Iterable[str], papers: list[str], dataset: str | None = None) -> None:
        for text in lines:
            problem = found.setdefault(text, Problem(text, dataset=dataset))
            problem.papers += [p for p in papers if p not in problem.papers]

    for dataset in sorted(names):
        papers = needed.get(dataset) or ([f"data/{dataset}"] if dataset in asked else [])
        add(check_dataset(dataset), papers, dataset)
    for name, plan in plans.items():
        add(plan.preflight(dict(config), planned), [name])
    return list(found.values())


def skipped_datasets(problems: Iterable[Problem]) -> set[str]:
    """Datasets only ``datasets:`` lists that cannot be prepared (left out of the targets)."""
    return {p.dataset for p in problems if not p.blocking and p.dataset}


def recap(problems: list[Problem], dry_run: bool = True) -> str:
    """The problems again, grouped by the papers they block, for the end of a dry run."""
    blocking = [p for p in problems if p.blocking]
    skipped = [p for p in problems if not p.blocking]
    if not problems:
        return "pre-flight: no problems; a real run would start every planned job."
    head = "a real run would stop on" if dry_run else "this run stops on"
    lines = [f"pre-flight: {len(blocking)} problem(s) {head}, by the papers they block:"]
    groups: dict[str, list[str]] = {}
    for p in blocking:
        groups.setdefault(", ".join(p.papers), []).append(p.text)
    for papers, texts in groups.items():
        lines.append(f"  {papers} ({len(texts)}):")
        lines += [f"    {t}" for t in texts]
    if skipped:
        lines.append(
            f"  skipped, not needed by the chosen papers ({len(skipped)}; "
            "only `datasets:` lists them):"
        )
        lines += [f"    {p.text}" for p in skipped]
    return "\n".join(lines)
