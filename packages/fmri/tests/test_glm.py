"""The first-level GLM recovers known amplitudes; betas equal nilearn's FirstLevelModel."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from repro.fmri.bids import Run
from repro.fmri.glm import (
    RunFit,
    design_matrix,
    fit,
    noise_covariance,
    noise_normalise,
    one_blas_thread,
    run_fits,
)
from repro.fmri.params import BidsParams, GlmParams

TR, N_VOLS = 2.0, 160


def _run(tmp_path, noise_sd, seed=0):
    """A run with 6 stimuli x 3 repetitions, 20 voxels, known amplitudes, drift and motion."""
    from nilearn.glm.first_level import compute_regressor

    rng = np.random.default_rng(seed)
    ids = [f"clean-{k:03d}" for k in range(6)]
    trial = np.tile(ids, 3)
    rng.shuffle(trial)
    onsets = 8.0 + np.arange(len(trial)) * 16.0
    events = pd.DataFrame({"onset": onsets, "duration": 1.0, "trial_type": trial})
    frame_times = np.arange(N_VOLS) * TR
    # the truth: nilearn's public HRF regressor per stimulus, independent of our design code
    columns = []
    for s in ids:
        on = onsets[trial == s]
        cond = np.vstack([on, np.ones_like(on), np.ones_like(on)])  # onsets, durations, amplitudes
        columns.append(compute_regressor(cond, "glover", frame_times)[0][:, 0])
    x = np.column_stack(columns)
    amplitudes = rng.normal(2.0, 1.0, size=(6, 20))
    motion = np.cumsum(rng.normal(0, 0.1, (N_VOLS, 2)), axis=0)
    t = frame_times / frame_times[-1]
    y = 100 + x @ amplitudes + np.cos(np.pi * t)[:, None] * 3 + motion @ rng.normal(0, 2, (2, 20))
    y = y + rng.normal(0, noise_sd, y.shape)
    data = y.T.reshape(4, 5, 1, N_VOLS).astype(np.float32)
    bold = tmp_path / "sub-01_task-adv_run-1_bold.nii.gz"
    img = nib.Nifti1Image(data, np.eye(4))
    img.header.set_zooms((1.0, 1.0, 1.0, TR))
    nib.save(img, bold)
    ev = tmp_path / "sub-01_task-adv_run-1_events.tsv"
    events.to_csv(ev, sep="\t", index=False)
    conf = tmp_path / "confounds.tsv"
    pd.DataFrame(motion, columns=["trans_x", "trans_y"]).to_csv(conf, sep="\t", index=False)
    run = Run("01", "1", bold, ev, conf, TR, N_VOLS, (4, 5, 1))
    return run, ids, amplitudes, events


@pytest.mark.parametrize("noise_model", ["ols", "ar1"])
def test_betas_recover_known_amplitudes(tmp_path, noise_model):
    run, ids, amplitudes, _ = _run(tmp_path, noise_sd=0.05)
    masks = {"a": np.zeros((4, 5, 1), bool), "b": np.zeros((4, 5, 1), bool)}
    masks["a"][:2] = True
    masks["b"][2:] = True
    bids = BidsParams(confounds=["trans_x", "trans_y"])
    fits = run_fits(run, masks, ids, bids, GlmParams(noise_model=noise_model))
    flat = {k: m.reshape(-1) for k, m in masks.items()}  # C order = voxel order of the data
    for roi in ("a", "b"):
        got = fits[roi].betas
        want = amplitudes[:, flat[roi]]
        assert got.shape == want.shape == (6, 10)
        np.testing.assert_allclose(got, want, atol=0.25)  # beta SE ~0.05 here
        assert np.abs(got - want).mean() < 0.08
        assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.99
    # without the motion confounds the fit is visibly worse
    worse = run_fits(run, masks, ids, BidsParams(confounds=[]), GlmParams(noise_model=noise_model))
    err = np.abs(worse["a"].betas - amplitudes[:, flat["a"]]).mean()
    assert err > 2 * np.abs(fits["a"].betas - amplitudes[:, flat["a"]]).mean()


@pytest.mark.slow  # nilearn FirstLevelModel and its maskers: ~5 s on the shared machine
def test_betas_equal_nilearn_first_level_model_effect_sizes(tmp_path):
    from nilearn.glm.first_level import FirstLevelModel

    run, ids, _, events = _run(tmp_path, noise_sd=1.0, seed=1)
    mask = np.ones((4, 5, 1), bool)
    fits = run_fits(run, {"all": mask}, ids, BidsParams(confounds=[]), GlmParams())
    model = FirstLevelModel(
        t_r=TR, hrf_model="glover", drift_model="cosine", high_pass=0.01, noise_model="ols",
        mask_img=nib.Nifti1Image(mask.astype(np.uint8), np.eye(4)), signal_scaling=False,
        minimize_memory=True,
    )  # fmt: skip
    with one_blas_thread():  # as our code does: small matrices, a busy machine
        model.fit(nib.load(run.bold), events=events)
        for k, sid in enumerate(ids):
            beta = model.compute_contrast(sid, output_type="effect_size").get_fdata()[mask]
            np.testing.assert_allclose(fits["all"].betas[k], beta, rtol=1e-5, atol=1e-6)


def test_noise_normalisation():
    rng = np.random.default_rng(0)
    sd = np.array([1.0, 2.0, 4.0])
    fits = []
    for _ in range(2):
        resid = rng.normal(size=(400, 3)) * sd
        fits.append(RunFit(rng.normal(size=(5, 3)), resid.var(axis=0), resid, 400))
    uni = noise_normalise(fits, "univariate")
    np.testing.assert_allclose(
        uni[0], fits[0].betas / np.sqrt((fits[0].variance + fits[1].variance) / 2)
    )
    # whitening: the pooled residuals become (nearly) white
    multi = noise_normalise(fits, "multivariate")
    resid = np.concatenate([f.residuals for f in fits])
    w = np.linalg.lstsq(np.concatenate([f.betas for f in fits]), multi.reshape(10, 3), rcond=None)[
        0
    ]
    cov = np.cov((resid @ w).T)
    assert np.allclose(cov, np.eye(3) * cov.trace() / 3, atol=0.15 * cov.trace() / 3)


@pytest.mark.parametrize("method", ["shrinkage_eye", "shrinkage_diag"])
def test_noise_covariance_equals_rsatoolbox_with_residual_dof(method):
    from rsatoolbox.data.noise import cov_from_residuals

    rng = np.random.default_rng(3)
    mix = rng.normal(size=(12, 12))
    resid = rng.normal(size=(90, 12)) @ mix * np.linspace(0.5, 3, 12)
    resid -= resid.mean(axis=0)  # residuals of a design with a constant
    dof = 90 - 31
    want = cov_from_residuals(resid.copy(), dof=dof, method=method)
    np.testing.assert_allclose(noise_covariance(resid, dof, method), want, rtol=1e-10)


@pytest.mark.parametrize("method", ["shrinkage_eye", "shrinkage_diag"])
def test_multivariate_normalisation_whitens_with_the_pooled_dof_covariance(method):
    from rsatoolbox.data.noise import cov_from_residuals

    rng = np.random.default_rng(4)
    fits = []
    for dof in (50, 47):
        resid = rng.normal(size=(80, 6)) * [1, 1, 2, 2, 3, 3]
        resid -= resid.mean(axis=0)
        fits.append(RunFit(rng.normal(size=(5, 6)), resid.var(axis=0), resid, dof))
    got = noise_normalise(fits, "multivariate", method)
    cov = cov_from_residuals(np.concatenate([f.residuals for f in fits]), dof=97, method=method)
    vals, vecs = np.linalg.eigh(cov)
    want = np.stack([f.betas for f in fits]) @ (vecs / np.sqrt(vals)) @ vecs.T
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12)


def test_noise_covariance_from_glm_residuals_is_in_noise_units():
    """With p regressors out of n volumes, sums of squares / n underestimate the noise
    variance by (n - p) / n (here 0.55); / (n - rank X) does not, so whitened patterns and
    crossnobis distances are in units of the noise."""
    rng = np.random.default_rng(5)
    n, p, sd = 110, 50, 2.0
    design = pd.DataFrame(
        np.column_stack([rng.normal(size=(n, p - 1)), np.ones(n)]),
        columns=[f"s{k}" for k in range(p - 1)] + ["constant"],
    )
    fits = [
        fit(rng.normal(0, sd, (n, 8)), design, ["s0"], "ols") for _ in range(6)
    ]  # 6 runs of pure noise
    assert all(f.dof == n - p for f in fits)
    for method in ("shrinkage_eye", "shrinkage_diag"):
        cov = noise_covariance(np.concatenate([f.residuals for f in fits]), 6 * (n - p), method)
        assert abs(np.trace(cov) / 8 / sd**2 - 1) < 0.06
    # nilearn's own residual variance uses the same degrees of freedom
    np.testing.assert_allclose(np.mean([f.variance for f in fits]), np.trace(cov) / 8, rtol=0.05)


def test_design_matrix_has_one_column_per_stimulus_plus_drift_and_confounds():
    events = pd.DataFrame({"onset": [2.0, 10.0], "duration": [1.0, 1.0], "trial_type": ["a", "b"]})
    conf = pd.DataFrame({"trans_x": np.random.default_rng(1).normal(size=50)})
    dm = design_matrix(events, 50, 2.0, GlmParams(), conf)
    assert {"a", "b", "trans_x", "constant"} <= set(dm.columns)
    assert any(c.startswith("drift") for c in dm.columns)
    assert fit(
        np.random.default_rng(0).normal(size=(50, 3)), dm, ["b", "a"], "ols"
    ).betas.shape == (2, 3)
