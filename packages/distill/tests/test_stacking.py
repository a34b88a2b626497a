"""bench_stacking's stacked students (torch.func.stack_module_state + vmap, one backward, one
SGD over the stacked tensors) step each student as the real trainer does: the ``kd`` method's
``Trainer`` step, one trainer per student."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import torch

from repro.distill.arraydata import ArrayData
from repro.distill.methods import build_method
from repro.distill.models import build_model
from repro.distill.params import TrainConfig
from repro.distill.trainer import Trainer

_path = Path(__file__).parents[1] / "benchmarks" / "bench_stacking.py"
_spec = importlib.util.spec_from_file_location("_bench_stacking", _path)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

K, B, CLASSES, STEPS = 3, 8, 10, 3
#: fp32: grouped vs separate convolutions differ by rounding only (measured <= 3e-6 in the
#: loss, 3e-7 in the weights after STEPS steps).
TOL_LOSS, TOL_STATE = 1e-5, 1e-5


def _trainers(students, teacher, tmp_path: Path, bf16: bool) -> list[Trainer]:
    """One real Trainer per student: the kd method (T 4, CE 0.1, KD 0.9), TrainConfig's SGD."""
    data = ArrayData(torch.zeros(B, 3, 32, 32, dtype=torch.uint8), torch.zeros(B).long(), CLASSES)
    out = []
    for k, s in enumerate(students):
        d = build_method("kd", copy.deepcopy(s), copy.deepcopy(teacher))
        cfg = TrainConfig(epochs=1, device="cpu", threads=1, cpu_bf16=bf16, lr_milestones=[])
        out.append(Trainer(d, data, data, cfg, tmp_path / f"cell{k}{'bf16' if bf16 else ''}"))
    return out


def _setup():
    torch.manual_seed(0)
    teacher = build_model("resnet8", CLASSES).eval()
    students = bench.make_students("resnet8", K, CLASSES, torch.device("cpu"))
    assert (students[0].fc.weight != students[1].fc.weight).any()  # K different students
    return teacher, students


def _batches():
    gen = torch.Generator().manual_seed(1)
    for step in range(1, STEPS + 1):
        x = torch.randn(B, 3, 32, 32, generator=gen).contiguous(memory_format=torch.channels_last)
        yield step, x, torch.randint(0, CLASSES, (B,), generator=gen)


def _stacked_losses(stacked, teacher, x, y, bf16: bool) -> torch.Tensor:
    with torch.no_grad(), bench.autocast(x.device, bf16):
        logits_t = teacher.to(memory_format=torch.channels_last)(x)[0]
    return stacked.step(x, logits_t, y, bf16).double()


def _trainer_losses(trainers, x, y, step) -> torch.Tensor:
    ref = []
    for t in trainers:
        sums = t.open_epoch(1)  # fresh sums: they hold this step's loss times B
        t.train_batch(x, y, B, 1, step, sums)
        ref.append(sums.sums["loss"] / B)
    return torch.tensor(ref, dtype=torch.float64)


def test_stacked_step_equals_trainer_steps(tmp_path):
    teacher, students = _setup()
    trainers = _trainers(students, teacher, tmp_path, bf16=False)
    stacked = bench.Stacked(students)
    for step, x, y in _batches():
        losses = _stacked_losses(stacked, teacher, x, y, bf16=False)
        ref = _trainer_losses(trainers, x, y, step)
        rel = ((losses - ref).abs() / ref.abs()).max()
        assert rel <= TOL_LOSS, f"step {step}: losses {losses.tolist()} vs trainers' {ref}"
    moved = 0.0
    for k, t in enumerate(trainers):
        mine = stacked.state(k)
        theirs = {**dict(t.student.named_parameters()), **dict(t.student.named_buffers())}
        assert mine.keys() == theirs.keys()
        for name, value in theirs.items():
            diff = (mine[name].detach().double() - value.detach().double()).abs().max()
            assert diff <= TOL_STATE, f"student {k} {name}: {diff:.2e}"
        moved = max(moved, (theirs["fc.weight"] - students[k].fc.weight).abs().max().item())
        assert int(mine["bn1.num_batches_tracked"]) == STEPS
    assert moved > 5 * TOL_STATE  # the students did move: the comparison means something


def test_stacked_bf16_step_is_as_close_to_float32_as_the_trainers_bf16_step(tmp_path):
    """bf16 on CPU: the KD loss of near-uniform random networks is ill-conditioned (the
    trainers' own bf16 step is up to 8 % off its float32 loss here), and two bf16 paths
    round differently, so the stacked bf16 step is held to float32 at the first step (same
    weights), within twice the trainers' own bf16 error (plus 1 %); its dtypes are checked
    below. This catches a gross error (a missing term, a wrong temperature), not a swap of two
    students whose losses lie closer than bf16's error: equality step by step, student by
    student, is the float32 test's."""
    teacher, students = _setup()
    step, x, y = next(_batches())
    exact = _trainer_losses(_trainers(students, teacher, tmp_path, bf16=False), x, y, step)
    trainers_bf16 = _trainer_losses(_trainers(students, teacher, tmp_path, bf16=True), x, y, step)
    stacked = _stacked_losses(bench.Stacked(students), teacher, x, y, bf16=True)
    own_error = ((trainers_bf16 - exact).abs() / exact).max()
    error = (stacked - exact).abs() / exact
    assert (error <= 2 * own_error + 1e-2).all(), f"{stacked.tolist()} vs float32 {exact.tolist()}"


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
