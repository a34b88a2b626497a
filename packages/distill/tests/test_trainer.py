"""Trainer: schedule, batching, augmentation, evaluation, exact resume after a crash or kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from repro.core.checkpoint import load_checkpoint
from repro.core.params import parse
from repro.data.arrays import write_arrays
from repro.distill.arraydata import ArrayData, BatchAugment
from repro.distill.params import RunParams, TrainConfig
from repro.distill.trainer import evaluate


def run_params(data: dict) -> RunParams:
    """A run's params as ``repro-distill train`` reads its ``--params``."""
    return parse(RunParams, data)


def make_data(root: Path, n_train: int = 240, n_test: int = 60, seed: int = 0) -> Path:
    """Learnable toy data: class k has a bright k-th row (8x8, 1 channel, 4 classes)."""
    rng = np.random.default_rng(seed)

    def split(n):
        y = rng.integers(0, 4, n)
        x = rng.integers(0, 60, (n, 8, 8, 1)).astype(np.uint8)
        x[np.arange(n), 2 * y, :, 0] = 250
        return x, y

    write_arrays(
        root, {"train": split(n_train), "test": split(n_test)}, ["a", "b", "c", "d"], "toy", {}
    )
    return root


def test_step_schedule_matches_mdistiller_rule():
    cfg = TrainConfig(lr=0.05, lr_milestones=[150, 180, 210])
    assert cfg.lr_at(1) == 0.05 and cfg.lr_at(150) == 0.05
    assert cfg.lr_at(151) == pytest.approx(0.005)
    assert cfg.lr_at(181) == pytest.approx(0.0005)
    assert cfg.lr_at(240) == pytest.approx(0.00005)


def test_unknown_train_setting_is_named():
    from repro.core import ReproError

    with pytest.raises(ReproError, match="^train: unknown key 'epoch' \\(allowed: amp, "):
        parse(TrainConfig, {"epoch": 3}, "train")
    with pytest.raises(ReproError, match="^train.lr: must be a number, not str '0.1'$"):
        parse(TrainConfig, {"lr": "0.1"}, "train")
    with pytest.raises(ReproError, match="^train.lr_milestones\\[1\\]: must be an integer"):
        parse(TrainConfig, {"lr_milestones": [3, 4.5]}, "train")
    with pytest.raises(ReproError, match="^train.mean: must be a list or null, not str"):
        parse(TrainConfig, {"mean": "0.5"}, "train")


def test_batches_cover_each_sample_once_and_shard_disjointly():
    data = ArrayData(torch.zeros(10, 1, 2, 2, dtype=torch.uint8), torch.arange(10), 10)
    gen = torch.Generator().manual_seed(0)
    seen = torch.cat([y for _, y in data.batches(3, shuffle=True, generator=gen)])
    assert sorted(seen.tolist()) == list(range(10))
    shards = []
    for rank in range(3):
        gen = torch.Generator().manual_seed(5)  # every rank draws the same permutation
        shards.append(
            torch.cat(
                [
                    y
                    for _, y in data.batches(
                        2, shuffle=True, generator=gen, rank=rank, world_size=3
                    )
                ]
            )
        )
    assert sorted(torch.cat(shards).tolist()) == list(range(10))
    dropped = [len(y) for _, y in data.batches(4, shuffle=False, drop_last=True)]
    assert dropped == [4, 4]


def test_augment_normalises_then_crops_and_flips_like_the_definition():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (16, 1, 6, 6), dtype=torch.uint8)
    plain = BatchAugment([0.25], [0.5])(x)
    assert torch.allclose(plain, (x.float() / 255 - 0.25) / 0.5)
    out = BatchAugment([0.0], [1.0], crop_padding=2, flip=True, size=(6, 6))(x)
    padded = torch.nn.functional.pad(x.float() / 255, (2, 2, 2, 2))
    for i in range(len(x)):  # each output is some shifted window, possibly mirrored
        windows = [padded[i, :, dy : dy + 6, dx : dx + 6] for dy in range(5) for dx in range(5)]
        assert any(
            torch.allclose(out[i], w, atol=1e-6) or torch.allclose(out[i], w.flip(-1), atol=1e-6)
            for w in windows
        )
    assert not torch.allclose(out, x.float() / 255)  # something random happened


