"""Captioned images: Karpathy-split COCO / Flickr30K, the vocabulary, image views, and the
seeded synthetic set of the quick run.

Karpathy split files (``dataset_coco.json``, ``dataset_flickr30k.json``): ``{"images": [...]}``,
each image with ``filename``, ``split`` (train / restval / val / test), ``sentences`` (each with
``tokens``) and, for COCO, ``filepath`` (the image folder below the image root). Exactly five
captions per image are used, the first five in file order (a few COCO images have six or seven;
vsepp's precomputed Karpathy data also keeps five). Captions of image i are rows 5i..5i+4, the
layout :mod:`repro.vse.evaluate` expects. The tokens are the file's own ``tokens`` (lowercased,
punctuation removed); the vocabulary is built from the training captions only (vsepp's released
vocabulary also counted test captions, which its README warns about). The training images are
the dataset's :data:`TRAIN_SPLITS` or the run's ``train_splits`` (:func:`load_train`);
:func:`extend_flickr_split` adds to Karpathy's Flickr30K file the 769 images it lacks.

Image views are deterministic functions of (seed, image, view id), so a frozen backbone's
feature map of a view can be cached (:mod:`repro.vse.cache`): ``random_resized_crop`` draws
torchvision's ``RandomResizedCrop`` parameters and a horizontal flip from a generator seeded
with (seed, image, view); ``resize`` (evaluation: 350x350 in MHSAN's code) and ``none``
(the synthetic images as they are) take no randomness.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from repro.core import ReproError
from repro.core.atomic import write_json, write_text

CAPTIONS_PER_IMAGE = 5
PAD, UNK = "<pad>", "<unk>"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TRAIN_SPLITS = {"coco": ("train", "restval"), "f30k": ("train",), "synthetic": ("train",)}
"""Karpathy splits used for training by default (MHSAN trains COCO on train + restval, 113,287
images, and Flickr30K on ``train``, 29,000 images)."""
EVAL_SPLITS = ("val", "test")
OUTSIDE_EVAL = "outside_eval"
"""``train_splits`` choice: every image of the split file whose split is neither val nor test."""


# ---------------------------------------------------------------- Karpathy split files


@dataclass
class CaptionedImages:
    """Images (paths) with exactly 5 tokenised captions each; captions[5i + k] is image i's."""

    paths: list[Path]
    captions: list[list[str]]

    def __len__(self) -> int:
        return len(self.paths)


