"""The paper contract, and the one registry of papers the workflow reads.

Each paper registers its plan under the entry-point group ``repro.papers`` in its package's
``pyproject.toml`` (``<paper> = "repro.<pkg>.<module>"``, a module or an object). The plan is
torch-free and provides what :class:`Paper` lists; ``workflow/rules/common.smk`` derives from
the registry the implemented papers (the config schema's ``papers`` names and the sections'
schemas), the default targets, the datasets a run prepares and the pre-flight checks. A rule
file holds only the wiring of its paper's jobs.

A paper's own files ship inside the package that registers it (``repro.<pkg>``, package
data under ``src/repro/<pkg>/``): its sections' schemas ``schemas/<section>.schema.yaml``
(:func:`schema_file`), its published numbers ``reported/<paper>.yaml`` (:func:`reported_file`)
and its Snakemake report captions ``captions/<name>.rst`` (:func:`caption`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from repro.core import ReproError

GROUP = "repro.papers"

#: (rule name, wildcards) of each job a Snakemake invocation will run; None when unknown
#: (a check then treats everything the config implies as planned).
Planned = list[tuple[str, dict[str, str]]] | None


@runtime_checkable
class Paper(Protocol):
    """What every paper's plan provides (module-level names, or attributes of an object)."""

    #: Config sections this paper reads -> their schema files (package data: the paper's own
    #: sections' in its package, :func:`schema_file`; a shared section's in its owner's).
    SCHEMAS: Mapping[str, str | os.PathLike[str]]

    def check(self, config: dict[str, Any]) -> list[str]:
        """Problems in the config itself (one line each, naming the key); a run stops on any."""
        ...

    def datasets(self, config: dict[str, Any]) -> set[str]:
        """The prepared datasets (``data/<name>/``) this paper's jobs read."""
        ...

    def preflight(self, config: dict[str, Any], planned: Planned) -> list[str]:
        """Problems the planned jobs would hit (a user's file missing, a key unset), one line
        each naming the key and the path; only for jobs in ``planned``."""
        ...

    def targets(self, config: dict[str, Any], results: str) -> list[str]:
        """The paper's final outputs (scorecards, figures) under ``results``."""
        ...

    def resources(self, config: dict[str, Any], step: str) -> dict[str, Any]:
        """``threads``, ``mem_mb``, ``runtime`` (minutes) and ``gpu`` of one of its steps."""
        ...

    # Optional: check_target(config, results, target) -> str | None: for a target path under
    # the paper's results that names something the config does not have, one line listing
    # the valid names (see target_problems).


@cache
def _entry_points() -> dict[str, EntryPoint]:
    """The papers' entry points, by name (sorted); read once per process."""
    return {ep.name: ep for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name)}


@cache
def registry() -> dict[str, Paper]:
    """Every registered paper, by name (sorted); a plan missing a part of the contract is an
    error naming the entry point and the part."""
    papers: dict[str, Paper] = {}
    for ep in _entry_points().values():
        plan = ep.load()
        missing = [
            name
            for name in ("SCHEMAS", "check", "datasets", "preflight", "targets", "resources")
            if not hasattr(plan, name)
        ]
        if missing:
            raise ReproError(f"entry point {GROUP}:{ep.name} ({ep.value}) lacks {missing[0]}")
        papers[ep.name] = plan
    return papers


def target_problems(
    papers: Mapping[str, Paper], config: dict[str, Any], results: str, targets: list[str]
) -> list[str]:
    """A line for each command-line target that names something the config does not have
    (a misspelt model, variant, dataset, recipe or seed), listing the valid names: from the
    plans' optional ``check_target(config, results, target) -> str | None``."""
    problems = []
    for target in targets:
        for plan in papers.values():
            check = getattr(plan, "check_target", None)
            problem = check(config, results, target) if check else None
            if problem:
                problems.append(f"{target}: {problem}")
                break
    return problems


def planned_rules(planned: Planned, *rules: str) -> bool:
    """Whether any job of ``rules`` is planned (True when nothing is known)."""
    return planned is None or any(rule in rules for rule, _ in planned)


def schema_sections(papers: Mapping[str, Paper]) -> dict[str, str | os.PathLike[str]]:
    """Config section -> schema file, over all registered papers (shared sections once)."""
    sections: dict[str, str | os.PathLike[str]] = {}
    for name, plan in papers.items():
        for section, schema in plan.SCHEMAS.items():
            if sections.setdefault(section, schema) != schema:
                raise ReproError(
                    f"paper {name}: section {section} has schema {schema}, "
                    f"another paper gives {sections[section]}"
                )
    return sections


def package_of(paper: str) -> str:
    """The package (``repro.<pkg>``) that registers ``paper``: where its files live."""
    eps = _entry_points()
    if paper not in eps:
        raise ReproError(f"no paper '{paper}' registered (registered: {', '.join(sorted(eps))})")
    return ".".join(eps[paper].module.split(".")[:2])


def package_file(package: str, name: str) -> Path:
    """The absolute path of ``name`` (``/``-separated) shipped inside the installed package
    ``package`` (package data; an editable install's is the checkout's file); a missing file
    is a one-line error naming both."""
    from importlib.resources import files

    try:
        root = files(package)
    except ModuleNotFoundError:
        raise ReproError(f"{name}: no installed package {package}") from None
    path = Path(str(root.joinpath(*name.split("/"))))
    if not path.is_file():
        raise ReproError(f"package {package} ships no {name} (no file {path})")
    return path


def schema_file(package: str, section: str) -> Path:
    """The schema of config section ``section``: ``schemas/<section>.schema.yaml`` of
    ``package`` (its owner's: a plan's ``SCHEMAS`` names its files with this)."""
    return package_file(package, f"schemas/{section}.schema.yaml")


def reported_file(paper: str) -> Path:
    """The published numbers of ``paper`` (each with its source), read by its scorecard job:
    ``reported/<paper>.yaml`` of the package that registers it."""
    return package_file(package_of(paper), f"reported/{paper}.yaml")


def caption(owner: str, name: str) -> str:
    """The Snakemake report caption ``captions/<name>`` (an .rst file) of ``owner``: a
    registered paper's name (its package's file) or a package (``repro.<pkg>``); an absolute
    path, for ``report(..., caption=...)`` in a rule file."""
    package = owner if "." in owner else package_of(owner)
    return str(package_file(package, f"captions/{name}"))


#: Functions ``schema -> schema`` that complete the config schema from another registry
#: (``repro.data``'s datasets: the ``datasets`` names and ``data`` sections), applied by name.
SCHEMA_GROUP = "repro.schema"


def config_schema(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The workflow's config schema (``workflow/schemas/config.schema.yaml``, the shared
    sections') with the registered papers' names and their sections' schemas (package data,
    ``SCHEMAS``) added (``load_schema``), then
    completed by every function of the entry-point group ``repro.schema``."""
    from repro.core.config import load_schema

    papers = registry()
    schema = load_schema(path, sections=schema_sections(papers), papers=papers)
    for ep in sorted(entry_points(group=SCHEMA_GROUP), key=lambda e: e.name):
        schema = ep.load()(schema)
    return schema
