"""Shared fixtures: the digits images, tiny trained networks, a small stimulus set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from repro.core.checkpoint import save_checkpoint
from repro.data.arrays import write_arrays
from repro.data.digits import load_digits_uint8
from repro.distill.models import build_model
from repro.fmri.attacks import PixelModel

torch.set_num_threads(1)  # the test machine is small and shared


@pytest.fixture(scope="session")
def digits():
    """All 1,797 digits: uint8 (N, 8, 8, 1) and labels."""
    return load_digits_uint8()


def train_tiny(name: str, images: np.ndarray, labels: np.ndarray, steps: int, seed: int):
    """A zoo model trained for a few Adam steps (enough for ~90% on digits)."""
    torch.manual_seed(seed)
    model = build_model(name, 10, 1)
    net = PixelModel(model, [0.5], [0.5])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    y = torch.from_numpy(labels)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(y), (64,), generator=gen)
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def tiny_trainer():
    """:func:`train_tiny`, for tests (conftest is not importable under importlib mode)."""
    return train_tiny


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory, digits):
    """The digits in the repro.data.arrays format (first 1,400 train, rest test)."""
    images, labels = digits
    out = tmp_path_factory.mktemp("digits")
    splits = {"train": (images[:1400], labels[:1400]), "test": (images[1400:], labels[1400:])}
    write_arrays(out, splits, [str(i) for i in range(10)], "digits", {"origin": "test"})
    return out


@pytest.fixture(scope="session")
def trained_nets(tmp_path_factory, digits):
    """resnet8 (target) and wrn_16_1 (substitute) briefly trained, saved as trainer model.pt."""
    images, labels = digits
    out = tmp_path_factory.mktemp("nets")
    paths = {}
    for role, name, seed in (("target", "resnet8", 0), ("substitute", "wrn_16_1", 1)):
        model = train_tiny(name, images[:1400], labels[:1400], steps=80, seed=seed)
        paths[role] = out / f"{role}.pt"
        save_checkpoint(paths[role], {"model": model.state_dict()})
    return paths


def synthetic_stimuli(digits, per_class: int = 1, epsilon: int = 32, seed: int = 0):
    """A stimulus set without networks: clean digits and two random +-epsilon versions."""
    from repro.fmri.stimuli import CONDITIONS, StimulusSet

    images, labels = digits
    rng = np.random.default_rng(seed)
    src = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)])
    clean = images[src].astype(int)
    versions = {"clean": clean}
    for cond in ("white", "black"):
        noise = rng.choice([-epsilon, epsilon], size=clean.shape)
        versions[cond] = np.clip(clean + noise, 0, 255)
    rows, out = [], []
    for cond in CONDITIONS:
        for k, s in enumerate(src):
            sid = f"{cond}-{k:03d}"
            adv = cond != "clean"
            rows.append({"id": sid, "condition": cond, "source": int(s), "class": int(labels[s]),
                         "class_name": str(labels[s]), "attack": "random" if adv else "none",
                         "epsilon": float(epsilon) if adv else 0.0, "made_on": "",
                         "target_pred": int(labels[s]), "substitute_pred": int(labels[s]),
                         "success": 0 if adv else "", "linf": epsilon if adv else 0,
                         "file": f"images/{sid}.png"})  # fmt: skip
        out.append(versions[cond].astype(np.uint8))
    return StimulusSet(np.concatenate(out), rows, [str(i) for i in range(10)])


@pytest.fixture(scope="session")
def make_stimuli(digits):
    """``make_stimuli(per_class, epsilon, seed)``: see :func:`synthetic_stimuli`."""
    return lambda per_class=1, epsilon=32, seed=0: synthetic_stimuli(
        digits, per_class, epsilon, seed
    )


TINY_SIM = {"n_subjects": 1, "n_runs": 2, "roi_voxels": 24, "shape": [6, 6, 2], "soa": 3.0}


@pytest.fixture
def tiny_bids(tmp_path, make_stimuli):
    """``tiny_bids(**overrides) -> (root, stimuli)``: a small simulated BIDS dataset."""
    from repro.core.params import parse
    from repro.fmri.params import SimParams
    from repro.fmri.simulate import simulate_bids

    def make(per_class=1, **overrides):
        stim = make_stimuli(per_class)
        params = parse(SimParams, {**TINY_SIM, **overrides}, "sim")
        root = tmp_path / f"bids{len(list(tmp_path.iterdir()))}"
        simulate_bids(stim, params, root)
        return root, stim

    return make
