"""First-level GLM per run with nilearn: one beta pattern per stimulus, noise-normalised.

The design matrix is nilearn's ``make_first_level_design_matrix`` (HRF model, drift model,
confounds as extra regressors) with one regressor per stimulus id ("least-squares all",
Mumford et al. 2012: every trial_type is its own column); the model is nilearn's ``run_glm``
(OLS or AR(1) prewhitening, the estimator behind ``FirstLevelModel``). It is called on the
ROI voxels' time series directly, which gives the betas, residual variances and residuals
in one pass instead of one contrast image per stimulus.

BLAS runs single-threaded inside nilearn's calls (``one_blas_thread``).

Noise normalisation (Walther et al. 2016) before the RDM, with the noise estimated from all of
a subject's runs together (pooled residuals; per-run estimates from ~60 residual degrees of
freedom made the cross-run products noisier in the simulations):
``univariate`` divides each voxel's betas by its residual standard deviation;
``multivariate`` whitens the pattern with the inverse square root of a shrinkage estimate of
the residual covariance, the crossnobis recipe.

The covariance is in the units of the noise: the residuals' sum of squares divided by the
residual degrees of freedom ``n - rank(X)`` summed over runs (as nilearn's residual variance
and rsatoolbox's ``cov_from_residuals(..., dof=...)``), not by the number of volumes ``n``,
which underestimated it by ``(n - p) / n`` and inflated the crossnobis distances by
``n / (n - p)`` (1.71 at the quick design: 173-174 volumes, 72 regressors per run). Two
estimators (``glm.noise_covariance``), each equal to rsatoolbox's of the same name (a test):
``shrinkage_eye`` (default), Ledoit and Wolf's (2004) shrinkage towards a multiple of the
identity (scikit-learn's ``LedoitWolf``); ``shrinkage_diag``, rsatoolbox's default, Schäfer
and Strimmer's (2005) shrinkage of the correlations towards zero, keeping each voxel's own
variance.

Betas are in the data's raw units (nilearn's ``signal_scaling`` is not applied: ``run_glm``
on the time series as they are); noise normalisation makes the patterns unit-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from repro.core import ReproError
from repro.fmri.bids import Run, load_timeseries, read_confounds, read_events
from repro.fmri.params import BidsParams, GlmParams


def one_blas_thread():
    """Context: BLAS single-threaded. nilearn's design and GLM code does many small SVDs and
    pseudo-inverses; OpenBLAS threads on a busy 2-core machine made each ~50x slower
    (measured: AR(1) fit of one run 5 s -> 0.06 s, one design matrix 0.23 s -> 0.01 s)."""
    import scipy.linalg  # noqa: F401 - load the BLAS libraries before limiting them
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


@dataclass
class RunFit:
    """Betas ``(n_stimuli, n_voxels)`` in stimulus order, residual variance, residuals and
    the residual degrees of freedom ``n_vols - rank(design)``."""

    betas: np.ndarray
    variance: np.ndarray
    residuals: np.ndarray
    dof: int


def design_matrix(
    events: pd.DataFrame,
    n_vols: int,
    tr: float,
    params: GlmParams,
    confounds: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """nilearn's first-level design matrix; frame times ``k * tr`` (slice_time_ref 0)."""
    from nilearn.glm.first_level import make_first_level_design_matrix

    frame_times = np.arange(n_vols) * tr
    kwargs = {}
    if confounds is not None and confounds.shape[1]:
        kwargs = {"add_regs": confounds.to_numpy(), "add_reg_names": list(confounds.columns)}
    with one_blas_thread():
        return make_first_level_design_matrix(
            frame_times,
            events[["onset", "duration", "trial_type"]],
            hrf_model=params.hrf_model,
            drift_model=None if params.drift_model == "none" else params.drift_model,
            high_pass=params.high_pass,
            drift_order=params.drift_order,
            **kwargs,
        )


def fit(y: np.ndarray, design: pd.DataFrame, columns: list[str], noise_model: str) -> RunFit:
    """Fit ``y`` ``(n_vols, n_voxels)`` with nilearn's ``run_glm``; betas of ``columns``."""
    from nilearn.glm.first_level import run_glm

    x = design.to_numpy()
    with one_blas_thread():
        labels, results = run_glm(y, x, noise_model=noise_model)
    theta = np.empty((x.shape[1], y.shape[1]))
    variance = np.empty(y.shape[1])
    for label, res in results.items():
        where = labels == label
        theta[:, where] = res.theta
        variance[where] = res.dispersion
    # residuals in the original time domain (nilearn's AR results hold prewhitened ones, each
    # voxel group with its own filter, which mixes badly across voxels)
    residuals = y - x @ theta
    dof = x.shape[0] - int(np.linalg.matrix_rank(x))
    col = {c: k for k, c in enumerate(design.columns)}
    return RunFit(theta[[col[c] for c in columns]], variance, residuals, dof)


