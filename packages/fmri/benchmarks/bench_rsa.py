"""RDM computation and a 10,000-permutation RDM comparison: repro.fmri vs rsatoolbox.

    uv run --frozen python packages/fmri/benchmarks/bench_rsa.py [--device cuda]

Same data for both, in one process: ``--stimuli`` patterns of ``--channels`` channels for
``--rdms`` RDMs (e.g. layers), and for the cross-validated RDM ``--runs`` runs. The
permutation test relabels the stimuli of the reference RDM ``--perms`` times and compares
with Spearman's rho (and, with ``--tau-perms`` > 0, Kendall's tau-a): ours gathers all
permuted RDM vectors at once and takes one batched product (``stats.permuted_similarities``);
the reference reorders an rsatoolbox ``RDMs`` and calls ``rsatoolbox.rdm.compare`` per
permutation, as a user of rsatoolbox would. Results are checked equal, times are the best of
``--repeats`` (alternating), and the ratio reference / ours is printed (goal: >= 10x for the
permutation test).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import rsatoolbox
import torch

from repro.fmri import rdm as rdmlib
from repro.fmri import stats


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default="cpu", help="device of our permutation test")
    ap.add_argument("--stimuli", type=int, default=92)
    ap.add_argument("--channels", type=int, default=500)
    ap.add_argument("--rdms", type=int, default=10)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--perms", type=int, default=10000)
    ap.add_argument("--tau-perms", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch/BLAS threads (shared machine)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    warnings.filterwarnings("ignore", "invalid value encountered in cast")  # inside rsatoolbox
    rng = np.random.default_rng(0)
    n, p = args.stimuli, args.channels
    pats = rng.normal(size=(args.rdms, n, p))
    runs = rng.normal(size=(args.runs, n, p)) + pats[0]
    print(f"{n} stimuli, {p} channels, {args.rdms} RDMs, {args.runs} runs; device {args.device}, "
          f"{args.threads} thread(s)")  # fmt: skip
    rows = []

    # 1. RDMs: correlation distance of args.rdms pattern sets
    def ref_corr():
        return np.stack(
            [rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(x), method="correlation")
             .get_vectors()[0] for x in pats]
        )  # fmt: skip

    t_ref, v_ref = best_time(ref_corr, args.repeats)
    t_our, v_our = best_time(lambda: rdmlib.rdm(pats, "correlation"), args.repeats)
    assert np.allclose(v_our, v_ref, atol=1e-10), "correlation RDMs differ"
    rows.append(("RDMs, correlation distance", t_ref, t_our))

    # 2. crossnobis over runs
    data = rsatoolbox.data.Dataset(
        runs.reshape(-1, p),
        obs_descriptors={"cond": np.tile(np.arange(n), args.runs),
                         "run": np.repeat(np.arange(args.runs), n)},
    )  # fmt: skip

    def ref_cv():
        return rsatoolbox.rdm.calc_rdm(
            data, method="crossnobis", descriptor="cond", cv_descriptor="run"
        ).get_vectors()[0]

    t_ref, v_ref = best_time(ref_cv, args.repeats)
    t_our, v_our = best_time(lambda: rdmlib.crossnobis(runs), args.repeats)
    assert np.allclose(v_our, v_ref, atol=1e-10), "crossnobis RDMs differ"
    rows.append(("RDM, crossnobis (leave-one-run-out)", t_ref, t_our))

    # 3. permutation tests: one data RDM vs one reference RDM
    a = rdmlib.rdm(pats[0], "correlation")
    b = rdmlib.rdm(pats[1] + 0.3 * pats[0], "correlation")
    for method, n_perm in (("spearman", args.perms), ("tau-a", args.tau_perms)):
        if n_perm <= 0:
            continue
        perms = stats.permutations(n, n_perm, seed=0)
        ra, rb = rsatoolbox.rdm.RDMs(a[None]), rsatoolbox.rdm.RDMs(b[None])

        def ref_perm(perms=perms, method=method, ra=ra, rb=rb):
            out = np.empty(len(perms))
            for k, perm in enumerate(perms):
                moved = rb.copy()
                moved.reorder(perm)
                out[k] = rsatoolbox.rdm.compare(ra, moved, method=method)[0, 0]
            return out

        def our_perm(perms=perms, method=method):
            null = stats.permuted_similarities(a, b, perms, method, args.device)[:, 0, 0]
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            return null

        our_perm()  # warm-up (CUDA context, caches)
        t_ref, null_ref = best_time(ref_perm, 1 if method == "tau-a" else args.repeats)
        t_our, null_our = best_time(our_perm, args.repeats)
        assert np.allclose(null_our, null_ref, atol=1e-9), f"{method} null distributions differ"
        obs = rdmlib.compare(a, b, method)[0, 0]
        p_ref = (1 + np.sum(null_ref >= obs - 1e-10)) / (1 + n_perm)
        p_our = (1 + np.sum(null_our >= obs - 1e-10)) / (1 + n_perm)
        assert p_ref == p_our
        rows.append((f"{n_perm:,}-permutation test, {method} (p = {p_our:.4f})", t_ref, t_our))

    width = max(len(r[0]) for r in rows)
    print(f"{'task':<{width}}  {'rsatoolbox (s)':>14}  {'ours (s)':>10}  {'ratio':>8}")
    for name, t_ref, t_our in rows:
        print(f"{name:<{width}}  {t_ref:14.4f}  {t_our:10.4f}  {t_ref / t_our:7.1f}x")
    print("all results equal to rsatoolbox's")


if __name__ == "__main__":
    main()
