"""The dataset contract: what every registered dataset provides (:mod:`repro.data.registry`).

A dataset is an object with

- ``name``: its config section ``data.<name>`` and folder ``data/<name>/``;
- ``kind``: how it is obtained: ``archive`` (an official archive, fetched to
  ``data/archives/<name>.archive`` first), ``generated`` (from data bundled with a library)
  or ``index`` (an index over the user's copy, nothing copied);
- ``params``: the dataclass its config section is read into (:mod:`repro.core.params`);
- ``schema``: the entry of ``$defs`` in ``workflow/schemas/data.schema.yaml`` that is its
  section's schema;
- ``rule``: the rule of ``workflow/rules/data.smk`` that prepares it (its wildcard constraint
  is derived from the datasets naming it);
- ``long_tailed``: whether ``<name>-lt<F>`` (train split long-tailed, imbalance factor F)
  is a dataset too;
- ``prepare(params, out, archive, imbalance)``, ``check(params, data_dir) -> [problems]``
  (why it could not be obtained, one line each naming the key; ``data_dir`` is the data
  root) and, for archives, ``fetch(params, out)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from repro.core import ReproError

Kind = Literal["archive", "generated", "index"]


class Dataset:
    """Base of every dataset: set the class attributes, override :meth:`prepare` (and
    :meth:`check` where the user provides a file or folder)."""

    name: str
    kind: Kind = "generated"
    params: type
    schema: str
    rule: str
    long_tailed: bool = False

    def prepare(self, params: Any, out: Path, archive: Path | None, imbalance: float | None):
        """Write the prepared dataset into ``out`` (``meta.json`` last) and return its meta."""
        raise NotImplementedError

    def check(self, params: Any, data_dir: Path) -> list[str]:
        """Why the dataset could not be prepared, one line each (empty when it can)."""
        return []

    def fetch(self, params: Any, out: Path) -> None:
        """Place the verified official archive at ``out`` (archives only)."""
        raise ReproError(f"{self.name}: nothing to fetch ({self.kind} dataset)")

    def __repr__(self) -> str:
        return f"<dataset {self.name} ({self.kind})>"


@dataclass
class ArchiveSource:
    """``data.<name>`` of an archive: the user's file, or where it is downloaded from."""

    archive: str | None = None
    url: str | None = None
    hash: str | None = None
    download: bool = True
    check_counts: bool = True


@dataclass
class ArchiveParams(ArchiveSource):
    """``$defs.archive``: an archive with a published checksum (CIFAR-100, Tiny-ImageNet)."""

    lt_seed: int = 0


class ArchiveDataset(Dataset):
    """A dataset read from its official archive: fetched (a link to the user's file or a
    download, verified before use: :mod:`repro.data.fetch`), then prepared from it."""

    kind: Kind = "archive"
    params: type = ArchiveParams
    schema = "archive"

    def verify(self, params: Any, path: Path, label: str) -> None:
        """Raise ReproError("<label>: ...") unless ``path`` is the official archive."""
        raise NotImplementedError

    def fetch(self, params: Any, out: Path) -> None:
        from repro.data.fetch import obtain_archive

        obtain_archive(
            self.name, params.archive, params.url, params.hash, dest=out,
            key=f"data.{self.name}.archive", download=params.download,
            verify=lambda path, label: self.verify(params, path, label),
        )  # fmt: skip

    def check(self, params: Any, data_dir: Path) -> list[str]:
        from repro.data.fetch import archive_problem

        problem = archive_problem(self.name, params, data_dir)
        return [problem] if problem else []


def need_archive(name: str, archive: Path | None) -> Path:
    """The ``--archive`` an archive dataset is prepared from (one line when missing)."""
    if archive is None:
        raise ReproError(f"{name}: --archive is required (the file 'repro-data fetch' placed)")
    return archive


def folder_problem(name: str, root: str | None, markers: Sequence[str], where: str) -> str | None:
    """Why ``data.<name>.root`` cannot be indexed, or None: one line naming the key and the
    value set, the first of ``markers`` (files or folders of the official layout) missing,
    and ``where`` (how to obtain the folder)."""
    key = f"data.{name}.root"
    if not root:
        return f"{name}: {key} is not set; {where} and set {key} to it"
    path = Path(root)
    if not path.is_dir():
        what = "a file, not a folder" if path.exists() else "not there"
        return f"{name}: {key} is set to {root}, which is {what}; {where}"
    missing = [m for m in markers if not (path / m).exists()]
    if missing:
        return f"{name}: {key} is set to {root}, which has no {missing[0]}; {where}"
    return None
