"""Throughput of synthetic burst generation (batched torch vs per-sample NumPy/OpenCV loop)
and model inference time, at the challenge size (14 x 4 x 48 x 48 packed frames).

    uv run --frozen python packages/burstsr/benchmarks/bench_bursts.py [--device cuda]

All generators run in this process on the same input (random 8-bit 432 x 432 sRGB crops, as
read from JPEG/PNG), timed in alternating rounds; best and median rates are printed with their
ratios (goal: >= 10x on CPU); the median is the robust figure on a shared machine. The
reference is timed twice: producing what the toolkit's generator produces (burst, ground
truth and its dense ground-truth flow, as ours does) and without the flow.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from repro.burstsr import models, synth
from repro.burstsr.pwcnet import PWCAligner, PWCNet, estimate

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
import toolkit_reference as reference  # noqa: E402 - test support, not shipped in the package


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _rates(times: list[float], per: int) -> tuple[float, float]:
    """(best, median) bursts per second from per-call wall times of ``per`` bursts each."""
    ordered = sorted(times)
    return per / ordered[0], per / ordered[len(ordered) // 2]


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_generation(
    cfg: synth.BurstConfig, batch: int, rounds: int, device: torch.device
) -> dict[str, tuple[float, float]]:
    """Bursts per second (best, median) of the three generators, timed in alternation.

    Each round times one batched call, then ``batch`` reference bursts with the toolkit's
    flow and ``batch`` without it, so a slow spell on a shared machine hits all three alike.
    """
    rng = np.random.default_rng(0)
    gen = torch.Generator(device=device).manual_seed(0)
    shape = (batch, 3, cfg.source_size, cfg.source_size)
    images = torch.randint(0, 256, shape, device=device, generator=gen, dtype=torch.uint8)
    # the toolkit reads 8-bit images and unprocesses them as float32
    floats = images.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32) / np.float32(255.0)

    buffers = synth.Buffers()  # as the training loop: outputs reused from call to call

    def batched() -> None:
        with torch.no_grad():
            out = synth.generate(images, cfg, gen, buffers=buffers)
        _sync(device)
        assert out.burst.shape == (batch, cfg.burst_size, 4, cfg.crop // 8, cfg.crop // 8)

    def reference_loop(flow: bool) -> None:
        for img in floats:
            reference.reference_burst(img, cfg, rng, flow=flow)

    runs = {
        "batched": batched,
        "reference, toolkit outputs (burst, gt, flow)": lambda: reference_loop(True),
        "reference, burst and gt only": lambda: reference_loop(False),
    }
    for fn in runs.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            times[name].append(_timed(fn))
    return {name: _rates(t, batch) for name, t in times.items()}


def bench_models(cfg: synth.BurstConfig, device: torch.device, reps: int) -> None:
    """Seconds per 14-frame burst for each baseline (DBSR widths, random weights)."""
    burst = torch.rand(1, cfg.burst_size, 4, cfg.crop // 8, cfg.crop // 8, device=device)
    flow = torch.zeros(1, cfg.burst_size, 2, cfg.crop // 8, cfg.crop // 8, device=device)
    net = models.NetConfig()
    pwc = PWCNet().to(device).eval()
    hr = torch.rand(1, 3, cfg.crop, cfg.crop, device=device)
    candidates = {
        "bicubic": lambda b, f: models.demosaic_upsample(b, "bicubic"),
        "single (DBSR widths)": models.SingleFrameNet(net).to(device).eval(),
        "burst, gt flow (DBSR widths)": models.BurstNet(net).to(device).eval(),
        "burst, flow net (DBSR widths)": models.BurstNet(net, models.FlowNet(net))
        .to(device)
        .eval(),
        "burst, PWC-Net (DBSR widths)": models.BurstNet(net, PWCAligner(PWCNet()))
        .to(device)
        .eval(),
        "PWC-Net alone, 384 x 384 pair": lambda b, f: estimate(pwc, hr, hr),
    }
    with torch.no_grad():
        for name, model in candidates.items():
            model(burst, flow)
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(reps):
                model(burst, flow)
            _sync(device)
            per = (time.perf_counter() - t0) / reps * 1000
            print(f"inference {name:32s} {per:9.1f} ms/burst")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16, help="bursts per batched call")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (all generators)")
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
    rates = bench_generation(cfg, args.batch, args.rounds, device)
    fast = rates.pop("batched")
    print(
        f"batched torch (batch {args.batch}): best {fast[0]:8.1f}, median {fast[1]:8.1f} bursts/s"
    )
    for name, ref in rates.items():
        print(
            f"{name}: best {ref[0]:6.1f}, median {ref[1]:6.1f} bursts/s; "
            f"speed-up best {fast[0] / ref[0]:.1f}x, median {fast[1] / ref[1]:.1f}x"
        )
    if not args.no_models:
        bench_models(cfg, device, reps=2)


if __name__ == "__main__":
    main()
