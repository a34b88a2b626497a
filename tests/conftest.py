"""Fixtures for workflow-level tests."""

import shutil

import pytest
from snakerun import ROOT


@pytest.fixture
def workdir(tmp_path):
    """A scratch working directory holding a copy of config/ (results land here, not in ROOT)."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path
