"""Randomisation tests: RDM relatedness, white- vs black-box difference, accuracy changes.

- **RDM relatedness** (``rdm_permutation_test``): the stimulus-label randomisation test of
  Kriegeskorte et al. (2008) / Nili et al. (2014). Under H0 the two RDMs are unrelated, so the
  stimulus labels of one may be permuted (rows and columns together). Every permutation is
  applied to all (a, b) pairs at once, as one gather of the pair vector and one batched
  product (Spearman: the ranks of a permuted vector are the permuted ranks, so ranks are
  computed once). One-sided: ``p = (1 + #{null >= observed}) / (1 + n_perm)``.
- **Multiple comparisons** (``correct``): Benjamini-Hochberg FDR (scipy) or the max-statistic
  (Westfall-Young) family-wise correction from the same permutations.
- **White- vs black-box difference** (``wb_difference``): for source image i with clean,
  white-box and black-box versions c_i, w_i, b_i in a representational space with
  dissimilarity d, ``delta_i = d(c_i, w_i) - d(c_i, b_i)`` and ``T = mean_i delta_i``. H0: the
  white and black versions of each image are exchangeable, so each ``delta_i`` is symmetric
  about 0; the null flips the signs of the ``delta_i`` (all ``2^n`` flips when n <= 16, else
  ``n_perm`` random ones); two-sided ``p`` on ``|T|``.
- **Accuracy changes**: the DNN's per-image correctness, clean vs adversarial (paired): exact
  McNemar test (binomial on the discordant images); human responses: trial-level
  permutation of condition labels within each subject, on the difference in accuracy.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from scipy.stats import binomtest, false_discovery_control

from repro.core import ReproError
from repro.fmri import rdm as rdmlib


def permutations(n: int, n_perm: int, seed: int) -> np.ndarray:
    """``n_perm`` random permutations of ``range(n)`` ``(n_perm, n)``, from ``seed``."""
    rng = np.random.default_rng(seed)
    return rng.permuted(np.tile(np.arange(n), (n_perm, 1)), axis=1)


def pair_index(perms: np.ndarray) -> np.ndarray:
    """For each permutation of the conditions, where each RDM entry comes from.

    ``v[pair_index(perms)[k]]`` is the RDM vector ``v`` with its conditions relabelled by
    ``perms[k]`` (entry (i, j) of the result is entry (perm[i], perm[j]) of ``v``).
    """
    n = perms.shape[-1]
    i, j = rdmlib.upper_indices(n)
    ids = np.full((n, n), -1, dtype=np.int64)
    ids[i, j] = np.arange(len(i))
    ids[j, i] = ids[i, j]
    return ids[perms[:, i], perms[:, j]]


def _prepare(v: np.ndarray, method: str, device: torch.device) -> torch.Tensor:
    """Standardised (ranked for Spearman) RDM vectors as a float64 tensor on ``device``."""
    v = np.atleast_2d(np.asarray(v, dtype=np.float64))
    if method == "spearman":
        v = rdmlib.ranks(v)
    v = v - v.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    if np.any(norm == 0):
        raise ReproError("RDM comparison: an RDM is constant (all dissimilarities equal)")
    return torch.from_numpy(v / norm).to(device)


def permuted_similarities(
    a: np.ndarray,
    b: np.ndarray,
    perms: np.ndarray,
    method: str = "spearman",
    device: str = "cpu",
    chunk: int = 500,
) -> np.ndarray:
    """Similarities of every ``a`` with every ``b`` relabelled by each permutation.

    ``a``: ``(n_a, n_pairs)``, ``b``: ``(n_b, n_pairs)``, ``perms``: ``(n_perm, n)``.
    Returns ``(n_perm, n_a, n_b)``. Spearman and Pearson cost one gather and one batched
    product per chunk of permutations; tau-a loops over permutations (``_permuted_tau_a``).
    """
    dev = torch.device(device)
    a = np.atleast_2d(a)
    b = np.atleast_2d(b)
    out = np.empty((len(perms), len(a), len(b)))
    if method in ("spearman", "pearson"):
        za, zb = _prepare(a, method, dev), _prepare(b, method, dev)
        # corr(a, b relabelled by p) == corr(a relabelled by p^-1, b): gather the smaller side
        gather_a = len(a) < len(b)
        moving, fixed = (za, zb) if gather_a else (zb, za)
        order = np.argsort(perms, axis=1) if gather_a else perms
        n_pairs = za.shape[-1]
        step = max(1, min(chunk, int(2e7 // (len(moving) * n_pairs))))  # <= 160 MB per gather
        for s in range(0, len(perms), step):
            idx = torch.from_numpy(pair_index(order[s : s + step])).to(dev)
            moved = moving[:, idx]  # (n_moving, c, n_pairs)
            sim = torch.einsum("mcp,fp->cmf", moved, fixed).cpu().numpy()
            out[s : s + step] = sim if gather_a else sim.transpose(0, 2, 1)
        return out
    if method == "tau-a":
        return _permuted_tau_a(np.asarray(a, np.float64), np.asarray(b, np.float64), perms, chunk)
    raise ReproError(f"unknown RDM comparison '{method}' (spearman, pearson, tau-a)")


def _tied_pairs(v: np.ndarray) -> int:
    _, counts = np.unique(v, return_counts=True)
    return int(np.sum(counts * (counts - 1) // 2))


def _permuted_tau_a(a: np.ndarray, b: np.ndarray, perms: np.ndarray, chunk: int) -> np.ndarray:
    """Kendall tau-a under relabelling, one permutation at a time (O(n log n) each).

    scipy's ``kendalltau`` gives tau-b = (C - D) / sqrt((T - t_a)(T - t_b)) with T the number
    of pairs and t_a, t_b the pairs tied in each vector; tau-a = (C - D) / T. Relabelling
    only reorders b's entries, so t_b is the same for every permutation and tau-a is tau-b
    times one constant per (a, b). No vectorised O(n log n) form across permutations was
    found (the sign-matrix form costs n^2 per permutation), so this loop is the slow path;
    Spearman (the default) is vectorised.
    """
    from scipy.stats import kendalltau

    n = a.shape[-1]
    total = n * (n - 1) / 2
    out = np.empty((len(perms), len(a), len(b)))
    ta = [_tied_pairs(x) for x in a]
    tb = [_tied_pairs(y) for y in b]
    for s in range(0, len(perms), chunk):
        idx = pair_index(perms[s : s + chunk])
        for jb, y in enumerate(b):
            moved = y[idx]
            for ia, x in enumerate(a):
                scale = np.sqrt((total - ta[ia]) * (total - tb[jb])) / total
                for k, row in enumerate(moved):
                    tau_b = kendalltau(x, row).statistic
                    out[s + k, ia, jb] = 0.0 if np.isnan(tau_b) else tau_b * scale
    return out


def rdm_permutation_test(
    a: np.ndarray,
    b: np.ndarray,
    method: str = "spearman",
    n_perm: int = 10000,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """Observed similarities ``(n_a, n_b)``, one-sided permutation p-values, and the
    max-statistic (family-wise) adjusted p-values over all ``n_a * n_b`` tests."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    observed = rdmlib.compare(a, b, method)
    perms = permutations(rdmlib.n_conditions(a.shape[-1]), n_perm, seed)
    null = permuted_similarities(a, b, perms, method, device)
    tol = 1e-10  # permutations that reproduce the observed value count as exceedances
    p = (1 + (null >= observed - tol).sum(axis=0)) / (1 + n_perm)
    max_null = null.reshape(n_perm, -1).max(axis=1)
    p_max = (1 + (max_null[:, None, None] >= observed[None] - tol).sum(axis=0)) / (1 + n_perm)
    return {"observed": observed, "p": p, "p_maxstat": p_max, "null_mean": null.mean(axis=0)}


