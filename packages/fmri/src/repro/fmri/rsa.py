"""The brain side: ROI RDMs from the GLM patterns, compared with model and DNN-layer RDMs.

Steps (``analyse``): validate the BIDS folder; per subject and run, the noise-normalised
beta patterns of each ROI (``glm.py``); per subject and ROI one RDM over all stimuli
(crossnobis across runs, or the correlation distance of the run-averaged patterns); the
group RDM is the mean over subjects. Each group ROI RDM is compared with each reference RDM
(pixel and category models, DNN layers) by the stimulus-label randomisation test, with
the family (all ROI x reference pairs) corrected as configured; the white- vs black-box
displacement is tested per ROI on the group RDM (sign flips over source images, corrected
over ROIs); behavioural accuracy per condition comes from the events' ``correct`` column.

Besides the plain ``rdms.npz``, the RDMs are written as rsatoolbox ``RDMs`` files in
rsatoolbox's own HDF5 format (``rdms.hdf5``, :func:`save_rsatoolbox`) with the stimulus
descriptors, so an analysis can continue in rsatoolbox (``rsatoolbox.rdm.load_rdm``).
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
from repro.fmri.params import AnalysisParams, DnnParams, StatsParams
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
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The whole brain-side analysis; returns (results for JSON, arrays for ``rdms.npz``).

    ``references``: name -> RDM vector over the same stimuli in the same order (DNN layers,
    e.g. ``target/stages.2``); the configured model RDMs are added. The permutation tests
    run on ``params.device``.
    """
    dataset = bidslib.scan(bids_root, params.bids, stim.ids)
    refs = reference_rdms(stim, references, params.rsa.models)
    rois = list(params.bids.rois)
    subject_rdms = roi_rdms(dataset, stim.ids, params)
    group = subject_rdms.mean(axis=0)
    ref_names = list(refs)
    ref_mat = np.stack([refs[n] for n in ref_names])
    relatedness = relatedness_rows(group, subject_rdms, ref_mat, ref_names, rois, params)
    triplets = stim.triplets()
    wb_rows = wb_difference_rows(group, triplets, rois, params.stats)
    st = params.stats
    results = {
        "simulated": (Path(bids_root) / "derivatives/simulation/truth.json").is_file(),
        "n_subjects": len(dataset.subjects),
        "n_runs": [len(s.runs) for s in dataset.subjects],
        "n_stimuli": len(stim.ids),
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
        "subjects": np.array([sub.label for sub in dataset.subjects]),
        "stimulus_ids": np.array(stim.ids),
    }
    return results, arrays


