"""Data-parallel training under torchrun (gloo on CPU): the same run as one process.

The 2-process runs start through ``repro-core launch --procs 2`` (torchrun --standalone), the
launcher a rule uses. Tolerance: weights within ``atol=1e-5, rtol=1e-4`` of the one-process
run (measured: max |difference| 1.6e-7 after 24 steps). Not bit-exact because float32 sums
run in another order: each rank reduces the weight gradients over its half of the batch and
the all-reduce adds the two halves, where one process reduces over the whole batch in one go.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from repro.core.checkpoint import load_checkpoint
from repro.core.distributed import Dist, plain_state
from repro.core.params import parse
from repro.distill.params import RunParams


def run_params(data: dict) -> RunParams:
    """A run's params as ``repro-distill train`` reads its ``--params``."""
    return parse(RunParams, data)


_spec = importlib.util.spec_from_file_location(
    "ddp_worker", Path(__file__).with_name("ddp_worker.py")
)
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)

BIN = Path(sys.executable).parent
TRAIN = {
    "batch_size": 32,
    "lr": 0.1,
    "lr_milestones": [2],
    "crop_padding": 1,  # random crops and flips: drawn for the global batch on every rank
    "flip": True,
    "mean": [0.5],
    "std": [0.5],
    "threads": 1,
}
ATOL, RTOL = 1e-5, 1e-4


def _params(epochs: int, **train) -> dict:
    energy = {"temperature": {"policy": "energy", "r_low": 0.2, "r_high": 0.2}}
    return {
        "student": "tiny",
        "teacher": "tiny",
        "method": "kd",
        "variant": "energy_kd",  # a prepare step (energy thresholds) and a KD loss
        "args": energy,
        "train": {**TRAIN, "epochs": epochs, **train},
    }


def _csv(path: Path) -> list[dict[str, float]]:
    header, *rows = path.read_text().splitlines()
    return [dict(zip(header.split(","), map(float, r.split(",")), strict=True)) for r in rows]


def test_dist_parts_and_weights_rebuild_the_global_batch():
    batch = torch.arange(7)
    parts = [Dist(r, 3, r, torch.device("cpu")).part(batch) for r in range(3)]
    assert [p.tolist() for p in parts] == [[0, 3, 6], [1, 4], [2, 5]]
    # DDP averages the ranks' losses: weighted by their shares, that is the global mean
    losses = torch.rand(7, generator=torch.Generator().manual_seed(0))
    ranks = [Dist(r, 3, r, torch.device("cpu")) for r in range(3)]
    averaged = (
        sum(d.weight(len(p), 7) * losses[p].mean() for d, p in zip(ranks, parts, strict=True)) / 3
    )
    assert torch.allclose(averaged, losses.mean())
    one = Dist(0, 1, 0, torch.device("cpu"))
    assert one.part(batch) is batch and one.weight(7, 7) == 1.0 and one.sum([2, 3]) == [2.0, 3.0]


def test_plain_state_drops_the_ddp_level_only():
    state = {"student.module.fc.w": 1, "student.module.bn.m": 2, "kd.t": 3, "module.x": 4}
    assert plain_state(state, "student") == {
        "student.fc.w": 1, "student.bn.m": 2, "kd.t": 3, "module.x": 4,
    }  # fmt: skip
    assert plain_state({"module.a.b": 1}) == {"a.b": 1}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """Toy data and a teacher; the BatchNorm-free model "tiny" registered while these tests
    run (the worker processes register it themselves)."""
    from repro.distill import models
    from repro.distill.run import train_run

    models.MODELS["tiny"] = worker.tiny
    yield from _toy(tmp_path_factory, train_run)
    del models.MODELS["tiny"]


def _toy(tmp_path_factory, train_run):
    root = tmp_path_factory.mktemp("ddp")
    data = worker.make_data(root / "data")
    teacher = {"student": "tiny", "method": "ce", "train": {**TRAIN, "epochs": 3}}
    train_run(run_params(teacher), data, root / "teacher")
    yield data, root / "teacher" / "model.pt"


