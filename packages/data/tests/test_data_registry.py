"""The dataset registry (repro.data.registry): every dataset is registered once with the
parts of the contract, and the config schema, the CLI and data.smk's rules derive from it."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

from repro.core import ReproError, papers
from repro.core import params as core_params
from repro.core.config import load_schema, validate_config
from repro.data import plan, registry
from repro.data.cli import main

ROOT = Path(__file__).resolve().parents[3]
#: Every dataset the workflow prepares, and how it is obtained (written out, not derived).
EXPECTED = {
    "cifar100": ("archive", True),
    "tinyimagenet": ("archive", False),
    "zurich": ("archive", False),
    "digits": ("generated", True),
    "photos": ("generated", False),
    "imagenet": ("index", False),
    "cub200": ("index", False),
    "mit67": ("index", False),
    "stanford40": ("index", False),
    "dogs": ("index", False),
}


def config_schema():
    """The config schema as common.smk, `repro-core provenance` and `check-config` build it
    (the entry point repro.schema:data applies plan.with_datasets)."""
    return papers.config_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")


def minimal_config(**over):
    return {"run": "t", "seed": 0, "papers": [], "datasets": [], "data": {}, **over}


def test_the_registry_holds_every_dataset_with_its_kind():
    found = {n: (d.kind, d.long_tailed) for n, d in registry.registry().items()}
    assert found == EXPECTED


def test_the_registry_lists_every_dataset_the_schema_allows():
    schema = config_schema()
    assert set(schema["properties"]["data"]["properties"]) == set(EXPECTED)
    allowed = re.compile(schema["properties"]["datasets"]["items"]["pattern"])
    for name, (_, long_tailed) in EXPECTED.items():
        assert allowed.match(name)
        assert bool(allowed.match(f"{name}-lt10")) == long_tailed
    for name in ("cifar10", "digits-lt", "photos-lt10", "cub200x", "lt10"):
        assert not allowed.match(name)
    # and the configs' datasets are registered names
    for config in ("quick", "paper"):
        import yaml

        cfg = yaml.safe_load((ROOT / "config" / f"{config}.yaml").read_text())
        for name in cfg["datasets"]:
            registry.lookup(name)
        assert set(cfg["data"]) <= set(EXPECTED)


def _schema_keys(node, defs):
    """The key tree of a section's schema (nested objects, $defs references resolved)."""
    ref = node.get("$ref", "")
    if ref.startswith("#/$defs/"):
        node = defs[ref.removeprefix("#/$defs/")]
    if "properties" not in node:
        return None
    return {k: _schema_keys(v, defs) for k, v in node["properties"].items()}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_params_dataclass_has_the_keys_of_its_section_schema(name):
    data = config_schema()["properties"]["data"]
    dataset = registry.registry()[name]
    schema_keys = _schema_keys(data["properties"][name], data["$defs"])
    assert core_params.keys(dataset.params) == schema_keys


def test_the_schema_rejects_an_unknown_data_section_and_fills_defaults():
    with pytest.raises(ReproError, match=r"^c: unknown key 'data.cifar10' \(allowed: cifar100, "):
        validate_config(minimal_config(data={"cifar10": {}}), config_schema(), "c")
    with pytest.raises(ReproError, match=r"^c: datasets.0: 'photos-lt10' does not match"):
        validate_config(minimal_config(datasets=["photos-lt10"]), config_schema(), "c")
    cfg = validate_config(minimal_config(datasets=["cifar100-lt10"]), config_schema(), "c")
    assert cfg["data"]["digits"] == {"test_fraction": 0.25, "seed": 0}
    assert cfg["data"]["zurich"]["download"] is True and "cub200" not in cfg["data"]


def _rules(smk: str) -> dict[str, str]:
    blocks = re.split(r"^rule (\w+):\n", smk, flags=re.M)[1:]
    return dict(zip(blocks[::2], blocks[1::2], strict=True))


def test_every_data_rule_takes_its_constraint_from_the_registry():
    rules = _rules((ROOT / "workflow" / "rules" / "data.smk").read_text())
    named = {d.rule for d in registry.registry().values()} | {plan.FETCH_RULE}
    assert set(rules) == named
    for rule, body in rules.items():
        assert f'name=dataplan.constraint("{rule}")' in body, rule
        assert "cfg=data_params" in body and "--params {params.cfg:q}" in body, rule