#: Covariance estimators of ``noise_covariance`` (rsatoolbox's names).
COVARIANCE_ESTIMATORS = ("shrinkage_eye", "shrinkage_diag")


def noise_covariance(residuals: np.ndarray, dof: int, method: str = "shrinkage_eye") -> np.ndarray:
    """Shrinkage estimate of the voxel covariance from GLM residuals ``(n, n_voxels)`` (zero
    mean per voxel, as residuals of a design with a constant are) with ``dof`` degrees of
    freedom; equals rsatoolbox's ``cov_from_residuals(residuals, dof, method)``.

    ``shrinkage_eye``: Ledoit-Wolf (scikit-learn, ``assume_centered``: sums of squares / n)
    rescaled by ``n / dof``. ``shrinkage_diag``: sample covariance ``X'X / dof`` with its
    off-diagonal part shrunk by Schäfer and Strimmer's (2005) optimal factor, in rsatoolbox's
    formulation.
    """
    x = np.asarray(residuals, dtype=np.float64)
    n = x.shape[0]
    if dof < 1:
        raise ReproError(f"noise covariance: {dof} residual degrees of freedom (need >= 1)")
    if method == "shrinkage_eye":
        from sklearn.covariance import LedoitWolf

        return LedoitWolf(assume_centered=True).fit(x).covariance_ * (n / dof)
    if method == "shrinkage_diag":
        xtx = x.T @ x
        x2 = x * x
        s = xtx / dof
        var = np.maximum(np.diag(s), 1e-300)
        std = np.sqrt(var)
        s_mean = xtx / np.outer(std, std) / (n - 1)
        s2_mean = (x2.T @ x2) / np.outer(var, var) / (n - 1)
        var_hat = n / dof**2 * (s2_mean - s_mean**2)
        off = ~np.eye(len(s), dtype=bool)
        lamb = min(max(np.sum(var_hat[off]) / np.sum(s_mean[off] ** 2), 0.0), 1.0)
        return np.where(off, s * (1.0 - lamb), s)
    raise ReproError(
        f"glm.noise_covariance: unknown estimator '{method}' ({', '.join(COVARIANCE_ESTIMATORS)})"
    )


def noise_normalise(fits: list[RunFit], mode: str, covariance: str = "shrinkage_eye") -> np.ndarray:
    """Betas of each run ``(n_runs, n_stimuli, n_voxels)``, noise-normalised with the noise
    estimated from all of the subject's runs together (one estimate per ROI; degrees of
    freedom: the runs' residual degrees of freedom summed)."""
    betas = np.stack([f.betas for f in fits])
    if mode == "none":
        return betas
    if mode == "univariate":
        variance = np.mean([f.variance for f in fits], axis=0)
        return betas / np.sqrt(np.maximum(variance, 1e-12))
    if mode == "multivariate":
        residuals = np.concatenate([f.residuals for f in fits])
        cov = noise_covariance(residuals, sum(f.dof for f in fits), covariance)
        vals, vecs = np.linalg.eigh(cov)
        whiten = (vecs / np.sqrt(np.maximum(vals, 1e-12 * vals.max()))) @ vecs.T
        return betas @ whiten
    raise ReproError(f"glm.noise_normalisation: unknown mode '{mode}'")


def run_fits(
    run: Run,
    masks: dict[str, np.ndarray],
    stimulus_ids: list[str],
    bids: BidsParams,
    params: GlmParams,
) -> dict[str, RunFit]:
    """The GLM fit of one run, split by ROI (betas in stimulus order).

    The GLM is fitted once on the union of the ROI masks. Every stimulus must appear in every
    run (cross-validated RDMs).
    """
    events = read_events(run.events, stimulus_ids)
    missing = sorted(set(stimulus_ids) - set(events["trial_type"]))
    if missing:
        raise ReproError(f"{run.events}: stimulus '{missing[0]}' is not presented in this run")
    confounds = None
    if bids.confounds and run.confounds is not None:
        confounds = read_confounds(run.confounds, bids.confounds, run.n_vols)
    union = np.zeros(run.shape, dtype=bool)
    for m in masks.values():
        union |= m
    y = load_timeseries(run, union)
    design = design_matrix(events, run.n_vols, run.tr, params, confounds)
    run_fit = fit(y, design, list(stimulus_ids), params.noise_model)
    position = np.full(run.shape, -1)
    position[union] = np.arange(union.sum())
    out = {}
    for roi, m in masks.items():
        cols = position[m]
        out[roi] = RunFit(
            run_fit.betas[:, cols], run_fit.variance[cols], run_fit.residuals[:, cols], run_fit.dof
        )
    return out