def correct(p: np.ndarray, method: str, p_maxstat: np.ndarray | None = None) -> np.ndarray:
    """Multiple-comparison-adjusted p-values of the family ``p`` (any shape)."""
    p = np.asarray(p, dtype=np.float64)
    if method == "none" or p.size == 0:
        return p.copy()
    if method == "fdr_bh":
        return false_discovery_control(p.ravel(), method="bh").reshape(p.shape)
    if method == "max_stat":
        if p_maxstat is None:
            raise ReproError("max_stat correction needs the permutation maxima")
        return np.asarray(p_maxstat, dtype=np.float64)
    raise ReproError(f"unknown correction '{method}' (fdr_bh, max_stat, none)")


def sign_flips(n: int, n_perm: int, seed: int) -> tuple[np.ndarray, bool]:
    """Sign patterns ``(m, n)`` of +-1 and whether they are all ``2^n`` (exact test)."""
    if n <= 16 and 2**n <= n_perm + 1:
        return np.array(list(itertools.product((1.0, -1.0), repeat=n))), True
    rng = np.random.default_rng(seed)
    return rng.choice(np.array([1.0, -1.0]), size=(n_perm, n)), False


def wb_difference(
    rdms: np.ndarray, triplets: np.ndarray, n_perm: int = 10000, seed: int = 0
) -> dict[str, np.ndarray]:
    """White- vs black-box displacement difference for each RDM in ``rdms`` ``(n_rdm, n_pairs)``.

    ``triplets``: ``(n_sources, 3)`` indices of each source's clean, white and black
    stimulus. Returns per RDM: ``T`` (mean delta), ``d_white`` / ``d_black`` (mean
    d(c, w), d(c, b)), ``effect`` (mean / sd of delta), two-sided ``p`` from sign flips,
    ``p_maxstat`` over the RDMs, and ``exact`` (all sign patterns enumerated).
    """
    mats = rdmlib.to_matrix(np.atleast_2d(rdms))
    c, w, b = triplets[:, 0], triplets[:, 1], triplets[:, 2]
    d_cw, d_cb = mats[:, c, w], mats[:, c, b]
    delta = d_cw - d_cb  # (n_rdm, n_sources)
    t_obs = delta.mean(axis=1)
    signs, exact = sign_flips(delta.shape[1], n_perm, seed)
    null = signs @ delta.T / delta.shape[1]  # (m, n_rdm)
    tol = 1e-12
    exceed = np.abs(null) >= np.abs(t_obs)[None] - tol
    if exact:
        p = exceed.mean(axis=0)
        p_max = (np.abs(null).max(axis=1)[:, None] >= np.abs(t_obs)[None] - tol).mean(axis=0)
    else:
        p = (1 + exceed.sum(axis=0)) / (1 + len(signs))
        big = np.abs(null).max(axis=1)[:, None] >= np.abs(t_obs)[None] - tol
        p_max = (1 + big.sum(axis=0)) / (1 + len(signs))
    sd = delta.std(axis=1, ddof=1) if delta.shape[1] > 1 else np.full(len(delta), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        effect = np.where(sd > 0, t_obs / sd, np.nan)
    return {
        "T": t_obs,
        "d_white": d_cw.mean(axis=1),
        "d_black": d_cb.mean(axis=1),
        "effect": effect,
        "p": p,
        "p_maxstat": p_max,
        "exact": np.full(len(delta), exact),
    }


def mcnemar(clean_correct: np.ndarray, adv_correct: np.ndarray) -> dict[str, float]:
    """Exact one-sided McNemar test that accuracy drops from clean to adversarial (paired)."""
    clean_correct = np.asarray(clean_correct, bool)
    adv_correct = np.asarray(adv_correct, bool)
    lost = int(np.sum(clean_correct & ~adv_correct))
    gained = int(np.sum(~clean_correct & adv_correct))
    n = lost + gained
    p = binomtest(lost, n, 0.5, alternative="greater").pvalue if n else 1.0
    return {"lost": lost, "gained": gained, "p": float(p)}


def accuracy_difference_test(
    correct: np.ndarray,
    condition: np.ndarray,
    subject: np.ndarray,
    a: str,
    b: str,
    n_perm: int = 10000,
    seed: int = 0,
) -> dict[str, float]:
    """Accuracy in condition ``b`` minus ``a`` (pooled over trials), and a two-sided p from
    permuting the two conditions' labels among each subject's trials."""
    keep = np.isin(condition, (a, b))
    y = np.asarray(correct, dtype=np.float64)[keep]
    is_b = np.asarray(condition)[keep] == b
    subj = np.asarray(subject)[keep]
    if not is_b.any() or is_b.all():
        raise ReproError(f"behaviour: no trials of condition '{a if is_b.all() else b}'")
    diff = y[is_b].mean() - y[~is_b].mean()
    rng = np.random.default_rng(seed)
    # permute labels within subjects: sort random keys inside each subject's block
    order = np.argsort(subj, kind="stable")
    y, is_b, subj = y[order], is_b[order], subj[order]
    _, block = np.unique(subj, return_inverse=True)
    keys = rng.random((n_perm, len(y))) + block[None, :]
    perm = np.argsort(keys, axis=1)
    labels = is_b[perm]  # (n_perm, n) labels shuffled within subjects
    n_b = is_b.sum()
    null = (labels @ y) / n_b - ((~labels) @ y) / (len(y) - n_b)
    p = (1 + np.sum(np.abs(null) >= abs(diff) - 1e-12)) / (1 + n_perm)
    return {"difference": float(diff), "p": float(p), "n_trials": int(len(y))}


def fraction(x: np.ndarray) -> float:
    """Mean of a boolean array as a float (nan when empty)."""
    x = np.asarray(x, dtype=np.float64)
    return float(x.mean()) if x.size else math.nan
