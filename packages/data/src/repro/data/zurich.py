"""Zurich RAW-to-RGB (AIM 2019) from its official zip: the Canon sRGB images burst SR uses.

Layout inside the zip (one top-level folder, whose name has varied between mirrors):
``<top>/train/canon/<i>.jpg`` (i = 0..46838) and ``<top>/test/canon/<i>.jpg`` (0..1203), 448 x
448 sRGB JPEGs, beside ``huawei_raw/<i>.png`` (the phone RAW, not used by burst SR and not
extracted). Prepared layout: ``<out>/{train,test}/canon/<i>.jpg`` (bytes as in the zip) and
``meta.json`` last, with the counts and the archive's SHA-256.

No checksum of the archive has been published and its links have moved (ETH server, then
Google Drive), so the first fetch records the archive's SHA-256 (``repro.data.fetch``) for the
user to pin in ``data.zurich.hash``; a pinned hash is verified on every later fetch. The fetch
checks the member listing first (:func:`verify_zurich`), so a zip that is not this archive is
never linked or recorded; ``meta.json`` reuses the SHA-256 the fetch recorded (one read of the
zip for hashing, not two).
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
import zlib
from pathlib import Path
from typing import Any

from repro.core import ReproError
from repro.core.atomic import sha256_file, write_json
from repro.core.progress import progress
from repro.data.dataset import ArchiveDataset, ArchiveSource, need_archive
from repro.data.fetch import describe, forget_fetched, recorded_sha256

#: Official image counts of the Canon folders (the NTIRE 2021 toolkit hard-codes them).
COUNTS = {"train": 46839, "test": 1204}
_MEMBER = re.compile(r"^(?:[^/]+/)?(train|test)/canon/(\d+)\.jpg$")


def canon_members(zf: zipfile.ZipFile) -> dict[str, dict[int, str]]:
    """``{split: {id: member name}}`` of the Canon JPEGs in the zip."""
    found: dict[str, dict[int, str]] = {"train": {}, "test": {}}
    for name in zf.namelist():
        if m := _MEMBER.match(name):
            found[m.group(1)][int(m.group(2))] = name
    return found


def verify_zurich(
    archive: str | os.PathLike[str], check_counts: bool = True, label: str | None = None
) -> dict[str, dict[int, str]]:
    """Check the zip's member listing (its central directory only, so cheap even for the 5 GB
    zip): both ``<top>/{train,test}/canon/<i>.jpg`` series present, ids contiguous from 0 and,
    with ``check_counts``, the official counts. Member contents (CRCs) are checked when
    :func:`prepare_zurich` extracts them. Returns :func:`canon_members`; errors start with
    ``label`` (default: the path)."""
    label = label or str(archive)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = canon_members(zf)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ReproError(f"{label}: not a readable zip ({exc})") from exc
    for split, ids in members.items():
        if not ids:
            raise ReproError(
                f"{label}: no '{split}/canon/<i>.jpg' inside; not the "
                "official Zurich RAW-to-RGB archive"
            )
        expected = set(range(COUNTS[split])) if check_counts else set(range(len(ids)))
        if set(ids) != expected:
            missing = sorted(expected - set(ids))[:1] or sorted(set(ids) - expected)[:1]
            raise ReproError(
                f"{label}: {split}/canon holds {len(ids)} images, expected "
                f"ids 0..{len(expected) - 1} (first off: {missing[0]})"
            )
    return members


def prepare_zurich(
    out_dir: str | os.PathLike[str], archive: str | os.PathLike[str], check_counts: bool = True
) -> dict[str, Any]:
    """Extract the Canon images of both splits to ``out_dir`` (atomically: a temporary folder,
    renamed when complete) and write ``meta.json``. ``check_counts`` requires the official
    image counts (off only for test archives). A corrupt member (bad CRC) is an error naming
    the user's file and ``data.zurich.archive``, and the fetched link is removed."""
    archive, out = Path(archive), Path(out_dir)
    label = describe(archive, "zurich")
    members = verify_zurich(archive, check_counts, label)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            for split, ids in members.items():
                folder = tmp / split / "canon"
                folder.mkdir(parents=True)
                for i in progress(sorted(ids), f"zurich {split}"):
                    with zf.open(ids[i]) as src, open(folder / f"{i}.jpg", "wb") as dst:
                        shutil.copyfileobj(src, dst)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        forget_fetched(archive)
        raise ReproError(
            f"{label}: a member is corrupt ({exc}); the archive was not used, fetch it again"
        ) from exc
    meta = {
        "dataset": "zurich",
        "format": "Zurich RAW-to-RGB Canon sRGB JPEGs: {train,test}/canon/<i>.jpg",
        "counts": {split: len(ids) for split, ids in members.items()},
        "archive_sha256": recorded_sha256(archive) or sha256_file(archive),
    }
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    write_json(out / "meta.json", meta)
    return meta


class Zurich(ArchiveDataset):
    """The Zurich RAW-to-RGB zip (no published checksum: ``hash`` may stay unset)."""

    name = "zurich"
    params = ArchiveSource
    schema = "zurich"
    rule = "prepare_zurich"

    def verify(self, params: ArchiveSource, path: Path, label: str) -> None:
        verify_zurich(path, params.check_counts, label)

    def prepare(
        self, params: ArchiveSource, out: Path, archive: Path | None, imbalance: float | None
    ) -> dict[str, Any]:
        return prepare_zurich(out, need_archive(self.name, archive), params.check_counts)


DATASETS = (Zurich(),)