@pytest.mark.parametrize(
    ("rule", "matches", "rejects"),
    [
        ("prepare_digits", ["digits", "digits-lt10", "digits-lt100"], ["digits-lt", "digitsx"]),
        ("prepare_cifar100", ["cifar100", "cifar100-lt50"], ["cifar10", "cifar100-ltx"]),
        ("index_fgvr", ["cub200", "mit67", "stanford40", "dogs"], ["imagenet", "cub200-lt10"]),
        ("fetch_archive", ["cifar100", "tinyimagenet", "zurich"], ["digits", "cifar100-lt10"]),
        ("index_imagenet", ["imagenet"], ["imagenet-lt10", "cub200"]),
    ],
)
def test_a_rule_constraint_matches_exactly_its_datasets(rule, matches, rejects):
    constraint = plan.constraint(rule)
    assert all(re.fullmatch(constraint, n) for n in matches)
    assert not any(re.fullmatch(constraint, n) for n in rejects)


def test_a_data_job_gets_its_datasets_section_only():
    data = {"cifar100": {"lt_seed": 3}, "digits": {"seed": 1}}
    assert plan.section(data, "cifar100-lt10") == {"lt_seed": 3}
    assert plan.section(data, "digits") == {"seed": 1}
    assert plan.section(data, "zurich") == {}


def test_planned_datasets_are_those_of_planned_data_jobs():
    planned = [
        ("prepare_cifar100", {"name": "cifar100-lt10"}),
        ("fetch_archive", {"name": "zurich"}),
        ("index_fgvr", {"name": "dogs"}),
        ("train_vanilla", {"name": "mit67", "dataset": "cub200"}),
    ]
    assert plan.planned_datasets(planned) == {"cifar100-lt10", "zurich", "dogs"}


@pytest.mark.parametrize("name", ["cifar10", "tinyimagenet-lt10"])
def test_an_unknown_dataset_is_one_line_listing_the_valid_ones(name, tmp_path, capsys):
    with pytest.raises(ReproError) as err:
        registry.lookup(name)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"unknown dataset '{name}' (valid: ")
    assert all(n in message for n in EXPECTED)
    assert message.endswith("; long-tailed <name>-lt<F> of: cifar100, digits)")
    for command in ("prepare", "fetch"):
        assert main([command, name, "--out", str(tmp_path / "x")]) == 2
        assert capsys.readouterr().err.splitlines() == [f"error: {message}"]
    assert not (tmp_path / "x").exists()
    # the start-up check lists it as a problem instead of stopping at it
    assert registry.check({}, [name, "digits"], tmp_path) == [message]


def test_an_imbalance_factor_below_one_is_refused():
    with pytest.raises(ReproError, match=r"^digits-lt0: the imbalance factor must be at least 1$"):
        registry.lookup("digits-lt0")


def test_list_prints_every_dataset_with_its_kind_and_rule(capsys):
    assert main(["list"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert {r[0].removesuffix("[-lt<F>]"): r[1] for r in rows} == {
        n: kind for n, (kind, _) in EXPECTED.items()
    }
    assert ["cifar100[-lt<F>]", "archive", "prepare_cifar100"] in rows


def _entry_point(name, value):
    return types.SimpleNamespace(name=name, value="tests:fake", load=lambda: value)


def test_a_dataset_lacking_a_part_or_registered_twice_is_named(monkeypatch):
    digits = registry.registry()["digits"]
    half = types.SimpleNamespace(name="half", kind="generated")
    monkeypatch.setattr(registry, "entry_points", lambda group: [_entry_point("x", [half])])
    with pytest.raises(ReproError, match=r"repro.datasets:x \(tests:fake\): .* lacks params"):
        registry.registry.__wrapped__()
    twice = [_entry_point("a", [digits]), _entry_point("b", (digits,))]
    monkeypatch.setattr(registry, "entry_points", lambda group: twice)
    with pytest.raises(ReproError, match=r"repro.datasets:b .*'digits' is registered twice"):
        registry.registry.__wrapped__()


def test_a_dataset_whose_schema_entry_is_missing_is_named():
    schema = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")
    del schema["properties"]["data"]["$defs"]["folder"]
    with pytest.raises(ReproError, match=r"^dataset cub200: no \$defs.folder in data.schema.yaml"):
        plan.with_datasets(schema)
