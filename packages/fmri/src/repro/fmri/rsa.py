"""The brain side: ROI RDMs from the GLM patterns, compared with model and DNN-layer RDMs.

Steps (``analyse``): validate the BIDS folder; per subject and run, the noise-normalised
beta patterns of each ROI (``glm.py``); per subject and ROI one RDM over all stimuli
(crossnobis across runs, or the correlation distance of the run-averaged patterns); the
group RDM is the mean over subjects. Each group ROI RDM is compared with each reference RDM
(pixel and category models, DNN layers) by the stimulus-label randomisation test, with
the family (all ROI x reference pairs) corrected as configured; the white- vs black-box
displacement is tested per ROI on the group RDM (sign flips over source images, corrected
over ROIs); behavioural accuracy per condition comes from the events' ``correct`` column.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from repro.core import ReproError
from repro.core.progress import progress
from repro.fmri import bids as bidslib
from repro.fmri import rdm as rdmlib
from repro.fmri import stats
from repro.fmri.glm import noise_normalise, run_fits
from repro.fmri.params import AnalysisParams
from repro.fmri.stimuli import CONDITIONS, StimulusSet


def model_rdms(stim: StimulusSet, names: list[str]) -> dict[str, np.ndarray]:
    """Reference model RDMs: ``pixels`` (correlation distance of the pixel vectors) and
    ``category`` (0 same class, 1 different)."""
    out = {}
    for name in names:
        if name == "pixels":
            out["model/pixels"] = rdmlib.rdm(
                stim.images.reshape(len(stim.images), -1), "correlation"
            )
        elif name == "category":
            out["model/category"] = rdmlib.category_rdm(stim.labels)
    return out


def subject_patterns(
    subject: bidslib.Subject, stim_ids: list[str], params: AnalysisParams
) -> dict[str, np.ndarray]:
    """Per ROI: patterns ``(n_runs, n_stimuli, n_voxels)`` of one subject."""
    masks = {roi: bidslib.load_mask(path) for roi, path in subject.masks.items()}
    runs = [run_fits(run, masks, stim_ids, params.bids, params.glm) for run in subject.runs]
    mode, cov = params.glm.noise_normalisation, params.glm.noise_covariance
    return {roi: noise_normalise([r[roi] for r in runs], mode, cov) for roi in masks}


def roi_rdm(patterns: np.ndarray, distance: str) -> np.ndarray:
    """One RDM from ``(n_runs, n_stimuli, n_voxels)`` patterns."""
    if distance == "crossnobis":
        return rdmlib.crossnobis(patterns)
    if distance == "correlation":
        return rdmlib.rdm(patterns.mean(axis=0), "correlation")
    raise ReproError(f"rsa.roi_distance: unknown distance '{distance}'")


def _answer(response: Any, name_to_class: dict[str, int]) -> int | None:
    """The class a response names (index or class name); None for no response."""
    if pd.isna(response):
        return None
    text = str(response).strip()
    if text in name_to_class:
        return name_to_class[text]
    try:
        return int(float(text))
    except ValueError:
        return None


def behaviour(
    dataset: bidslib.BidsDataset, stim: StimulusSet, n_perm: int, seed: int
) -> dict[str, Any] | None:
    """Accuracy per condition (group and per subject) and tests against clean, if the
    events carry responses: a ``correct`` column (0/1), else a ``response`` column holding
    the class index or class name answered. ``n/a`` = no response, counted as an error."""
    stim_ids = stim.ids
    condition_of = dict(zip(stim_ids, stim.conditions.tolist(), strict=True))
    class_of = dict(zip(stim_ids, stim.labels.tolist(), strict=True))
    name_to_class = {name: k for k, name in enumerate(stim.classes)}
    rows = []
    for subject in dataset.subjects:
        for run in subject.runs:
            ev = bidslib.read_events(run.events, stim_ids)
            if "correct" in ev.columns:
                correct = [0.0 if pd.isna(c) else float(c) for c in ev["correct"]]
            elif "response" in ev.columns:
                correct = [
                    float(_answer(r, name_to_class) == class_of[tt])
                    for tt, r in zip(ev["trial_type"], ev["response"], strict=True)
                ]
            else:
                return None
            for tt, c in zip(ev["trial_type"], correct, strict=True):
                rows.append((subject.label, condition_of[tt], c))
    table = pd.DataFrame(rows, columns=["subject", "condition", "correct"])
    per_subject = table.groupby(["subject", "condition"])["correct"].mean().unstack()
    out: dict[str, Any] = {
        "accuracy": {
            c: float(table.loc[table.condition == c, "correct"].mean()) for c in CONDITIONS
        },
        "accuracy_per_subject": {
            c: per_subject[c].tolist() for c in CONDITIONS if c in per_subject
        },
        "n_trials": {c: int((table.condition == c).sum()) for c in CONDITIONS},
        "tests": {},
    }
    for cond in CONDITIONS[1:]:
        out["tests"][cond] = stats.accuracy_difference_test(
            table["correct"].to_numpy(), table["condition"].to_numpy(),
            table["subject"].to_numpy(), "clean", cond, n_perm, seed,
        )  # fmt: skip
    return out


def analyse(
    bids_root: str | os.PathLike[str],
    stim: StimulusSet,
    references: dict[str, np.ndarray],
    params: AnalysisParams,
    device: str = "cpu",
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The whole brain-side analysis; returns (results for JSON, arrays for ``rdms.npz``).

    ``references``: name -> RDM vector over the same stimuli in the same order (DNN layers,
    e.g. ``target/stages.2``); the configured model RDMs are added.
    """
    stim_ids = stim.ids
    dataset = bidslib.scan(bids_root, params.bids, stim_ids)
    refs = {**model_rdms(stim, params.rsa.models), **references}
    n_pairs = len(stim_ids) * (len(stim_ids) - 1) // 2
    for name, v in refs.items():
        if np.shape(v) != (n_pairs,):
            raise ReproError(
                f"reference RDM '{name}': length {np.shape(v)} for {len(stim_ids)} stimuli"
            )
    rois = list(params.bids.rois)
    subject_rdms = np.empty((len(dataset.subjects), len(rois), n_pairs))
    for s, subject in enumerate(progress(dataset.subjects, desc="subjects")):
        pats = subject_patterns(subject, stim_ids, params)
        for r, roi in enumerate(rois):
            subject_rdms[s, r] = roi_rdm(pats[roi], params.rsa.roi_distance)
    group = subject_rdms.mean(axis=0)
    ref_names = list(refs)
    ref_mat = np.stack([refs[n] for n in ref_names])
    st = params.stats
    test = stats.rdm_permutation_test(
        group, ref_mat, params.rsa.comparison, st.n_permutations, st.seed, device
    )
    p_adj = stats.correct(test["p"], st.correction, test["p_maxstat"])
    per_subject = np.stack(
        [rdmlib.compare(s_rdm, ref_mat, params.rsa.comparison) for s_rdm in subject_rdms]
    )
    relatedness = []
    for r, roi in enumerate(rois):
        for k, ref in enumerate(ref_names):
            relatedness.append(
                {
                    "roi": roi,
                    "reference": ref,
                    "r": float(test["observed"][r, k]),
                    "p": float(test["p"][r, k]),
                    "p_adjusted": float(p_adj[r, k]),
                    "significant": bool(p_adj[r, k] < st.alpha),
                    "r_subject_mean": float(per_subject[:, r, k].mean()),
                    "r_subject_sem": float(
                        per_subject[:, r, k].std(ddof=1) / np.sqrt(len(per_subject))
                    )
                    if len(per_subject) > 1
                    else float("nan"),
                }
            )
    triplets = stim.triplets()
    wb = stats.wb_difference(group, triplets, st.n_permutations, st.seed)
    wb_adj = stats.correct(wb["p"], st.correction, wb["p_maxstat"])
    wb_rows = [
        {
            "roi": roi,
            "T": float(wb["T"][r]),
            "d_clean_white": float(wb["d_white"][r]),
            "d_clean_black": float(wb["d_black"][r]),
            "effect_size": float(wb["effect"][r]),
            "p": float(wb["p"][r]),
            "p_adjusted": float(wb_adj[r]),
            "significant": bool(wb_adj[r] < st.alpha),
            "exact": bool(wb["exact"][r]),
        }
        for r, roi in enumerate(rois)
    ]
    results = {
        "simulated": (Path(bids_root) / "derivatives/simulation/truth.json").is_file(),
        "n_subjects": len(dataset.subjects),
        "n_runs": [len(s.runs) for s in dataset.subjects],
        "n_stimuli": len(stim_ids),
        "n_sources": int(len(triplets)),
        "rois": rois,
        "roi_voxels": {
            roi: [int(bidslib.load_mask(sub.masks[roi]).sum()) for sub in dataset.subjects]
            for roi in rois
        },
        "relatedness": relatedness,
        "wb_difference": wb_rows,
        "behaviour": behaviour(dataset, stim, st.n_permutations, st.seed),
        "params": {"comparison": params.rsa.comparison, "roi_distance": params.rsa.roi_distance,
                   "correction": st.correction, "n_permutations": st.n_permutations,
                   "alpha": st.alpha},
    }  # fmt: skip
    arrays = {
        "subject_rdms": subject_rdms,
        "group_rdms": group,
        "reference_rdms": ref_mat,
        "reference_names": np.array(ref_names),
        "rois": np.array(rois),
        "stimulus_ids": np.array(stim_ids),
    }
    return results, arrays


def load_dnn_rdms(dnn_dir: str | os.PathLike[str], stim_ids: list[str]) -> dict[str, np.ndarray]:
    """Layer RDMs written by ``repro-fmri dnn``, checked to be over the same stimuli."""
    path = Path(dnn_dir) / "rdms.npz"
    if not path.is_file():
        raise ReproError(f"{path}: not found; run 'repro-fmri dnn' first")
    data = np.load(path)
    if data["stimulus_ids"].tolist() != list(stim_ids):
        raise ReproError(f"{path}: layer RDMs are over other stimuli than stimuli.csv")
    return {str(n): data["rdms"][i] for i, n in enumerate(data["names"].tolist())}


def save_arrays(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` atomically."""
    from repro.core.atomic import atomic_path

    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
