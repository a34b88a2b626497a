"""repro.core.launch: the launcher prefix of a rule, torchrun/srun command lines from the SLURM
environment, and GPU slots that concurrent jobs never share (no GPU needed: the launcher only
hands out device ids; each job here records the ids it got and when it ran)."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from repro.core import ReproError
from repro.core.launch import (
    Request,
    claim,
    first_host,
    plan,
    prefix,
    srun_command,
    torchrun_command,
)

LAUNCH = [sys.executable, "-m", "repro.core.launch"]


# -- the rule's prefix --------------------------------------------------------------------------
def test_prefix_follows_the_rules_gpu_and_nodes_resources():
    assert prefix({"gpu": 0}) == prefix({}) == ""  # CPU jobs run as before
    assert prefix({"gpu": 1}) == "repro-core launch --gpus=1 --"
    assert prefix({"gpu": 4}) == "repro-core launch --gpus=4 --"
    assert prefix({"gpu": 8, "nodes": 2}) == "repro-core launch --gpus=8 --nodes=2 --"
    assert prefix({"gpu": 1}, jobs_per_gpu=3) == "repro-core launch --gpus=1 --jobs-per-gpu=3 --"
    assert prefix({"gpu": 2}, single=True) == "repro-core launch --gpus=2 --single --"
    with pytest.raises(ReproError, match="6 GPUs cannot be split evenly over 4 nodes"):
        prefix({"gpu": 6, "nodes": 4})
    # SLURM's per-node request (gres) counts too
    assert prefix({"gres": "gpu:4", "nodes": 2}) == "repro-core launch --gpus=8 --nodes=2 --"
    assert prefix({"gres": "gpu:a100:2"}) == "repro-core launch --gpus=2 --"
    assert prefix({"gres": "shard:2"}) == ""


def test_processes_follow_the_request():
    assert Request(gpus=4).per_node == 4 and Request(gpus=8, nodes=2).per_node == 4
    assert Request(gpus=8, nodes=2).world_size == 8
    assert Request(gpus=2, single=True).per_node == 1
    assert Request(procs=2).per_node == 2 and Request().per_node == 1
    with pytest.raises(ReproError, match="jobs_per_gpu must be an integer >= 1"):
        Request(gpus=1, jobs_per_gpu=0)


# -- SLURM environment -> torchrun ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("nodelist", "host"),
    [
        ("vm", "vm"),
        ("gpu07", "gpu07"),
        ("gpu[07-08,11]", "gpu07"),
        ("gpu[011-012],cpu1", "gpu011"),
        ("a1,b[2-3]", "a1"),
        ("rack[2-3]-node[05,09]", "rack2-node05"),
        ("n[9,10-12]", "n9"),
    ],
)
def test_first_host_of_a_slurm_node_list(nodelist, host):
    assert first_host(nodelist) == host
    if shutil.which("scontrol"):  # SLURM's own expansion, where installed
        listed = subprocess.run(
            ["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True
        )
        if listed.returncode == 0:
            assert listed.stdout.split()[0] == host


def test_torchrun_on_one_node_is_standalone():
    assert torchrun_command(Request(gpus=4), {}) == [
        "torchrun", "--standalone", "--nproc-per-node=4", "--no-python",
    ]  # fmt: skip


SLURM_TASK = {
    "SLURM_JOB_ID": "4321",
    "SLURM_JOB_NODELIST": "gpu[07-08]",
    "SLURM_NNODES": "2",
    "SLURM_NODEID": "1",
}


def test_torchrun_on_several_nodes_takes_the_rendezvous_from_slurm():
    assert torchrun_command(Request(gpus=8, nodes=2), SLURM_TASK) == [
        "torchrun", "--nnodes=2", "--node-rank=1", "--nproc-per-node=4",
        "--master-addr=gpu07", "--master-port=24321", "--no-python",
    ]  # fmt: skip
    port = torchrun_command(Request(gpus=8, nodes=2), {**SLURM_TASK, "MASTER_PORT": "29400"})
    assert "--master-port=29400" in port
    with pytest.raises(ReproError, match="SLURM gave it 3"):
        torchrun_command(Request(gpus=8, nodes=2), {**SLURM_TASK, "SLURM_NNODES": "3"})
    with pytest.raises(ReproError, match="SLURM_NODEID unset"):
        torchrun_command(Request(gpus=8, nodes=2), {**SLURM_TASK, "SLURM_NODEID": ""})


def test_several_nodes_start_one_launcher_per_node_through_srun():
    req, cmd = Request(gpus=8, nodes=2), ["repro-distill", "train", "--out", "x"]
    outer = plan(req, SLURM_TASK, cmd)  # the job's own shell, in the allocation
    assert outer[: len(srun_command(req))] == [
        "srun", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
        "--overlap",
    ]  # fmt: skip
    rest = outer[len(srun_command(req)) :]
    assert rest[:3] == LAUNCH and rest[3:] == [
        "--gpus=8", "--nodes=2", "--node-task", "--", *cmd,
    ]  # fmt: skip
    inner = plan(req, SLURM_TASK, cmd, node_task=True)  # each srun task
    assert inner == [*torchrun_command(req, SLURM_TASK), *cmd]
    uneven = {**SLURM_TASK, "CUDA_VISIBLE_DEVICES": "0,1"}  # SLURM put 2 of 8 GPUs here
    with pytest.raises(ReproError, match="node 1 got 2 GPU.s. from SLURM but the job runs 4"):
        plan(req, uneven, cmd, node_task=True)
    with pytest.raises(ReproError, match="2 node.s. through srun need a SLURM job"):
        plan(req, {}, cmd)
    assert plan(Request(gpus=1), {}, cmd) == cmd  # one GPU: no torchrun


# -- GPU slots ----------------------------------------------------------------------------------
def test_a_claim_holds_its_devices_until_released(tmp_path):
    first = claim(["0", "1"], 1, tmp_path)
    second = claim(["0", "1"], 1, tmp_path)
    assert first.devices == ["0"] and second.devices == ["1"]
    with pytest.raises(ReproError, match="no 1 free GPU"):
        claim(["0", "1"], 1, tmp_path, wait=0.2, poll=0.05)
    first.release()
    assert claim(["0", "1"], 1, tmp_path).devices == ["0"]
    with pytest.raises(ReproError, match="asks for 3 GPU.s. but this machine has 2 visible"):
        claim(["0", "1"], 3, tmp_path)


def test_sharing_jobs_fill_a_gpu_and_keep_exclusive_jobs_off_it(tmp_path):
    a = claim(["0"], 1, tmp_path, share=2)
    b = claim(["0"], 1, tmp_path, share=2)
    assert a.devices == b.devices == ["0"]
    with pytest.raises(ReproError):  # a third sharer, or an exclusive job, waits
        claim(["0"], 1, tmp_path, share=2, wait=0.1, poll=0.05)
    with pytest.raises(ReproError):
        claim(["0"], 1, tmp_path, wait=0.1, poll=0.05)
    a.release()
    b.release()
    whole = claim(["0"], 1, tmp_path)
    with pytest.raises(ReproError):  # and a sharer waits for the exclusive job
        claim(["0"], 1, tmp_path, share=2, wait=0.1, poll=0.05)
    whole.release()


RECORD = textwrap.dedent(
    """
    import os, sys, time
    start = time.time()
    time.sleep(float(sys.argv[2]))
    line = f"{os.environ['CUDA_VISIBLE_DEVICES']} {start} {time.time()}\\n"
    with open(sys.argv[1], "a") as f:
        f.write(line)
    """
)


def _job(tmp_path: Path, gpus: int, devices: str, hold: float, *flags: str) -> subprocess.Popen:
    script = tmp_path / "record.py"
    script.write_text(RECORD)
    cmd = [*LAUNCH, f"--gpus={gpus}", "--single"]  # one process, even with 2 GPUs
    cmd += [f"--devices={devices}", f"--locks={tmp_path / 'locks'}"]
    cmd += [*flags, "--", sys.executable, str(script), str(tmp_path / "ran.txt"), str(hold)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)


def _ran(tmp_path: Path) -> list[tuple[list[str], float, float]]:
    rows = [line.split() for line in (tmp_path / "ran.txt").read_text().splitlines()]
    return [(r[0].split(","), float(r[1]), float(r[2])) for r in rows]


def _overlaps(runs) -> list[tuple[str, float, float]]:
    """(device, start, end) pairs of runs that held one device at the same time."""
    bad = []
    for i, (da, sa, ea) in enumerate(runs):
        for db, sb, eb in runs[i + 1 :]:
            bad += [(d, max(sa, sb), min(ea, eb)) for d in set(da) & set(db) if sa < eb and sb < ea]
    return bad


def test_concurrent_jobs_never_get_the_same_gpu(tmp_path):
    """Seven jobs (one or two GPUs each) started at once on three GPUs: every job runs, each
    on as many distinct GPUs as it asked for, and no GPU ever serves two jobs at once."""
    jobs = [_job(tmp_path, g, "0,1,2", 0.4) for g in (1, 2, 1, 1, 2, 1, 1)]
    for job in jobs:
        assert job.wait(timeout=120) == 0, job.stderr.read()
    runs = _ran(tmp_path)
    assert sorted(len(d) for d, _, _ in runs) == [1, 1, 1, 1, 1, 2, 2]
    assert all(len(set(d)) == len(d) and set(d) <= {"0", "1", "2"} for d, _, _ in runs)
    assert not _overlaps(runs)


def test_jobs_per_gpu_lets_that_many_share_it(tmp_path):
    jobs = [_job(tmp_path, 1, "0", 1.2, "--jobs-per-gpu=2") for _ in range(4)]
    jobs.append(_job(tmp_path, 1, "0", 0.3))  # wants the whole GPU
    for job in jobs:
        assert job.wait(timeout=120) == 0, job.stderr.read()
    runs = _ran(tmp_path)
    ends = sorted(t for _, s, e in runs for t in ((s, 1), (e, -1)))
    most, now = 0, 0
    for _, step in ends:
        now += step
        most = max(most, now)
    assert most == 2  # two at once (the machine may start them later, never three)
    exclusive = [r for r in runs if r[2] - r[1] < 1.0]  # the one that held it 0.3 s
    assert len(exclusive) == 1
    assert not any(_overlaps([exclusive[0], r]) for r in runs if r is not exclusive[0])


def _locked(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def test_a_killed_job_frees_its_gpu(tmp_path):
    locks = tmp_path / "locks"
    holder = subprocess.Popen(
        [*LAUNCH, "--gpus=1", "--devices=0", f"--locks={locks}", "--", "sleep", "60"],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while not (locks / "gpu-0.lock").exists() or not _locked(locks / "gpu-0.lock"):
        assert time.time() < deadline and holder.poll() is None
        time.sleep(0.05)
    waiter = _job(tmp_path, 1, "0", 0.0)
    time.sleep(1.0)
    assert waiter.poll() is None  # waiting for GPU 0
    os.kill(holder.pid, signal.SIGKILL)  # the exec'd `sleep` holds the lock itself
    holder.wait()
    assert waiter.wait(timeout=60) == 0
    assert [d for d, _, _ in _ran(tmp_path)] == [["0"]]
    assert "waiting for 1 free GPU(s) of 0" in waiter.stderr.read()


def test_inside_a_slurm_job_nothing_is_claimed(tmp_path):
    env = {**os.environ, "SLURM_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": "3"}
    cmd = [
        *LAUNCH,
        "--gpus=1",
        f"--locks={tmp_path}",
        "--",
        "sh",
        "-c",
        "echo $CUDA_VISIBLE_DEVICES",
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "3" and not list(tmp_path.iterdir())


def test_a_machine_without_gpus_runs_the_job_unclaimed(tmp_path):
    """No GPU to hand out (no nvidia-smi on PATH, no ids set): the job runs, unclaimed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    (tmp_path / "bin").mkdir()
    env.update(PATH=str(tmp_path / "bin"), REPRO_GPU_DEVICES="", CUDA_VISIBLE_DEVICES="")
    locks = tmp_path / "locks"
    cmd = [
        *LAUNCH,
        "--gpus=1",
        f"--locks={locks}",
        "--",
        "/bin/sh",
        "-c",
        "echo [$CUDA_VISIBLE_DEVICES]",
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]" and "no GPU visible here" in out.stderr
    assert not locks.exists()
