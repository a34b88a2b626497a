"""Provenance written beside every result: code version, config, packages, seed, host."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from repro.core.atomic import write_json

#: Distributions whose versions every provenance record carries.
TRACKED = (
    "repro-core",
    "repro-data",
    "repro-distill",
    "repro-burstsr",
    "repro-vse",
    "repro-fmri",
    "torch",
    "torchvision",
    "kornia",
    "numpy",
    "scikit-learn",
    "scikit-image",
    "snakemake",
)


def config_hash(config: Any) -> str:
    """SHA-256 (first 16 hex digits) of the config as canonical JSON."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def git_state(cwd: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Current commit and whether the work tree has uncommitted changes (None outside git)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def lock_hash(start: str | os.PathLike[str] | None = None) -> str | None:
    """SHA-256 of the workspace's ``uv.lock`` (searched from ``start`` upwards), or None."""
    from repro.core.atomic import sha256_file

    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        lock = folder / "uv.lock"
        if lock.is_file():
            return sha256_file(lock)
    return None


def package_versions(names: tuple[str, ...] = TRACKED) -> dict[str, str]:
    """Installed versions of ``names``; absent distributions are left out."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def host_info() -> dict[str, Any]:
    """Host name, Python, OS and the accelerator, if torch sees one."""
    info: dict[str, Any] = {
        "hostname": platform.node(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import torch

        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        info["cuda"] = None
    return info


#: The environment variable holding the user's command (JSON), set by the workflow.
INVOCATION_ENV = "REPRO_INVOCATION"


def collect(
    config: Any,
    seed: int | None = None,
    code_dir: str | os.PathLike[str] | None = None,
    invocation: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A provenance record for a result produced under ``config`` and ``seed``.

    ``code_dir`` is a folder of the checkout whose commit and ``uv.lock`` are recorded
    (default: cwd). ``invocation``: how the user started the run (``command``, the
    `snakemake` command line; ``targets``, ``configfiles``, ``overrides``, ``cwd``), by
    default the JSON the workflow puts in the environment variable ``REPRO_INVOCATION``
    (every job inherits it, see workflow/rules/common.smk); without either, ``command`` is
    this process's command line. ``job_command`` is always this process's.
    """
    job_command = [os.path.basename(sys.argv[0]), *sys.argv[1:]]
    if invocation is None and os.environ.get(INVOCATION_ENV):
        invocation = json.loads(os.environ[INVOCATION_ENV])
    user = dict(invocation or {"command": job_command})
    return {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": git_state(code_dir),
        "uv_lock_sha256": lock_hash(code_dir),
        **user,
        "job_command": job_command,
        "config": config,
        "config_hash": config_hash(config),
        "seed": seed,
        "packages": package_versions(),
        "host": host_info(),
        **extra,
    }


def write_provenance(
    path: str | os.PathLike[str],
    config: Any,
    seed: int | None = None,
    code_dir: str | os.PathLike[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Collect a provenance record and write it atomically as JSON to ``path``."""
    record = collect(config, seed, code_dir, **extra)
    write_json(Path(path), record)
    return record