def load_karpathy(
    json_path: str | Path,
    image_root: str | Path,
    splits: Sequence[str] | None,
    exclude: Sequence[str] = (),
) -> CaptionedImages:
    """The images of ``splits`` in a Karpathy split file, in file order; ``splits=None``: the
    images of every split but those in ``exclude``."""
    json_path, image_root = Path(json_path), Path(image_root)
    if not json_path.is_file():
        raise ReproError(f"{json_path}: Karpathy split file not found")
    if not image_root.is_dir():
        raise ReproError(f"{image_root}: image folder not found")
    try:
        entries = json.loads(json_path.read_text(encoding="utf-8"))["images"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ReproError(f"{json_path}: not a Karpathy split file ({exc!r})") from exc
    paths, captions = [], []
    for k, entry in enumerate(entries):
        try:
            split = entry["split"]
            if (split not in splits) if splits is not None else (split in exclude):
                continue
            name = entry["filename"]
            sentences = [s["tokens"] for s in entry["sentences"]]
        except (KeyError, TypeError) as exc:
            raise ReproError(f"{json_path}: images[{k}] lacks key {exc}") from exc
        if len(sentences) < CAPTIONS_PER_IMAGE:
            raise ReproError(
                f"{json_path}: images[{k}] ({name}) has {len(sentences)} captions, "
                f"needs {CAPTIONS_PER_IMAGE}"
            )
        paths.append(image_root / entry.get("filepath", "") / name)
        captions.extend([str(t).lower() for t in s] for s in sentences[:CAPTIONS_PER_IMAGE])
    if not paths:
        which = (
            f"in split(s) {', '.join(splits)}"
            if splits is not None
            else f"outside split(s) {', '.join(exclude)}"
        )
        raise ReproError(f"{json_path}: no images {which}")
    return CaptionedImages(paths, captions)


def check_train_splits(train_splits: Sequence[str] | str | None) -> tuple[str, ...] | str | None:
    """``train_splits`` as a tuple of split names, ``outside_eval`` or None (the dataset's
    :data:`TRAIN_SPLITS`); a one-line :class:`ReproError` for an empty list, an unknown string
    or an evaluation split."""
    if train_splits is None or train_splits == OUTSIDE_EVAL:
        return train_splits
    if isinstance(train_splits, str) or not train_splits:
        raise ReproError(
            f"train_splits: {train_splits!r} is not a list of split names or '{OUTSIDE_EVAL}'"
        )
    leaked = [s for s in train_splits if s in EVAL_SPLITS]
    if leaked:
        raise ReproError(f"train_splits: '{leaked[0]}' is an evaluation split")
    return tuple(str(s) for s in train_splits)


def load_train(
    json_path: str | Path,
    image_root: str | Path,
    dataset: str,
    train_splits: Sequence[str] | str | None = None,
) -> CaptionedImages:
    """The training images of ``dataset``: the splits of ``train_splits``, every image outside
    val and test (``outside_eval``) or, when None, the dataset's :data:`TRAIN_SPLITS`."""
    choice = check_train_splits(train_splits)
    if choice == OUTSIDE_EVAL:
        return load_karpathy(json_path, image_root, None, exclude=EVAL_SPLITS)
    return load_karpathy(json_path, image_root, choice or TRAIN_SPLITS[dataset])


FLICKR_EXTRA_SPLIT = "restval"
"""Split name given to the Flickr30K images that Karpathy's file leaves out (COCO's file names
its images outside train, val and test so)."""


def caption_tokens(raw: str) -> list[str]:
    """Tokens of a raw caption as Karpathy's files hold them, as near as his unpublished rules
    can be matched: lowercased words, punctuation dropped (inner hyphens and apostrophes kept)."""
    return re.findall(r"[a-z0-9]+(?:['-][a-z0-9]+)*", raw.lower())


def read_flickr_captions(path: str | Path) -> dict[str, list[str]]:
    """Flickr30K's own caption file (``results_20130124.token``): one line per caption,
    ``<filename>#<k><TAB><caption>``; the raw captions of each image, in file order."""
    path = Path(path)
    if not path.is_file():
        raise ReproError(f"{path}: Flickr30K caption file not found")
    captions: dict[str, list[str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        key, tab, raw = line.partition("\t")
        name, hash_, _ = key.partition("#")
        if not tab or not hash_ or not name:
            raise ReproError(f"{path}:{number}: not '<filename>#<k><TAB><caption>'")
        captions.setdefault(name.strip(), []).append(raw.strip())
    return captions


def flickr_entry(
    imgid: int, sentid: int, split: str, filename: str, captions: Sequence[tuple[str, list[str]]]
) -> dict:
    """One image of ``dataset_flickr30k.json``: its (raw, tokens) captions as ``sentences``
    numbered from ``sentid``."""
    sentences = [
        {"tokens": tokens, "raw": raw, "imgid": imgid, "sentid": sentid + k}
        for k, (raw, tokens) in enumerate(captions)
    ]
    return {
        "sentids": [s["sentid"] for s in sentences],
        "imgid": imgid,
        "sentences": sentences,
        "split": split,
        "filename": filename,
    }


def extend_flickr_split(
    split_file: str | Path, captions_file: str | Path, out: str | Path
) -> dict[str, int]:
    """Karpathy's ``dataset_flickr30k.json`` with every image of Flickr30K's caption file that
    it lacks appended as split :data:`FLICKR_EXTRA_SPLIT` (31,014 + 769 = 31,783 images; their
    first five captions, tokenised by :func:`caption_tokens`), written to ``out`` in the same
    format; the number of images per split of the result."""
    split_file = Path(split_file)
    try:
        data = json.loads(split_file.read_text(encoding="utf-8"))
        entries = data["images"]
        listed = {e["filename"] for e in entries}
        imgid = 1 + max((int(e.get("imgid", -1)) for e in entries), default=-1)
        sentid = 1 + max(
            (int(s.get("sentid", -1)) for e in entries for s in e["sentences"]), default=-1
        )
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ReproError(f"{split_file}: not a Karpathy split file ({exc!r})") from exc
    for name, raws in read_flickr_captions(captions_file).items():
        if name in listed:
            continue
        if len(raws) < CAPTIONS_PER_IMAGE:
            raise ReproError(
                f"{captions_file}: {name} has {len(raws)} captions, needs {CAPTIONS_PER_IMAGE}"
            )
        captions = [(raw, caption_tokens(raw)) for raw in raws[:CAPTIONS_PER_IMAGE]]
        entries.append(flickr_entry(imgid, sentid, FLICKR_EXTRA_SPLIT, name, captions))
        sentid += len(captions)
        imgid += 1
    write_text(out, json.dumps(data))
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry["split"]] = counts.get(entry["split"], 0) + 1
    return counts


# ---------------------------------------------------------------- vocabulary


@dataclass
class Vocabulary:
    """Word list; index 0 is padding, 1 unknown."""

    words: list[str]
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, captions: Sequence[Sequence[str]], min_count: int = 1) -> Vocabulary:
        """Words seen at least ``min_count`` times, most frequent first (ties alphabetical)."""
        counts: dict[str, int] = {}
        for caption in captions:
            for w in caption:
                counts[w] = counts.get(w, 0) + 1
        kept = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        return cls([PAD, UNK, *kept])

    def encode(self, captions: Sequence[Sequence[str]]) -> tuple[Tensor, Tensor]:
        """Right-padded token ids (M, longest) and lengths (M,)."""
        lengths = [len(c) for c in captions]
        if min(lengths) == 0:
            raise ReproError(f"caption {lengths.index(0)} has no tokens")
        ids = torch.zeros(len(captions), max(lengths), dtype=torch.long)
        unk = self.index[UNK]
        for i, caption in enumerate(captions):
            ids[i, : len(caption)] = torch.tensor([self.index.get(w, unk) for w in caption])
        return ids, torch.tensor(lengths)

    def save(self, path: str | Path) -> None:
        write_json(path, {"words": self.words})

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        words = json.loads(Path(path).read_text(encoding="utf-8"))["words"]
        if words[:2] != [PAD, UNK]:
            raise ReproError(f"{path}: a vocabulary starts with {PAD}, {UNK}")
        return cls(words)


# ---------------------------------------------------------------- image views


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes a network input; ``spec()`` keys the feature cache."""

    kind: Literal["none", "resize", "random_resized_crop"] = "none"
    size: int | tuple[int, int] = (256, 256)  # an integer n: (n, n)
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:  # lists from JSON as tuples; an integer size as (n, n)
        size = (self.size, self.size) if isinstance(self.size, int) else self.size
        object.__setattr__(self, "size", tuple(size))
        for key in ("scale", "ratio", "mean", "std"):
            object.__setattr__(self, key, tuple(getattr(self, key)))

    @property
    def random(self) -> bool:
        return self.kind == "random_resized_crop"

    def spec(self) -> dict:
        return dataclasses.asdict(self)

    def __call__(self, image: Tensor, seed: int = 0, item: int = 0, view: int = 0) -> Tensor:
        """uint8 (3, H, W) -> normalised float (3, h, w); random kinds draw from
        (seed, item, view)."""
        if self.kind != "none":  # torchvision takes seconds to import: only when needed
            import torchvision.transforms as T
            import torchvision.transforms.v2.functional as TF
        if self.kind == "resize":
            image = TF.resize(image, list(self.size), antialias=True)
        elif self.kind == "random_resized_crop":
            state = np.random.SeedSequence([seed, item, view]).generate_state(1)[0]
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(state))
                top, left, h, w = T.RandomResizedCrop.get_params(
                    image, list(self.scale), list(self.ratio)
                )
                flip = self.flip and bool(torch.rand(1) < 0.5)
            image = TF.resized_crop(image, top, left, h, w, list(self.size), antialias=True)
            if flip:
                image = TF.horizontal_flip(image)
        x = image.float().div_(255)
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return (x - mean) / std


def read_image(path: Path) -> Tensor:
    """uint8 RGB (3, H, W) of an image file (decoded by Pillow)."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise ReproError(f"{path}: image not found")
    try:
        with Image.open(path) as img:
            pixels = np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise ReproError(f"{path}: cannot decode image ({exc})") from exc
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)


