"""Throughput of synthetic burst generation (batched torch vs per-sample NumPy/OpenCV loop)
and model inference time, at the challenge size (14 x 4 x 48 x 48 packed frames).

    uv run --frozen python packages/burstsr/benchmarks/bench_bursts.py [--device cuda]

Both generators run in this process on the same kind of input (random 8-bit 432 x 432 sRGB
crops, as read from JPEG/PNG);
each call is timed separately and the best and median rates are printed with their ratios
(goal: >= 10x on CPU); the median is the robust figure on a shared machine.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch

from repro.burstsr import models, reference, synth


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _rates(times: list[float], per: int) -> tuple[float, float]:
    """(best, median) bursts per second from per-call wall times of ``per`` bursts each."""
    ordered = sorted(times)
    return per / ordered[0], per / ordered[len(ordered) // 2]


def bench_reference(cfg: synth.BurstConfig, count: int) -> tuple[float, float]:
    """Bursts per second (best, median) of the one-burst-at-a-time NumPy/OpenCV generator."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, cfg.source_size, cfg.source_size, 3)) / 255.0
    reference.reference_burst(images[0], cfg, rng)  # warm-up
    times = []
    for img in images:
        t0 = time.perf_counter()
        reference.reference_burst(img, cfg, rng)
        times.append(time.perf_counter() - t0)
    return _rates(times, 1)


def bench_batched(
    cfg: synth.BurstConfig, batch: int, reps: int, device: torch.device
) -> tuple[float, float]:
    """Bursts per second (best, median) of the batched torch generator (input on the device)."""
    gen = torch.Generator(device=device).manual_seed(0)
    shape = (batch, 3, cfg.source_size, cfg.source_size)
    images = torch.randint(0, 256, shape, device=device, generator=gen, dtype=torch.uint8)
    times = []
    with torch.no_grad():
        synth.generate(images, cfg, gen)  # warm-up
        for _ in range(reps):
            _sync(device)
            t0 = time.perf_counter()
            out = synth.generate(images, cfg, gen)
            _sync(device)
            times.append(time.perf_counter() - t0)
    assert out.burst.shape == (batch, cfg.burst_size, 4, cfg.crop // 8, cfg.crop // 8)
    return _rates(times, batch)


def bench_models(cfg: synth.BurstConfig, device: torch.device, reps: int) -> None:
    """Seconds per 14-frame burst for each baseline (DBSR widths, random weights)."""
    burst = torch.rand(1, cfg.burst_size, 4, cfg.crop // 8, cfg.crop // 8, device=device)
    flow = torch.zeros(1, cfg.burst_size, 2, cfg.crop // 8, cfg.crop // 8, device=device)
    net = models.NetConfig()
    candidates = {
        "bicubic": lambda b, f: models.demosaic_upsample(b, "bicubic"),
        "single (DBSR widths)": models.SingleFrameNet(net).to(device).eval(),
        "burst, gt flow (DBSR widths)": models.BurstNet(net).to(device).eval(),
        "burst, flow net (DBSR widths)": models.BurstNet(net, models.FlowNet(net))
        .to(device)
        .eval(),
    }
    with torch.no_grad():
        for name, model in candidates.items():
            model(burst, flow)
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(reps):
                model(burst, flow)
            _sync(device)
            print(f"inference {name:32s} {(time.perf_counter() - t0) / reps * 1000:9.1f} ms/burst")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=32, help="bursts per batched call")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--ref-count", type=int, default=16, help="bursts for the reference loop")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-models", action="store_true")
    args = parser.parse_args()
    if args.threads:  # both generators get the same number of threads
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    device = torch.device(args.device)
    cfg = synth.BurstConfig()  # 14 frames, 384 HR crop -> 4 x 48 x 48 packed
    print(
        f"device {device}, torch threads {torch.get_num_threads()}, "
        f"bursts of {cfg.burst_size} x 4 x {cfg.crop // 8} x {cfg.crop // 8}"
    )
    ref = bench_reference(cfg, args.ref_count)
    print(
        f"reference (NumPy/OpenCV, per sample): best {ref[0]:8.2f}, median {ref[1]:8.2f} bursts/s"
    )
    fast = bench_batched(cfg, args.batch, args.reps, device)
    print(
        f"batched torch (batch {args.batch}):      best {fast[0]:8.2f}, median {fast[1]:8.2f} "
        "bursts/s"
    )
    print(f"speed-up: best {fast[0] / ref[0]:.1f}x, median {fast[1] / ref[1]:.1f}x")
    if not args.no_models:
        bench_models(cfg, device, reps=2)


if __name__ == "__main__":
    main()
