"""scikit-learn's bundled 8x8 digits: the quick run's classification data."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from repro.core import ReproError
from repro.data.arrays import write_arrays
from repro.data.dataset import Dataset
from repro.data.longtail import longtail_indices


def load_digits_uint8() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as ``uint8`` images ``(N, 8, 8, 1)`` (0..16 scaled to 0..255)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return images, bunch.target.astype(np.int64)


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class seeded split; returns sorted (train, test) index arrays."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def prepare_digits(
    out_dir: str | os.PathLike[str],
    test_fraction: float = 0.25,
    seed: int = 0,
    imbalance: float | None = None,
) -> dict[str, Any]:
    """Write the fixed train/test split; with ``imbalance`` the train split is long-tailed."""
    images, labels = load_digits_uint8()
    train, test = stratified_split(labels, test_fraction, seed)
    name = "digits"
    if imbalance is not None:
        train = train[longtail_indices(labels[train], imbalance, seed)]
        name = f"digits-lt{imbalance:g}"
    splits = {"train": (images[train], labels[train]), "test": (images[test], labels[test])}
    source = {
        "origin": "sklearn.datasets.load_digits",
        "test_fraction": test_fraction,
        "split_seed": seed,
        "imbalance": imbalance,
    }
    return write_arrays(out_dir, splits, [str(i) for i in range(10)], name, source)


@dataclass
class DigitsParams:
    """``data.digits``: the fixed split's test fraction and seed."""

    test_fraction: float = 0.25
    seed: int = 0

    def check(self, where: str) -> None:
        if not 0 < self.test_fraction < 1:
            raise ReproError(f"{where}.test_fraction: {self.test_fraction} is not in (0, 1)")


class Digits(Dataset):
    """The 8x8 digits and their long-tailed variants ``digits-lt<F>``."""

    name = "digits"
    params = DigitsParams
    schema = "digits"
    rule = "prepare_digits"
    long_tailed = True

    def prepare(
        self, params: DigitsParams, out: Path, archive: Path | None, imbalance: float | None
    ) -> dict[str, Any]:
        return prepare_digits(out, params.test_fraction, params.seed, imbalance)


DATASETS = (Digits(),)
