"""The workflow side of the datasets (``workflow/rules/data.smk``, ``common.smk``): what the
rules read from the registry, as plain strings and lists. Light imports only: the Snakefile
imports it at start-up.

- :func:`with_datasets`: the config schema's dataset names and ``data`` sections;
- :func:`constraint`: a data rule's wildcard constraint (the datasets that name the rule);
- :func:`section`: one job's params, its dataset's config section (a long-tailed variant
  reads its base's; the imbalance factor is in the name the job gets);
- :func:`planned_datasets`: the datasets the planned data jobs prepare (pre-flight check).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from repro.core import ReproError
from repro.data import registry

#: The rule that fetches every archive (``data/archives/<name>.archive``).
FETCH_RULE = "fetch_archive"


def with_datasets(schema: dict[str, Any]) -> dict[str, Any]:
    """The loaded config schema (``repro.core.config.load_schema``) with the registered
    datasets: the ``datasets`` pattern, and a ``data.<name>`` section for each, its schema the
    ``$defs`` entry of ``data.schema.yaml`` the dataset names (no other section allowed)."""
    props = schema["properties"]
    data = props["data"]
    defs = data.get("$defs", {})
    sections = {}
    for name, dataset in registry.registry().items():
        if dataset.schema not in defs:
            raise ReproError(f"dataset {name}: no $defs.{dataset.schema} in data.schema.yaml")
        sections[name] = copy.deepcopy(defs[dataset.schema])
    data["properties"] = sections
    data["additionalProperties"] = False
    props["datasets"]["items"]["pattern"] = f"^(?:{registry.pattern()})$"
    return schema


def constraint(rule: str) -> str:
    """The wildcard constraint of the data rule ``rule``: the datasets that name it (the
    fetch rule: every archive)."""
    if rule == FETCH_RULE:  # base names only: a long-tailed variant reads its base's archive
        return registry.pattern(kind="archive", long_tailed=False)
    return registry.pattern(rule=rule)


def section(data_cfg: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The config section a job of dataset ``name`` gets (its base's for ``<base>-lt<F>``)."""
    dataset, _ = registry.lookup(name)
    return dict(data_cfg.get(dataset.name) or {})


def planned_datasets(planned: list[tuple[str, dict[str, str]]]) -> set[str]:
    """The datasets that planned data jobs fetch or prepare (each rule's ``name`` wildcard)."""
    rules = {FETCH_RULE, *(d.rule for d in registry.registry().values())}
    return {wc["name"] for rule, wc in planned if rule in rules}


def array_files(name: str) -> list[str]:
    """The files of a prepared array dataset but ``meta.json`` (:mod:`repro.data.arrays`)."""
    return [f"data/{name}/{s}_{k}.npy" for s in ("train", "test") for k in ("images", "labels")]