class ImageViews:
    """Batches of preprocessed views of a dataset's images, decoded by a thread pool
    (Pillow's decoding and torch's resizing release the GIL)."""

    def __init__(
        self, paths: Sequence[Path], preprocess: Preprocess, seed: int = 0, workers: int = 4
    ) -> None:
        self.paths = list(paths)
        self.preprocess = preprocess
        self.seed = seed
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers))

    def one(self, item: int, view: int) -> Tensor:
        return self.preprocess(read_image(self.paths[item]), self.seed, item, view)

    def batch(self, items: Sequence[int], views: Sequence[int]) -> Tensor:
        return torch.stack(list(self.pool.map(self.one, items, views)))


# ---------------------------------------------------------------- synthetic set (quick run)

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 90, 230),
    "yellow": (230, 210, 40),
    "purple": (160, 60, 200),
    "white": (235, 235, 235),
}
SHAPES = ("circle", "square", "triangle", "cross")
SIZES = {"small": (0.08, 0.10), "large": (0.15, 0.18)}  # half-width as a fraction of the side


@dataclass(frozen=True)
class SyntheticConfig:
    """The synthetic captioned-image set: several coloured shapes per image, 5 captions each."""

    train: int = 3000
    val: int = 300
    test: int = 1000
    image_size: int = 64
    min_objects: int = 3
    max_objects: int = 4
    seed: int = 0

    def check(self, where: str = "synthetic") -> None:
        """Object counts and image size the generator can draw (called by ``parse``)."""
        if not 2 <= self.min_objects <= self.max_objects <= 6:
            raise ReproError(f"{where}: need 2 <= min_objects <= max_objects <= 6")
        if self.image_size < 32:
            raise ReproError(f"{where}.image_size: at least 32, got {self.image_size}")


