"""Representational dissimilarity matrices (RDMs) and RDM comparisons, vectorised.

An RDM is stored as its upper triangle without the diagonal, row by row (the order of
``scipy.spatial.distance.squareform`` and of rsatoolbox's ``RDMs.get_vectors``). Distances
follow rsatoolbox's definitions, which the tests check value for value:

- ``correlation``: 1 - Pearson r between two patterns (each pattern's mean removed);
- ``euclidean``: squared Euclidean distance divided by the number of channels;
- ``crossnobis``: squared Euclidean distance cross-validated over runs, divided by the
  number of channels: the mean over ordered pairs of different runs (k, l) of
  ``(x_i - x_j)_k . (x_i - x_j)_l / p``, which equals rsatoolbox's leave-one-run-out
  average for runs of equal weight; its expectation is the true squared distance, 0 for
  identical patterns. Patterns are noise-normalised before (``glm.py``), which makes it the
  crossnobis estimator of Walther et al. (2016).

Written here instead of calling rsatoolbox at run time because the analysis needs batches of
RDMs and thousands of permuted comparisons (``stats.py``), which rsatoolbox computes one
object at a time; rsatoolbox stays the reference in the tests and the benchmark.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from repro.core import ReproError


def upper_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the upper triangle (k=1), row by row."""
    return np.triu_indices(n, k=1)


def n_conditions(n_pairs: int) -> int:
    """The number of conditions ``n`` with ``n (n - 1) / 2 == n_pairs``."""
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if n * (n - 1) // 2 != n_pairs:
        raise ReproError(f"{n_pairs} is not the length of an RDM vector")
    return n


def to_matrix(vectors: np.ndarray) -> np.ndarray:
    """RDM vectors ``(..., n_pairs)`` as symmetric matrices ``(..., n, n)`` (zero diagonal)."""
    vectors = np.asarray(vectors)
    n = n_conditions(vectors.shape[-1])
    i, j = upper_indices(n)
    out = np.zeros((*vectors.shape[:-1], n, n), dtype=vectors.dtype)
    out[..., i, j] = vectors
    out[..., j, i] = vectors
    return out


def _triu(matrices: np.ndarray) -> np.ndarray:
    i, j = upper_indices(matrices.shape[-1])
    return matrices[..., i, j]


def rdm(patterns: np.ndarray, method: str = "correlation") -> np.ndarray:
    """RDM vectors of ``patterns`` ``(..., n_conditions, n_channels)``: ``(..., n_pairs)``."""
    x = np.asarray(patterns, dtype=np.float64)
    if method == "correlation":
        x = x - x.mean(axis=-1, keepdims=True)
        norm = np.linalg.norm(x, axis=-1, keepdims=True)
        if np.any(norm == 0):
            raise ReproError("correlation distance: a pattern is constant (zero variance)")
        x = x / norm
        return _triu(1.0 - x @ np.swapaxes(x, -1, -2))
    if method == "euclidean":
        sq = np.sum(x * x, axis=-1)
        gram = x @ np.swapaxes(x, -1, -2)
        d = sq[..., :, None] + sq[..., None, :] - 2.0 * gram
        return _triu(d) / x.shape[-1]
    raise ReproError(f"unknown RDM method '{method}' (correlation, euclidean)")


def crossnobis(patterns: np.ndarray) -> np.ndarray:
    """Cross-validated squared Euclidean RDM over runs.

    ``patterns``: ``(..., n_runs, n_conditions, n_channels)``, every condition in every run
    (noise-normalise first for the crossnobis distance). The cross-run Gram matrix is
    ``(S S' - sum_k X_k X_k') / (R (R - 1))`` with ``S`` the sum over runs, so the cost is
    that of two Gram matrices whatever the number of runs.
    """
    x = np.asarray(patterns, dtype=np.float64)
    runs = x.shape[-3]
    if runs < 2:
        raise ReproError("crossnobis needs at least two runs")
    total = x.sum(axis=-3)
    within = np.einsum("...rip,...rjp->...ij", x, x)
    cross = (total @ np.swapaxes(total, -1, -2) - within) / (runs * (runs - 1))
    diag = np.diagonal(cross, axis1=-2, axis2=-1)
    d = diag[..., :, None] + diag[..., None, :] - cross - np.swapaxes(cross, -1, -2)
    return _triu(d) / x.shape[-1]


def category_rdm(labels: np.ndarray) -> np.ndarray:
    """Model RDM: 0 for two stimuli of the same class, 1 otherwise."""
    labels = np.asarray(labels)
    i, j = upper_indices(len(labels))
    return (labels[i] != labels[j]).astype(np.float64)


def _standardise(v: np.ndarray) -> np.ndarray:
    v = v - v.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    if np.any(norm == 0):
        raise ReproError("RDM comparison: an RDM is constant (all dissimilarities equal)")
    return v / norm


def ranks(vectors: np.ndarray) -> np.ndarray:
    """Ranks along the last axis (ties get their average rank, as Spearman's rho needs)."""
    return rankdata(np.asarray(vectors, dtype=np.float64), axis=-1)


def _signs(v: np.ndarray) -> np.ndarray:
    """``sign(v_k - v_l)`` for k < l, as int8 ``(..., n_pairs * (n_pairs - 1) / 2)``."""
    i, j = upper_indices(v.shape[-1])
    return np.sign(v[..., i] - v[..., j]).astype(np.int8)


def compare(a: np.ndarray, b: np.ndarray, method: str = "spearman") -> np.ndarray:
    """Similarity of every RDM in ``a`` ``(n_a, n_pairs)`` with every RDM in ``b``: ``(n_a, n_b)``.

    ``spearman``: Pearson r of the ranks; ``pearson``; ``tau-a``: Kendall's tau-a
    ``(concordant - discordant) / (n (n - 1) / 2)`` over pairs of dissimilarities, ties
    counting as neither (Nili et al. 2014 recommend it for models with tied values).
    """
    a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    if a.shape[-1] != b.shape[-1]:
        raise ReproError(f"RDM comparison: lengths {a.shape[-1]} and {b.shape[-1]} differ")
    if method == "pearson":
        return _standardise(a) @ _standardise(b).T
    if method == "spearman":
        return _standardise(ranks(a)) @ _standardise(ranks(b)).T
    if method == "tau-a":
        n = a.shape[-1]
        sa = _signs(a).astype(np.float32)
        sb = _signs(b).astype(np.float32)
        return (sa @ sb.T).astype(np.float64) / (n * (n - 1) / 2)
    raise ReproError(f"unknown RDM comparison '{method}' (spearman, pearson, tau-a)")
