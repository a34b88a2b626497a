"""The jobs' params dataclasses against the config schema (keys and defaults), and every job
the shipped configs plan parses into its dataclass."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import get_args, get_type_hints

import pytest
import yaml

from repro.burstsr import params as P
from repro.burstsr import plan
from repro.core import ReproError
from repro.core.params import keys, parse

REPO = Path(__file__).resolve().parents[3]
SCHEMA = yaml.safe_load(plan.SCHEMAS["burst_sr"].read_text())
PROPS = SCHEMA["properties"]
MODEL = PROPS["models"]["additionalProperties"]["properties"]


def _flat(cls) -> set[str]:
    return set(keys(cls))


@pytest.mark.parametrize(
    ("section", "cls"),
    [
        ("burst", P.BurstConfig),
        ("net", P.NetConfig),
        ("train", P.TrainConfig),
        ("eval", P.EvalConfig),
        ("val", P.ValConfig),
    ],
)
def test_a_subsection_and_its_dataclass_have_the_same_keys_and_defaults(section, cls):
    props = PROPS[section]["properties"]
    assert _flat(cls) == set(props)
    for f in dataclasses.fields(cls):
        default = f.default_factory() if callable(f.default_factory) else f.default
        assert default == props[f.name]["default"], f"{section}.{f.name}"


def test_a_model_entry_is_its_spec_and_the_summary_labels():
    assert _flat(P.ModelSpec) | set(plan.LABELS) == set(MODEL)
    assert not _flat(P.ModelSpec) & set(plan.LABELS)
    assert set(MODEL["kind"]["enum"]) == set(P.Kind.__args__)
    assert set(MODEL["align"]["enum"]) == set(P.Align.__args__)
    # a model's train overrides name the recipe's keys
    assert set(MODEL["train"]["propertyNames"]["enum"]) == _flat(P.TrainConfig)


def test_the_source_is_the_data_subsection_without_the_real_bursts():
    data = PROPS["data"]["properties"]
    assert _flat(P.SourceConfig) == set(data) - {"burstsr_root"}
    assert set(data["source"]["enum"]) == set(get_args(get_type_hints(P.SourceConfig)["source"]))
    assert P.SourceConfig().photos_dir == data["photos_dir"]["default"]


def test_pwcnet_and_lpips_keys_are_the_sections():
    for cls in (P.TrainParams, P.RealParams):
        assert {"pwcnet_weights", "pwcnet_bgr"} <= _flat(cls)
        assert {"pwcnet_weights", "pwcnet_bgr"} <= set(PROPS)
    assert "lpips_weights" in _flat(P.EvalParams) and "lpips_weights" in PROPS


def _validated(name: str) -> dict:
    """A shipped config, validated and with the schema's defaults, as common.smk has it."""
    from repro.core.config import load_schema, validate_config
    from repro.core.papers import registry, schema_sections

    config = yaml.safe_load((REPO / "config" / name).read_text())
    schema = load_schema(
        REPO / "workflow/schemas/config.schema.yaml",
        sections=schema_sections(registry()),
        papers=registry(),
    )
    return validate_config(config, schema, name)


@pytest.mark.parametrize("name", ["quick.yaml", "paper.yaml"])
def test_every_job_the_configs_plan_parses_into_its_dataclass(name):
    config = _validated(name)
    section = config["burst_sr"]
    jobs = [
        (P.ValParams, plan.val_params(config)),
        (P.SummaryParams, plan.summary_params(config, "r")),
    ]
    for model in plan.models(config, *plan.TRAINED):
        jobs.append((P.TrainParams, plan.train_params(config, model, 0)))
    for run in plan.eval_runs(config):
        jobs.append((P.EvalParams, plan.eval_params(config, *plan.run_model(run))))
    for model in plan.real_capable(config):
        jobs.append((P.RealParams, plan.real_params(config, model, None)))
    assert len(jobs) > 6
    for cls, job in jobs:
        parsed = parse(cls, job)
        assert parsed.threads == section["threads"] or cls is P.SummaryParams
        if cls is P.TrainParams:  # a model's overrides on top of the shared recipe
            assert dataclasses.asdict(parsed.train) == {
                **section["train"],
                **job["spec"].get("train", {}),
            }


def test_bad_params_name_the_key():
    with pytest.raises(
        ReproError, match=r"^--params.burst.crop: 20 is not a multiple of 2\*downsample=8"
    ):
        parse(P.ValParams, {"burst": {"crop": 20}}, "--params")
    with pytest.raises(ReproError, match=r"^--params.spec.kind: 'bicubix' is not one of"):
        parse(P.EvalParams, {"model": "m", "spec": {"kind": "bicubix"}}, "--params")
    with pytest.raises(ReproError, match=r"^--params.net: unknown key 'width'"):
        parse(
            P.TrainParams,
            {"model": "m", "spec": {"kind": "single"}, "seed": 0, "net": {"width": 3}},
        )
    with pytest.raises(ReproError, match=r"^--params.burst.rgb_order: 'rbg' is not one of"):
        parse(P.ValParams, {"burst": {"rgb_order": "rbg"}})


def test_a_burst_models_alignment_defaults_to_the_ground_truth():
    assert P.ModelSpec("burst").alignment == "gt"
    assert P.ModelSpec("burst", align="pwcnet").alignment == "pwcnet"
    assert P.ModelSpec("single").alignment is None
    assert P.BurstConfig(crop=32, border_crop=4).source_size == 40
