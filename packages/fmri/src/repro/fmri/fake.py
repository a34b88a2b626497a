"""A fake user BIDS dataset for the smoke run of the paper config (``repro-data fake``).

Written by the package's own simulator (:func:`repro.fmri.simulate.simulate_bids`) on a
stimulus set shaped as the smoke run's: ImageNet val, classes 0-9 (``fmri_adv.stimuli.classes``
of config/paper.yaml), 2 sources per class (``per_class`` of config/smoke.yaml; the paper's 4
would make 40), clean / white / black versions, so 60 stimulus ids ``clean-000`` ...
``black-019`` (:func:`repro.fmri.stimuli.stimulus_id`; tests/test_smoke.py holds these
constants to the configs). The analysis checks
every ``trial_type`` against the ids of the stimuli it made, and those ids depend only on the
number of sources (``k`` numbers them in class order), not on which images were drawn: so this
dataset fits the stimuli the paper run makes from the ImageNet fake (1000 wnid folders, classes
0-9 with 4 val images each, of which the seed draws 2 per class).

The pictures themselves are not needed for BIDS files (only the simulated early ROI uses
pixels): random 8 x 8 RGB stand-ins. Size: 2 subjects x 2 runs (the simulator's defaults
otherwise: TR 1.5 s, task ``adv``, ROIs ``early``/``late``, six motion confounds, which are
the analysis's ``bids`` defaults).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from repro.fmri.params import SimParams
from repro.fmri.simulate import simulate_bids
from repro.fmri.stimuli import CONDITIONS, StimulusSet, stimulus_id

CLASSES = tuple(range(10))  # config/paper.yaml fmri_adv.stimuli.classes
PER_CLASS = 2  # config/smoke.yaml fmri_adv.stimuli.per_class
NUM_CLASSES = 1000  # ImageNet
SUBJECTS, RUNS = 2, 2


def paper_stimuli(seed: int = 0) -> StimulusSet:
    """A stand-in for the smoke run's stimulus set: its ids, conditions, classes and sources."""
    rng = np.random.default_rng(seed)
    n = len(CLASSES) * PER_CLASS
    sources = [4 * c + j for c in CLASSES for j in range(PER_CLASS)]
    table = [
        {
            "id": stimulus_id(cond, k),
            "condition": cond,
            "source": sources[k],
            "class": CLASSES[k // PER_CLASS],
        }
        for cond in CONDITIONS
        for k in range(n)
    ]
    images = rng.integers(0, 256, (len(table), 8, 8, 3), dtype=np.uint8)
    return StimulusSet(images, table, [f"n{i:08d}" for i in range(NUM_CLASSES)])


def write_fakes(out: Path) -> dict[str, Any]:
    """A simulated BIDS dataset under ``out/bids``; the overlay naming it. The fake networks
    (``repro.distill.fake``) have random weights and classify no image correctly, so the
    overlay also lets the stimuli be drawn among all images (``require_correct: false``)."""
    root = Path(out) / "bids"
    root.mkdir(parents=True, exist_ok=True)
    simulate_bids(paper_stimuli(), SimParams(seed=0, n_subjects=SUBJECTS, n_runs=RUNS), root)
    return {
        "fmri_adv": {
            "brain": {"bids_root": str(root.resolve())},
            "stimuli": {"require_correct": False},
        }
    }
