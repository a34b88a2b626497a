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
  ``folds=1`` is COCO 5K and Flickr30K 1K. Each protocol checks the test-set size
  (:mod:`repro.vse.protocols`; ``test_images`` scales every protocol to a small split).

Ties. vsepp orders a query's scores with ``numpy.argsort(d)[::-1]``. Here the order is that of
``numpy.argsort(d, kind="stable")[::-1]``: a candidate's 0-based position is the number of
candidates scored strictly higher plus the number scored equal **with a larger index**
(among equal scores, the later column/row comes first). vsepp uses numpy's default sort kind,
whose order among equal scores is unspecified: with numpy 2.4 on a CPU with AVX-512 (this
machine) its SIMD quicksort scrambles ties even in a 10-element array, so vsepp's own output on
exact ties depends on the numpy build and CPU. Without ties (continuous scores) the two agree.

Everything is vectorised over the whole matrix (one comparison per score and direction, in
blocks of rows that stay in cache; NumPy kernels on a CPU, torch on a GPU; see :func:`ranks`);
there is no loop over queries.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from repro.core import ReproError
from repro.vse.protocols import PROTOCOLS as PROTOCOLS  # re-exported: (images, folds)
from repro.vse.protocols import check_size, val_folds

BLOCK_ELEMENTS = {"cpu": 1 << 19, "cuda": 1 << 26}
"""Similarities per block of rows: a CPU block stays in cache (0.5 M scores)."""


def _as_tensor(sims: Tensor | np.ndarray) -> Tensor:
    return torch.from_numpy(np.asarray(sims)) if not isinstance(sims, Tensor) else sims


def _check_shape(sims: Tensor) -> int:
    if sims.dim() != 2 or sims.shape[1] != 5 * sims.shape[0]:
        raise ReproError(
            f"similarity matrix must be (N, 5N) with 5 captions per image, got {tuple(sims.shape)}"
        )
    return sims.shape[0]


class _NumpyKernels:
    """Comparisons into a bool block, counted as uint8 sums: on a CPU NumPy's kernels are
    about twice as fast as torch's for this."""

    def __init__(self, rows: int, m: int) -> None:
        self.buf = np.empty((rows, m), dtype=bool)

    greater = staticmethod(lambda a, b, out: np.greater(a, b, out=out))
    where = staticmethod(np.where)

    @staticmethod
    def count(block: np.ndarray, axis: int) -> np.ndarray:
        # uint16 sums vectorise best; a count is at most the summed length (rows or 5N)
        dtype = np.uint16 if block.shape[axis] < 1 << 16 else np.int64
        return block.view(np.uint8).sum(axis=axis, dtype=dtype)


class _TorchKernels:
    """Comparisons written as 0/1 floats, counted by matrix-vector products (GPU)."""

    def __init__(self, rows: int, m: int, like: Tensor) -> None:
        self.buf = torch.empty(rows, m, dtype=like.dtype, device=like.device)
        self.ones = {
            1: torch.ones(m, dtype=like.dtype, device=like.device),
            0: torch.ones(rows, dtype=like.dtype, device=like.device),
        }

    greater = staticmethod(lambda a, b, out: torch.gt(a, b, out=out))
    where = staticmethod(torch.where)

    def count(self, block: Tensor, axis: int) -> Tensor:
        if axis == 1:
            return (block @ self.ones[1]).round().long()
        return (self.ones[0][: len(block)] @ block).round().long()


