"""Small inputs in the exact official file formats, for runs and tests without the real data.

Each writer produces one dataset's official distribution (archive bytes, member names, list
files, class structure: every class of the real set is present) at a few images per class,
with placeholder class names in the official name format. Pixels are smooth random pictures
or flat colours from seeded generators; archives have fixed member times, so the same call
writes the same bytes every time. The quirks of the real files are included, since loaders
must survive them: greyscale JPEGs (Tiny-ImageNet, ImageNet, CUB-200-2011), CMYK JPEGs and a
PNG saved under a ``.JPEG`` name (ImageNet), Windows line ends (MIT Indoor 67's lists).

:func:`write_fakes` is repro-data's plug-in of ``repro-data fake`` (:mod:`repro.data.inputs`):
it writes all of them and returns the ``data`` config keys that point a paper run at them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

#: Member time of every zip entry (the zip format's epoch): the same content, the same bytes.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
#: ImageNet quirks, as ``(class index, image index within the class): kind``, in both splits:
#: ``L`` a greyscale JPEG, ``CMYK`` a CMYK JPEG, ``PNG`` a PNG file under a ``.JPEG`` name.
IMAGENET_QUIRKS = {(1, 1): "L", (2, 2): "CMYK", (3, 3): "PNG"}


# --- pixels and containers ------------------------------------------------------------------


def smooth_image(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """An RGB picture that varies smoothly (JPEG-friendly, and crops of it differ)."""
    small = rng.integers(0, 256, (height // 8 + 2, width // 8 + 2, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)


def encode(image: Image.Image, kind: str = "RGB", quality: int = 90) -> bytes:
    """``image`` as file bytes: a JPEG in mode ``kind`` (``RGB``, ``L``, ``CMYK``) or, for
    ``PNG``, a PNG. A CMYK JPEG gets a black (K) plane that is not zero, as in print files, so
    a reader that ignores K gets other colours than PIL's ``convert("RGB")``."""
    buf = io.BytesIO()
    if kind == "PNG":
        image.convert("RGB").save(buf, format="PNG")
    elif kind == "CMYK":
        c, m, y, _ = image.convert("CMYK").split()
        k = image.convert("L").point(lambda v: 96 - v * 96 // 255)
        Image.merge("CMYK", (c, m, y, k)).save(buf, format="JPEG", quality=quality)
    else:
        image.convert(kind).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _write(path: Path, blob: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(blob, str):
        path.write_bytes(blob.encode())  # no newline translation: line ends as given
    else:
        path.write_bytes(blob)


class _Zip:
    """A zip with fixed member times and modes, each folder listed before its members (as
    zip tools write them); text is deflated, images stored."""

    def __init__(self, path: Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.zf = zipfile.ZipFile(path, "w")
        self.folders: set[str] = set()

    def add(self, name: str, blob: bytes | str) -> None:
        parts = name.split("/")
        for k in range(1, len(parts)):
            folder = "/".join(parts[:k]) + "/"
            if folder not in self.folders:
                self.folders.add(folder)
                info = zipfile.ZipInfo(folder, ZIP_TIME)
                info.external_attr = (0o40755 << 16) | 0x10
                self.zf.writestr(info, b"")
        info = zipfile.ZipInfo(name, ZIP_TIME)
        info.external_attr = 0o644 << 16
        text = isinstance(blob, str)
        info.compress_type = zipfile.ZIP_DEFLATED if text else zipfile.ZIP_STORED
        self.zf.writestr(info, blob.encode() if text else blob)

    def __enter__(self) -> _Zip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.zf.close()


def md5(path: Path) -> str:
    """``md5:<hex>`` of a file (the form of ``data.<name>.hash``)."""
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


# --- archives -------------------------------------------------------------------------------


def make_cifar100_archive(path: Path, n_train: int = 20, n_test: int = 10, seed: int = 0):
    """A ``cifar-100-python.tar.gz`` with the official members (``meta``, ``train``, ``test``
    pickles with the official keys, plus the folder entry and ``file.txt~``). Labels cycle
    through the 100 classes in a random order, so 100 or more images hold every class.

    Returns ``{split: (images (N, 32, 32, 3), labels)}`` as encoded, for comparison.
    """
    rng = np.random.default_rng(seed)
    truth = {}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # gzip header mtime 0 and tar mtime 0: the same content gives the same bytes (and md5)
    with gzip.GzipFile(path, "wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        folder = tarfile.TarInfo("cifar-100-python")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)

        def add(name: str, blob: bytes) -> None:
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size, info.mode = len(blob), 0o644
            tar.addfile(info, io.BytesIO(blob))

        add("file.txt~", b"")
        for split, n in (("train", n_train), ("test", n_test)):
            images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
            labels = [int(x) for x in rng.permutation(np.arange(n) % 100)]
            # Official row layout: 1024 red, then 1024 green, then 1024 blue, row-major.
            rows = np.concatenate([images[..., c].reshape(n, 1024) for c in range(3)], axis=1)
            batch = {
                "batch_label": f"{split} batch 1 of 1",
                "fine_labels": labels,
                "coarse_labels": [x // 5 for x in labels],
                "filenames": [f"img_{i}.png" for i in range(n)],
                "data": rows,
            }
            add(split, pickle.dumps(batch, protocol=2))
            truth[split] = (images, np.array(labels))
        meta = {
            "fine_label_names": [f"class{i:02d}" for i in range(100)],
            "coarse_label_names": [f"super{i:02d}" for i in range(20)],
        }
        add("meta", pickle.dumps(meta, protocol=2))
    return truth


def tiny_colour(index: int) -> tuple[int, ...]:
    """The flat colour of Tiny-ImageNet class ``index`` in :func:`make_tinyimagenet_zip`."""
    return tuple(20 + (a + b * index) % 216 for a, b in ((40, 61), (200, -53), (90, 29)))


def make_tinyimagenet_zip(
    path: Path,
    wnids: Sequence[str] | int = 3,
    per_class: int = 3,
    n_val: int = 4,
    n_test: int = 1,
    grey_every: int = 50,
):
    """A ``tiny-imagenet-200.zip`` with the official folders and annotation files.

    ``wnids``: the class ids, or how many (``n`` + 8 digits, sorted). Images are 64 x 64 flat
    colours identifying the class (JPEG-stable); greyscale JPEGs occur as in the real zip:
    ``val_0`` and the last train image of every ``grey_every``-th class from class 1.
    Returns ``({wnid: colour}, val labels)``.
    """
    if isinstance(wnids, int):
        wnids = [f"n{1443537 + 7331 * i:08d}" for i in range(wnids)]
    colours = {w: tiny_colour(i) for i, w in enumerate(wnids)}

    def jpeg(colour, grey: bool) -> bytes:
        image = Image.new("RGB", (64, 64), colour)
        return encode(image, "L" if grey else "RGB", quality=95)

    val_labels = []
    root = "tiny-imagenet-200"
    with _Zip(path) as zf:
        zf.add(f"{root}/wnids.txt", "".join(f"{w}\n" for w in wnids))
        words = "".join(f"{w}\tname{i}, alias{i}\n" for i, w in enumerate(wnids))
        zf.add(f"{root}/words.txt", words + "n99999999\tunused\n")  # lists more than the 200
        for c, w in enumerate(wnids):
            boxes = []
            for i in range(per_class):
                grey = c % grey_every == 1 and i == per_class - 1
                zf.add(f"{root}/train/{w}/images/{w}_{i}.JPEG", jpeg(colours[w], grey))
                boxes.append(f"{w}_{i}.JPEG\t0\t0\t63\t63\n")
            zf.add(f"{root}/train/{w}/{w}_boxes.txt", "".join(boxes))
        ann = []
        for i in range(n_val):
            w = wnids[i % len(wnids)]
            zf.add(f"{root}/val/images/val_{i}.JPEG", jpeg(colours[w], i == 0))
            ann.append(f"val_{i}.JPEG\t{w}\t0\t0\t63\t63\n")
            val_labels.append(wnids.index(w))
        zf.add(f"{root}/val/val_annotations.txt", "".join(ann))
        for i in range(n_test):
            zf.add(f"{root}/test/images/test_{i}.JPEG", jpeg((0, 0, 0), False))
    return colours, val_labels


def make_zurich_zip(
    path: Path,
    n_train: int = 3,
    n_test: int = 2,
    top: str = "Zurich-RAW-to-DSLR-Dataset",
    skip: int | None = None,
) -> dict[str, list[bytes]]:
    """A Zurich RAW-to-RGB zip in the official layout: ``<top>/{train,test}/canon/<i>.jpg``
    (448 x 448 sRGB JPEGs) beside ``huawei_raw/<i>.png`` (the 448 x 448 16-bit Bayer RAW,
    10-bit values). ``skip`` leaves one train id out. Returns the JPEG bytes per split, by id."""
    rng = np.random.default_rng(0)
    jpegs: dict[str, list[bytes]] = {}
    with _Zip(path) as zf:
        for split, n in (("train", n_train), ("test", n_test)):
            jpegs[split] = []
            for i in range(n):
                blob = encode(smooth_image(rng, 448, 448))
                jpegs[split].append(blob)
                raw = rng.integers(0, 1024, (57, 57)).astype(np.float32)
                bayer = Image.fromarray(raw).resize((448, 448), Image.Resampling.BILINEAR)
                png = io.BytesIO()
                Image.fromarray(np.asarray(bayer).astype(np.uint16)).save(
                    png, "PNG", compress_level=3
                )
                if split == "train" and i == skip:
                    continue
                zf.add(f"{top}/{split}/canon/{i}.jpg", blob)
                zf.add(f"{top}/{split}/huawei_raw/{i}.png", png.getvalue())
    return jpegs


# --- image folders --------------------------------------------------------------------------


def imagenet_wnids(classes: int) -> list[str]:
    """Placeholder WordNet ids (``n`` + 8 digits), increasing: sorted order is label order."""
    return [f"n{1440764 + 4099 * c:08d}" for c in range(classes)]


def make_imagenet(
    root: Path, classes: int = 1000, per_class: int = 1, head: int = 10, head_per_class: int = 4
) -> dict[str, list[Path]]:
    """An ILSVRC-2012 folder: ``train/<wnid>/<wnid>_<k>.JPEG`` and, as the val images are
    usually sorted into class folders, ``val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG``.

    The first ``head`` classes get ``head_per_class`` images in each split, the others
    ``per_class``. Small JPEGs (20-32 x 24-32 px) plus the real set's quirks at
    :data:`IMAGENET_QUIRKS` (where that class has that many images). Returns the quirk files
    by kind (``L``, ``CMYK``, ``PNG``).
    """
    rng = np.random.default_rng(1)
    wnids = imagenet_wnids(classes)
    counts = [head_per_class if c < head else per_class for c in range(classes)]
    val_ids = iter(rng.permutation(sum(counts)) + 1)  # the official val ids are shuffled
    quirks: dict[str, list[Path]] = {"L": [], "CMYK": [], "PNG": []}
    for split in ("train", "val"):
        for c, wnid in enumerate(wnids):
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(counts[c]):
                name = f"{wnid}_{k}" if split == "train" else f"ILSVRC2012_val_{next(val_ids):08d}"
                size = (20 + 4 * int(rng.integers(0, 4)), 24 + 4 * int(rng.integers(0, 3)))
                kind = IMAGENET_QUIRKS.get((c, k), "RGB")
                path = folder / f"{name}.JPEG"
                path.write_bytes(encode(smooth_image(rng, *size), kind))
                if kind != "RGB":
                    quirks[kind].append(path)
    return quirks


def _grey(index: int, every: int) -> str:
    return "L" if every and index % every == every // 2 else "RGB"


def _photo(rng: np.random.Generator, kind: str = "RGB") -> bytes:
    size = (24 + 4 * int(rng.integers(0, 3)), 24 + 4 * int(rng.integers(0, 3)))
    return encode(smooth_image(rng, *size), kind)


def make_cub(
    root: Path, classes: int = 200, train: int = 1, test: int = 1, grey_every: int = 50
) -> None:
    """CUB_200_2011: ``images/<class>/<Name>_<nnnn>_<id>.jpg``, ``classes.txt``,
    ``images.txt``, ``image_class_labels.txt``, ``train_test_split.txt`` (ids from 1, class
    by class; each class's test images at random places). Every ``grey_every``-th image is
    greyscale (the real set has a few)."""
    rng = np.random.default_rng(2)
    names = [f"{c:03d}.Bird_species_{c:03d}" for c in range(1, classes + 1)]
    images, labels, split = [], [], []
    n = 0
    for c, cls in enumerate(names, 1):
        flags = rng.permutation([1] * train + [0] * test)
        for k, flag in enumerate(flags):
            n += 1
            rel = f"{cls}/{cls.split('.', 1)[1]}_{k + 1:04d}_{100 + n}.jpg"
            _write(root / "images" / rel, _photo(rng, _grey(n, grey_every)))
            images.append(f"{n} {rel}\n")
            labels.append(f"{n} {c}\n")
            split.append(f"{n} {flag}\n")
    _write(root / "classes.txt", "".join(f"{c} {name}\n" for c, name in enumerate(names, 1)))
    _write(root / "images.txt", "".join(images))
    _write(root / "image_class_labels.txt", "".join(labels))
    _write(root / "train_test_split.txt", "".join(split))


def make_mit67(root: Path, classes: int = 67, train: int = 1, test: int = 1) -> list[str]:
    """indoorCVPR_09's ``Images/<category>/<file>.jpg`` plus ``TrainImages.txt`` and
    ``TestImages.txt`` (``<category>/<file>`` a line, Windows line ends as shipped; the
    categories in an unsorted order). Returns the categories in list order."""
    rng = np.random.default_rng(3)
    order = [f"scene_{c:02d}" for c in rng.permutation(classes)]
    lists: dict[str, list[str]] = {"train": [], "test": []}
    for category in order:
        for i in range(train + test):
            rel = f"{category}/{category}_{i:04d}.jpg"
            _write(root / "Images" / rel, _photo(rng))
            lists["train" if i < train else "test"].append(rel)
    _write(root / "TrainImages.txt", "\r\n".join(lists["train"]) + "\r\n")
    _write(root / "TestImages.txt", "\r\n".join(lists["test"]))  # no final line end
    return order


def stanford40_actions(classes: int = 40) -> list[str]:
    """Placeholder action names with underscores inside, as the real ones."""
    return [f"doing_action_{a:02d}" for a in range(classes)]


def make_stanford40(root: Path, classes: int = 40, train: int = 1, test: int = 1) -> None:
    """Stanford 40 Actions: ``JPEGImages/<action>_<nnn>.jpg`` and ``ImageSplits/actions.txt``
    (a header, then ``<action><TAB><count>``), ``train.txt``, ``test.txt``."""
    rng = np.random.default_rng(4)
    actions = stanford40_actions(classes)
    splits = root / "ImageSplits"
    header = "action_name\tnumber_of_images\n"
    _write(splits / "actions.txt", header + "".join(f"{a}\t{train + test}\n" for a in actions))
    lists: dict[str, list[str]] = {"train": [], "test": []}
    for action in actions:
        for i in range(1, train + test + 1):
            name = f"{action}_{i:03d}.jpg"
            _write(root / "JPEGImages" / name, _photo(rng))
            lists["train" if i <= train else "test"].append(name)
    for split, names in lists.items():
        _write(splits / f"{split}.txt", "".join(f"{n}\n" for n in names))


def _savemat(path: Path, arrays: dict[str, Any]) -> None:
    """A MATLAB 5 file with a fixed header text (scipy writes the current time there)."""
    from scipy.io import savemat

    buf = io.BytesIO()
    savemat(buf, arrays)
    text = b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Thu Jan  1 00:00:00 1970"
    blob = buf.getvalue()
    _write(path, text.ljust(116) + blob[116:])


def dog_breeds(classes: int = 120) -> list[str]:
    """Placeholder ``<wnid>-<Breed_name>`` folders, sorted as their labels."""
    return [f"n{2085620 + 137 * b:08d}-Dog_breed_{b:03d}" for b in range(classes)]


def make_dogs(
    root: Path, classes: int = 120, train: int = 1, test: int = 1, in_lists: bool = False
) -> None:
    """Stanford Dogs: ``Images/<wnid>-<breed>/<wnid>_<n>.jpg`` and ``train_list.mat``,
    ``test_list.mat``, ``file_list.mat`` (MATLAB cell arrays ``file_list`` and
    ``annotation_list``, ``labels`` 1-based doubles) at the root or in ``lists/``."""
    rng = np.random.default_rng(5)
    lists: dict[str, tuple[list[str], list[int]]] = {s: ([], []) for s in ("train", "test", "file")}
    for b, breed in enumerate(dog_breeds(classes)):
        for i in range(train + test):
            rel = f"{breed}/{breed.split('-')[0]}_{1000 + 7 * i}.jpg"
            _write(root / "Images" / rel, _photo(rng))
            for split in ("train" if i < train else "test", "file"):
                lists[split][0].append(rel)
                lists[split][1].append(b + 1)
    folder = root / "lists" if in_lists else root
    for split, (files, labels) in lists.items():
        cells = np.empty((len(files), 1), dtype=object)
        notes = np.empty((len(files), 1), dtype=object)
        for i, f in enumerate(files):
            cells[i, 0] = np.array([f])
            notes[i, 0] = np.array([f.removesuffix(".jpg")])
        _savemat(
            folder / f"{split}_list.mat",
            {"file_list": cells, "annotation_list": notes,
             "labels": np.array(labels, dtype=float).reshape(-1, 1)},
        )  # fmt: skip


# --- the plug-in ----------------------------------------------------------------------------


def write_fakes(out: Path) -> dict[str, Any]:
    """Write every dataset repro-data reads, in its official format, under ``out``; return
    the ``data`` config keys (absolute paths) that make a paper run use them."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cifar = out / "cifar-100-python.tar.gz"
    make_cifar100_archive(cifar, n_train=200, n_test=100)  # 2 train + 1 test per class
    tiny = out / "tiny-imagenet-200.zip"
    make_tinyimagenet_zip(tiny, 200, per_class=1, n_val=200, n_test=2)
    zurich = out / "Zurich-RAW-to-DSLR-Dataset.zip"
    make_zurich_zip(zurich, n_train=6, n_test=4)
    make_imagenet(out / "imagenet", classes=1000, per_class=1, head=10, head_per_class=4)
    make_cub(out / "CUB_200_2011")
    make_mit67(out / "mit67")
    make_stanford40(out / "stanford40")
    make_dogs(out / "dogs")
    folder = {"check_counts": False}
    data = {
        "cifar100": {"archive": str(cifar), "hash": md5(cifar), "download": False},
        "tinyimagenet": {
            "archive": str(tiny),
            "hash": md5(tiny),
            "download": False,
            "check_counts": False,
        },  # fmt: skip
        "zurich": {"archive": str(zurich), "check_counts": False},
        "imagenet": {"root": str(out / "imagenet")},
        "cub200": {"root": str(out / "CUB_200_2011"), **folder},
        "mit67": {"root": str(out / "mit67"), **folder},
        "stanford40": {"root": str(out / "stanford40"), **folder},
        "dogs": {"root": str(out / "dogs"), **folder},
    }
    return {"data": data}
