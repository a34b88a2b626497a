"""Fixtures for workflow-level tests."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from snakerun import ROOT, snakemake


@pytest.fixture
def workdir(tmp_path):
    """A scratch working directory holding a copy of config/ (results land here, not in ROOT)."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory) -> Path:
    """A working directory in which `snakemake --cores 2` (the README's quick run) has
    finished. It runs once per test session: under pytest-xdist the first worker that asks
    runs it in the session's shared temporary folder, and any other waits for it and reuses
    it. Tests read it; one that changes it must put it back."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's basetemp is below the session's
        shared = shared.parent
    workdir, status = shared / "quick-run", shared / "quick-run.status"
    with open(shared / "quick-run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not status.exists():
            shutil.copytree(ROOT / "config", workdir / "config", dirs_exist_ok=True)
            try:
                proc = snakemake("--cores", "2", cwd=workdir, timeout=2400)
            except subprocess.TimeoutExpired:
                status.write_text("the quick run took over 2400 s")
                raise
            failed = proc.stdout[-3000:] + proc.stderr[-3000:]
            status.write_text("ok" if proc.returncode == 0 else f"the quick run failed:\n{failed}")
    assert status.read_text() == "ok", status.read_text()
    return workdir


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that read the quick run first (a stable sort): with pytest-xdist's
    --no-loadscope-reorder (pyproject) their file is the first a worker starts, so the
    longest fixture runs from the start while the other worker takes the rest."""
    items.sort(key=lambda item: "quick_run" not in getattr(item, "fixturenames", ()))
