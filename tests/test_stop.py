"""Stopping a run (issue 21, point 5): Ctrl-C (SIGINT to the terminal's process group) or
SIGTERM (`kill`, a preempted SLURM job) stops the running jobs at once and ends with one line
saying what a rerun does, with no tracebacks and no error report per stopped job; the same
command then continues, keeping the finished jobs and resuming training from its checkpoint.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest
from snakerun import ROOT
from test_cluster import (
    EPOCHS,
    TEACHER,
    _finish,
    _slurm_job_of,
    _start,
    _tiny_config,
    _wait_for_checkpoint,
    needs_cluster,
)

LOG = "logs/quick/vanilla/digits/wrn_16_2/seed0.log"
NOISE = ["Traceback", "Error in rule", "died with", "Exception", "event loop", "WorkflowError"]


def _assert_one_line(out: str, sig: signal.Signals) -> None:
    assert out.rstrip().splitlines()[-1] == (
        f"Stopped by {sig.name}. Finished jobs are kept; the same command continues: it reruns "
        "the stopped jobs and runs the rest (training resumes from its last checkpoint)."
    ), out[-3000:]
    assert not [word for word in NOISE if word in out], out[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_run_with_one_line_and_the_same_command_continues(tmp_path, sig):
    _tiny_config(tmp_path)
    target = f"{TEACHER}/result.json"
    proc = _start(tmp_path, "--cores", "2", target, session=True)
    run = tmp_path / TEACHER
    _wait_for_checkpoint(run, proc)  # the data step has finished, the teacher is training
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # Ctrl-C: Snakemake and its jobs get it
    else:
        os.kill(proc.pid, sig)  # kill: Snakemake alone
    code, out = _finish(proc, timeout=120)

    assert code == 1
    _assert_one_line(out, sig)
    # stopped, not left to finish (Snakemake's own SIGTERM waits for the running jobs)
    assert not (run / "result.json").exists() and not (run / "model.pt").exists()
    assert (run / "checkpoint.pt").exists()

    code, out = _finish(_start(tmp_path, "--cores", "2", target))
    assert code == 0, out[-3000:]
    assert re.findall(r"^localrule (\w+):", out, re.M) == ["train_vanilla"]  # data kept
    log = (tmp_path / LOG).read_text()
    assert f"resumed from {TEACHER}/checkpoint.pt after epoch" in log
    assert int(log.split("after epoch ")[1].split()[0]) < EPOCHS


@needs_cluster
@pytest.mark.slow
def test_a_signal_cancels_the_slurm_jobs_with_one_line_and_the_same_command_continues(tmp_path):
    """Through profiles/slurm-local: SIGTERM to Snakemake (as SLURM sends a preempted job)
    cancels the running SLURM job; the rerun submits it again and it resumes."""
    _tiny_config(tmp_path)
    cmd = ["--profile", str(ROOT / "profiles" / "slurm-local"), f"{TEACHER}/result.json"]
    proc = _start(tmp_path, *cmd)
    job = _slurm_job_of("train_vanilla", tmp_path)
    _wait_for_checkpoint(tmp_path / TEACHER, proc)
    os.kill(proc.pid, signal.SIGTERM)
    code, out = _finish(proc, timeout=120)
    assert code == 1
    _assert_one_line(out, signal.SIGTERM)
    state = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True)
    assert "JobState=CANCELLED" in state.stdout, state.stdout + state.stderr
    assert not (tmp_path / TEACHER / "result.json").exists()

    code, out = _finish(_start(tmp_path, *cmd))
    assert code == 0, out[-3000:]
    assert len(re.findall(r"submitted with SLURM jobid (\d+)", out)) == 1
    assert f"resumed from {TEACHER}/checkpoint.pt after epoch" in (tmp_path / LOG).read_text()
