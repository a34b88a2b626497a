"""Cost of one training step of each KD method variant, as a ratio to plain KD, in one process.

resnet32x4 -> resnet8x4 on CIFAR-shaped batches (batch 64, normalised, channels_last), SGD on
the student, the same models and batches for every variant: ``Trainer.train_step``'s work
(forward_train, backward, step) without the data pipeline. R2KD's augmented copy costs a
second student pass and two more teacher passes (the blended teacher runs teacher and pruned
copy); CutMixPick scores 2B candidates; AutoAugment per image is a Python loop over the batch.

Prints ms per step and the ratio to ``kd`` (best of ``--repeats``). Usage::

    uv run python packages/distill/benchmarks/bench_kd_methods.py --steps 5 [--device cuda]
"""

from __future__ import annotations

import argparse
import time

import torch

from repro.distill.arraydata import CIFAR100_STATS
from repro.distill.methods import build_method
from repro.distill.models import build_model

VARIANTS = {
    "kd": ("kd", {}),
    "dkd": ("dkd", {}),
    "cskd": ("cskd", {}),
    "cskd_cswt": ("cskd", {"temperature": {"policy": "cswt"}, "base_temperature": 4}),
    "cskd_lud": (
        "cskd",
        {
            "temperature": {"policy": "cswt"},
            "base_temperature": 4,
            "t2_scale": True,
            "class_correlation_weight": 1,
            "batch_correlation_weight": 1,
            "confidence_mask": True,
            "strong_view": True,
        },
    ),  # fmt: skip
    "r2kd": ("r2kd", {}),
    "r2kd_softrank": ("r2kd", {"rank": "soft"}),
    "r2kd_cutmix": ("r2kd", {"augmentation": "cutmix"}),
    "r2kd_cutmixpick": ("r2kd", {"augmentation": "cutmixpick"}),
    "r2kd_autoaug": ("r2kd", {"augmentation": "autoaugment"}),
    "r2kd_autoaug_batch": ("r2kd", {"augmentation": "autoaugment", "aug_per": "batch"}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (shared machines)")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    amp = device.type == "cuda"
    torch.manual_seed(0)
    teacher = build_model("resnet32x4", 100)
    student0 = build_model("resnet8x4", 100)
    g = torch.Generator().manual_seed(1)
    shape = (args.batch, 3, 32, 32)
    batches = [
        (torch.randn(shape, generator=g), torch.randint(100, (args.batch,), generator=g))
        for _ in range(args.steps)
    ]
    batches = [
        (x.to(device).contiguous(memory_format=torch.channels_last), y.to(device))
        for x, y in batches
    ]
    times = {}
    for name in args.variants:
        method, kw = VARIANTS[name]
        student = build_model("resnet8x4", 100)
        student.load_state_dict(student0.state_dict())
        d = build_method(method, student, teacher, **kw).to(device)
        d.to(memory_format=torch.channels_last)
        d.bind_run(0, *CIFAR100_STATS)
        d.train()
        opt = torch.optim.SGD(d.student_parameters(), lr=0.05, momentum=0.9)

        def step(x, y, d=d, opt=opt):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                _, losses = d.forward_train(x, y, 1)
            opt.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            opt.step()

        step(*batches[0])  # warm-up
        best = float("inf")
        for _ in range(args.repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for x, y in batches:
                step(x, y)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, (time.perf_counter() - t0) / len(batches))
        times[name] = best
        ratio = best / times["kd"] if "kd" in times else float("nan")
        print(f"{name:20s} {1000 * best:9.1f} ms/step   {ratio:5.2f}x kd", flush=True)


if __name__ == "__main__":
    main()