def reference_rdms(
    stim: StimulusSet, references: dict[str, np.ndarray], models: list[str]
) -> dict[str, np.ndarray]:
    """The configured model RDMs, then ``references``, each checked to be over the stimuli."""
    refs = {**model_rdms(stim, models), **references}
    n = len(stim.ids)
    for name, v in refs.items():
        if np.shape(v) != (n * (n - 1) // 2,):
            raise ReproError(f"reference RDM '{name}': length {np.shape(v)} for {n} stimuli")
    return refs


def roi_rdms(
    dataset: bidslib.BidsDataset, stim_ids: list[str], params: AnalysisParams
) -> np.ndarray:
    """Each subject's ROI RDMs, ``(n_subjects, n_rois, n_pairs)`` in ``params.bids.rois``."""
    rois = list(params.bids.rois)
    n_pairs = len(stim_ids) * (len(stim_ids) - 1) // 2
    out = np.empty((len(dataset.subjects), len(rois), n_pairs))
    for s, subject in enumerate(progress(dataset.subjects, desc="subjects")):
        pats = subject_patterns(subject, stim_ids, params)
        for r, roi in enumerate(rois):
            out[s, r] = roi_rdm(pats[roi], params.rsa.roi_distance)
    return out


def relatedness_rows(
    group: np.ndarray,
    subject_rdms: np.ndarray,
    ref_mat: np.ndarray,
    ref_names: list[str],
    rois: list[str],
    params: AnalysisParams,
) -> list[dict[str, Any]]:
    """Each group ROI RDM against each reference: the stimulus-label randomisation test,
    corrected over the family of ROI x reference pairs, with the subjects' similarities."""
    st, method = params.stats, params.rsa.comparison
    test = stats.rdm_permutation_test(
        group, ref_mat, method, st.n_permutations, st.seed, params.device
    )
    p_adj = stats.correct(test["p"], st.correction, test["p_maxstat"])
    per_subject = np.stack([rdmlib.compare(s_rdm, ref_mat, method) for s_rdm in subject_rdms])
    rows = []
    for r, roi in enumerate(rois):
        for k, ref in enumerate(ref_names):
            subject_r = per_subject[:, r, k]
            rows.append(
                {
                    "roi": roi,
                    "reference": ref,
                    "r": float(test["observed"][r, k]),
                    "p": float(test["p"][r, k]),
                    "p_adjusted": float(p_adj[r, k]),
                    "significant": bool(p_adj[r, k] < st.alpha),
                    "r_subject_mean": float(subject_r.mean()),
                    "r_subject_sem": float(subject_r.std(ddof=1) / np.sqrt(len(per_subject)))
                    if len(per_subject) > 1
                    else float("nan"),
                }
            )
    return rows


def wb_difference_rows(
    group: np.ndarray, triplets: np.ndarray, rois: list[str], st: StatsParams
) -> list[dict[str, Any]]:
    """The white- vs black-box displacement per ROI of the group RDM (sign flips over
    source images), corrected over the ROIs."""
    wb = stats.wb_difference(group, triplets, st.n_permutations, st.seed)
    wb_adj = stats.correct(wb["p"], st.correction, wb["p_maxstat"])
    return [
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


#: rsatoolbox pattern descriptor -> stimuli.csv column: one value per stimulus, in RDM order.
PATTERN_DESCRIPTORS = {
    "stimulus": "id",  # clean-004, white-004, black-004: versions of source image 4 of the set
    "condition": "condition",  # clean | white | black
    "source": "source",  # the source image's index in the image set's split
    "class": "class",
    "class_name": "class_name",
}


def pattern_descriptors(stim: StimulusSet) -> dict[str, list[Any]]:
    """The stimulus descriptors of an rsatoolbox RDMs object over ``stim``, in table order."""
    return {key: [row[col] for row in stim.table] for key, col in PATTERN_DESCRIPTORS.items()}


def dnn_rdms_object(rdms: dict[str, np.ndarray], stim: StimulusSet, params: DnnParams) -> Any:
    """The layer RDMs of ``repro-fmri dnn`` (``<role>/<layer>`` -> vector) as one rsatoolbox
    ``RDMs``: one RDM per layer, named by ``name``, ``network`` (role), ``model``, ``layer``."""
    from rsatoolbox.rdm import RDMs

    names = list(rdms)
    roles, layers = zip(*(name.split("/", 1) for name in names), strict=True)
    models = {"target": params.nets.target, "substitute": params.nets.substitute}
    return RDMs(
        np.stack([rdms[n] for n in names]),
        dissimilarity_measure=params.distance,
        rdm_descriptors={
            "name": names,
            "network": list(roles),
            "model": [models.get(r, r) for r in roles],
            "layer": list(layers),
        },
        pattern_descriptors=pattern_descriptors(stim),
    )


def roi_rdms_object(
    arrays: dict[str, np.ndarray], stim: StimulusSet, params: AnalysisParams, simulated: bool
) -> Any:
    """Each subject's ROI RDMs of :func:`analyse` (``arrays``) as one rsatoolbox ``RDMs``,
    subject by subject, ROIs in config order; named by ``subject`` (BIDS label) and ``roi``.
    The group RDM of ``rdms.npz`` is their mean per ROI (``subset("roi", r).mean()``); it is
    not in the file, so that rsatoolbox's inference sees one RDM per subject and ROI."""
    from rsatoolbox.rdm import RDMs

    subject_rdms = arrays["subject_rdms"]
    n_sub, n_roi, n_pairs = subject_rdms.shape
    return RDMs(
        subject_rdms.reshape(n_sub * n_roi, n_pairs),
        dissimilarity_measure=params.rsa.roi_distance,
        descriptors={
            "data": "simulated" if simulated else "measured",
            "noise_normalisation": params.glm.noise_normalisation,
        },
        rdm_descriptors={
            "subject": np.repeat(arrays["subjects"], n_roi).tolist(),
            "roi": np.tile(arrays["rois"], n_sub).tolist(),
        },
        pattern_descriptors=pattern_descriptors(stim),
    )


def save_rsatoolbox(path: str | os.PathLike[str], rdms: Any) -> None:
    """``rdms.save(path, file_type="hdf5")`` (rsatoolbox's format) atomically: into a
    temporary file that this function closes, then renamed onto ``path``."""
    import h5py

    from repro.core.atomic import atomic_path

    with atomic_path(Path(path)) as tmp, h5py.File(tmp, "w") as fh:
        rdms.save(fh.id, file_type="hdf5")  # rsatoolbox writes into the open file
