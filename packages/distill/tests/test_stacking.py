"""bench_stacking's stacked students (torch.func.stack_module_state + vmap, one backward, one
SGD over the stacked tensors) step each student as the real trainer does: the ``kd`` method's
``Trainer`` step, one trainer per student."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import torch

from repro.distill.arraydata import ArrayData
from repro.distill.methods import build_method
from repro.distill.models import build_model
from repro.distill.trainer import TrainConfig, Trainer

_path = Path(__file__).parents[1] / "benchmarks" / "bench_stacking.py"
_spec = importlib.util.spec_from_file_location("_bench_stacking", _path)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

K, B, CLASSES, STEPS = 3, 8, 10, 3
#: (max relative loss difference per step, max abs weight/buffer difference after STEPS steps).
#: fp32: grouped vs separate convolutions, rounding only (measured <= 3e-6 and 3e-7). bf16:
#: two bf16 paths round differently, by as much as bf16 differs from fp32 on this toy
#: (measured <= 3e-2 and 5e-4): this bounds gross errors only; the dtype test below checks
#: that the stacked convolutions do run in bf16.
TOLERANCE = {False: (1e-5, 1e-5), True: (5e-2, 2e-3)}


def _trainers(students, teacher, tmp_path: Path, bf16: bool) -> list[Trainer]:
    """One real Trainer per student: the kd method (T 4, CE 0.1, KD 0.9), TrainConfig's SGD."""
    data = ArrayData(torch.zeros(B, 3, 32, 32, dtype=torch.uint8), torch.zeros(B).long(), CLASSES)
    out = []
    for k, s in enumerate(students):
        d = build_method("kd", copy.deepcopy(s), copy.deepcopy(teacher))
        cfg = TrainConfig(epochs=1, device="cpu", threads=1, cpu_bf16=bf16, lr_milestones=[])
        out.append(Trainer(d, data, data, cfg, tmp_path / f"cell{k}"))
    return out


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
def test_stacked_step_equals_trainer_steps(tmp_path, bf16):
    torch.manual_seed(0)
    teacher = build_model("resnet8", CLASSES).eval()
    students = bench.make_students("resnet8", K, CLASSES, torch.device("cpu"))
    assert (students[0].fc.weight != students[1].fc.weight).any()  # K different students
    trainers = _trainers(students, teacher, tmp_path, bf16)
    stacked = bench.Stacked(students)
    teacher = teacher.to(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(1)
    tol_loss, tol_state = TOLERANCE[bf16]
    for step in range(1, STEPS + 1):
        x = torch.randn(B, 3, 32, 32, generator=gen).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, CLASSES, (B,), generator=gen)
        with torch.no_grad(), bench.autocast(x.device, bf16):
            logits_t = teacher(x)[0]
        losses = stacked.step(x, logits_t, y, bf16)
        ref = []
        for t in trainers:
            sums = t.open_epoch(1)  # fresh sums: they hold this step's loss times B
            t.train_batch(x, y, B, 1, step, sums)
            ref.append(sums.sums["loss"] / B)
        rel = ((losses.double() - torch.tensor(ref)).abs() / torch.tensor(ref).abs()).max()
        assert rel <= tol_loss, f"step {step}: losses {losses.tolist()} vs trainers' {ref}"
    moved = 0.0
    for k, t in enumerate(trainers):
        mine = stacked.state(k)
        theirs = {**dict(t.student.named_parameters()), **dict(t.student.named_buffers())}
        assert mine.keys() == theirs.keys()
        for name, value in theirs.items():
            diff = (mine[name].detach().double() - value.detach().double()).abs().max()
            assert diff <= tol_state, f"student {k} {name}: {diff:.2e}"
        moved = max(moved, (theirs["fc.weight"] - students[k].fc.weight).abs().max().item())
        assert int(mine["bn1.num_batches_tracked"]) == STEPS
    assert moved > 5 * tol_state  # the students did move: the comparison means something


def _output_dtypes(model: torch.nn.Module, run) -> set[torch.dtype]:
    """dtypes of the outputs of ``model``'s Conv2d, Linear and BatchNorm2d layers in ``run()``."""
    seen: set[torch.dtype] = set()
    layers = (torch.nn.Conv2d, torch.nn.Linear, torch.nn.BatchNorm2d)
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
        for m in model.modules()
        if isinstance(m, layers)
    ]
    try:
        run()
    finally:
        for h in hooks:
            h.remove()
    return seen


def test_stacked_forward_runs_in_bf16_under_cpu_autocast():
    students = bench.make_students("resnet8", 2, CLASSES, torch.device("cpu"))
    stacked = bench.Stacked(students)
    x = torch.randn(4, 3, 32, 32)

    def run():
        with bench.autocast(x.device, True):
            return stacked.forward(stacked.params, stacked.buffers, x)

    assert _output_dtypes(stacked.base, run) == {torch.bfloat16}
    assert run().dtype == torch.bfloat16
    # why the stacked model casts itself: without it, CPU autocast leaves the vmapped
    # convolutions in float32 (torch 2.14.1; if this fails, the casting layers can go)
    plain = copy.deepcopy(students[0]).to("meta")
    conv = plain.conv1
    w = stacked.params["conv1.weight"]

    def run_plain():
        with bench.autocast(x.device, True):
            torch.vmap(lambda w: torch.func.functional_call(conv, {"weight": w}, (x,)))(w)

    assert _output_dtypes(conv, run_plain) == {torch.float32}
