"""Fake MS-COCO and Flickr30K for a smoke run of the paper config (``repro-data fake``).

Both in their official on-disk formats, at toy size (24 x 24 JPEGs):

- ``coco/train2014/COCO_train2014_<12-digit id>.jpg`` and ``coco/val2014/...`` (the image
  root) with Karpathy's ``coco/dataset_coco.json``: ``{"images": [...], "dataset": "coco"}``,
  each image ``filepath`` (train2014 / val2014), ``sentids``, ``filename``, ``imgid``,
  ``split`` (train / restval / val / test), ``sentences`` (``tokens``, ``raw``, ``imgid``,
  ``sentid``) and ``cocoid``; Karpathy's train images come from train2014, the others from
  val2014. A few images have 6 or 7 captions, as in the real file.
- ``f30k/flickr30k-images/<id>.jpg`` (the image root) with ``f30k/dataset_flickr30k.json``
  (the same keys without ``filepath`` and ``cocoid``; ``"dataset": "flickr30k"``).

Sizes (:data:`COCO_SPLITS`, :data:`F30K_SPLITS`): the test splits hold 10 images each, not
the 5,000 and 1,000 that the protocols ``coco_1k``/``coco_5k``/``f30k_1k``
(:data:`repro.vse.evaluate.PROTOCOLS`) require; COCO's 10 split into 5 folds of 2.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from repro.core.atomic import atomic_path, write_json

#: 3 training images per dataset (COCO: 2 of train2014 and 1 of restval): 16 and 15 captions.
#: An epoch steps over captions, so that is 2 batches of config/smoke.yaml's 8; the last
#: stage fine-tunes ResNet-152 on each batch's images, the smoke run's costliest step on CPU.
COCO_SPLITS = {"train": 2, "restval": 1, "val": 5, "test": 10}
F30K_SPLITS = {"train": 3, "val": 5, "test": 10}  # one test size: mhsan.test_images
IMAGE_SIZE = 24
#: (split, index within the split) of the COCO images with 6 or 7 captions.
EXTRA_CAPTIONS = {("test", 0): 6, ("test", 7): 7, ("train", 1): 6}
_COLOURS = ("red", "green", "blue", "yellow", "white", "black", "brown", "orange")
_THINGS = ("dog", "cat", "man", "woman", "car", "bus", "kite", "pizza", "horse", "train")
_PLACES = ("on a street", "in a field", "near the water", "in a kitchen", "at the park")


def _jpeg(path: Path, rng: np.random.Generator) -> None:
    from PIL import Image

    pixels = rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def _sentence(rng: np.random.Generator) -> tuple[str, list[str]]:
    """A raw caption (capitalised, punctuated, as the annotators wrote) and its tokens
    (lowercased, punctuation dropped, as Karpathy's files hold them)."""
    colour, thing, place = rng.choice(_COLOURS), rng.choice(_THINGS), rng.choice(_PLACES)
    raw = f"A {colour} {thing} standing {place}."
    return raw, raw.lower().rstrip(".").split()


def _split_order(splits: dict[str, int], rng: np.random.Generator) -> list[tuple[str, int]]:
    """(split, index within split) of every image, shuffled (the real files interleave)."""
    order = [(s, k) for s, n in splits.items() for k in range(n)]
    return [order[i] for i in rng.permutation(len(order))]


def write_coco(root: str | Path, seed: int = 0) -> Path:
    """Images and ``dataset_coco.json`` under ``root`` (the image root); the split file."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    order = _split_order(COCO_SPLITS, rng)
    ids = rng.choice(np.arange(1, 600_000), len(order), replace=False)
    images, sentid = [], 0
    for imgid, ((split, k), cocoid) in enumerate(zip(order, ids, strict=True)):
        folder = "train2014" if split == "train" else "val2014"
        filename = f"COCO_{folder}_{int(cocoid):012d}.jpg"
        _jpeg(root / folder / filename, rng)
        n = EXTRA_CAPTIONS.get((split, k), 5)
        sentences = []
        for _ in range(n):
            raw, tokens = _sentence(rng)
            sentences.append({"tokens": tokens, "raw": raw, "imgid": imgid, "sentid": sentid})
            sentid += 1
        images.append(
            {
                "filepath": folder,
                "sentids": [s["sentid"] for s in sentences],
                "filename": filename,
                "imgid": imgid,
                "split": split,
                "sentences": sentences,
                "cocoid": int(cocoid),
            }
        )
    path = root / "dataset_coco.json"
    write_json(path, {"images": images, "dataset": "coco"})
    return path


def write_f30k(root: str | Path, seed: int = 1) -> Path:
    """``flickr30k-images/`` and ``dataset_flickr30k.json`` under ``root``; the split file."""
    from repro.vse.data import flickr_entry  # imports torch: only when writing

    root = Path(root)
    rng = np.random.default_rng(seed)
    order = _split_order(F30K_SPLITS, rng)
    ids = rng.choice(np.arange(1_000_000_000, 1_010_000_000), len(order), replace=False)
    images, sentid = [], 0
    for imgid, ((split, _), photo) in enumerate(zip(order, ids, strict=True)):
        filename = f"{int(photo)}.jpg"
        _jpeg(root / "flickr30k-images" / filename, rng)
        captions = [_sentence(rng) for _ in range(5)]
        images.append(flickr_entry(imgid, sentid, split, filename, captions))
        sentid += len(captions)
    path = root / "dataset_flickr30k.json"
    write_json(path, {"images": images, "dataset": "flickr30k"})
    return path


def write_fakes(out: Path) -> dict[str, Any]:
    """COCO and Flickr30K under ``out``; the overlay naming both (``mhsan.datasets``). Both
    test splits have 10 images, so one ``mhsan.test_images: 10`` (config/smoke.yaml) sizes
    every protocol. The ResNet-152 backbone file (``mhsan.train.model.backbone_weights``)
    comes from ``repro.distill.fake``, the one writer of torchvision weight files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    coco = write_coco(out / "coco")
    f30k = write_f30k(out / "f30k")
    return {
        "mhsan": {
            "datasets": {
                "coco": {"split_file": str(coco.resolve()), "images": str(coco.parent.resolve())},
                "f30k": {
                    "split_file": str(f30k.resolve()),
                    "images": str((f30k.parent / "flickr30k-images").resolve()),
                },
            }
        }
    }