@dataclass(frozen=True)
class Shape:
    colour: str
    shape: str
    size: str
    x: float  # centre, pixels
    y: float
    r: float  # half-width, pixels

    def words(self, with_size: bool = True) -> str:
        return (
            f"{self.size} {self.colour} {self.shape}"
            if with_size
            else f"{self.colour} {self.shape}"
        )


def _place(rng: np.random.Generator, n: int, side: int) -> list[Shape]:
    """``n`` shapes with distinct (colour, shape) pairs, not overlapping, inside the image."""
    pairs = [(c, s) for c in COLOURS for s in SHAPES]
    chosen = rng.choice(len(pairs), size=n, replace=False)
    out: list[Shape] = []
    for k in chosen:
        colour, shape = pairs[k]
        size = str(rng.choice(list(SIZES)))
        for _ in range(200):
            r = side * rng.uniform(*SIZES[size])
            x, y = rng.uniform(r + 1, side - r - 1, size=2)
            if all(np.hypot(x - o.x, y - o.y) > r + o.r + 2 for o in out):
                out.append(Shape(colour, shape, size, float(x), float(y), float(r)))
                break
        else:
            return _place(rng, n, side)  # crowded: start again
    return out


def _draw(shapes: Sequence[Shape], side: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageDraw

    background = int(rng.integers(0, 60))
    img = Image.new("RGB", (side, side), (background,) * 3)
    draw = ImageDraw.Draw(img)
    for s in shapes:
        fill = tuple(int(np.clip(c + rng.integers(-20, 21), 0, 255)) for c in COLOURS[s.colour])
        box = (s.x - s.r, s.y - s.r, s.x + s.r, s.y + s.r)
        if s.shape == "circle":
            draw.ellipse(box, fill=fill)
        elif s.shape == "square":
            draw.rectangle(box, fill=fill)
        elif s.shape == "triangle":
            draw.polygon(
                [(s.x, s.y - s.r), (s.x - s.r, s.y + s.r), (s.x + s.r, s.y + s.r)], fill=fill
            )
        else:  # cross: two bars of a third of the width
            t = s.r / 3
            draw.rectangle((s.x - s.r, s.y - t, s.x + s.r, s.y + t), fill=fill)
            draw.rectangle((s.x - t, s.y - s.r, s.x + t, s.y + s.r), fill=fill)
    pixels = np.asarray(img, dtype=np.int16) + rng.integers(-8, 9, size=(side, side, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _relation(a: Shape, b: Shape) -> str | None:
    """Where ``a`` is relative to ``b`` when one axis clearly dominates (image y grows down)."""
    dx, dy = a.x - b.x, a.y - b.y
    if abs(dx) > 1.5 * abs(dy):
        return "left of" if dx < 0 else "right of"
    if abs(dy) > 1.5 * abs(dx):
        return "above" if dy < 0 else "below"
    return None


def _region(s: Shape, side: int) -> str:
    v = "top" if s.y < side / 3 else "bottom" if s.y > 2 * side / 3 else ""
    h = "left" if s.x < side / 3 else "right" if s.x > 2 * side / 3 else ""
    return f"{v} {h}".strip() or "middle"


def _captions(shapes: Sequence[Shape], side: int, rng: np.random.Generator) -> list[str]:
    """Five different captions, each from a randomly chosen template. Every caption names at
    least two objects by size, colour and shape, so that it rarely fits another image of a
    batch: a caption that fits a batch's other images makes their hardest negative a true
    match, and the hardest-negative loss then cannot train."""
    pairs = [(a, b, rel) for a in shapes for b in shapes if a is not b and (rel := _relation(a, b))]

    def some(k: int) -> list[Shape]:
        return [shapes[i] for i in rng.choice(len(shapes), size=k, replace=False)]

    def one() -> str:
        kind = int(rng.integers(5))
        if kind <= 1 and pairs:  # a relation between two objects
            a, b, rel = pairs[rng.integers(len(pairs))]
            if kind == 0:
                return f"a {a.words()} {rel} a {b.words()}"
            return f"the {a.words()} is {rel} the {b.words()}"
        if kind == 2:  # every object, in random order
            listed = [f"a {s.words()}" for s in some(len(shapes))]
            return f"{len(shapes)} shapes : " + " , ".join(listed[:-1]) + " and " + listed[-1]
        if kind == 3:  # two objects and where they are
            a, b = some(2)
            return f"a {a.words()} in the {_region(a, side)} and a {b.words()} in the " + _region(
                b, side
            )
        a, b, c = some(3)  # three objects, no layout
        return f"there is a {a.words()} , a {b.words()} and a {c.words(False)}"

    out: list[str] = []
    for _ in range(100):
        c = one()
        if c not in out:
            out.append(c)
        if len(out) == CAPTIONS_PER_IMAGE:
            return out
    while len(out) < CAPTIONS_PER_IMAGE:  # so few distinct captions: repeat (never in practice)
        out.append(out[len(out) % len(out)])
    return out


def make_synthetic(out: str | Path, cfg: SyntheticConfig) -> Path:
    """Write ``images/NNNNNN.png`` and ``dataset_synthetic.json`` (Karpathy format, splits
    train / val / test) under ``out``; returns the JSON path. Same seed -> same files.

    The images are written into a temporary folder that is renamed to ``images`` once complete
    (one rename, not one per file), and the JSON, written last, marks the set complete."""
    import shutil
    import tempfile

    from PIL import Image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(cfg.seed)
    side = cfg.image_size
    entries = []
    splits = ["train"] * cfg.train + ["val"] * cfg.val + ["test"] * cfg.test
    tmp = Path(tempfile.mkdtemp(prefix=".images.", dir=out))
    try:
        for i, split in enumerate(splits):
            shapes = _place(rng, int(rng.integers(cfg.min_objects, cfg.max_objects + 1)), side)
            name = f"{i:06d}.png"
            Image.fromarray(_draw(shapes, side, rng)).save(tmp / name, format="PNG")
            entries.append(
                {
                    "filepath": "images",
                    "filename": name,
                    "imgid": i,
                    "split": split,
                    "sentences": [
                        {"raw": c, "tokens": c.split()} for c in _captions(shapes, side, rng)
                    ],
                    "objects": [dataclasses.asdict(s) for s in shapes],
                }
            )
        (out / "dataset_synthetic.json").unlink(missing_ok=True)
        if (out / "images").exists():
            shutil.rmtree(out / "images")
        tmp.rename(out / "images")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    json_path = out / "dataset_synthetic.json"
    payload = {"dataset": "synthetic", "config": dataclasses.asdict(cfg), "images": entries}
    write_json(json_path, payload)
    return json_path
