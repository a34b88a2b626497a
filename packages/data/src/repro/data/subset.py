"""A smaller index of a folder dataset: the first classes, a few images per class.

Used by the smoke run (``config/smoke.yaml``: ``data.<name>.subset``) to run the paper path on
a few images while the labels, the class list and so the networks' outputs stay the full
set's (an ImageNet subset of 10 classes still trains 1000-way classifiers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from repro.core import ReproError

KEYS = {"classes", "train_per_class", "val_per_class"}


@dataclass
class Subset:
    """``data.<name>.subset`` (the schema's ``$defs.subset``); unset keys limit nothing."""

    classes: int | None = None
    train_per_class: int | None = None
    val_per_class: int | None = None

    def check(self, where: str) -> None:
        for key, value in self.as_dict().items():
            if value < 1:
                raise ReproError(f"{where}.{key}: {value!r} is not a positive integer")

    def as_dict(self) -> dict[str, int]:
        """The keys that were set, as the index functions and ``meta.json`` take them."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def subset_dict(subset: Subset) -> dict[str, int] | None:
    """``subset`` as the index functions take it (None when no key is set)."""
    return subset.as_dict() or None


def check_subset(name: str, subset: dict[str, Any] | None) -> None:
    """One line naming the key when ``data.<name>.subset`` is malformed."""
    if not subset:
        return
    unknown = sorted(set(subset) - KEYS)
    if unknown:
        raise ReproError(
            f"data.{name}.subset: unknown key '{unknown[0]}' (known: {', '.join(sorted(KEYS))})"
        )
    for key, value in subset.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ReproError(f"data.{name}.subset.{key}: {value!r} is not a positive integer")


def take(
    rows: Sequence[tuple[str, int]], subset: dict[str, Any] | None, split: str
) -> list[tuple[str, int]]:
    """The rows (path, label) of classes ``0 .. classes-1``, at most ``<split>_per_class``
    each, in their listed order; all rows when ``subset`` is empty."""
    if not subset:
        return list(rows)
    classes = subset.get("classes")
    per_class = subset.get(f"{split}_per_class")
    kept: list[tuple[str, int]] = []
    seen: dict[int, int] = {}
    for path, label in rows:
        if classes is not None and label >= classes:
            continue
        if per_class is not None and seen.get(label, 0) >= per_class:
            continue
        seen[label] = seen.get(label, 0) + 1
        kept.append((path, label))
    return kept
