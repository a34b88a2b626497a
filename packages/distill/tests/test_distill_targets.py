"""A misspelt name in a run-pool target is one line listing the valid names (issue 21.3)."""

from __future__ import annotations

import pytest

from repro.distill.models import MODELS
from repro.distill.plan import target_problem
from repro.distill.registry import model_names

CONFIG = {"kd": {"recipes": {"digits": {}, "paper": {}}, "variants": {"kd": {}, "dkd": {}}}}
R = "results/quick"


def test_the_torch_free_model_names_are_the_zoo():
    assert model_names() == list(MODELS)


@pytest.mark.parametrize(
    "target",
    [
        f"{R}/kd/digits/digits/dkd/wrn_16_2-resnet20/seed0/result.json",
        f"{R}/kd/cifar100-lt10/paper/kd/resnet56-resnet20/seed3/model.pt",
        f"{R}/vanilla/digits/resnet20/seed1/result.json",
        f"{R}/vanilla/imagenet/resnet34_imagenet/pretrained/result.json",
        f"{R}/cskd/summary.csv",  # not a pool target
        "data/digits/meta.json",
    ],
)
def test_valid_targets_pass(target):
    assert target_problem(CONFIG, R, target) is None


@pytest.mark.parametrize(
    ("target", "start", "names"),
    [
        (f"{R}/kd/digits/digits/dkd/wrn_16_2-resnet21/seed0/result.json",
         "unknown model 'resnet21' (models: resnet8, ", "wrn_16_2"),
        (f"{R}/kd/digits/digits/dkdd/wrn_16_2-resnet20/seed0/result.json",
         "unknown variant 'dkdd' (variants: dkd, kd)", None),
        (f"{R}/kd/digits/quick/dkd/wrn_16_2-resnet20/seed0/result.json",
         "unknown recipe 'quick' (recipes: digits, paper)", None),
        (f"{R}/kd/digitz/digits/dkd/wrn_16_2-resnet20/seed0/result.json",
         "unknown dataset 'digitz' (datasets: ", "cifar100"),
        (f"{R}/vanilla/digits/resnet20/sed0/result.json", "'sed0' is not seed<k>", None),
    ],
)  # fmt: skip
def test_a_misspelt_name_is_one_line_listing_the_valid_ones(target, start, names):
    problem = target_problem(CONFIG, R, target)
    assert problem is not None and problem.startswith(start), problem
    assert names is None or names in problem


def test_the_cells_of_the_group_jobs_run_are_recorded_and_no_others():
    from repro.distill.plan import Cell, Group, grouped_cell_targets

    a = Cell("digits", "wrn_16_2", "resnet8", "kd", "digits", 2)
    b = Cell("digits", "wrn_16_2", "resnet8", "dkd", "digits_short", 2)
    c = Cell("digits", "wrn_16_2", "resnet20", "kd", "digits", 0)
    run = Group("digits", "wrn_16_2", "resnet8", 2, "abcd1234")
    other = Group("digits", "wrn_16_2", "resnet20", 0, "ffff0000")
    groups = {run: [a, b], other: [c]}
    planned = [
        ("train_kd_group", {"dataset": "digits", "teacher": "wrn_16_2", "student": "resnet8",
                            "seed": "2", "key": "abcd1234"}),
        ("train_vanilla", {"dataset": "digits", "model": "wrn_16_2", "seed": "0"}),
    ]  # fmt: skip
    assert grouped_cell_targets(R, groups, planned) == [
        f"{R}/kd/digits/digits/kd/wrn_16_2-resnet8/seed2/result.json",
        f"{R}/kd/digits/digits_short/dkd/wrn_16_2-resnet8/seed2/result.json",
    ]