def ranks(sims: Tensor | np.ndarray, kernels: str = "auto") -> tuple[Tensor, Tensor]:
    """0-based ranks: image -> text (N,) and text -> image (5N,). ``kernels``: ``numpy`` (the
    default on a CPU), ``torch`` (the default elsewhere).

    Image i's rank is ``#{j: s_ij > b_i} + #{j > c_i: s_ij == b_i}`` with ``b_i`` its best own
    caption score and ``c_i`` the last own caption reaching it, i.e. ``#{j <= c_i: s_ij > b_i}
    + #{j > c_i: s_ij > below(b_i)}``, ``below(x)`` being the largest float under ``x``
    (``s >= x`` if and only if ``s > below(x)``): one comparison per score, against ``b_i`` left
    of the own captions and ``below(b_i)`` right of them; only a band of 5 columns per row near
    the diagonal needs both. Caption j's rank is likewise ``#{k <= j//5: s_kj > o_j} +
    #{k > j//5: s_kj > below(o_j)}`` with ``o_j`` the score of its own image. Rows are taken
    in blocks that stay in cache; both directions are counted from the same block."""
    sims = _as_tensor(sims)
    n = _check_shape(sims)
    if not sims.is_floating_point():
        sims = sims.double()
    m = 5 * n
    step = max(1, BLOCK_ELEMENTS.get(sims.device.type, 1 << 22) // m)
    if kernels not in ("auto", "numpy", "torch"):
        raise ValueError(f"kernels must be auto, numpy or torch, got '{kernels}'")
    on_cpu = sims.device.type == "cpu" and kernels != "torch"
    if kernels == "numpy" and not on_cpu:
        sims = sims.cpu()
        on_cpu = True
    lib = np if on_cpu else torch
    x = sims.numpy() if on_cpu else sims
    rows = lib.arange(n) if on_cpu else torch.arange(n, device=sims.device)
    own = x.reshape(n, n, 5)[rows, rows]  # (N, 5): each image's own captions
    best = own.max(1) if on_cpu else own.amax(1)
    cols = 5 * rows[:, None] + (lib.arange(5) if on_cpu else rows.new_tensor(range(5)))
    last = lib.where(own == best[:, None], cols, -1).max(1)  # c_i
    last = last if on_cpu else last.values
    own_t = own.reshape(m)  # o_j
    if on_cpu:
        best_lo, own_lo = np.nextafter(best, -np.inf), np.nextafter(own_t, -np.inf)
        kern = _NumpyKernels(min(step, n), m)
        i2t, t2i = np.empty(n, dtype=np.int64), np.zeros(m, dtype=np.int64)
    else:
        best_lo = torch.nextafter(best, torch.full_like(best, float("-inf")))
        own_lo = torch.nextafter(own_t, torch.full_like(own_t, float("-inf")))
        kern = _TorchKernels(min(step, n), m, sims)
        i2t = torch.empty(n, dtype=torch.long, device=sims.device)
        t2i = torch.zeros(m, dtype=torch.long, device=sims.device)
    for a in range(0, n, step):
        k = min(step, n - a)
        s, f, lo, hi = x[a : a + k], kern.buf[:k], 5 * a, 5 * (a + k)
        band_cols = cols[a : a + k].reshape(-1)  # columns lo..hi-1
        # image -> text: strict left of the band, >= right of it, per element in the band
        b, b_lo = best[a : a + k, None], best_lo[a : a + k, None]
        kern.greater(s[:, :lo], b, out=f[:, :lo])
        kern.greater(s[:, hi:], b_lo, out=f[:, hi:])
        band = kern.where(band_cols[None, :] <= last[a : a + k, None], b, b_lo)
        kern.greater(s[:, lo:hi], band, out=f[:, lo:hi])
        i2t[a : a + k] = kern.count(f, 1)
        # text -> image: this block's rows lie below the images of the columns left of the band
        kern.greater(s[:, :lo], own_lo[:lo], out=f[:, :lo])
        kern.greater(s[:, hi:], own_t[hi:], out=f[:, hi:])
        below = rows[a : a + k, None] <= band_cols[None, :] // 5
        band = kern.where(below, own_t[None, lo:hi], own_lo[None, lo:hi])
        kern.greater(s[:, lo:hi], band, out=f[:, lo:hi])
        t2i += kern.count(f, 0)
    if on_cpu:
        return torch.from_numpy(i2t), torch.from_numpy(t2i)
    return i2t, t2i


def i2t_ranks(sims: Tensor | np.ndarray) -> Tensor:
    """0-based rank of each image's best-placed caption among all 5N captions, shape (N,)."""
    return ranks(sims)[0]


def t2i_ranks(sims: Tensor | np.ndarray) -> Tensor:
    """0-based rank of each caption's own image among the N images, shape (5N,)."""
    return ranks(sims)[1]


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
        r_i2t, r_t2i = ranks(block)
        m = {f"i2t_{k}": v for k, v in rank_metrics(r_i2t).items()}
        m |= {f"t2i_{k}": v for k, v in rank_metrics(r_t2i).items()}
        m["rsum"] = sum(m[f"{d}_r{k}"] for d in ("i2t", "t2i") for k in (1, 5, 10))
        per_fold.append(m)
    return {k: float(np.mean([m[k] for m in per_fold])) for k in per_fold[0]}


def protocol_metrics(
    sims: Tensor | np.ndarray, protocol: str, test_images: int | None = None
) -> dict[str, float]:
    """Metrics of a named test protocol (:data:`PROTOCOLS`, or ``full``: the whole matrix),
    checking the test-set size: the official one, or ``test_images`` when given (COCO 1K:
    5 folds of ``test_images / 5``; :func:`repro.vse.protocols.expected`)."""
    sims = _as_tensor(sims)
    _check_shape(sims)
    return retrieval_metrics(sims, check_size(protocol, sims.shape[0], test_images))


def validation_metrics(sims: Tensor | np.ndarray, selection: str = "folds") -> dict[str, float]:
    """Metrics that model selection compares (``rsum``) on a validation similarity matrix:
    the mean over the folds of :func:`repro.vse.protocols.val_folds` (``folds``: 1,000-image
    folds, MHSAN's code; a remainder past the last whole fold is left out), or the whole split
    (``whole``)."""
    sims = _as_tensor(sims)
    n = _check_shape(sims)
    folds, size = val_folds(n, selection)
    used = folds * size
    return retrieval_metrics(sims[:used, : 5 * used], folds)
