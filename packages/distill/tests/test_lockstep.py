"""Lockstep groups: each cell ends exactly as its alone run; one teacher forward per batch;
a group stopped mid-run resumes every cell to the uninterrupted weights."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from repro.core import ReproError
from repro.core.checkpoint import load_checkpoint
from repro.core.params import parse
from repro.distill import shared as shared_module
from repro.distill.params import RunParams
from repro.distill.run import train_group, train_run


def run_params(data: dict) -> RunParams:
    """A run's params as ``repro-distill train`` reads its ``--params``."""
    return parse(RunParams, data)


def cell_params(cells: list[dict]) -> list[RunParams]:
    """A group's cells as ``repro-distill train-group`` reads them."""
    return [parse(RunParams, c, f"--params cell {k}") for k, c in enumerate(cells)]


_spec = importlib.util.spec_from_file_location(
    "_trainer_tests", Path(__file__).with_name("test_trainer.py")
)
_trainer_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_trainer_tests)
make_data = _trainer_tests.make_data

#: The toy training set: 112 samples in batches of 32 are STEPS = 4 steps per epoch (the last
#: batch partial); a prepare pass (Energy DKD's thresholds, HE-DA's subset) drops the partial
#: batch: FULL = 3 batches. Small, as these tests check counts and equality, not learning.
N_TRAIN, STEPS, FULL = 112, 4, 3
TRAIN = {"batch_size": 32, "lr": 0.05, "lr_milestones": [1], "crop_padding": 1, "flip": True,
         "mean": [0.5], "std": [0.5], "threads": 1}  # fmt: skip
ENERGY = {"policy": "energy", "r_low": 0.2, "r_high": 0.2}
#: kd; energy_dkd (prepare step); heda (own RandomDraws, teacher pass on
#: its mixed subset); r2kd with CutMix (own RandomDraws, pruned teacher copy, augmented copy);
#: energy_dkd trains one epoch more than the others.
CELLS = {
    "kd": ("kd", {}, 2),
    "energy_dkd": ("dkd", {"warmup": 2, "temperature": ENERGY}, 3),
    "heda": ("heda", {"r_high": 0.5}, 2),
    "r2kd_cutmix": ("r2kd", {"augmentation": "cutmix"}, 2),
}


def _cell(variant: str, **train) -> dict:
    method, args, epochs = CELLS[variant]
    return {
        "dataset": "toy", "teacher": "wrn_16_1", "student": "resnet8", "variant": variant,
        "method": method, "args": args, "train": {**TRAIN, "epochs": epochs, **train},
    }  # fmt: skip


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    """The toy data, its teacher, and every cell trained alone."""
    root = tmp_path_factory.mktemp("lockstep")
    data = make_data(root / "data", n_train=N_TRAIN)
    teacher = {"student": "wrn_16_1", "method": "ce", "train": {**TRAIN, "epochs": 1}}
    train_run(run_params(teacher), data, root / "teacher")
    ckpt = root / "teacher" / "model.pt"
    for variant in CELLS:
        train_run(run_params(_cell(variant)), data, root / "alone" / variant, ckpt)
    return root, data, ckpt


def _rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def _same_run(a: Path, b: Path) -> None:
    wa, wb = load_checkpoint(a / "model.pt")["model"], load_checkpoint(b / "model.pt")["model"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), (a, b)
    assert _rows(a) == _rows(b)
    assert json.loads((a / "result.json").read_text()) == json.loads(
        (b / "result.json").read_text()
    )


@pytest.fixture
def teachers(monkeypatch):
    """Every SharedTeacher built in the test (to count forwards)."""
    made = []

    class Counting(shared_module.SharedTeacher):
        def __init__(self, teacher, lead=None):
            super().__init__(teacher, lead)
            made.append(self)

    monkeypatch.setattr(shared_module, "SharedTeacher", Counting)
    return made


