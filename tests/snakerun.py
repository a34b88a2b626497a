"""Run Snakemake on this checkout in a scratch folder (imported by the workflow tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def snakemake(
    *args: str, cwd: Path = ROOT, timeout: int = 600, snakefile: Path = ROOT / "Snakefile"
) -> subprocess.CompletedProcess:
    """Run the workspace's Snakemake with this repo's Snakefile (or a copy's); returns the
    finished process."""
    exe = Path(sys.executable).with_name("snakemake")
    env = {**os.environ, "PATH": f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [str(exe), "-s", str(snakefile), "--directory", str(cwd), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