@pytest.mark.slow
def test_two_gloo_processes_match_one_and_their_checkpoint_resumes_in_one(toy, tmp_path):
    from repro.distill.params import TrainConfig
    from repro.distill.run import train_run
    from repro.distill.trainer import evaluate

    data, teacher = toy
    steps = -(-245 // 32)  # 8 global batches per epoch, the last one of 21 (11 + 10 rows)
    # two processes, stopped (like a killed job) in epoch 3, after epoch 2's checkpoint
    two = tmp_path / "two"
    cmd = [
        str(BIN / "repro-core"), "launch", "--procs=2", "--",
        sys.executable, str(Path(worker.__file__)), str(data), str(two),
        json.dumps(_params(3, stop_after_steps=2 * steps + 3)), str(teacher),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "stopping after 19 steps" in proc.stderr, proc.stderr[-3000:]
    assert "--nproc-per-node=2" in proc.stderr  # the launcher started torchrun
    ckpt = load_checkpoint(two / "checkpoint.pt")
    assert ckpt["period"] == 2 and not (two / "model.pt").exists()
    model = ckpt["payload"]["model"]
    assert model and not any(".module." in k or k.startswith("module.") for k in model)

    # the same run in one process: epochs 1-2 alone, and all 3 epochs
    ref2 = train_run(run_params(_params(2)), data, tmp_path / "ref2", teacher)
    ref3 = train_run(run_params(_params(3)), data, tmp_path / "ref3", teacher)
    ref2_w = load_checkpoint(tmp_path / "ref2" / "model.pt")["model"]
    for k, v in ref2_w.items():  # the 2-process weights after 2 epochs
        torch.testing.assert_close(model[f"student.{k}"], v, atol=ATOL, rtol=RTOL)
    # metrics are sums and counts over both ranks: the rows of one process (the checkpoint's
    # history holds them unrounded; metrics.csv the same rows to 6 decimals)
    rows2, rows3 = ckpt["history"], _csv(tmp_path / "ref3" / "metrics.csv")
    assert len(rows2) == 2 and len(_csv(two / "metrics.csv")) == 2
    for a, b in zip(rows2, rows3[:2], strict=False):
        for key in ("loss", "loss_ce", "loss_kd", "train_top1", "test_top1", "test_top5"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key
    assert ref2["final_top1"] == rows2[1]["test_top1"]

    # every test sample counted once by the sharded evaluation (31 + 30 of 61): exactly the
    # accuracy of the checkpointed weights scored by one process
    student = worker.tiny(4, 1)
    student.load_state_dict({k[8:]: v for k, v in model.items() if k.startswith("student.")})
    cfg = TrainConfig(**{**TRAIN, "epochs": 3})
    from repro.distill.arraydata import ArrayData, BatchAugment

    test = ArrayData.load(data, "test", "cpu", 4)
    scores = evaluate(student, test, BatchAugment(cfg.mean, cfg.std), 16)
    assert scores["top1"] == rows2[1]["test_top1"] and scores["top5"] == rows2[1]["test_top5"]

    # the 2-process checkpoint resumes in one process and ends where one process ends
    resumed = train_run(run_params(_params(3)), data, two, teacher)
    final, ref_w = (
        load_checkpoint(two / "model.pt")["model"],
        load_checkpoint(tmp_path / "ref3" / "model.pt")["model"],
    )
    for k, v in ref_w.items():
        torch.testing.assert_close(final[k], v, atol=ATOL, rtol=RTOL)
    assert len(_csv(two / "metrics.csv")) == 3
    assert resumed["test_n"] == ref3["test_n"] == 61
    assert resumed["prepared"] == pytest.approx(ref3["prepared"], rel=1e-6)
    assert resumed["final_top1"] == ref3["final_top1"]
