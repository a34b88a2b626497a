"""Read and validate the BIDS dataset of the fMRI experiment.

Layout (BIDS 1.9 raw data; derivatives in the BIDS-derivatives naming)::

    <root>/dataset_description.json
    <root>/sub-<s>/func/sub-<s>_task-<t>_run-<r>_bold.nii.gz     4-D, TR in the header
    <root>/sub-<s>/func/sub-<s>_task-<t>_run-<r>_bold.json       optional: RepetitionTime
    <root>/sub-<s>/func/sub-<s>_task-<t>_run-<r>_events.tsv      onset, duration, trial_type
                                                                 (+ response, correct)
    <root>/<confounds_dir>/sub-<s>/func/sub-<s>_task-<t>_run-<r>_desc-confounds_timeseries.tsv
    <root>/<roi_dir>/sub-<s>/sub-<s>_desc-<roi>_mask.nii.gz      3-D, in the BOLD grid

``trial_type`` is the stimulus id of ``stimuli.csv`` (one regressor per stimulus). The
confounds file follows fMRIPrep's name and columns (``trans_x`` ... ``rot_z``). Everything is
checked before any model is fitted; the first problem stops the analysis with one line that
names the file (:class:`repro.core.ReproError`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from repro.core import ReproError
from repro.fmri.params import BidsParams

EVENT_COLUMNS = ("onset", "duration", "trial_type")
TR_TOLERANCE = 1e-3  # s


@dataclass
class Run:
    """One functional run and its companion files."""

    subject: str
    run: str
    bold: Path
    events: Path
    confounds: Path | None
    tr: float
    n_vols: int
    shape: tuple[int, int, int]


@dataclass
class Subject:
    label: str
    runs: list[Run]
    masks: dict[str, Path] = field(default_factory=dict)


@dataclass
class BidsDataset:
    root: Path
    subjects: list[Subject]


def bold_name(sub: str, task: str, run: str | int) -> str:
    return f"sub-{sub}_task-{task}_run-{run}_bold.nii.gz"


def events_path(bold: Path) -> Path:
    return bold.with_name(bold.name.replace("_bold.nii.gz", "_events.tsv"))


def confounds_path(root: Path, params: BidsParams, sub: str, run: str) -> Path:
    name = f"sub-{sub}_task-{params.task}_run-{run}_desc-confounds_timeseries.tsv"
    return root / params.confounds_dir / f"sub-{sub}" / "func" / name


def mask_path(root: Path, params: BidsParams, sub: str, roi: str) -> Path:
    return root / params.roi_dir / f"sub-{sub}" / f"sub-{sub}_desc-{roi}_mask.nii.gz"


def _run_key(run: str) -> tuple[int, str]:
    return (int(run), run) if run.isdigit() else (1 << 30, run)


def _header_tr(img: nib.Nifti1Image, path: Path) -> float:
    zooms = img.header.get_zooms()
    if len(zooms) < 4 or img.ndim != 4:
        raise ReproError(f"{path}: not a 4-D NIfTI image (shape {img.shape})")
    tr = float(zooms[3])
    unit = img.header.get_xyzt_units()[1]
    if unit == "msec":
        tr /= 1000.0
    elif unit == "usec":
        tr /= 1e6
    if not tr > 0:
        raise ReproError(f"{path}: no repetition time in the NIfTI header (pixdim[4] = 0)")
    return tr


def read_events(path: Path, stimulus_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """An events table, checked: required columns, numeric onsets/durations, known stimuli."""
    if not path.is_file():
        raise ReproError(f"{path}: missing (every run needs its events.tsv)")
    try:
        events = pd.read_csv(path, sep="\t", na_values="n/a", keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ReproError(f"{path}: not a tab-separated table ({exc})") from None
    for col in EVENT_COLUMNS:
        if col not in events.columns:
            raise ReproError(f"{path}: missing column '{col}' (needs {', '.join(EVENT_COLUMNS)})")
    for col in ("onset", "duration"):
        if not pd.api.types.is_numeric_dtype(events[col]) or events[col].isna().any():
            raise ReproError(f"{path}: column '{col}' must hold numbers in every row")
    if (events["duration"] < 0).any():
        raise ReproError(f"{path}: negative duration")
    events["trial_type"] = events["trial_type"].astype(str)
    if stimulus_ids is not None:
        known = set(stimulus_ids)
        unknown = sorted(set(events["trial_type"]) - known)
        if unknown:
            raise ReproError(f"{path}: trial_type '{unknown[0]}' is not a stimulus id")
    if "correct" in events.columns:
        ok = events["correct"].isna() | events["correct"].isin([0, 1])
        if not ok.all():
            raise ReproError(f"{path}: column 'correct' must be 0, 1 or n/a")
    return events


def read_confounds(path: Path, columns: list[str], n_vols: int) -> pd.DataFrame:
    """The chosen confound columns; n/a (fMRIPrep's first-volume derivatives) become 0."""
    if not path.is_file():
        raise ReproError(f"{path}: missing (bids.confounds lists {', '.join(columns)})")
    table = pd.read_csv(path, sep="\t", na_values="n/a", keep_default_na=False)
    for col in columns:
        if col not in table.columns:
            raise ReproError(f"{path}: missing confound column '{col}'")
    if len(table) != n_vols:
        raise ReproError(f"{path}: {len(table)} rows for a run of {n_vols} volumes")
    return table[columns].astype(float).fillna(0.0)


def _check_sidecar(bold: Path, tr: float) -> None:
    sidecar = bold.with_name(bold.name.replace(".nii.gz", ".json"))
    if not sidecar.is_file():
        return
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReproError(f"{sidecar}: not valid JSON ({exc})") from None
    rt = meta.get("RepetitionTime")
    if rt is not None and abs(float(rt) - tr) > TR_TOLERANCE:
        raise ReproError(f"{sidecar}: RepetitionTime {rt} s differs from the header's {tr:g} s")


def scan(
    root: str | os.PathLike[str],
    params: BidsParams,
    stimulus_ids: Iterable[str] | None = None,
) -> BidsDataset:
    """Find and validate every run, events file, confounds file and ROI mask.

    Checks: each run is 4-D with the configured TR (``bids.tr``; all runs alike), the same
    grid within a subject, events with the required columns and known stimulus ids and
    onsets inside the run, confounds with the configured columns and one row per volume,
    and one non-empty 3-D mask per ROI in the BOLD grid.
    """
    root = Path(root)
    if not root.is_dir():
        raise ReproError(f"{root}: BIDS folder not found")
    ids = set(stimulus_ids) if stimulus_ids is not None else None
    found = sorted(p.name[4:] for p in root.glob("sub-*") if p.is_dir())
    labels = params.subjects if params.subjects is not None else found
    if not labels:
        raise ReproError(f"{root}: no sub-* folders")
    pattern = re.compile(rf"sub-[^_]+_task-{re.escape(params.task)}_run-([^_]+)_bold\.nii\.gz$")
    subjects = []
    for sub in labels:
        func = root / f"sub-{sub}" / "func"
        bolds = {}
        for path in func.glob(f"sub-{sub}_task-{params.task}_run-*_bold.nii.gz"):
            m = pattern.match(path.name)
            if m:
                bolds[m[1]] = path
        if not bolds:
            raise ReproError(f"{func}: no {bold_name(sub, params.task, '*')} (bids.task)")
        runs: list[Run] = []
        for run in sorted(bolds, key=_run_key):
            runs.append(_check_run(root, params, sub, run, bolds[run], ids, runs))
        masks = {
            roi: _check_mask(mask_path(root, params, sub, roi), runs[0]) for roi in params.rois
        }
        subjects.append(Subject(sub, runs, masks))
    return BidsDataset(root, subjects)


def _check_run(
    root: Path,
    params: BidsParams,
    sub: str,
    run: str,
    bold: Path,
    ids: set[str] | None,
    previous: list[Run],
) -> Run:
    try:
        img = nib.load(bold)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many kinds for bad files
        raise ReproError(f"{bold}: cannot read NIfTI ({type(exc).__name__}: {exc})") from None
    tr = _header_tr(img, bold)
    if params.tr is not None and abs(tr - params.tr) > TR_TOLERANCE:
        raise ReproError(f"{bold}: TR {tr:g} s differs from bids.tr = {params.tr:g} s")
    if previous and abs(tr - previous[0].tr) > TR_TOLERANCE:
        raise ReproError(
            f"{bold}: TR {tr:g} s differs from {previous[0].bold.name} ({previous[0].tr:g} s)"
        )
    _check_sidecar(bold, tr)
    shape = tuple(int(s) for s in img.shape[:3])
    if previous and (
        shape != previous[0].shape or not np.allclose(img.affine, _affine(previous[0].bold))
    ):
        raise ReproError(f"{bold}: voxel grid differs from {previous[0].bold.name}")
    n_vols = int(img.shape[3])
    ev_path = events_path(bold)
    events = read_events(ev_path, ids)
    end = n_vols * tr
    late = events["onset"] >= end
    if late.any():
        raise ReproError(
            f"{ev_path}: onset {events['onset'][late].iloc[0]:g} s is after the run's end "
            f"({end:g} s)"
        )
    conf = None
    if params.confounds:
        conf = confounds_path(root, params, sub, run)
        read_confounds(conf, params.confounds, n_vols)
    return Run(sub, run, bold, ev_path, conf, tr, n_vols, shape)


def _affine(path: Path) -> np.ndarray:
    return nib.load(path).affine


def _check_mask(path: Path, run: Run) -> Path:
    if not path.is_file():
        raise ReproError(f"{path}: ROI mask missing (bids.rois, bids.roi_dir)")
    try:
        img = nib.load(path)
    except Exception as exc:  # noqa: BLE001
        raise ReproError(f"{path}: cannot read NIfTI ({type(exc).__name__}: {exc})") from None
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if shape != run.shape:
        raise ReproError(f"{path}: mask shape {shape} differs from the BOLD grid {run.shape}")
    if not np.allclose(img.affine, _affine(run.bold), atol=1e-4):
        raise ReproError(f"{path}: mask affine differs from the BOLD images' ({run.bold.name})")
    if not np.any(np.asanyarray(img.dataobj)):
        raise ReproError(f"{path}: mask is empty")
    return path


def load_mask(path: Path) -> np.ndarray:
    """A boolean 3-D mask."""
    data = np.asanyarray(nib.load(path).dataobj)
    return (data.reshape(data.shape[:3]) != 0) if data.ndim == 4 else data != 0


def load_timeseries(run: Run, mask: np.ndarray) -> np.ndarray:
    """The run's voxel time series inside ``mask``: ``(n_vols, n_voxels)`` float64."""
    data = np.asanyarray(nib.load(run.bold).dataobj)
    return data[mask].T.astype(np.float64)
