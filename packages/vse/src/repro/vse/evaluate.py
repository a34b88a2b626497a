"""Image-text retrieval metrics, exactly the vsepp protocol (``fartashf/vsepp`` evaluation.py).

Layout: ``sims`` is (N, 5N), ``sims[i, j]`` the score of image i and caption j, the captions
of image i in columns 5i..5i+4 (vsepp stores each image 5 times; row 5i of its matrix is our
row i).

- image -> text (``i2t``, sentence retrieval): image i ranks all 5N captions; its rank is the
  best (smallest) 0-based position among its 5 captions.
- text -> image (``t2i``, image retrieval): caption j ranks the N images; its rank is the
  0-based position of image j // 5.
- ``R@K = 100 * mean(rank < K)``; ``medr = floor(median(rank)) + 1`` and
  ``meanr = mean(rank) + 1`` (1-based); ``rsum`` = the six recalls summed.
- ``folds=5`` (COCO 1K) splits the N images into 5 contiguous folds (with their captions),
  computes every metric per fold and averages, as vsepp's ``evalrank(fold5=True)``;
  ``folds=1`` is COCO 5K and Flickr30K 1K.

Ties. vsepp orders a query's scores with ``numpy.argsort(d)[::-1]``. Here the order is that of
``numpy.argsort(d, kind="stable")[::-1]``: a candidate's 0-based position is the number of
candidates scored strictly higher plus the number scored equal **with a larger index**
(among equal scores, the later column/row comes first). vsepp uses numpy's default sort kind,
whose order among equal scores is unspecified: with numpy 2.4 on a CPU with AVX-512 (this
machine) its SIMD quicksort scrambles ties even in a 10-element array, so vsepp's own output on
exact ties depends on the numpy build and CPU. Without ties (continuous scores) the two agree.

Everything is vectorised over the whole matrix (counting comparisons in blocks of rows or
columns to bound memory); there is no loop over queries.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from repro.core import ReproError

PROTOCOLS = {"coco_1k": (5000, 5), "coco_5k": (5000, 1), "f30k_1k": (1000, 1)}
"""Test protocols: (number of test images, number of folds averaged)."""

BLOCK_ELEMENTS = 1 << 24  # comparisons per block (bool temporaries of ~16 MB)


def _as_tensor(sims: Tensor | np.ndarray) -> Tensor:
    return torch.from_numpy(np.asarray(sims)) if not isinstance(sims, Tensor) else sims


def _check_shape(sims: Tensor) -> int:
    if sims.dim() != 2 or sims.shape[1] != 5 * sims.shape[0]:
        raise ReproError(
            f"similarity matrix must be (N, 5N) with 5 captions per image, got {tuple(sims.shape)}"
        )
    return sims.shape[0]


def i2t_ranks(sims: Tensor | np.ndarray) -> Tensor:
    """0-based rank of each image's best-placed caption among all 5N captions, shape (N,)."""
    sims = _as_tensor(sims)
    n = _check_shape(sims)
    rows = torch.arange(n, device=sims.device)
    own = sims.view(n, n, 5)[rows, rows]  # (N, 5): scores of each image's own captions
    best = own.amax(dim=1)
    # the best-placed own caption: highest score, and among equal scores the largest column
    cols = 5 * rows[:, None] + torch.arange(5, device=sims.device)
    best_col = torch.where(own == best[:, None], cols, -1).amax(dim=1)
    all_cols = torch.arange(5 * n, device=sims.device)
    ranks = torch.empty(n, dtype=torch.long, device=sims.device)
    step = max(1, BLOCK_ELEMENTS // (5 * n))
    for a in range(0, n, step):
        s, b, c = sims[a : a + step], best[a : a + step, None], best_col[a : a + step, None]
        ranks[a : a + step] = (s > b).sum(1) + ((s == b) & (all_cols > c)).sum(1)
    return ranks


def t2i_ranks(sims: Tensor | np.ndarray) -> Tensor:
    """0-based rank of each caption's own image among the N images, shape (5N,)."""
    sims = _as_tensor(sims)
    n = _check_shape(sims)
    image_of = torch.arange(5 * n, device=sims.device) // 5
    own = sims[image_of, torch.arange(5 * n, device=sims.device)]  # (5N,)
    rows = torch.arange(n, device=sims.device)[:, None]
    ranks = torch.empty(5 * n, dtype=torch.long, device=sims.device)
    step = max(1, BLOCK_ELEMENTS // n)
    for a in range(0, 5 * n, step):
        s, o, i = sims[:, a : a + step], own[None, a : a + step], image_of[None, a : a + step]
        ranks[a : a + step] = (s > o).sum(0) + ((s == o) & (rows > i)).sum(0)
    return ranks


def rank_metrics(ranks: Tensor) -> dict[str, float]:
    """R@1/5/10 in percent, 1-based median rank (floor of the median, + 1) and mean rank."""
    r = ranks.detach().cpu().numpy()
    out = {f"r{k}": 100.0 * float(np.mean(r < k)) for k in (1, 5, 10)}
    out["medr"] = float(math.floor(np.median(r)) + 1)
    out["meanr"] = float(r.mean() + 1)
    return out


def retrieval_metrics(sims: Tensor | np.ndarray, folds: int = 1) -> dict[str, float]:
    """``i2t_*``, ``t2i_*`` (r1, r5, r10, medr, meanr) and ``rsum``; with ``folds`` > 1 the
    mean over contiguous folds of N / folds images."""
    sims = _as_tensor(sims)
    n = _check_shape(sims)
    if folds < 1 or n % folds:
        raise ReproError(f"cannot split {n} test images into {folds} equal folds")
    size = n // folds
    per_fold = []
    for f in range(folds):
        block = sims[f * size : (f + 1) * size, 5 * f * size : 5 * (f + 1) * size]
        m = {f"i2t_{k}": v for k, v in rank_metrics(i2t_ranks(block)).items()}
        m |= {f"t2i_{k}": v for k, v in rank_metrics(t2i_ranks(block)).items()}
        m["rsum"] = sum(m[f"{d}_r{k}"] for d in ("i2t", "t2i") for k in (1, 5, 10))
        per_fold.append(m)
    return {k: float(np.mean([m[k] for m in per_fold])) for k in per_fold[0]}


def protocol_metrics(sims: Tensor | np.ndarray, protocol: str) -> dict[str, float]:
    """Metrics of a named test protocol (:data:`PROTOCOLS`), checking the test-set size."""
    if protocol not in PROTOCOLS:
        raise ReproError(f"unknown protocol '{protocol}' (known: {', '.join(PROTOCOLS)})")
    images, folds = PROTOCOLS[protocol]
    sims = _as_tensor(sims)
    if sims.shape[0] != images:
        raise ReproError(f"protocol {protocol} needs {images} test images, got {sims.shape[0]}")
    return retrieval_metrics(sims, folds)
