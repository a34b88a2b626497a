"""The fake BIDS dataset (``repro.fmri.fake``) passes the package's own reader and validator
with the stimulus ids the smoke run makes."""

import json
from importlib.metadata import entry_points

import numpy as np
import pytest

from repro.core import ReproError
from repro.fmri import bids, fake
from repro.fmri.params import BidsParams, StimulusParams
from repro.fmri.stimuli import ArrayPool, select_sources, stimulus_id

# The smoke run's stimuli: fmri_adv.stimuli (classes 0-9, 2 per class), 3 versions each.
PAPER_IDS = [stimulus_id(c, k) for c in ("clean", "white", "black") for k in range(20)]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("fake") / "fmri"
    return out, fake.write_fakes(out)


def test_the_paper_runs_sources_are_the_fakes():
    # ImageNet fake: val rows in class order, classes 0-9 with 4 images each (other classes
    # none); the smoke's selection draws 2 of each class's 4, so 20 sources, numbered as the
    # fake's ids are
    pool = ArrayPool(np.zeros((40, 1, 1, 1), np.uint8), np.repeat(np.arange(10), 4))
    params = StimulusParams(split="val", per_class=2, classes=list(range(10)),
                            require_correct=False)  # fmt: skip
    chosen = select_sources(pool, None, None, params)
    assert np.bincount(pool.labels[chosen]).tolist() == [2] * 10
    stim = fake.paper_stimuli()
    assert stim.ids == PAPER_IDS
    assert stim.column("class").tolist() == np.repeat(np.arange(10), 2).tolist() * 3


@pytest.mark.slow  # the simulator imports nilearn (about 5 s), then writes in about 3 s
def test_fake_bids_scans_with_the_paper_stimulus_ids(written):
    out, overlay = written
    root = overlay["fmri_adv"]["brain"]["bids_root"]
    assert root == str(out / "bids")
    assert overlay["fmri_adv"]["stimuli"] == {"require_correct": False}  # random-weight networks
    assert json.loads((out / "bids" / "dataset_description.json").read_text())["BIDSVersion"]
    data = bids.scan(root, BidsParams(), PAPER_IDS)  # the analysis's defaults: TR 1.5, task adv
    assert [s.label for s in data.subjects] == ["01", "02"]
    assert all(len(s.runs) == 2 and set(s.masks) == {"early", "late"} for s in data.subjects)
    for run in data.subjects[1].runs:
        events = bids.read_events(run.events, PAPER_IDS)
        assert sorted(events["trial_type"]) == sorted(PAPER_IDS)  # every stimulus, every run
        assert set(events["correct"]) <= {0, 1}
    with pytest.raises(ReproError, match="is not a stimulus id"):
        bids.scan(root, BidsParams(), PAPER_IDS[:-1])  # a smaller stimulus set would not fit


def test_the_plugin_is_registered():
    (ep,) = [e for e in entry_points(group="repro.fake") if e.name == "fmri"]
    assert ep.load() is fake.write_fakes
