"""The same DAG on SLURM: profiles/slurm-local on the loopback cluster of .ci/slurm-loopback,
and training jobs that survive faults (a killed process retried with more, a cancelled SLURM
job resumed from its checkpoint).

Skipped where no cluster answers (``.ci/slurm-loopback up`` starts one; .ci/run does when it
can). The profiles, and a local retry after a killed training process, run everywhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from snakerun import ROOT, snakemake

from repro.core.checkpoint import load_checkpoint


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


# -- training on the cluster, and faults ---------------------------------------------------------
# One quick KD cell (and the teacher it needs) with a tiny recipe: 5 epochs of ~2 s on 2 CPUs.
KD_CELL = "results/quick/kd/digits/digits/kd/wrn_16_2-resnet20/seed0"
TEACHER = "results/quick/vanilla/digits/wrn_16_2/seed0"
EPOCHS = 5


def _tiny_config(workdir: Path) -> Path:
    """config/quick.yaml with the Energy KD paper only and a 5-epoch digits recipe."""
    shutil.copytree(ROOT / "config", workdir / "config", dirs_exist_ok=True)
    cfg = yaml.safe_load((ROOT / "config" / "quick.yaml").read_text())
    cfg.update(papers=["energy-kd"], datasets=["digits"])
    cfg["kd"]["recipes"]["digits"].update(epochs=EPOCHS, lr_milestones=[4])
    path = workdir / "config" / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _start(
    workdir: Path, *args: str, env: dict | None = None, session: bool = False
) -> subprocess.Popen:
    """Snakemake on this checkout in ``workdir`` (tiny config), in the background; with
    ``session``, in a session of its own (as in a terminal: a Ctrl-C goes to its group)."""
    exe = Path(sys.executable).with_name("snakemake")
    full_env = {
        **os.environ,
        "PATH": f"{exe.parent}{os.pathsep}{os.environ['PATH']}",
        **(env or {}),
    }
    cmd = [str(exe), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", str(workdir / "config" / "tiny.yaml"), *args]
    return subprocess.Popen(
        cmd,
        cwd=workdir,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=session,
    )


def _finish(proc: subprocess.Popen, timeout: int = 900) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def _weights(run: Path) -> dict:
    return load_checkpoint(run / "model.pt")["model"]


def _same_run(a: Path, b: Path) -> None:
    """Two run folders hold the same weights, result.json and metrics (but wall times)."""
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert json.loads((a / "result.json").read_text()) == json.loads(
        (b / "result.json").read_text()
    )

    def rows(run):
        header, *lines = (run / "metrics.csv").read_text().splitlines()
        keep = [i for i, k in enumerate(header.split(",")) if k != "seconds"]
        return [[line.split(",")[i] for i in keep] for line in lines]

    assert rows(a) == rows(b) and len(rows(a)) == EPOCHS  # each epoch once


def _wait_for_checkpoint(run: Path, proc: subprocess.Popen, timeout: float = 600) -> int:
    """Block until ``run/checkpoint.pt`` exists (an epoch is done); its period."""
    deadline = time.time() + timeout
    while not (run / "checkpoint.pt").exists():
        if proc.poll() is not None or time.time() > deadline:
            raise AssertionError(
                f"no checkpoint in {run}: " + (proc.communicate()[0] or "")[-3000:]
            )
        time.sleep(0.1)
    return load_checkpoint(run / "checkpoint.pt")["period"]


@pytest.fixture(scope="module")
def kd_local(tmp_path_factory) -> Path:
    """The uninterrupted reference: teacher and KD cell trained by local jobs."""
    workdir = tmp_path_factory.mktemp("kd_local")
    _tiny_config(workdir)
    code, out = _finish(_start(workdir, "--cores", "2", f"{KD_CELL}/result.json"))
    assert code == 0, out[-3000:]
    return workdir


def _without(reference: Path, workdir: Path, *runs: str) -> Path:
    """A copy of the reference folder (data, teacher, Snakemake's records) minus ``runs``."""
    shutil.copytree(reference, workdir, dirs_exist_ok=True, symlinks=True)
    for run in runs:
        shutil.rmtree(workdir / run)
    return workdir


def _descendants(pid: int) -> list[int]:
    """Processes under ``pid`` (from /proc), so only what this test started is signalled."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


@pytest.mark.slow
def test_a_killed_training_job_is_retried_with_more_memory_and_resumes(kd_local, tmp_path):
    """A training process killed mid-run (as the kernel's OOM killer would) fails the job;
    Snakemake retries it with twice the memory and time, the retry resumes from the last
    epoch's checkpoint and ends with the uninterrupted run's weights. The job asks for a GPU
    (fake ids: the launcher claims one, the recipe trains on the CPU), so the rule's launcher
    prefix runs too, and the killed process is the one holding the GPU slot."""
    workdir = _without(kd_local, tmp_path / "w", KD_CELL)
    gpu = ["--config", "kd={resources: {digits: {gpu: 1}}}", "--resources", "gpu=2"]
    env = {"REPRO_GPU_DEVICES": "0,1", "REPRO_GPU_LOCKS": str(tmp_path / "locks")}
    proc = _start(
        workdir, "--cores", "1", "--retries", "1", *gpu, "--", f"{KD_CELL}/result.json", env=env
    )
    period = _wait_for_checkpoint(workdir / KD_CELL, proc)
    trainers = [
        pid
        for pid in _descendants(proc.pid)
        if b"repro-distill" in Path(f"/proc/{pid}/cmdline").read_bytes()
        and b"\0train\0" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert len(trainers) == 1
    os.kill(trainers[0], signal.SIGKILL)
    code, out = _finish(proc)
    assert code == 0, out[-3000:]
    assert "repro-core launch --gpus=1 -- repro-distill train" in out
    attempts = re.findall(r"rule train_kd:.*?resources: ([^\n]*)", out, re.S)
    assert len(attempts) == 2 and "mem_mb=2000" in attempts[0] and "mem_mb=4000" in attempts[1]
    assert "runtime=30" in attempts[0] and "runtime=60" in attempts[1]
    log = (workdir / "logs/quick/kd/digits/digits/kd/wrn_16_2-resnet20/seed0.log").read_text()
    assert f"resumed from {KD_CELL}/checkpoint.pt after epoch" in log
    assert int(log.split("after epoch ")[1].split()[0]) >= period
    assert "GPU 0 (locks in" in log  # the retry claimed a GPU again (the kill freed it)
    _same_run(kd_local / KD_CELL, workdir / KD_CELL)


@needs_cluster
@pytest.mark.slow
def test_a_kd_cell_trains_as_slurm_jobs(kd_local, tmp_path):
    """The teacher and a KD cell train as SLURM jobs through profiles/slurm-local, and end
    with the weights the same jobs reach locally (the data steps: the test above)."""
    workdir = _without(kd_local, tmp_path / "w", TEACHER, KD_CELL)
    profile = str(ROOT / "profiles" / "slurm-local")
    code, out = _finish(_start(workdir, "--profile", profile, f"{KD_CELL}/result.json"))
    assert code == 0, out[-3000:]
    jobs = re.findall(r"submitted with SLURM jobid (\d+)", out)
    assert len(jobs) == 2  # train_vanilla, then train_kd
    for job in jobs:
        state = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True)
        assert "JobState=COMPLETED" in state.stdout, state.stdout + state.stderr
    _same_run(kd_local / TEACHER, workdir / TEACHER)
    _same_run(kd_local / KD_CELL, workdir / KD_CELL)


def _slurm_job_of(rule: str, workdir: Path, timeout: float = 120) -> str:
    """The id of the running SLURM job of ``rule`` started in ``workdir`` (the plugin puts
    the rule in --comment, and the working folder in -D)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(
            ["squeue", "-h", "-t", "RUNNING", "-o", "%i %k %Z"], capture_output=True, text=True
        ).stdout
        ids = [
            job
            for job, comment, folder in (line.split() for line in out.splitlines())
            if comment.startswith(f"rule_{rule}_") and Path(folder) == workdir
        ]
        if ids:
            assert len(ids) == 1, out
            return ids[0]
        time.sleep(0.2)
    raise AssertionError(f"no running SLURM job of rule {rule}")


@needs_cluster
@pytest.mark.slow
def test_a_cancelled_training_job_resumes_from_its_checkpoint(kd_local, tmp_path):
    """scancel a running KD training job: the run fails, leaving the last epoch's checkpoint
    and no model.pt/result.json; the same command again resumes from that checkpoint and ends
    with the uninterrupted run's weights, result and metrics."""
    workdir = _without(kd_local, tmp_path / "w", KD_CELL)
    run = workdir / KD_CELL
    cmd = ["--profile", str(ROOT / "profiles" / "slurm-local"), "--retries", "0"]
    proc = _start(workdir, *cmd, f"{KD_CELL}/result.json")
    job = _slurm_job_of("train_kd", workdir)
    period = _wait_for_checkpoint(run, proc)
    subprocess.run(["scancel", job], check=True)
    code, out = _finish(proc)
    assert code != 0 and f"SLURM-job '{job}' failed" in out, out[-3000:]
    state = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True)
    assert "JobState=CANCELLED" in state.stdout
    kept = load_checkpoint(run / "checkpoint.pt")["period"]
    assert period <= kept < EPOCHS  # cancelled mid-run, after at least one epoch
    assert not (run / "model.pt").exists() and not (run / "result.json").exists()
    # (a cancel during an atomic write may leave a .<name>.*.tmp; the next run removes it)
    assert sorted(p.name for p in run.glob("[!.]*")) == ["checkpoint.pt", "metrics.csv"]
    code, out = _finish(_start(workdir, *cmd, f"{KD_CELL}/result.json"))
    assert code == 0, out[-3000:]
    assert len(re.findall(r"submitted with SLURM jobid (\d+)", out)) == 1
    log = (workdir / "logs/quick/kd/digits/digits/kd/wrn_16_2-resnet20/seed0.log").read_text()
    assert f"resumed from {KD_CELL}/checkpoint.pt after epoch {kept}" in log
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoint.pt", "metrics.csv", "model.pt", "result.json",
    ]  # fmt: skip
    _same_run(kd_local / KD_CELL, run)


