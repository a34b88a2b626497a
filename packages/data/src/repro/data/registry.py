"""The one registry of datasets: ``repro-data``, the start-up check, the config schema's
dataset names and ``data.smk``'s wildcard constraints all read it.

Each module of a dataset family lists its datasets (:class:`repro.data.dataset.Dataset`) in
``DATASETS`` and is registered under the entry-point group ``repro.datasets`` in its
package's ``pyproject.toml``::

    [project.entry-points."repro.datasets"]
    cifar = "repro.data.cifar"

A long-tailed dataset's name carries its imbalance factor (``cifar100-lt10``: the train split
of ``cifar100`` long-tailed with factor 10) and reads its base's config section.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from repro.core import ReproError, params
from repro.data.dataset import Dataset

GROUP = "repro.datasets"
_PARTS = ("name", "kind", "params", "schema", "rule", "long_tailed", "prepare", "check", "fetch")
_LT = re.compile(r"^(?P<base>.+)-lt(?P<factor>\d+)$")


@cache
def registry() -> dict[str, Dataset]:
    """Every registered dataset by name (sorted); a dataset lacking a part of the contract,
    or a name registered twice, is an error naming the entry point."""
    found: dict[str, Dataset] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        module = ep.load()
        for dataset in getattr(module, "DATASETS", module):
            where = f"entry point {GROUP}:{ep.name} ({ep.value})"
            missing = [part for part in _PARTS if not hasattr(dataset, part)]
            if missing:
                raise ReproError(f"{where}: {dataset!r} lacks {missing[0]}")
            if dataset.name in found:
                raise ReproError(f"{where}: '{dataset.name}' is registered twice")
            found[dataset.name] = dataset
    return dict(sorted(found.items()))


def valid_names() -> str:
    """The valid dataset names, for messages."""
    datasets = registry().values()
    lt = ", ".join(d.name for d in datasets if d.long_tailed)
    return f"{', '.join(d.name for d in datasets)}; long-tailed <name>-lt<F> of: {lt}"


def lookup(name: str) -> tuple[Dataset, float | None]:
    """The dataset ``name`` names and its imbalance factor (None unless ``<base>-lt<F>``);
    an unknown name is one line listing the valid ones."""
    datasets = registry()
    match = _LT.match(name)
    base, factor = (match["base"], float(match["factor"])) if match else (name, None)
    dataset = datasets.get(base)
    if dataset is None or (factor is not None and not dataset.long_tailed):
        raise ReproError(f"unknown dataset '{name}' (valid: {valid_names()})")
    if factor is not None and factor < 1:
        raise ReproError(f"{name}: the imbalance factor must be at least 1")
    return dataset, factor


def names(kind: str | None = None, rule: str | None = None) -> list[str]:
    """The registered names, optionally of one kind or one rule."""
    return [n for n, d in registry().items() if kind in (None, d.kind) and rule in (None, d.rule)]


def pattern(kind: str | None = None, rule: str | None = None, long_tailed: bool = True) -> str:
    """A regular expression matching exactly the dataset names of ``kind`` / ``rule`` (and,
    with ``long_tailed``, the long-tailed variants where a dataset has them); unanchored,
    for a wildcard constraint."""
    chosen = [registry()[n] for n in names(kind, rule)]
    if not chosen:
        raise ReproError(f"no dataset is registered for kind={kind} rule={rule}")
    lt = r"(?:-lt\d+)?" if long_tailed else ""
    return "|".join(re.escape(d.name) + (lt if d.long_tailed else "") for d in chosen)


def section_params(dataset: Dataset, section: Mapping[str, Any] | None) -> Any:
    """``data.<name>`` as the dataset's params dataclass (one line per bad key or type)."""
    return params.parse(dataset.params, section or {}, f"data.{dataset.name}")


def fetch(name: str, out: Path, section: Mapping[str, Any] | None) -> None:
    """Place ``name``'s verified official archive at ``out`` (archives only)."""
    dataset, factor = lookup(name)
    if dataset.kind != "archive" or factor is not None:
        archives = ", ".join(names(kind="archive"))
        raise ReproError(f"{name}: not fetched, only archives are ({archives})")
    dataset.fetch(section_params(dataset, section), out)


def prepare(
    name: str, out: Path, section: Mapping[str, Any] | None, archive: Path | None = None
) -> Any:
    """Prepare dataset ``name`` (a long-tailed one from its base's section) into ``out``."""
    dataset, factor = lookup(name)
    if archive is not None and dataset.kind != "archive":
        raise ReproError(f"{name}: takes no --archive ({dataset.kind} dataset)")
    return dataset.prepare(section_params(dataset, section), out, archive, factor)


def check(data_cfg: Mapping[str, Any], datasets: Iterable[str], data_root: Path) -> list[str]:
    """Every problem that would stop the given datasets from being prepared, one line each
    naming the config key and the value that was set (empty when fine). Datasets already
    prepared under ``data_root`` are skipped; long-tailed variants share their base's check."""
    groups: dict[str, list[str]] = {}
    problems = []
    for name in datasets:
        try:
            groups.setdefault(lookup(name)[0].name, []).append(name)
        except ReproError as err:
            problems.append(str(err))
    for base, group in groups.items():
        if all((data_root / n / "meta.json").is_file() for n in group):
            continue
        dataset = registry()[base]
        problems += dataset.check(section_params(dataset, data_cfg.get(base)), data_root)
    return problems
