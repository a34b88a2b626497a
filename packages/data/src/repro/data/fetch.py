"""Obtain an official archive, from a path the user set or a download, verified before use.

:func:`obtain_archive` works in this order, and nothing is linked, recorded or pinned before
every check has passed:

1. the file: the user's path (config key ``data.<dataset>.archive``), or a download into a
   temporary file beside the destination. Network errors (connection refused or reset,
   timeouts, HTTP 5xx/408/429) are retried a bounded number of times with a short backoff;
   failures a retry cannot fix (HTTP 4xx, checksum, format) are raised at once;
2. the configured checksum (``data.<dataset>.hash``), computed in the same single read as the
   SHA-256 that is recorded;
3. the layout: the dataset's ``verify`` function (its member listing and counts; cheap: a
   zip's central directory, a tar.gz's header stream);
4. only then the link (or the renamed download) at the destination and ``<dest>.sha256``.

Any failure is one :class:`~repro.core.ReproError` line naming the user's file (or the URL)
and its config key; the temporary file, the destination and its ``.sha256`` are removed, so a
later start-up check does not accept a file that failed.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repro.core import ReproError

#: ``verify(path, label)``: raise ReproError("<label>: <what is wrong>") if ``path`` is not the
#: dataset's official archive; ``label`` names the file and its config key for the message.
Verifier = Callable[[Path, str], Any]


def _where_to_get(url: str | None, key: str) -> str:
    origin = f"download it from {url}" if url else "obtain it from its official source"
    return f"{origin} and set config key '{key}' to its path"


def _section(key: str) -> str:
    """'data.zurich.archive' -> 'data.zurich'."""
    return key.rsplit(".", 1)[0]


def sidecar(path: Path) -> Path:
    """``<path>.sha256``: the SHA-256 recorded when the archive at ``path`` was verified."""
    return path.with_name(path.name + ".sha256")


def file_digests(path: Path, algorithms: set[str], chunk: int = 1 << 20) -> dict[str, str]:
    """Hex digests of ``path`` for each of ``algorithms`` ("sha256", "md5", ...), one read."""
    try:
        hashers = {alg: hashlib.new(alg) for alg in algorithms}
    except ValueError as exc:
        raise ReproError(f"unknown checksum algorithm in {sorted(algorithms)}: {exc}") from exc
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            for h in hashers.values():
                h.update(block)
    return {alg: h.hexdigest() for alg, h in hashers.items()}


def _verify_hash(path: Path, known_hash: str | None, label: str, key: str) -> str:
    """Check ``known_hash`` ("md5:..."/"sha256:..."/bare sha256) and return the SHA-256."""
    alg, _, expected = (known_hash or "").rpartition(":")
    alg = (alg or "sha256").lower()
    digests = file_digests(path, {"sha256", alg} if known_hash else {"sha256"})
    if known_hash and digests[alg] != expected.lower():
        raise ReproError(
            f"{label} fails its checksum ({alg} {digests[alg]}, expected {expected} from "
            f"config key '{_section(key)}.hash'); the file is corrupted or not the official one"
        )
    return digests["sha256"]


def _retryable(exc: BaseException) -> bool:
    """Whether a download error may pass on a retry: network trouble and server-side HTTP
    errors, not client errors (404, 403, ...). ``requests`` errors are ``OSError`` subclasses
    and carry the response, so no import of ``requests`` is needed here."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is not None:
        return status >= 500 or status in (408, 429)
    return isinstance(exc, OSError)


def download_file(url: str, target: Path, attempts: int = 3, backoff: float = 2.0) -> None:
    """Download ``url`` to ``target`` (with pooch's downloader for the URL's protocol).

    Network errors are retried up to ``attempts`` tries in all, waiting ``backoff``, then
    2 x ``backoff`` seconds, ...; other errors are raised at once. A failed try leaves no file.
    """
    from pooch.downloaders import choose_downloader

    downloader = choose_downloader(url, progressbar=False)
    for attempt in range(1, attempts + 1):
        try:
            downloader(url, str(target), None)
            return
        except Exception as exc:  # noqa: BLE001 - network errors come in many types
            target.unlink(missing_ok=True)
            if attempt == attempts or not _retryable(exc):
                tries = f" after {attempt} tries" if attempt > 1 else ""
                reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                raise ReproError(f"download from {url} failed{tries}: {reason}") from exc
            time.sleep(backoff * 2 ** (attempt - 1))


def recorded_sha256(archive: str | os.PathLike[str]) -> str | None:
    """The SHA-256 that :func:`obtain_archive` recorded for ``archive``, if still current
    (the record is not older than the file it describes); else None."""
    archive = Path(archive)
    record = sidecar(archive)
    try:
        if record.stat().st_mtime < archive.stat().st_mtime:
            return None
        alg, _, digest = record.read_text().strip().partition(":")
    except OSError:
        return None
    return digest if alg == "sha256" and len(digest) == 64 else None


