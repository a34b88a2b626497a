"""Retrieval evaluation: our vectorised vsepp protocol against a per-query loop written the vsepp
way, on one N x 5N similarity matrix (default 5K images x 25K captions, COCO 5K), in one process.

- reference: for each image, ``argsort`` its 5N scores and take the best position of its 5
  captions; for each caption, ``argsort`` its N image scores and find its image (vsepp's
  ``i2t`` / ``t2i``, NumPy, one query at a time). Timed from the similarity matrix, and once
  more from the embeddings with vsepp's per-query dot products (``--with-dots``).
- ours: ``repro.vse.evaluate.ranks`` over the whole matrix, both directions (torch, on
  ``--device``), and from the embeddings one matrix product first.

Scores are continuous (no ties), so both must give identical ranks; the script checks it.
Usage::

    uv run python packages/vse/benchmarks/bench_eval.py [--images 5000] [--device cuda]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from repro.vse.evaluate import ranks


def vsepp_ranks(sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = sims.shape[0]
    r_i2t = np.zeros(n)
    for i in range(n):
        inds = np.argsort(sims[i])[::-1]
        r_i2t[i] = min(np.where(inds == j)[0][0] for j in range(5 * i, 5 * i + 5))
    r_t2i = np.zeros(5 * n)
    for i in range(n):
        d = sims[:, 5 * i : 5 * i + 5].T
        for k in range(5):
            inds = np.argsort(d[k])[::-1]
            r_t2i[5 * i + k] = np.where(inds == i)[0][0]
    return r_i2t, r_t2i


def vsepp_from_embeddings(img: np.ndarray, cap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """vsepp's loops with their per-query dot products (img: N x K, cap: 5N x K)."""
    n = img.shape[0]
    r_i2t = np.zeros(n)
    for i in range(n):
        inds = np.argsort(np.dot(img[i], cap.T))[::-1]
        r_i2t[i] = min(np.where(inds == j)[0][0] for j in range(5 * i, 5 * i + 5))
    r_t2i = np.zeros(5 * n)
    for i in range(n):
        d = np.dot(cap[5 * i : 5 * i + 5], img.T)
        for k in range(5):
            inds = np.argsort(d[k])[::-1]
            r_t2i[5 * i + k] = np.where(inds == i)[0][0]
    return r_i2t, r_t2i


def ours(sims: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out = ranks(sims)  # both directions in one pass
    if sims.is_cuda:
        torch.cuda.synchronize()
    return out


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=1024, help="embedding width")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads on CPU")
    parser.add_argument("--repeats", type=int, default=3, help="best of, for ours")
    parser.add_argument("--with-dots", action="store_true", help="also time from embeddings")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n = args.images
    img = rng.normal(size=(n, args.dim)).astype(np.float32)
    cap = np.repeat(img, 5, axis=0) + 1.5 * rng.normal(size=(5 * n, args.dim)).astype(np.float32)
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    cap /= np.linalg.norm(cap, axis=1, keepdims=True)
    sims = img @ cap.T
    print(f"{n} images x {5 * n} captions, device {args.device}, {args.threads} thread(s)")

    t_ref, (ref_i, ref_t) = best_of(lambda: vsepp_ranks(sims), 1)
    sims_dev = torch.from_numpy(sims).to(args.device)
    ours(sims_dev)  # warm-up
    t_ours, (our_i, our_t) = best_of(lambda: ours(sims_dev), args.repeats)
    assert np.array_equal(our_i.cpu().numpy(), ref_i) and np.array_equal(our_t.cpu().numpy(), ref_t)
    print(
        f"from the similarity matrix: vsepp loop {t_ref:.2f} s, ours {t_ours:.3f} s, "
        f"ratio {t_ref / t_ours:.0f}x (ranks identical)"
    )
    if args.with_dots:
        t_ref2, _ = best_of(lambda: vsepp_from_embeddings(img, cap), 1)
        img_d, cap_d = torch.from_numpy(img).to(args.device), torch.from_numpy(cap).to(args.device)
        t_ours2, _ = best_of(lambda: ours(img_d @ cap_d.T), args.repeats)
        print(
            f"from the embeddings:        vsepp loop {t_ref2:.2f} s, ours {t_ours2:.3f} s, "
            f"ratio {t_ref2 / t_ours2:.0f}x"
        )


if __name__ == "__main__":
    main()
