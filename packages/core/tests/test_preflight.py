"""repro.core.preflight: problems with the papers they block, datasets following papers."""

from __future__ import annotations

from types import SimpleNamespace

from repro.core.preflight import collect, recap, skipped_datasets


def plan(datasets, problems):
    return SimpleNamespace(
        SCHEMAS={},
        datasets=lambda config: set(datasets),
        preflight=lambda config, planned: list(problems),
    )


PLANS = {
    "energy-kd": plan({"cifar100", "imagenet"}, ["kd.x is not set"]),
    "r2kd": plan({"imagenet"}, ["kd.x is not set", "r2kd.y is missing"]),
}
MISSING = {"imagenet": ["data.imagenet.root is not set"], "cub200": ["data.cub200.root unset"]}


def check(name):
    return MISSING.get(name, [])


def test_a_problem_names_every_paper_it_blocks():
    problems = collect({"datasets": []}, PLANS, None, check)
    lines = {p.text: p.papers for p in problems}
    assert lines == {
        "data.imagenet.root is not set": ["energy-kd", "r2kd"],
        "kd.x is not set": ["energy-kd", "r2kd"],  # the same line from two papers, once
        "r2kd.y is missing": ["r2kd"],
    }
    assert problems[0].line() == "energy-kd, r2kd: data.imagenet.root is not set"


def test_a_dataset_only_the_datasets_list_names_never_stops_the_run():
    only_cskd = {"cskd": plan({"cifar100"}, [])}
    problems = collect({"datasets": ["cifar100", "cub200"]}, only_cskd, None, check)
    assert [(p.text, p.blocking) for p in problems] == [("data.cub200.root unset", False)]
    assert skipped_datasets(problems) == {"cub200"}
    # asked for by name (a target that prepares it), it blocks
    planned = [("index_fgvr", {"name": "cub200"})]
    asked = collect({"datasets": []}, only_cskd, planned, check, ["cub200"])
    assert [(p.line(), p.blocking) for p in asked] == [
        ("data/cub200: data.cub200.root unset", True)
    ]


def test_the_recap_groups_problems_by_paper_and_counts_them():
    problems = collect({"datasets": ["cub200"]}, PLANS, None, check)
    text = recap(problems).splitlines()
    assert text[0] == "pre-flight: 3 problem(s) a real run would stop on, by the papers they block:"
    assert text[1:4] == [
        "  energy-kd, r2kd (2):",
        "    data.imagenet.root is not set",
        "    kd.x is not set",
    ]
    assert text[4:6] == ["  r2kd (1):", "    r2kd.y is missing"]
    assert "skipped, not needed by the chosen papers (1" in text[6]
    assert text[7] == "    data.cub200.root unset"
    assert recap([]).startswith("pre-flight: no problems")


def test_a_target_naming_an_unknown_name_is_one_line_from_the_plan_that_owns_it():
    from repro.core.papers import target_problems

    def check_target(config, results, target):
        parts = target.split("/")
        if parts[:3] != [results.split("/")[0], results.split("/")[1], "kd"]:
            return None  # not this paper's
        bad = [m for m in parts[3].split("-") if m not in ("resnet20", "resnet56")]
        return f"unknown model '{bad[0]}' (models: resnet20, resnet56)" if bad else None

    plans = {"energy-kd": SimpleNamespace(check_target=check_target), "x": SimpleNamespace()}
    targets = ["results/quick/kd/resnet56-resnet21/r.json", "data/a/meta.json"]
    assert target_problems(plans, {}, "results/quick", targets) == [
        "results/quick/kd/resnet56-resnet21/r.json: unknown model 'resnet21' "
        "(models: resnet20, resnet56)"
    ]