RANKS = """
import os
import torch
import torch.distributed as dist

dist.init_process_group("gloo")
total = torch.tensor([float(dist.get_rank())])
dist.all_reduce(total)
line = (f"rank {dist.get_rank()} world {dist.get_world_size()} sum {total.item()} "
        f"master {os.environ['MASTER_ADDR']}\\n")
os.write(1, line.encode())  # one write per line: the two ranks share the job's log
dist.destroy_process_group()
"""


@needs_cluster
@pytest.mark.slow
def test_the_multi_node_launch_path_runs_under_srun(tmp_path):
    """In a SLURM job, `repro-core launch --srun` (the path of a multi-node job, on this
    one-node cluster) starts itself once per node with srun, and each task runs torchrun with
    the rendezvous taken from the task's SLURM environment; two gloo processes meet there."""
    script, log = tmp_path / "ranks.py", tmp_path / "job.log"
    script.write_text(RANKS)
    py = sys.executable
    subprocess.run(
        ["sbatch", "--parsable", "--wait", "--nodes=1", "--ntasks=1", "--cpus-per-task=1",
         "--mem=3000", "-t", "10", "-o", str(log), "-D", str(tmp_path),
         "--wrap", f"{py} -m repro.core.launch --procs=2 --srun -- {py} {script}"],
        check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    text = log.read_text()
    node = subprocess.run(["sinfo", "-h", "-o", "%N"], capture_output=True, text=True).stdout
    node = node.split()[0]
    assert "srun --nodes=1 --ntasks=1 --ntasks-per-node=1" in text
    assert f"--nnodes=1 --node-rank=0 --nproc-per-node=2 --master-addr={node}" in text
    ranks = sorted(line for line in text.splitlines() if line.startswith("rank "))
    assert ranks == [f"rank {r} world 2 sum 1.0 master {node}" for r in (0, 1)], text[-2000:]
