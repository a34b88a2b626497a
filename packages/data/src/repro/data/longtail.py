"""Long-tailed subsets with an exponential per-class profile (the CIFAR-100-LT recipe).

Class ``i`` of ``K`` keeps ``floor(n_max * (1 / imbalance) ** (i / (K - 1)))`` samples
(Cao et al., 2019, "LDAM"), so the head class keeps ``n_max`` and the tail class
``n_max / imbalance``. Which samples are kept is drawn with a seeded generator.
"""

from __future__ import annotations

import numpy as np


def longtail_counts(n_max: int, num_classes: int, imbalance: float) -> list[int]:
    """Per-class sample counts of the exponential long-tail profile."""
    if imbalance < 1:
        raise ValueError(f"imbalance factor must be >= 1, got {imbalance}")
    if num_classes == 1:
        return [n_max]
    return [int(n_max * (1.0 / imbalance) ** (i / (num_classes - 1))) for i in range(num_classes)]


def longtail_indices(labels: np.ndarray, imbalance: float, seed: int) -> np.ndarray:
    """Sorted indices of a long-tailed subset of ``labels`` (classes in index order)."""
    labels = np.asarray(labels)
    num_classes = int(labels.max()) + 1
    n_max = int(np.bincount(labels, minlength=num_classes).max())
    counts = longtail_counts(n_max, num_classes, imbalance)
    rng = np.random.default_rng(seed)
    keep = []
    for cls, count in enumerate(counts):
        idx = np.flatnonzero(labels == cls)
        keep.append(rng.permutation(idx)[: min(count, len(idx))])
    return np.sort(np.concatenate(keep))