def test_evaluate_counts_top1_and_top5_like_numpy():
    logits = torch.randn(50, 10, generator=torch.Generator().manual_seed(1))
    labels = torch.randint(0, 10, (50,), generator=torch.Generator().manual_seed(2))
    data = ArrayData(torch.arange(50, dtype=torch.uint8).view(50, 1, 1, 1), labels, 10)

    class Lookup(torch.nn.Module):
        def forward(self, x):  # x = (index / 255 - 0) / 1
            return logits[(x.view(-1) * 255).round().long()], {}

    got = evaluate(Lookup(), data, BatchAugment([0.0], [1.0]), batch_size=16)
    order = np.argsort(-logits.numpy(), axis=1)
    top1 = np.mean(order[:, 0] == labels.numpy()) * 100
    top5 = np.mean([labels[i].item() in order[i, :5] for i in range(50)]) * 100
    assert got == pytest.approx({"top1": top1, "top5": top5})


def _params(epochs: int, stop: int | None = None, method: str = "energy_kd") -> dict:
    train = {
        "epochs": epochs,
        "batch_size": 32,
        "lr": 0.05,
        "lr_milestones": [2],
        "crop_padding": 1,
        "flip": True,
        "mean": [0.5],
        "std": [0.5],
        "threads": 1,
    }
    if stop:
        train["stop_after_steps"] = stop
    energy = {"temperature": {"policy": "energy", "r_low": 0.2, "r_high": 0.2}}
    return {
        "student": "resnet8",
        "teacher": "wrn_16_1",
        "method": "kd" if method == "energy_kd" else method,
        "variant": method,
        "args": energy if method == "energy_kd" else {},
        "train": train,
    }


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    data = make_data(root / "data")
    from repro.distill.run import train_run

    teacher = {
        "student": "wrn_16_1",
        "method": "ce",
        "train": {"epochs": 1, "batch_size": 32, "mean": [0.5], "std": [0.5], "threads": 1},
    }
    train_run(run_params(teacher), data, root / "teacher")
    return root, data, root / "teacher" / "model.pt"


def _weights(run: Path) -> dict:
    return load_checkpoint(run / "model.pt")["model"]


def test_crash_mid_epoch_then_resume_matches_uninterrupted_run(toy, tmp_path):
    from repro.distill.run import train_run

    _, data, teacher = toy
    full = train_run(run_params(_params(3)), data, tmp_path / "full", teacher)
    with pytest.raises(SystemExit):  # 8 steps per epoch: stop in the middle of epoch 2
        train_run(run_params(_params(3, stop=12)), data, tmp_path / "crash", teacher)
    assert load_checkpoint(tmp_path / "crash" / "checkpoint.pt")["period"] == 1
    resumed = train_run(run_params(_params(3)), data, tmp_path / "crash", teacher)
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "crash")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["final_top1"] == full["final_top1"]
    metrics = (tmp_path / "crash" / "metrics.csv").read_text().splitlines()
    assert len(metrics) == 4  # header + 3 epochs, none repeated


