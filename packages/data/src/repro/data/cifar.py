"""CIFAR-100 from the official ``cifar-100-python.tar.gz`` and its long-tailed variants.

The archive holds ``cifar-100-python/{train,test,meta}``: Python pickles with keys
``data`` (``N x 3072`` uint8, channel-major R, G, B planes of 32x32), ``fine_labels``,
``coarse_labels``, ``filenames``, ``batch_label``; ``meta`` has ``fine_label_names``.
"""

from __future__ import annotations

import gzip
import os
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from repro.core import ReproError
from repro.data.arrays import write_arrays
from repro.data.dataset import ArchiveDataset, ArchiveParams, need_archive
from repro.data.fetch import describe, forget_fetched
from repro.data.longtail import longtail_indices

MEMBER = "cifar-100-python"
#: Members every official archive holds (it also has ``file.txt~``).
OFFICIAL_MEMBERS = ("meta", "train", "test")


def verify_cifar100(archive: str | os.PathLike[str], label: str | None = None) -> None:
    """Check that ``archive`` is a complete gzip stream (decompressed to its end, so gzip's
    CRC and length are checked) holding a tar with ``cifar-100-python/{meta,train,test}``.

    One streaming pass, nothing is unpickled (the archive is 161 MB; the image counts are
    inside the pickles and are read by :func:`read_cifar100`). Errors start with ``label``.
    """
    label = label or str(archive)
    try:
        with gzip.open(archive, "rb") as gz:
            with tarfile.open(fileobj=gz, mode="r|") as tar:
                names = {m.name for m in tar}
            while gz.read(1 << 20):  # the rest of the stream, up to gzip's CRC trailer
                pass
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ReproError(f"{label}: not a readable .tar.gz ({exc})") from exc
    for name in OFFICIAL_MEMBERS:
        if f"{MEMBER}/{name}" not in names:
            raise ReproError(
                f"{label}: no '{MEMBER}/{name}' inside; not the official CIFAR-100 python archive"
            )


def _unpickle(tar: tarfile.TarFile, name: str, label: str) -> dict[str, Any]:
    try:
        member = tar.extractfile(f"{MEMBER}/{name}")
    except KeyError:
        member = None
    if member is None:
        raise ReproError(
            f"{label}: no '{MEMBER}/{name}' inside; not the official CIFAR-100 python archive"
        )
    obj = pickle.load(member, encoding="latin1")  # written by Python 2's cPickle
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_cifar100(archive: str | os.PathLike[str]):
    """Return ``{"train": (images, labels), "test": ...}`` and the 100 fine class names.

    A corrupt archive is an error naming the user's file and ``data.cifar100.archive`` (when
    ``archive`` is the link the fetch made, which is then removed: :mod:`repro.data.fetch`).
    """
    archive = Path(archive)
    label = describe(archive, "cifar100")
    try:
        tar = tarfile.open(archive, "r:gz")  # noqa: SIM115 - closed by the `with` below
    except (tarfile.TarError, OSError) as exc:
        raise ReproError(f"{label}: not a readable .tar.gz ({exc})") from exc
    try:
        with tar:
            meta = _unpickle(tar, "meta", label)
            splits = {}
            for split in ("train", "test"):
                batch = _unpickle(tar, split, label)
                data = np.asarray(batch["data"], dtype=np.uint8)
                images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
                splits[split] = (images, np.asarray(batch["fine_labels"], dtype=np.int64))
    except (tarfile.TarError, OSError, EOFError, zlib.error, pickle.UnpicklingError) as exc:
        forget_fetched(archive)
        raise ReproError(f"{label}: corrupt ({exc}); the archive was not used") from exc
    except (KeyError, ValueError, TypeError, AttributeError) as exc:  # pickles of another layout
        forget_fetched(archive)
        raise ReproError(
            f"{label}: not the official CIFAR-100 python format ({type(exc).__name__}: {exc})"
        ) from exc
    return splits, list(meta["fine_label_names"])


def prepare_cifar100(
    out_dir: str | os.PathLike[str],
    archive: str | os.PathLike[str],
    imbalance: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Write CIFAR-100 (or CIFAR-100-LT with ``imbalance``; test split unchanged)."""
    splits, classes = read_cifar100(archive)
    name = "cifar100"
    if imbalance is not None:
        images, labels = splits["train"]
        keep = longtail_indices(labels, imbalance, seed)
        splits["train"] = (images[keep], labels[keep])
        name = f"cifar100-lt{imbalance:g}"
    source = {"archive": Path(archive).name, "imbalance": imbalance, "lt_seed": seed}
    return write_arrays(out_dir, splits, classes, name, source)


class Cifar100(ArchiveDataset):
    """CIFAR-100 and its long-tailed variants ``cifar100-lt<F>`` (seed ``lt_seed``)."""

    name = "cifar100"
    rule = "prepare_cifar100"
    long_tailed = True

    def verify(self, params: ArchiveParams, path: Path, label: str) -> None:
        verify_cifar100(path, label)

    def prepare(
        self, params: ArchiveParams, out: Path, archive: Path | None, imbalance: float | None
    ) -> dict[str, Any]:
        return prepare_cifar100(out, need_archive(self.name, archive), imbalance, params.lt_seed)


DATASETS = (Cifar100(),)
