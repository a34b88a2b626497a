"""repro.core.workflow: a run's targets, config problems, resources and pre-flight outcome."""

from __future__ import annotations

from types import SimpleNamespace

from repro.core.preflight import Problem
from repro.core.workflow import Run, announce, config_source


def plan(name, problems=(), targets=(), resources=None):
    return SimpleNamespace(
        check=lambda config: list(problems),
        targets=lambda config, results: [f"{results}/{t}" for t in targets],
        resources=lambda config, step: dict(resources or {}),
        datasets=lambda config: set(),
        preflight=lambda config, planned: [],
    )


PLANS = {
    "a": plan("a", ["pool.x: bad"], ["a/summary.csv"], {"threads": 4, "mem_mb": 1000, "gpu": 1}),
    "b": plan("b", ["pool.x: bad", "b.y: bad"], ["b/summary.csv"]),
    "c": plan("c", ["c.z: bad"], ["c/summary.csv"]),
}
CONFIG = {"run": "quick", "papers": ["a", "b"], "datasets": ["digits", "cub200"]}


def test_a_run_knows_its_papers_targets_and_config_problems():
    run = Run(CONFIG, PLANS, "config/quick.yaml + --config")
    assert list(run.plans) == ["a", "b"]  # c is registered but not chosen
    assert run.paper_targets() == ["results/quick/a/summary.csv", "results/quick/b/summary.csv"]
    assert run.config_problems() == [
        "config/quick.yaml + --config: pool.x: bad",  # two papers, one line
        "config/quick.yaml + --config: b.y: bad",
    ]
    skipped = [Problem("cub200 unset", dataset="cub200")]  # no paper needs it
    assert run.default_targets(skipped) == [
        "data/digits/meta.json",
        "results/quick/provenance.json",
        "results/quick/a/summary.csv",
        "results/quick/b/summary.csv",
    ]


def test_resources_grow_with_the_attempt_only_for_retried_steps():
    run = Run(CONFIG, PLANS, "c")
    assert run.threads("a", "train") == 4 and run.threads("b", "train") == 1
    plain = run.resources("a", "train")
    assert plain == {"mem_mb": 1000, "gpu": 1}
    retried = run.resources("a", "train", retry=True)
    assert retried["gpu"] == 1 and retried["mem_mb"](None, 3) == 3000


def test_announce_warns_in_a_dry_run_and_stops_a_real_one(capsys):
    problems = [Problem("x unset", ["a"]), Problem("cub200 unset", dataset="cub200")]
    recaps = []
    assert announce(problems, True, recaps.append) == []
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "warning: a real run would stop here: a: x unset",
        "warning: skipped (no chosen paper needs it): cub200 unset",
    ]
    assert recaps and recaps[0].startswith("pre-flight: 1 problem(s) a real run would stop on")
    assert announce(problems, False, recaps.append) == ["a: x unset"]
    assert len(recaps) == 1


def test_the_config_source_names_files_and_overrides():
    assert config_source(["config/paper.yaml", "o.yaml"], {}) == "config/paper.yaml + o.yaml"
    assert config_source([], {"seed": 1}) == "config + --config"