def test_a_group_trains_each_cell_as_alone_with_one_teacher_forward_per_batch(
    alone, tmp_path, teachers
):
    root, data, ckpt = alone
    variants = list(CELLS)
    outs = [tmp_path / v for v in variants]
    results = train_group(cell_params([_cell(v) for v in variants]), data, outs, ckpt)
    for variant, out in zip(variants, outs, strict=True):
        _same_run(root / "alone" / variant, out)
    assert [r["epochs"] for r in results] == [2, 3, 2, 2]
    shared, pruned = teachers  # the group's teacher; r2kd_cutmix's pruned copy
    # 4 cells in epochs 1-2, energy_dkd alone in 3; prepare: energy_dkd and heda share the
    # FULL batches (the last partial one is dropped)
    steps_shared, steps_alone, prepare = 2 * STEPS, STEPS, FULL
    assert shared.computed == steps_shared + steps_alone + prepare
    assert shared.reused == 3 * steps_shared + prepare
    # other inputs, each computed once: heda's mixed subset and r2kd_cutmix's augmented copy
    assert (shared.computed_other, shared.reused_other) == (2 * steps_shared, 0)
    # the pruned copy (one R2KD cell): the batch and the augmented copy
    assert (pruned.computed, pruned.computed_other, pruned.reused) == (2 * STEPS, 2 * STEPS, 0)


@pytest.mark.parametrize("precision", ["autocast", "float32"])
def test_cpu_bf16_group_equals_alone_runs(alone, tmp_path, teachers, precision):
    """Under bf16 autocast KD and Energy DKD run their teacher at one precision (bf16 by
    default, float32 on request): one forward per batch for both, and each cell still equals
    its alone run."""
    root, data, ckpt = alone
    bf16 = {"epochs": 1, "cpu_bf16": True, "teacher_precision": precision}
    cells = [_cell("kd", **bf16), _cell("energy_dkd", **bf16)]
    for cell in cells:
        train_run(run_params(cell), data, tmp_path / "alone" / cell["variant"], ckpt)
    outs = [tmp_path / "group" / c["variant"] for c in cells]
    train_group(cell_params(cells), data, outs, ckpt)
    for cell, out in zip(cells, outs, strict=True):
        _same_run(tmp_path / "alone" / cell["variant"], out)
    # STEPS batches shared by both; the prepare step's FULL batches are energy_dkd's alone
    assert teachers[-1].computed == STEPS + FULL and teachers[-1].reused == STEPS


def test_r2kd_cells_share_their_pruned_copy_and_equal_augmented_copies(alone, tmp_path, teachers):
    """r2kd and r2kd_cutmix prune equal copies of the teacher: the group keeps one, run once
    per batch; r2kd_cutmix and r2kd_cutmix_noprune draw the same CutMix from the same run
    seed: the teacher runs once on that augmented copy. Each cell still equals its alone run."""
    root, data, ckpt = alone
    variants = {"r2kd": {}, "r2kd_cutmix": {"augmentation": "cutmix"},
                "r2kd_cutmix_noprune": {"augmentation": "cutmix", "prune": False}}  # fmt: skip
    cells = [
        {**_cell("r2kd_cutmix", epochs=1), "variant": v, "args": args}
        for v, args in variants.items()
    ]
    for cell in cells:
        train_run(run_params(cell), data, tmp_path / "alone" / cell["variant"], ckpt)
    outs = [tmp_path / "group" / v for v in variants]
    train_group(cell_params(cells), data, outs, ckpt)
    for cell, out in zip(cells, outs, strict=True):
        _same_run(tmp_path / "alone" / cell["variant"], out)
    shared, pruned = teachers[-2:]
    assert pruned.inner is not shared.inner
    assert (pruned.computed, pruned.reused) == (STEPS, STEPS)  # r2kd computes, cutmix reuses
    assert pruned.computed_other == STEPS  # r2kd_cutmix's augmented copy (noprune: no copy)
    # the teacher on the augmented copy: r2kd_cutmix computes, r2kd_cutmix_noprune reuses
    assert (shared.computed_other, shared.reused_other) == (STEPS, STEPS)
    assert (shared.computed, shared.reused) == (STEPS, 2 * STEPS)


