"""Run params assembled from config sections; report rows and teacher energies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repro.distill.recipes import (
    kd_params,
    kd_runs,
    pretrained_eval_params,
    pretrained_teachers,
    vanilla_params,
)
from repro.distill.report import aggregate_rows, summary_rows, teacher_energy_stats

SECTION = {
    "seeds": [0, 1],
    "vanilla_train": {"epochs": 240, "lr": 0.05},
    "student_train": {"epochs": 240, "lr": 0.05},
    "method_train": {"energy_kd": {"epochs": 360}},
    "student_lr": {"ShuffleV1": 0.01},
    "method_args": {"dkd": {"beta": 8.0, "warmup": 20}},
    "direction": "code",
    "experiments": [
        {
            "dataset": "cifar100",
            "teacher": "vgg13",
            "student": "vgg8",
            "methods": ["dkd"],
            "method_args": {"dkd": {"beta": 6.0}},
        },
        {
            "dataset": "cifar100",
            "teacher": "wrn_40_2",
            "student": "ShuffleV1",
            "methods": ["kd", "energy_kd"],
        },
    ],
}


def test_kd_params_layer_recipe_method_student_and_pair():
    p = kd_params(SECTION, "dkd", "cifar100", "vgg13", "vgg8", 1)
    assert p["method_args"] == {"beta": 6.0, "warmup": 20}  # pair override wins
    assert p["train"] == {"epochs": 240, "lr": 0.05, "seed": 1}
    e = kd_params(SECTION, "energy_kd", "cifar100", "wrn_40_2", "ShuffleV1", 0)
    assert e["train"]["epochs"] == 360 and e["train"]["lr"] == 0.01
    assert e["method_args"]["direction"] == "code"
    assert SECTION["student_train"] == {"epochs": 240, "lr": 0.05}  # config not mutated


def test_vanilla_params_and_run_list():
    v = vanilla_params(SECTION, "ShuffleV1", 3)
    assert v["method"] == "ce" and v["teacher"] is None and v["train"]["lr"] == 0.01
    runs = kd_runs(SECTION)
    assert len(runs) == (1 + 2) * 2
    with pytest.raises(KeyError, match="no experiment"):
        kd_params(SECTION, "kd", "cifar100", "vgg13", "resnet8", 0)


def test_dataset_recipe_and_pretrained_teachers():
    section = {
        **SECTION,
        "dataset_train": {"imagenet": {"epochs": 100, "lr": 0.2, "lr_milestones": [30]}},
        "pretrained_teachers": {"imagenet": {"resnet34_imagenet": "/w/r34.pth"}},
        "experiments": [
            *SECTION["experiments"],
            {
                "dataset": "imagenet",
                "teacher": "resnet34_imagenet",
                "student": "ShuffleV1",
                "methods": ["energy_kd"],
            },
        ],
    }
    e = kd_params(section, "energy_kd", "imagenet", "resnet34_imagenet", "ShuffleV1", 2)
    # the dataset recipe wins over method_train's 360 epochs and the per-student LR
    assert e["train"] == {"epochs": 100, "lr": 0.2, "lr_milestones": [30], "seed": 2}
    assert e["teacher_weights"] == "/w/r34.pth"
    assert e["teacher_weights_key"] == "energy_kd.pretrained_teachers.imagenet.resnet34_imagenet"
    assert "teacher_weights" not in kd_params(section, "dkd", "cifar100", "vgg13", "vgg8", 0)
    assert vanilla_params(section, "ShuffleV1", 1, "imagenet")["train"]["lr"] == 0.2
    assert vanilla_params(section, "ShuffleV1", 1, "cifar100")["train"]["lr"] == 0.01
    # the pretrained teacher is scored with the dataset's recipe (not trained: no seed)
    assert pretrained_teachers(section) == [("imagenet", "resnet34_imagenet")]
    ev = pretrained_eval_params(section, "imagenet", "resnet34_imagenet")
    assert ev["teacher_weights"] == "/w/r34.pth" and ev["train"]["epochs"] == 100
    assert ev["teacher_weights_key"] == e["teacher_weights_key"]
    section["pretrained_teachers"]["imagenet"]["resnet34_imagenet"] = None  # not set yet
    e = kd_params(section, "energy_kd", "imagenet", "resnet34_imagenet", "ShuffleV1", 2)
    assert "teacher_weights" in e and e["teacher_weights"] is None


def test_summary_fills_paper_numbers_only_for_the_same_setting():
    res = [
        {
            "method": "kd",
            "dataset": "cifar100",
            "teacher": "vgg13",
            "student": "vgg8",
            "seed": 0,
            "final_top1": 70.0,
            "best_top1": 71.0,
            "final_top5": 90.0,
            "epochs": 240,
        },
        {
            "method": "kd",
            "dataset": "digits",
            "teacher": "vgg13",
            "student": "vgg8",
            "seed": 0,
            "final_top1": 90.0,
            "best_top1": 91.0,
            "final_top5": 99.0,
            "epochs": 20,
        },
    ]
    rep = [
        {
            "method": "kd",
            "dataset": "cifar100",
            "teacher": "vgg13",
            "student": "vgg8",
            "top1": 72.98,
            "source": "leaderboard",
        }
    ]
    rows = summary_rows(res, rep)
    by_ds = {r["dataset"]: r for r in rows}
    assert by_ds["cifar100"]["paper_top1"] == 72.98
    assert by_ds["cifar100"]["paper_source"] == "leaderboard"
    assert by_ds["digits"]["paper_top1"] is None


def test_teacher_energy_stats_match_numpy():
    from repro.distill.arraydata import ArrayData

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x = torch.randint(0, 256, (20, 1, 2, 2), dtype=torch.uint8)
    energy, conf = teacher_energy_stats(
        model, ArrayData(x, torch.zeros(20).long(), 3), [0.5], [0.25], temperature=4.0
    )
    z = model((x.float() / 255 - 0.5) / 0.25).detach().double().numpy()
    expected = -4.0 * np.log(np.exp(z / 4.0).sum(axis=1))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert np.allclose(energy, expected, atol=1e-5) and np.allclose(conf, p.max(1), atol=1e-6)


def test_aggregate_is_mean_and_sample_std_over_seeds():
    base = {
        "method": "kd",
        "dataset": "cifar100",
        "teacher": "vgg13",
        "student": "vgg8",
        "epochs": 240,
        "paper_top1": 72.98,
        "paper_source": "lb",
        "top5_final": 90.0,
    }
    rows = [
        {**base, "seed": s, "top1_best": b, "top1_final": f}
        for s, b, f in [(0, 72.0, 71.0), (1, 73.0, 72.5), (2, 74.5, 73.0)]
    ]
    rows.append({**base, "method": "dkd", "seed": 0, "top1_best": 75.0, "top1_final": 74.0})
    agg = {r["method"]: r for r in aggregate_rows(rows)}
    kd = agg["kd"]
    assert kd["seeds"] == 3 and kd["top1_best"] == pytest.approx(73.1666666667)
    # sample std of 72, 73, 74.5 by hand: deviations -1.1667, -0.1667, 1.3333
    assert kd["top1_best_std"] == pytest.approx(
        (1.1667**2 + 0.1667**2 + 1.3333**2) ** 0.5 / 2**0.5, abs=1e-3
    )
    assert kd["top1_final"] == pytest.approx(72.1666666667)
    assert agg["dkd"]["seeds"] == 1 and agg["dkd"]["top1_best_std"] is None
    assert kd["paper_top1"] == 72.98
