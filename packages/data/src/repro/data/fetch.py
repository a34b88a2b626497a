"""Obtain an official archive: from a path the user set, or downloaded with a checksum.

Downloads go through ``pooch`` (temporary file, hash check, then rename), so a failed or
corrupted download leaves nothing behind. A user-supplied file is hash-checked too.
"""

from __future__ import annotations

import os
from pathlib import Path

from repro.core import ReproError


def _where_to_get(dataset: str, url: str | None, key: str) -> str:
    origin = f"download it from {url}" if url else "obtain it from its official source"
    return f"{origin} and set config key '{key}' to its path"


def check_hash(path: Path, known_hash: str | None, dataset: str) -> None:
    """Raise ReproError if ``path`` does not match ``known_hash`` ("md5:..."/"sha256:...")."""
    if not known_hash:
        return
    import pooch

    alg, _, expected = known_hash.rpartition(":")
    actual = pooch.file_hash(str(path), alg=alg or "sha256")
    if actual != expected:
        raise ReproError(
            f"{dataset}: {path} fails its checksum ({alg or 'sha256'} {actual}, "
            f"expected {expected}); the file is corrupted or not the official one"
        )


def record_hash(path: Path, dataset: str, key: str) -> str:
    """Write ``<path>.sha256`` ("sha256:<hex>") for an archive fetched without a configured
    checksum and say how to pin it (trust on first use: later fetches verify the pin)."""
    from repro.core.atomic import sha256_file, write_text

    pinned = f"sha256:{sha256_file(path)}"
    write_text(path.with_name(path.name + ".sha256"), pinned + "\n")
    print(
        f"{dataset}: no checksum configured; {path} has {pinned}. Set config key "
        f"'{key.rsplit('.', 1)[0]}.hash' to it to verify this archive on later fetches."
    )
    return pinned


def obtain_archive(
    dataset: str,
    path: str | os.PathLike[str] | None,
    url: str | None,
    known_hash: str | None,
    dest: str | os.PathLike[str],
    key: str,
    download: bool = True,
    attempts: int = 3,
) -> Path:
    """Place a checksum-verified copy of a dataset's official archive at ``dest``.

    ``path`` (from config key ``key``) wins and is linked, not copied; otherwise the archive
    is downloaded to ``dest`` when ``download`` is set. Any failure is one ReproError line
    saying where to get the archive and which key to set, and leaves ``dest`` untouched.
    Without ``known_hash`` the archive's SHA-256 is recorded beside it (:func:`record_hash`).
    """
    dest = Path(dest)
    if path:
        archive = Path(path)
        if not archive.is_file():
            raise ReproError(
                f"{dataset}: {archive} (config key '{key}') does not exist; "
                + _where_to_get(dataset, url, key)
            )
        check_hash(archive, known_hash, dataset)
        tmp = dest.with_name(f".{dest.name}.tmp")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(archive.resolve())
        os.replace(tmp, dest)
        if not known_hash:
            record_hash(dest, dataset, key)
        return dest
    if not (download and url):
        raise ReproError(f"{dataset}: no archive configured; " + _where_to_get(dataset, url, key))
    import pooch

    dest.parent.mkdir(parents=True, exist_ok=True)
    failure: Exception | None = None
    for _ in range(attempts):  # network errors are retried; a checksum mismatch is final
        try:
            got = pooch.retrieve(
                url,
                known_hash=known_hash,
                fname=dest.name,
                path=str(dest.parent),
                progressbar=False,
            )
        except ValueError as exc:  # pooch: hash mismatch (the download is deleted)
            raise ReproError(
                f"{dataset}: download from {url} fails its checksum: {str(exc).splitlines()[0]}"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - network errors come in many types
            failure = exc
            continue
        if not known_hash:
            record_hash(Path(got), dataset, key)
        return Path(got)
    raise ReproError(
        f"{dataset}: download failed ({type(failure).__name__}); "
        + _where_to_get(dataset, url, key)
    ) from failure