def test_a_stopped_group_resumes_every_cell_to_the_uninterrupted_weights(alone, tmp_path):
    root, data, ckpt = alone
    variants = list(CELLS)
    outs = [tmp_path / v for v in variants]
    # heda gets a head start: an alone run stopped in its epoch 2 (checkpoint of epoch 1)
    with pytest.raises(SystemExit):
        train_run(
            run_params(_cell("heda", stop_after_steps=STEPS + 1)), data, tmp_path / "heda", ckpt
        )
    with pytest.raises(SystemExit):  # the group stops in epoch 2
        # (heda's checkpoint is from its alone run, params without stop_after_steps alike)
        train_group(
            cell_params([_cell(v, stop_after_steps=STEPS + 2) for v in variants]), data, outs, ckpt
        )
    for out in outs:
        assert load_checkpoint(out / "checkpoint.pt")["period"] == 1
        assert not (out / "model.pt").exists()
    train_group(cell_params([_cell(v) for v in variants]), data, outs, ckpt)
    for variant, out in zip(variants, outs, strict=True):
        _same_run(root / "alone" / variant, out)
        assert len(_rows(out)) == CELLS[variant][2]  # no epoch recorded twice


def test_a_group_of_cells_with_other_batches_is_refused(alone, tmp_path):
    _, data, ckpt = alone
    with pytest.raises(ReproError, match="train.batch_size"):
        train_group(cell_params([_cell("kd"), _cell("heda", batch_size=16)]), data,
                    [tmp_path / "a", tmp_path / "b"], ckpt)  # fmt: skip


def test_r2kd_with_train_mode_pruned_bn_resumes_to_the_uninterrupted_weights(alone, tmp_path):
    """``pruned_bn: train`` (the official code's behaviour): the pruned copy's running BatchNorm
    statistics drift in training and are not checkpointed (the teacher's state is not), but a
    BatchNorm in train mode normalises with the batch's statistics and never reads them, so a
    resumed run still ends as the uninterrupted one."""
    root, data, ckpt = alone
    cell = _cell("r2kd_cutmix")
    cell["args"] = {**cell["args"], "pruned_bn": "train"}
    train_run(run_params(cell), data, tmp_path / "full", ckpt)
    stopped = {**cell, "train": {**cell["train"], "stop_after_steps": STEPS + 2}}
    with pytest.raises(SystemExit):  # stops in epoch 2
        train_run(run_params(stopped), data, tmp_path / "resumed", ckpt)
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["period"] == 1
    train_run(run_params(cell), data, tmp_path / "resumed", ckpt)
    _same_run(tmp_path / "full", tmp_path / "resumed")


def test_a_mistyped_params_key_is_named_before_training(alone, tmp_path, capsys):
    """The CLI reads ``--params`` into RunParams (a group's every cell too): a mistyped key
    stops with one line naming it, before any run folder is made."""
    from repro.distill import cli

    root, data, ckpt = alone
    cell = {**_cell("kd"), "method_args": {"temperature": 2}}  # "args" mistyped
    common = ["--data", str(data), "--teacher", str(ckpt)]
    out = ["--out", str(tmp_path / "alone")]
    rc = cli.main(["train", *common, *out, "--params", json.dumps(cell)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("error: --params: unknown key 'method_args' (allowed:")
    # a group's cells name their run folders (recipe, train.seed)
    named = [
        {**c, "recipe": "r", "train": {**c["train"], "seed": 0}} for c in (_cell("heda"), cell)
    ]
    group = json.dumps({"cells": named})
    rc = cli.main(["train-group", *common, "--results", str(tmp_path / "a"), "--params", group])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("error: --params cell 1: unknown key 'method_args'")
    assert not (tmp_path / "alone").exists() and not (tmp_path / "a").exists()
