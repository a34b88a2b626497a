"""Test protocols and the test-set size each expects (torch-free: the plan imports it).

A protocol scores the test split's similarity matrix (:mod:`repro.vse.evaluate`): ``coco_1k``
is the mean over 5 contiguous folds of 1,000 images of COCO's 5,000, ``coco_5k`` all 5,000
at once, ``f30k_1k`` Flickr30K's 1,000; ``full`` is the whole test split, whatever its size.

``test_images`` (config ``mhsan.test_images``, a scale key for runs on small stand-in splits)
replaces every protocol's official count: ``coco_1k`` then expects ``test_images`` images in 5
folds of ``test_images / 5`` (5 must divide it), ``coco_5k`` and ``f30k_1k`` expect
``test_images`` in one fold, and ``full`` too.

Model selection (:func:`val_folds`): the epoch kept is the one with the best validation rsum,
``val_selection: folds`` (the default, MHSAN's code: ``avg_recall`` in its ``evaluation.py``)
the mean rsum over contiguous folds of :data:`VAL_FOLD` = 1,000 images (COCO's 5,000 val
images: 5 folds; Flickr30K's 1,014: one fold of the first 1,000, the rest left out as the code
leaves it), ``whole`` the rsum of the whole split as one set. A validation split smaller than
one fold (the quick set's 300 images, the smoke run's 5), where MHSAN's code has no fold and
fails, is one fold of what there is, the same as ``whole``.
"""

from __future__ import annotations

from repro.core import ReproError

PROTOCOLS = {"coco_1k": (5000, 5), "coco_5k": (5000, 1), "f30k_1k": (1000, 1)}
"""Official test protocols: (number of test images, number of folds averaged)."""

VAL_SELECTIONS = ("folds", "whole")
"""Model selection: mean rsum over 1,000-image validation folds (MHSAN's code), or the whole
validation split as one set."""
VAL_FOLD = 1000
"""Images in a validation fold (MHSAN's code: 5,000 caption rows, 5 per image)."""

DATASET_PROTOCOLS = {"synthetic": ("full",), "coco": ("coco_1k", "coco_5k"), "f30k": ("f30k_1k",)}
"""The protocols a dataset's runs report by default (the paper's tables)."""


def expected(protocol: str, test_images: int | None = None) -> tuple[int | None, int]:
    """(test images the protocol expects, folds averaged); ``None`` images: any number
    (``full`` without ``test_images``). A one-line :class:`ReproError` for an unknown protocol
    or a ``test_images`` the folds do not divide."""
    if protocol == "full":
        images, folds = None, 1
    elif protocol in PROTOCOLS:
        images, folds = PROTOCOLS[protocol]
    else:
        raise ReproError(f"unknown protocol '{protocol}' (known: full, {', '.join(PROTOCOLS)})")
    if test_images is None:
        return images, folds
    if isinstance(test_images, bool) or not isinstance(test_images, int) or test_images < 1:
        raise ReproError(f"test_images: {test_images!r} is not a positive integer")
    if test_images % folds:
        raise ReproError(
            f"test_images: {test_images} test images cannot be split into the {folds} equal "
            f"folds of protocol {protocol} ({folds} must divide test_images)"
        )
    return test_images, folds


def check_size(protocol: str, n_images: int, test_images: int | None = None) -> int:
    """The folds of ``protocol`` for a test split of ``n_images``; a one-line error when the
    protocol expects another size."""
    images, folds = expected(protocol, test_images)
    if images is not None and n_images != images:
        scaled = " (mhsan.test_images)" if test_images is not None else ""
        raise ReproError(f"protocol {protocol} needs {images} test images{scaled}, got {n_images}")
    return folds


def val_folds(n_images: int, selection: str = "folds") -> tuple[int, int]:
    """(folds, images per fold) of a validation split of ``n_images`` that model selection
    averages over: ``whole``, one fold of all of them; ``folds``, ``n_images // 1000`` folds of
    1,000 (the first ones; a remainder is left out, as MHSAN's code leaves it), or one fold of
    all of them when there are fewer than 1,000."""
    if selection not in VAL_SELECTIONS:
        raise ReproError(f"val_selection: '{selection}' is not {' or '.join(VAL_SELECTIONS)}")
    if n_images < 1:
        raise ReproError("validation split: no images")
    if selection == "whole" or n_images < VAL_FOLD:
        return 1, n_images
    return n_images // VAL_FOLD, VAL_FOLD
