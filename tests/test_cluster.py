"""The same DAG on SLURM: profiles/slurm-local on the loopback cluster of .ci/slurm-loopback.

Skipped where no cluster answers (``.ci/slurm-loopback up`` starts one; .ci/run does when it
can). The profiles themselves are checked everywhere.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml
from snakerun import ROOT, snakemake


def _cluster_idle() -> bool:
    """Whether a SLURM controller answers with at least one usable node."""
    if not shutil.which("sinfo"):
        return False
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and bool(re.search(r"\b(idle|mixed|allocated)\b", out.stdout))


needs_cluster = pytest.mark.skipif(
    not _cluster_idle(), reason="no SLURM cluster answers (.ci/slurm-loopback up)"
)


@pytest.mark.parametrize("name", ["slurm", "slurm-local"])
def test_cluster_profiles_use_the_slurm_executor(name):
    profile = yaml.safe_load((ROOT / "profiles" / name / "profile.yaml").read_text())
    assert profile["executor"] == "slurm"
    # the Snakefile itself makes --configfile replace quick.yaml; the profile must not drop the
    # config when only --config is given
    assert "replace-workflow-config" not in profile
    assert {"slurm_partition", "mem_mb", "runtime"} <= set(profile["default-resources"])


def test_loopback_profile_polls_with_squeue():
    # without accounting, sacct fails and plugin 2.8.0 then waits for ever (reference sheet)
    profile = yaml.safe_load((ROOT / "profiles" / "slurm-local" / "profile.yaml").read_text())
    assert profile["slurm-status-command"] == "squeue"


@needs_cluster
@pytest.mark.slow
def test_quick_steps_run_as_slurm_jobs_and_a_single_target_reruns(workdir):
    profile = str(ROOT / "profiles" / "slurm-local")
    targets = ["data/digits/meta.json", "data/photos/meta.json", "results/quick/provenance.json"]
    proc = snakemake("--profile", profile, *targets, cwd=workdir, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    jobs = re.findall(r"submitted with SLURM jobid (\d+)", log)
    assert len(jobs) == 3  # every step went through sbatch, none ran locally
    for job in jobs:  # the controller knows them as finished jobs (kept MinJobAge seconds)
        state = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True)
        assert "JobState=COMPLETED" in state.stdout, state.stdout + state.stderr
    assert (workdir / "data/digits/meta.json").is_file()
    assert (workdir / "results/quick/provenance.json").is_file()
    again = snakemake(
        "--profile", profile, "--forcerun", "prepare_digits", "--", "data/digits/meta.json",
        cwd=workdir, timeout=300,
    )  # fmt: skip
    log = again.stdout + again.stderr
    assert again.returncode == 0, log[-3000:]
    assert len(re.findall(r"submitted with SLURM jobid (\d+)", log)) == 1
