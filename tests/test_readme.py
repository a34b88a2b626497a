"""Every `snakemake` command the README documents works: each runs here as a dry run."""

from __future__ import annotations

import re
import shlex

import pytest
from snakerun import ROOT, snakemake


def _documented() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():  # join continued lines
            words = shlex.split(line.split("#", 1)[0]) if "snakemake" in line else []
            if "snakemake" in words:
                commands.append(words[words.index("snakemake") + 1 :])
    return commands


COMMANDS = _documented()


def test_the_readme_documents_the_commands_we_check():
    assert len(COMMANDS) >= 10
    assert ["--cores", "all"] in COMMANDS  # the quick reproduction


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_documented_command_dry_runs(workdir, args):
    if "--report" in args:
        pytest.skip("needs a finished run: tests/test_quick_run.py builds the report")
    if any(a.startswith(".smoke/") for a in args):
        pytest.skip("needs `repro-data fake`: CI's smoke step (.ci/smoke.py) runs it for real")
    if "my_method.yaml" in args:
        pytest.skip("needs the README's method file: tests/test_bring_your_own.py runs it")
    args = [str(ROOT / a) if a.startswith("profiles/") else a for a in args]
    # a dry run; the profile's `cores: all` stands in for --cores where it is omitted
    proc = snakemake("-n", *args, cwd=workdir)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "error:" not in proc.stderr
    if "--forcerun" in args:  # the target is not swallowed by --forcerun: one job, not all
        assert re.search(r"^total\s+1$", proc.stdout, re.M), proc.stdout[-2000:]
