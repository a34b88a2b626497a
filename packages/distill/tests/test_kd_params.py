"""The jobs' params as dataclasses: the schemas hold the same keys, every job the plan makes for
the quick and paper configs is read without loss, and a wrong key or type is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from repro.core import ReproError
from repro.core.params import keys, parse, to_dict
from repro.distill import cli, plan
from repro.distill.params import (
    TESTING_AIDS,
    GroupParams,
    Leaderboard,
    PaperTable,
    PretrainedParams,
    ReportParams,
    RunParams,
    TrainConfig,
)

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "config" / "paper.yaml").is_file())
SCHEMAS = plan.POOL_SCHEMA.parent  # repro.distill's schemas/
KD_PAPERS = ["energy-kd", "cskd", "r2kd"]


def _schema(name: str) -> dict:
    return yaml.safe_load((SCHEMAS / name).read_text())


def test_the_kd_schemas_list_exactly_the_keys_of_the_jobs_dataclasses():
    kd = _schema("kd.schema.yaml")
    # a recipe is a TrainConfig, less the testing aids and the seed (each cell's, from the
    # plan), plus the plan's own keys (extends, student_lr)
    recipe = set(kd["$defs"]["recipe"]["properties"])
    settings = set(keys(TrainConfig)) - set(TESTING_AIDS) - {"seed"}
    assert recipe == settings | set(plan.RECIPE_META)
    # a variant gives a run's method and args (and per-recipe TrainConfig overrides)
    variant = kd["properties"]["variants"]["additionalProperties"]["properties"]
    assert set(variant) == {"method", "args", "train"}
    assert {"method", "args"} <= set(keys(RunParams)) and keys(RunParams)["train"] == keys(
        TrainConfig
    )
    # the tables of a paper's section and the leaderboard's section, less what the plan adds
    table = _schema("kd_paper.schema.yaml")["properties"]["tables"]["items"]["properties"]
    assert set(table) == set(keys(PaperTable)) - {"run_recipes"}
    assert keys(ReportParams)["tables"] == keys(PaperTable)
    board = _schema("kd_leaderboard.schema.yaml")["properties"]
    assert set(board) == set(keys(Leaderboard)) - {"run_recipes"}


def _kept(given, built, where: str = "") -> None:
    """Every key and value of ``given`` is in ``built`` (to_dict of the parsed params)."""
    if isinstance(given, dict) and not where.endswith("args"):
        for key, value in given.items():
            _kept(value, built[key], f"{where}.{key}")
    elif isinstance(given, list) and given and isinstance(given[0], dict):
        for k, (a, b) in enumerate(zip(given, built, strict=True)):
            _kept(a, b, f"{where}[{k}]")
    else:
        assert (
            built == given
            and type(built) is type(given)
            or (isinstance(given, int) and isinstance(built, float) and built == given)
        ), where


@pytest.mark.parametrize("name", ["quick", "paper"])
def test_every_job_the_plan_makes_reads_into_its_dataclass_without_loss(name):
    config = yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())
    papers = [p for p in KD_PAPERS if p in config["papers"]]
    pool = config["kd"]
    cells = plan.pool_cells(config, papers)
    jobs: list[tuple[type, dict]] = [(RunParams, plan.kd_params(pool, c)) for c in cells]
    for paper in papers:
        for dataset, model, seed in plan.paper_vanilla(config, paper):
            if seed is None:
                jobs.append((PretrainedParams, plan.pretrained_eval_params(pool, dataset, model)))
            else:
                jobs.append((RunParams, plan.vanilla_params(pool, dataset, model, seed)))
        jobs.append((ReportParams, plan.report_params(config, paper)))
    groups = plan.lockstep_groups(pool, cells)
    for group_cells in groups.values():
        group = plan.group_params(pool, group_cells)
        jobs.append((GroupParams, group))
        jobs += [(RunParams, run) for run in plan.expand_group(group)]
    board = plan.leaderboard(config)
    if board is not None:
        jobs.append((Leaderboard, board))
    kinds = {cls for cls, _ in jobs}
    assert kinds == {RunParams, GroupParams, ReportParams} | (
        {PretrainedParams, Leaderboard} if name == "paper" else {Leaderboard}
    )
    for cls, params in jobs:
        # the JSON text the rule passes, read as the CLI reads it
        built = parse(cls, json.loads(json.dumps(params)))
        _kept(params, to_dict(built))


def test_a_run_fingerprint_ignores_testing_aids_and_how_defaults_are_spelled():
    from repro.distill.trainer import fingerprint_params

    run = {"student": "resnet8", "method": "ce", "train": {"epochs": 2, "lr": 0.1}}
    same = {**run, "args": {}, "train": {"epochs": 2, "lr": 0.1, "momentum": 0.9}}
    stopped = {**run, "train": {**run["train"], "stop_after_steps": 3}}
    other = {**run, "train": {**run["train"], "lr": 0.2}}
    prints = [fingerprint_params(parse(RunParams, p)) for p in (run, same, stopped, other)]
    assert prints[0] == prints[1] == prints[2] != prints[3]
    assert "stop_after_steps" not in prints[0]["train"]


def _cli(capsys, *argv: str) -> tuple[int, str]:
    rc = cli.main(list(argv))
    return rc, capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("argv", "params", "message"),
    [
        (["train", "--data", "d", "--out", "o"], '{"student": "resnet8", "method": "ce", '
         '"train": {"lr": "fast"}}', "--params.train.lr: must be a number, not str 'fast'"),
        (["train", "--data", "d", "--out", "o"], '{"student": "resnet8", "method": "ce", '
         '"train": {"epoch": 3}}', "--params.train: unknown key 'epoch' (allowed: amp,"),
        (["train", "--data", "d", "--out", "o"], '{"student": "resnet8"', "--params: not valid "
         "JSON"),
        (["train", "--data", "d", "--out", "o"], '{"student": "resnet8", "method": "ce", '
         '"train": {"teacher_precision": "fp16"}}', "--params.train.teacher_precision: 'fp16' "
         "is not one of 'autocast', 'float32'"),
        (["train-group", "--data", "d", "--results", "r"], '{"cells": {"kd": {}}}',
         "--params.cells: must be a list, not a mapping"),
        (["train-group", "--data", "d", "--results", "r"], '{"cells": []}',
         "--params.cells: a group needs at least one cell"),
        (["evaluate", "--data", "d", "--out", "o"], '{"teacher_weights": "w.pth"}',
         "--params.teacher: required (no default)"),
        (["leaderboard", "--results", "r", "--out", "o"], '{"title": "t", "dataset": "d", '
         '"recipe": "r", "pairs": ["a-b"], "variants": ["dkd"], "seeds": [0, 1]}',
         "--params.baseline: 'kd' is not one of the variants"),
        (["report", "--results", "r", "--reported", "x.yaml", "--out", "o"], '{"paper": "cskd", '
         '"tables": [{"title": 3}]}', "--params.tables[0].title: must be a string, not int 3"),
    ],
)  # fmt: skip
def test_a_wrong_key_or_type_stops_the_job_with_one_line(capsys, argv, params, message):
    rc, err = _cli(capsys, *argv, "--params", params)
    assert rc == 2 and err.startswith(f"error: {message}"), err


def test_a_report_preview_is_asked_for_in_its_params(monkeypatch, capsys):
    """No settings flags: ``"partial": true`` in the params is the report's preview."""
    from repro.distill import report

    calls = []
    monkeypatch.setattr(report, "kd_report", lambda *args: calls.append(args))
    table = {"title": "T", "dataset": "d", "recipe": "r", "pairs": ["a-b"], "variants": ["kd"],
             "seeds": [0]}  # fmt: skip
    params = {"paper": "cskd", "tables": [table], "partial": True}
    argv = ["report", "--results", "r", "--reported", "x.yaml", "--out", "o", "--params"]
    assert cli.main([*argv, json.dumps(params)]) == 0
    ((got, results, reported, out, data, partial),) = calls
    assert partial is True and got["tables"][0]["pairs"] == ["a-b"] and data == Path("data")
    assert (results, reported, out) == (Path("r"), Path("x.yaml"), Path("o"))
    with pytest.raises(SystemExit):  # the flag is gone
        cli.main([*argv, json.dumps(params), "--partial"])
    assert "unrecognized arguments: --partial" in capsys.readouterr().err


def test_a_pretrained_teacher_and_initial_weights_are_named_by_their_keys():
    run = parse(RunParams, {"student": "r18", "method": "kd", "teacher": "r34",
                            "teacher_weights": None, "teacher_weights_key": "kd.x"})  # fmt: skip
    assert run.pretrained_teacher and not run.starts_from_file and run.name == "kd"
    alone = parse(RunParams, {"student": "r18", "method": "ce", "variant": "ce"})
    assert not alone.pretrained_teacher and alone.name == "ce"
    with pytest.raises(ReproError, match=r"^--params.init_weights: must be a string or null"):
        parse(RunParams, {"student": "r18", "method": "ce", "init_weights": 3})