@pytest.mark.slow
def test_killed_training_job_resumes_to_the_same_weights(toy, tmp_path):
    root, data, teacher = toy
    big = make_data(tmp_path / "big", n_train=2000, n_test=50)
    exe = [str(Path(sys.executable).with_name("repro-distill"))]

    def cmd(out):
        return [
            *exe,
            "train",
            "--data",
            str(big),
            "--out",
            str(out),
            "--teacher",
            str(teacher),
            "--params",
            json.dumps(_params(3, method="kd")),
        ]

    subprocess.run(cmd(tmp_path / "full"), check=True, capture_output=True)
    proc = subprocess.Popen(
        cmd(tmp_path / "killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ckpt = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # in epoch 2, right after epoch 1's checkpoint
    proc.wait()
    assert load_checkpoint(ckpt)["period"] == 1 and not (tmp_path / "killed" / "model.pt").exists()
    rerun = subprocess.run(cmd(tmp_path / "killed"), capture_output=True, text=True, check=True)
    assert "resumed from" in rerun.stderr
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "killed")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cpu_bf16_trains_to_finite_losses(toy, tmp_path):
    from repro.distill.run import train_run

    _, data, teacher = toy
    params = _params(1, method="kd")
    params["train"]["cpu_bf16"] = True
    result = train_run(run_params(params), data, tmp_path / "bf16", teacher)
    rows = (tmp_path / "bf16" / "metrics.csv").read_text().splitlines()
    header, values = rows[0].split(","), rows[1].split(",")
    loss = float(values[header.index("loss")])
    assert np.isfinite(loss) and 0 <= result["final_top1"] <= 100


@pytest.mark.parametrize("method", ["ce", "kd", "energy_kd", "heda"])
def test_the_prepare_step_runs_whatever_the_method(toy, tmp_path, method, monkeypatch):
    """The trainer calls the method's prepare step on every fresh run; what it computes is
    saved in result.json (thresholds for the energy methods, nothing for the others)."""
    from repro.distill.methods.base import Distiller
    from repro.distill.run import train_run

    _, data, teacher = toy
    calls = []
    original = Distiller.prepare

    def spy(self, batches, drop_last=True):
        calls.append(type(self).__name__)
        return original(self, batches, drop_last)

    monkeypatch.setattr(Distiller, "prepare", spy)
    params = _params(1, method=method)
    if method == "ce":
        params.update(teacher=None, args={})
    result = train_run(
        run_params(params), data, tmp_path / method, None if method == "ce" else teacher
    )
    assert len(calls) == 1
    saved = json.loads((tmp_path / method / "result.json").read_text())
    assert saved["prepared"] == result["prepared"]
    if method in ("energy_kd", "heda"):
        assert set(saved["prepared"]) == {"tau_low", "tau_high"}
        assert saved["prepared"]["tau_low"] <= saved["prepared"]["tau_high"]
    else:
        assert saved["prepared"] == {}
    assert saved["test_n"] == 60 and saved["variant"] == method


def test_a_loss_turning_nan_stops_training_and_keeps_the_last_good_checkpoint(
    toy, tmp_path, monkeypatch
):
    from repro.core.training import NonFiniteLoss
    from repro.distill.methods.kd import KD
    from repro.distill.run import train_run

    _, data, teacher = toy
    original = KD.forward_train
    steps = []

    def poisoned(self, images, targets, epoch):
        logits, losses = original(self, images, targets, epoch)
        steps.append(epoch)
        if epoch == 2 and steps.count(2) == 3:
            losses["loss_kd"] = losses["loss_kd"] * float("nan")
        return logits, losses

    monkeypatch.setattr(KD, "forward_train", poisoned)
    out = tmp_path / "nan"
    with pytest.raises(NonFiniteLoss) as err:
        train_run(run_params(_params(3, method="kd")), data, out, teacher)
    assert str(err.value) == (
        f"kd wrn_16_1 -> resnet8 seed 0: loss_kd became nan at epoch 2, step 3; training "
        f"stopped and the last good checkpoint is {out / 'checkpoint.pt'} (epoch 1)"
    )
    assert load_checkpoint(out / "checkpoint.pt")["period"] == 1
    assert not (out / "model.pt").exists() and not (out / "result.json").exists()
    assert len((out / "metrics.csv").read_text().splitlines()) == 2  # header + epoch 1


@pytest.mark.parametrize("precision", ["autocast", "float32"])
def test_bf16_energy_thresholds_come_from_the_teacher_at_its_training_precision(
    tmp_path, precision
):
    """Under cpu_bf16 the prepare step runs the teacher as training does (bf16 logits by
    default, float32 with ``teacher_precision: float32``): the thresholds equal percentiles
    of -4 logsumexp(z / 4) over the prepare batches, z from a teacher run by hand."""
    from repro.distill.methods import build_method
    from repro.distill.models import build_model
    from repro.distill.trainer import Trainer

    g = torch.Generator().manual_seed(0)
    data = ArrayData(
        torch.randint(0, 256, (100, 1, 8, 8), dtype=torch.uint8, generator=g),
        torch.randint(0, 4, (100,), generator=g),
        4,
    )
    torch.manual_seed(0)
    teacher = build_model("wrn_16_1", 4, in_channels=1)
    temperature = {"policy": "energy", "r_low": 0.2, "r_high": 0.3}
    distiller = build_method("kd", build_model("resnet8", 4, 1), teacher, temperature=temperature)
    cfg = parse(
        TrainConfig,
        {"epochs": 1, "batch_size": 16, "cpu_bf16": True, "teacher_precision": precision,
         "channels_last": False, "threads": 1, "mean": [0.5], "std": [0.5]}
    )  # fmt: skip
    trainer = Trainer(distiller, data, data, cfg, tmp_path / "run")
    trainer.prepare()
    energies = []
    with torch.no_grad():
        for x, _ in trainer._prepare_batches():
            if len(x) < 16:  # the last partial batch is skipped
                continue
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "autocast"):
                z = teacher.eval()(x)
            z = (z[0] if isinstance(z, tuple) else z).float()
            energies.append(-4.0 * torch.logsumexp(z / 4.0, dim=1))
    e = torch.cat(energies).sort().values
    assert len(e) == 96
    prepared = distiller.prepared()
    assert prepared["tau_low"] == pytest.approx(float(e[int(96 * 0.2)]), abs=0)
    assert prepared["tau_high"] == pytest.approx(float(e[-(int(96 * 0.3) + 1)]), abs=0)


def test_an_unknown_teacher_precision_is_named():
    from repro.core import ReproError

    with pytest.raises(ReproError, match="train.teacher_precision: 'fp16'"):
        parse(TrainConfig, {"teacher_precision": "fp16"}, "train")
