"""Cost of R2KD's loss terms per batch, against Hinton KD in the same process.

Times forward + backward (student logits require grad) of: ``kd_loss`` (the reference),
R2KD's value term (Pearson), the official hard rank term (argsort, no backward), and the
soft rank term (pairwise sigmoids, O(C^2) per row) for B x C logits; best of ``--repeats``
after a warm-up, in ms per batch, and each as a ratio to KD. Usage::

    uv run python packages/distill/benchmarks/bench_r2kd_terms.py --threads 1 [--device cuda]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from repro.distill.losses.correlation import rank_loss, value_loss
from repro.distill.losses.functional import kd_loss


def best_ms(fn: Callable[[], None], repeats: int, device: str) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 1000 * best


def time_terms(c: int, batch: int, tau: float, repeats: int, device: str) -> dict[str, float]:
    """Best ms per batch of each term's forward + backward on B x C random logits."""
    g = torch.Generator().manual_seed(0)
    zs = (3 * torch.randn(batch, c, generator=g)).to(device).requires_grad_(True)
    zt = (3 * torch.randn(batch, c, generator=g)).to(device)

    def run(loss_fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
        def step() -> None:
            loss = loss_fn()
            if loss.requires_grad:  # the hard rank term has no graph
                loss.backward()
            zs.grad = None

        return step

    terms = {
        "kd": run(lambda: kd_loss(zs, zt, 4.0)),
        "value (pearson)": run(lambda: value_loss(zs, zt, 4.0)),
        "rank hard": run(lambda: rank_loss(zs, zt, 4.0)),
        "rank soft": run(lambda: rank_loss(zs, zt, 4.0, ranking="soft", tau=tau)),
    }
    return {name: best_ms(fn, repeats, device) for name, fn in terms.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--classes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--tau", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {args.device}, batch {args.batch}, threads {torch.get_num_threads()}")
    for c in args.classes:
        times = time_terms(c, args.batch, args.tau, args.repeats, args.device)
        for name, ms in times.items():
            print(f"C={c:5d}  {name:16s} {ms:9.2f} ms  ({ms / times['kd']:7.1f} x KD)")


if __name__ == "__main__":
    main()
