"""KD training throughput: our loop vs an mdistiller-style reference, in one process.

Both loops train resnet8x4 from a frozen resnet32x4 teacher with Hinton KD (T=4, CE 0.1 /
KD 0.9) on CIFAR-shaped uint8 data, SGD, batch 64, same models and initial weights.

- reference: torch ``DataLoader`` over a numpy dataset with per-sample torchvision transforms
  (RandomCrop(32, 4), RandomHorizontalFlip, ToTensor, Normalize) in fp32, then ``.to(device)``
  — the way mdistiller feeds its trainer (workers: ``--workers``, default 0 on CPU).
- ours: ``repro.distill`` — data on the device as uint8, kornia batch augmentation,
  channels_last (NHWC) models and inputs, and on CUDA bf16 autocast; on CPU it is timed
  twice, in fp32 (the default) and with ``cpu_bf16`` (bf16 autocast, opt-in).

Prints images/s of each and the ratios (best of ``--repeats``). Usage::

    uv run python packages/distill/benchmarks/bench_kd_throughput.py --steps 20 [--device cuda]
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch

from repro.distill.arraydata import CIFAR100_STATS, ArrayData
from repro.distill.methods import build_method
from repro.distill.models import build_model
from repro.distill.params import TrainConfig
from repro.distill.trainer import Trainer


def reference_loader(images: np.ndarray, labels: np.ndarray, batch: int, workers: int):
    from torchvision import transforms

    mean, std = CIFAR100_STATS
    tf = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )

    class Dataset(torch.utils.data.Dataset):
        def __len__(self):
            return len(labels)

        def __getitem__(self, i):
            from PIL import Image

            return tf(Image.fromarray(images[i])), int(labels[i])

    return torch.utils.data.DataLoader(
        Dataset(),
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        pin_memory=torch.cuda.is_available(),
    )


def throughput(batches, step, device, steps: int, warmup: int) -> float:
    """Images/s of ``step(x, y)`` over ``steps`` batches after ``warmup`` untimed ones."""
    done, t0 = 0, 0.0
    for i in range(warmup + steps):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        x, y = next(batches)
        step(x, y)
        done += len(y) if i >= warmup else 0
    if device.type == "cuda":
        torch.cuda.synchronize()
    return done / (time.perf_counter() - t0)


def forever(make_iter):
    """Restart an epoch iterator whenever it runs out."""
    while True:
        yield from make_iter()


def run_reference(distiller, loader, device, steps: int, warmup: int) -> float:
    opt = torch.optim.SGD(distiller.student_parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    distiller.train()

    def step(x, y):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        _, losses = distiller.forward_train(x, y, epoch=1)
        loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return throughput(forever(lambda: iter(loader)), step, device, steps, warmup)


def run_ours(
    distiller, data: ArrayData, device, steps: int, warmup: int, cpu_bf16: bool = False
) -> float:
    """Time ``Trainer.train_step``, the exact step the trainer runs."""
    mean, std = CIFAR100_STATS
    cfg = TrainConfig(
        epochs=1,
        batch_size=64,
        device=str(device),
        mean=list(mean),
        std=list(std),
        crop_padding=4,
        flip=True,
        cpu_bf16=cpu_bf16,
    )
    trainer = Trainer(distiller, data, data, cfg, "/tmp/repro-bench-unused")
    trainer.distiller.train()
    gen = torch.Generator().manual_seed(0)
    batches = forever(lambda: data.batches(64, shuffle=True, generator=gen, drop_last=True))
    return throughput(batches, lambda x, y: trainer.train_step(x, y, 1), device, steps, warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--n", type=int, default=4096, help="dataset size (CIFAR-shaped)")
    parser.add_argument("--workers", type=int, default=0, help="reference DataLoader workers")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 100, args.n)
    torch.manual_seed(0)
    teacher = build_model("resnet32x4", 100)
    student = build_model("resnet8x4", 100)
    data = ArrayData(
        torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device),
        torch.from_numpy(labels).to(device),
        100,
    )
    loader = reference_loader(images, labels, 64, args.workers)
    variants = {"channels_last, bf16" if device.type == "cuda" else "channels_last": False}
    if device.type == "cpu":
        variants["channels_last, cpu_bf16"] = True
    ref_ips: list[float] = []
    our_ips: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeats):  # alternate so drifts in machine load hit every loop
        ref = build_method("kd", copy.deepcopy(student), copy.deepcopy(teacher)).to(device)
        ref_ips.append(run_reference(ref, loader, device, args.steps, args.warmup))
        for label, bf16 in variants.items():
            ours = build_method("kd", copy.deepcopy(student), copy.deepcopy(teacher))
            our_ips[label].append(run_ours(ours, data, device, args.steps, args.warmup, bf16))
    r = max(ref_ips)
    name = (
        torch.cuda.get_device_name(0)
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"device: {name}; torch {torch.__version__}; {args.steps} steps x 64 images")
    print(f"reference (DataLoader + per-sample transforms, fp32): {r:8.1f} images/s")
    for label, runs in our_ips.items():
        o = max(runs)
        print(
            f"ours (on-device uint8 + kornia batch aug, {label}): {o:8.1f} images/s, "
            f"ratio {o / r:.2f}x"
        )


if __name__ == "__main__":
    main()
