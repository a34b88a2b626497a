"""Lockstep KD: a row of cells trained together vs the same cells one after another.

The five Energy KD paper variants of ``config/paper.yaml`` (kd, dkd, energy_kd, energy_dkd,
heda; their args for the pair) distil ``--pair`` (default resnet32x4-resnet8x4) on CIFAR-shaped
uint8 data, batch 64. Three ways, in one process, the same steps (``Trainer.train_batch``, the
trainer's real step with its loss check):

- alone: each cell's Trainer in turn, each drawing, augmenting and running its teacher;
- lockstep: one batch, one augmentation and one teacher forward per autocast state for the five
  (``repro.distill.lockstep``; the teacher is a ``SharedTeacher``);
- reference: bench_kd_throughput's mdistiller-style loop (DataLoader + per-sample transforms,
  fp32) for each method in turn.

Prints cell-images/s (images stepped, summed over the cells, per second) of each, in fp32 and
bf16 (``cpu_bf16`` on CPU, ``amp`` on CUDA), and the ratios. ``--estimate`` also prints the
training hours of the three papers' CIFAR-100 tables (cells, epochs and batch sizes from the
plan of ``config/paper.yaml``; steps per epoch ceil(50000 / batch)) from per-step times
measured here for every pair of those tables (``--pairs`` to restrict), alone vs lockstep
(evaluation time excluded). Stacking same-architecture students into one batched forward
(torch.func.stack_module_state + vmap) and CUDA streams are measured apart, on K students of
one architecture with the kd loss: ``bench_stacking.py``.

    uv run python packages/distill/benchmarks/bench_lockstep.py --threads 1 --steps 6
    uv run python packages/distill/benchmarks/bench_lockstep.py --device cuda --estimate
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from bench_kd_throughput import reference_loader, run_reference  # noqa: E402

from repro.distill import plan  # noqa: E402
from repro.distill.arraydata import CIFAR100_STATS, ArrayData  # noqa: E402
from repro.distill.lockstep import LockstepTrainer  # noqa: E402
from repro.distill.methods import build_method  # noqa: E402
from repro.distill.models import build_model  # noqa: E402
from repro.distill.params import TrainConfig  # noqa: E402
from repro.distill.shared import SharedTeacher, share_pruned_copies  # noqa: E402
from repro.distill.trainer import Trainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
ENERGY_KD = ["kd", "dkd", "energy_kd", "energy_dkd", "heda"]
CIFAR_TRAIN_N = 50_000


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_trainers(pool, cells, teacher, students, data, device, bf16, shared: bool):
    """One Trainer per cell (variant, student name) on ``data``; one SharedTeacher when
    ``shared`` (else each cell gets its own copy of the teacher)."""
    mean, std = CIFAR100_STATS
    wrapper = SharedTeacher(copy.deepcopy(teacher)) if shared else None
    distillers = []
    for variant, student, pair in cells:
        method = pool["variants"][variant]["method"]
        args = plan.variant_args(pool, variant, "cifar100", pair)
        t = wrapper if shared else copy.deepcopy(teacher)
        distillers.append(build_method(method, copy.deepcopy(students[student]), t, **args))
    if shared:
        share_pruned_copies(distillers, wrapper)
    trainers = []
    for d in distillers:
        cfg = TrainConfig(
            epochs=1, batch_size=64, device=str(device), mean=list(mean), std=list(std),
            crop_padding=4, flip=True, cpu_bf16=bf16, amp=bf16,
        )  # fmt: skip
        trainers.append(Trainer(d, data, data, cfg, "/tmp/repro-bench-unused"))
    # energy thresholds on the synthetic data: one pass for the group, as the group job does
    if shared:
        LockstepTrainer(trainers, wrapper).start()
    else:
        for t in trainers:
            t.prepare()
    for t in trainers:
        t.distiller.train()
    return trainers, wrapper


def time_steps(trainers, wrapper, data, device, steps: int, warmup: int) -> float:
    """Seconds per step of the group (lockstep when ``wrapper``), else the sum of the cells'
    seconds per step, each cell timed over its own batches (alone)."""
    lead = trainers[0]

    def batches():
        gen = torch.Generator().manual_seed(0)
        while True:
            yield from data.batches(64, shuffle=True, generator=gen, drop_last=True)

    def run(group):
        it = batches()
        sums = [t.open_epoch(1) for t in group]
        for i in range(warmup + steps):
            if i == warmup:
                _sync(device)
                t0 = time.perf_counter()
            images, labels = next(it)
            x = lead.augment(images).contiguous(memory_format=torch.channels_last)
            if wrapper is not None:
                wrapper.share(x)
            for t, s in zip(group, sums, strict=True):
                t.train_batch(x, labels, len(labels), 1, i + 1, s)
        _sync(device)
        return (time.perf_counter() - t0) / steps

    if wrapper is not None:
        return run(trainers)
    return sum(run([t]) for t in trainers)


def measure(pool, cells, teacher, students, data, device, bf16, steps, warmup, which="both"):
    """(seconds per group step alone-sum, lockstep) for ``cells``; ``which`` ("alone",
    "lockstep") skips the other (NaN)."""
    t_alone = t_lock = float("nan")
    if which != "lockstep":
        alone, _ = make_trainers(pool, cells, teacher, students, data, device, bf16, False)
        t_alone = time_steps(alone, None, data, device, steps, warmup)
        del alone
    if which != "alone":
        group, wrapper = make_trainers(pool, cells, teacher, students, data, device, bf16, True)
        t_lock = time_steps(group, wrapper, data, device, steps, warmup)
    return t_alone, t_lock


def synthetic(device, n):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 100, n)
    data = ArrayData(
        torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device),
        torch.from_numpy(labels).to(device), 100,
    )  # fmt: skip
    return images, labels, data


def estimate(pool, config, args, device, data, bf16: bool) -> None:
    """Hours of the three papers' CIFAR-100 tables, alone vs lockstep, from step times
    measured here for each row (pair) of those tables."""
    cells = [c for c in plan.pool_cells(config, list(plan.PAPERS)) if c.dataset == "cifar100"]
    if args.pairs:
        cells = [c for c in cells if c.pair in args.pairs]
    if not cells:
        print(f"\nestimate: no CIFAR-100 cells of the papers' tables for pairs {args.pairs}")
        return
    groups = plan.lockstep_groups(pool, cells)
    by_pair: dict[str, list] = {}
    for g, cs in groups.items():
        by_pair.setdefault(g.pair, []).append(cs)
    total_alone = total_lock = 0.0
    print(f"\nestimate ({'bf16' if bf16 else 'fp32'}; evaluation excluded):")
    print("pair | cells (all seeds) | hours alone | hours lockstep | ratio")
    for pair, rows in sorted(by_pair.items()):
        teacher_name, student_name = plan.split_pair(pair)
        torch.manual_seed(0)
        teacher = build_model(teacher_name, 100).to(device)
        students = {student_name: build_model(student_name, 100)}
        rows_hours = [0.0, 0.0]
        cache: dict[tuple, tuple[float, float]] = {}
        for row in rows:  # one row per seed (and data setting): same times for each seed
            info = []
            for c in row:
                p = plan.kd_params(pool, c)
                spe = math.ceil(CIFAR_TRAIN_N / p["train"]["batch_size"])
                info.append((c.variant, p["train"]["epochs"], spe))
            # lockstep: segments of epochs with the same active cells
            ends = sorted({e for _, e, _ in info})
            start = 0
            for end in ends:
                active = tuple(v for v, e, _ in info if e >= end)
                if active not in cache:
                    spec = [(v, student_name, pair) for v in active]
                    cache[active] = measure(pool, spec, teacher, students, data, device, bf16,
                                            args.steps, args.warmup, "lockstep")  # fmt: skip
                spe = info[0][2]
                rows_hours[1] += cache[active][1] * spe * (end - start) / 3600
                start = end
            for v, e, spe in info:
                key = ("alone", v)
                if key not in cache:
                    cache[key] = measure(pool, [(v, student_name, pair)], teacher, students,
                                         data, device, bf16, args.steps, args.warmup,
                                         "alone")  # fmt: skip
                rows_hours[0] += cache[key][0] * spe * e / 3600
        n = sum(len(r) for r in rows)
        total_alone += rows_hours[0]
        total_lock += rows_hours[1]
        print(f"{pair} | {n} | {rows_hours[0]:.1f} | {rows_hours[1]:.1f} | "
              f"{rows_hours[0] / rows_hours[1]:.2f}x")  # fmt: skip
    print(f"total ({len(cells)} cells) | {total_alone:.1f} h | {total_lock:.1f} h | "
          f"{total_alone / total_lock:.2f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--pair", default="resnet32x4-resnet8x4")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--n", type=int, default=2048, help="dataset size (CIFAR-shaped)")
    parser.add_argument("--workers", type=int, default=0, help="reference DataLoader workers")
    parser.add_argument("--threads", type=int, help="torch CPU threads (shared machine: 1)")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference loop")
    parser.add_argument("--estimate", action="store_true", help="hours of the CIFAR-100 tables")
    parser.add_argument("--pairs", nargs="*", help="--estimate: only these pairs")
    parser.add_argument("--estimate-only", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    pool = config["kd"]
    images, labels, data = synthetic(device, args.n)
    name = (
        torch.cuda.get_device_name(0)
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"device: {name}; torch {torch.__version__}; {args.steps} steps x 64 images; "
          f"pair {args.pair}; cells {', '.join(ENERGY_KD)}")  # fmt: skip
    modes = {"fp32": False, "bf16": True}
    if not args.estimate_only:
        teacher_name, student_name = plan.split_pair(args.pair)
        torch.manual_seed(0)
        teacher = build_model(teacher_name, 100).to(device)
        students = {student_name: build_model(student_name, 100)}
        cells = [(v, student_name, args.pair) for v in ENERGY_KD]
        k = len(cells)
        ref = None
        if not args.no_reference:
            loader = reference_loader(images, labels, 64, args.workers)
            ips = []
            for variant, _, _ in cells:
                method = pool["variants"][variant]["method"]
                kw = plan.variant_args(pool, variant, "cifar100", args.pair)
                d = build_method(method, copy.deepcopy(students[student_name]),
                                 copy.deepcopy(teacher), **kw).to(device)  # fmt: skip
                if d.teacher_statistics():
                    d.prepare(((x.to(device), y) for x, y in loader), drop_last=True)
                ips.append(run_reference(d, loader, device, args.steps, args.warmup))
            ref = k / sum(1.0 / r for r in ips)  # cell-images/s of the five in turn
            print(f"reference (mdistiller-style, fp32, one after another): {ref:8.1f} "
                  "cell-images/s")  # fmt: skip
        for label, bf16 in modes.items():
            t_alone, t_lock = measure(pool, cells, teacher, students, data, device, bf16,
                                      args.steps, args.warmup)  # fmt: skip
            a, lk = k * 64 / t_alone, k * 64 / t_lock
            line = (f"{label}: alone one after another {a:8.1f}, lockstep {lk:8.1f} "
                    f"cell-images/s; lockstep/alone {lk / a:.2f}x")  # fmt: skip
            if ref is not None:
                line += f"; lockstep/reference {lk / ref:.2f}x"
            print(line)
    if args.estimate or args.estimate_only:
        for bf16 in [True] if device.type == "cuda" else [False, True]:
            estimate(pool, config, args, device, data, bf16)


if __name__ == "__main__":
    main()
