"""Fixtures for workflow-level tests."""

import pytest
from snakerun import ROOT


@pytest.fixture
def workdir(tmp_path):
    """A scratch working directory holding a copy of config/ (results land here, not in ROOT)."""
    (tmp_path / "config").mkdir()
    for f in (ROOT / "config").glob("*.yaml"):
        (tmp_path / "config" / f.name).write_text(f.read_text())
    return tmp_path
