"""A malformed BIDS folder stops with one line naming the file."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from repro.core import ReproError
from repro.fmri import bids as bidslib
from repro.fmri.params import BidsParams


def _one_line_naming(excinfo, path):
    msg = str(excinfo.value)
    assert "\n" not in msg
    assert str(path) in msg, msg
    return msg


def test_a_valid_simulated_dataset_scans(tiny_bids):
    root, stim = tiny_bids()
    ds = bidslib.scan(root, BidsParams(), stim.ids)
    assert [s.label for s in ds.subjects] == ["01"]
    runs = ds.subjects[0].runs
    assert [r.run for r in runs] == ["1", "2"] and all(r.tr == 1.5 for r in runs)
    assert set(ds.subjects[0].masks) == {"early", "late"}
    assert bidslib.load_mask(ds.subjects[0].masks["early"]).sum() == 24


def test_missing_events_names_the_events_file(tiny_bids):
    root, stim = tiny_bids()
    events = root / "sub-01/func/sub-01_task-adv_run-2_events.tsv"
    events.unlink()
    with pytest.raises(ReproError) as excinfo:
        bidslib.scan(root, BidsParams(), stim.ids)
    assert "missing" in _one_line_naming(excinfo, events)


def _set_tr(path, tr):
    img = nib.load(path)
    data = np.asanyarray(img.dataobj)
    new = nib.Nifti1Image(data, img.affine, img.header)
    new.header.set_zooms(img.header.get_zooms()[:3] + (tr,))
    nib.save(new, path)
    sidecar = path.with_name(path.name.replace(".nii.gz", ".json"))
    sidecar.write_text(json.dumps({"RepetitionTime": tr}))


def test_mismatched_tr_between_runs_names_the_run(tiny_bids):
    root, stim = tiny_bids()
    bold2 = root / "sub-01/func/sub-01_task-adv_run-2_bold.nii.gz"
    _set_tr(bold2, 2.0)
    with pytest.raises(ReproError) as excinfo:
        bidslib.scan(root, BidsParams(tr=None), stim.ids)
    assert "run-1" in _one_line_naming(excinfo, bold2)
    with pytest.raises(ReproError) as excinfo:  # and against the configured TR
        bidslib.scan(root, BidsParams(tr=1.5), stim.ids)
    assert "bids.tr" in _one_line_naming(excinfo, bold2)


def test_tr_in_config_other_than_the_data_names_the_first_run(tiny_bids):
    root, stim = tiny_bids()
    with pytest.raises(ReproError) as excinfo:
        bidslib.scan(root, BidsParams(tr=2.0), stim.ids)
    _one_line_naming(excinfo, root / "sub-01/func/sub-01_task-adv_run-1_bold.nii.gz")


def test_sidecar_tr_that_contradicts_the_header_names_the_sidecar(tiny_bids):
    root, stim = tiny_bids()
    sidecar = root / "sub-01/func/sub-01_task-adv_run-1_bold.json"
    sidecar.write_text(json.dumps({"RepetitionTime": 2.5}))
    with pytest.raises(ReproError) as excinfo:
        bidslib.scan(root, BidsParams(), stim.ids)
    _one_line_naming(excinfo, sidecar)


def test_mask_of_another_shape_names_the_mask(tiny_bids):
    root, stim = tiny_bids()
    mask = root / "derivatives/rois/sub-01/sub-01_desc-late_mask.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((6, 6, 3), np.uint8), np.diag([3.0, 3, 3, 1])), mask)
    with pytest.raises(ReproError) as excinfo:
        bidslib.scan(root, BidsParams(), stim.ids)
    assert "(6, 6, 3)" in _one_line_naming(excinfo, mask)


def test_events_problems_name_the_file(tiny_bids):
    root, stim = tiny_bids()
    events = root / "sub-01/func/sub-01_task-adv_run-1_events.tsv"
    text = events.read_text()
    events.write_text(text.replace("trial_type", "stimulus", 1))
    with pytest.raises(ReproError) as excinfo:
        bidslib.scan(root, BidsParams(), stim.ids)
    assert "trial_type" in _one_line_naming(excinfo, events)
    events.write_text(text.replace("clean-000", "clean-999"))
    with pytest.raises(ReproError) as excinfo:
        bidslib.scan(root, BidsParams(), stim.ids)
    assert "clean-999" in _one_line_naming(excinfo, events)


def test_missing_confounds_and_mask_name_the_file(tiny_bids):
    root, stim = tiny_bids()
    conf = (
        root
        / "derivatives/confounds/sub-01/func/sub-01_task-adv_run-2_desc-confounds_timeseries.tsv"
    )
    conf.unlink()
    with pytest.raises(ReproError) as excinfo:
        bidslib.scan(root, BidsParams(), stim.ids)
    _one_line_naming(excinfo, conf)
    bidslib.scan(root, BidsParams(confounds=[]), stim.ids)  # fine without confounds
    mask = root / "derivatives/rois/sub-01/sub-01_desc-early_mask.nii.gz"
    mask.unlink()
    with pytest.raises(ReproError) as excinfo:
        bidslib.scan(root, BidsParams(confounds=[]), stim.ids)
    _one_line_naming(excinfo, mask)


def test_behaviour_from_correct_or_from_response_columns(tiny_bids):
    import pandas as pd

    from repro.fmri.rsa import behaviour

    root, stim = tiny_bids(n_runs=3, p_correct=0.7)
    ds = bidslib.scan(root, BidsParams(), stim.ids)
    frames = [pd.read_csv(r.events, sep="\t") for r in ds.subjects[0].runs]
    table = pd.concat(frames)
    expected = {c: table.loc[table.condition == c, "correct"].mean() for c in ("clean", "white")}
    got = behaviour(ds, stim, 199, 0)
    assert got["n_trials"]["clean"] == 30
    for c, v in expected.items():
        assert got["accuracy"][c] == pytest.approx(v)
    # the same from the responses alone (class indices), one response missing -> an error
    for run, frame in zip(ds.subjects[0].runs, frames, strict=True):
        frame = frame.drop(columns="correct").astype({"response": object})
        if run.run == "1":
            frame.loc[frame.trial_type == "clean-000", "response"] = "n/a"
        frame.to_csv(run.events, sep="\t", index=False)
    again = behaviour(ds, stim, 199, 0)
    assert again["accuracy"]["white"] == pytest.approx(expected["white"])
    first = frames[0][frames[0].trial_type == "clean-000"]["correct"].item()
    assert again["accuracy"]["clean"] == pytest.approx(expected["clean"] - first / 30)