def discard(dest: Path) -> None:
    """Remove what :func:`obtain_archive` placed at ``dest`` (the link or download and its
    ``.sha256``), so the start-up check asks for the archive again. A user's own file is
    never touched: ``dest`` is either a link to it or our download."""
    dest.unlink(missing_ok=True)
    sidecar(dest).unlink(missing_ok=True)


def forget_fetched(archive: str | os.PathLike[str]) -> None:
    """After a corrupt member turns up while preparing: if ``archive`` was placed by
    :func:`obtain_archive` (it has a ``.sha256`` record), remove it and its record, so the
    start-up check asks for the archive again instead of accepting it."""
    archive = Path(archive)
    if sidecar(archive).exists():
        discard(archive)


def describe(archive: str | os.PathLike[str], dataset: str) -> str:
    """How an error names an archive: the user's file and its config key when ``archive`` is
    the link that :func:`obtain_archive` made, else the path itself."""
    archive = Path(archive)
    if archive.is_symlink():
        return f"{dataset}: {archive.resolve()} (config key 'data.{dataset}.archive')"
    return f"{dataset}: {archive}"


def obtain_archive(
    dataset: str,
    path: str | os.PathLike[str] | None,
    url: str | None,
    known_hash: str | None,
    dest: str | os.PathLike[str],
    key: str,
    download: bool = True,
    verify: Verifier | None = None,
    attempts: int = 3,
    backoff: float = 2.0,
) -> Path:
    """Place a verified copy of a dataset's official archive at ``dest`` (module docstring).

    ``path`` (from config key ``key``, e.g. ``data.cifar100.archive``) wins and is linked, not
    copied; otherwise the archive is downloaded from ``url`` when ``download``. ``verify``
    checks the layout (:data:`Verifier`). ``<dest>.sha256`` records the verified SHA-256;
    without ``known_hash`` it is also printed for the user to pin (trust on first use).
    """
    dest = Path(dest)
    where = _where_to_get(url, key)
    section = _section(key)
    fetched = not path and download and bool(url)
    candidate = Path(path) if path else dest.with_name(f".{dest.name}.part")
    try:
        if path:
            label = f"{dataset}: {candidate} (config key '{key}')"
            if not candidate.is_file():
                raise ReproError(f"{label} does not exist or is not a file")
        elif fetched:
            label = f"{dataset}: download from {url} (config key '{section}.url')"
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                download_file(url, candidate, attempts, backoff)
            except ReproError as exc:
                raise ReproError(f"{dataset}: {exc} (config key '{section}.url')") from exc
        else:
            off = f"'{section}.download' is false" if url else f"'{section}.url' is not set"
            raise ReproError(f"{dataset}: config key '{key}' is not set and {off}")
        sha256 = _verify_hash(candidate, known_hash, label, key)
        if verify is not None:
            verify(candidate, label)
    except ReproError as exc:
        if fetched:
            candidate.unlink(missing_ok=True)
        discard(dest)  # no earlier archive or record outlives a failed fetch
        raise ReproError(f"{exc}; nothing was linked or recorded; {where}") from exc
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    if fetched:
        os.replace(candidate, dest)
    else:
        tmp.symlink_to(candidate.resolve())
        os.replace(tmp, dest)
    from repro.core.atomic import write_text

    write_text(sidecar(dest), f"sha256:{sha256}\n")
    if not known_hash:
        print(
            f"{dataset}: no checksum configured; {path or url} has sha256:{sha256}. Set config "
            f"key '{_section(key)}.hash' to it to verify this archive on later fetches."
        )
    return dest


def archive_problem(dataset: str, source: Any, data_dir: Path) -> str | None:
    """Why ``dataset``'s archive could not be obtained (one line naming the key and the value
    set), or None: ``source`` holds ``archive``, ``url`` and ``download`` (its config section,
    :class:`repro.data.dataset.ArchiveSource`); an archive fetched earlier under ``data_dir``
    counts as obtained."""
    key = f"data.{dataset}.archive"
    url = source.url
    origin = f"download it from {url}" if url else "obtain it from its official source (docs)"
    path = source.archive
    if path:
        if Path(path).is_file():
            return None
        what = "a folder, not a file" if Path(path).is_dir() else "not there"
        return f"{dataset}: {key} is set to {path}, which is {what}; {origin} and fix the path"
    if (data_dir / "archives" / f"{dataset}.archive").exists():  # fetched and verified earlier
        return None
    if url and source.download:
        return None
    unset = (
        f"{key} is unset and data.{dataset}.download is false"
        if url
        else f"{key} and data.{dataset}.url are both unset"
    )
    return f"{dataset}: no archive is set: {unset}; {origin} and set {key} to its path"
