"""`.ci/slurm-loopback down` leaves the machine as `up` found it (issue 21, point 9).

With the SLURM client installed and no controller answering, every `snakemake` start waits
about 9 s (snakemake-executor-plugin-slurm 2.8.0 runs `scontrol show config` when Snakemake
imports it, whatever the executor), and a PID file left in /run made `apt-get purge slurmctld`
fail. Runs where the script can work (root, apt) and no cluster is up (down would stop it under
the tests using it): it brings a cluster up and down, installing and purging the packages when
they are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from snakerun import ROOT

SCRIPT = ROOT / ".ci" / "slurm-loopback"
DAEMONS = {"slurmctld", "slurmd", "slurmstepd", "munged"}


def _cluster_answers() -> bool:
    if not shutil.which("sinfo"):
        return False
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=15).returncode == 0
    except subprocess.TimeoutExpired:
        return False


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("REPRO_TEST_SLURM_LOOPBACK") != "1",
        reason="installs and purges the SLURM packages: only where asked "
        "(REPRO_TEST_SLURM_LOOPBACK=1, as .ci/run does after the other tests)",
    ),
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("apt-get") or not shutil.which("dpkg-query"),
        reason=".ci/slurm-loopback needs root and apt",
    ),
    pytest.mark.skipif(
        Path("/var/lib/slurm-loopback").exists() or _cluster_answers(),
        reason="a SLURM cluster is up (down would stop it under the tests that use it)",
    ),
]


def _daemons() -> dict[int, str]:
    """Running SLURM and munge daemons, by PID."""
    found = {}
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            name = comm.read_text().strip()
            zombie = "(zombie)" in (comm.parent / "status").read_text()
        except OSError:  # gone meanwhile
            continue
        if name in DAEMONS and not zombie:
            found[int(comm.parent.name)] = name
    return found


def _footprint() -> dict:
    """What `up` may change: packages, users, configuration, state, PID files, daemons."""
    pkgs = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status} ${Package}\\n"], capture_output=True, text=True
    ).stdout
    paths = ["/etc/slurm", "/etc/munge", "/run/munge", "/var/lib/slurm", "/var/log/slurm"]
    paths += ["/var/lib/slurm-loopback", "/run/slurm-loopback", "/var/lib/munge"]
    conf = Path("/etc/slurm/slurm.conf")
    users = subprocess.run(["getent", "passwd", "slurm", "munge"], capture_output=True, text=True)
    return {
        "packages": sorted(line.split()[3] for line in pkgs.splitlines() if " installed " in line),
        "users": users.stdout,
        "paths": {p: sorted(str(q) for q in Path(p).rglob("*")) for p in paths if Path(p).exists()},
        "slurm.conf": conf.read_text() if conf.exists() else None,
        "pid files": sorted(str(p) for p in Path("/run").glob("*.pid")),
        "daemons": _daemons(),
    }


def _dry_run_seconds(folder: Path, path: str, runs: int = 2) -> float:
    """Wall time of `snakemake -n` on a one-rule workflow (the quickest of ``runs``)."""
    exe = str(Path(sys.executable).with_name("snakemake"))
    env = {**os.environ, "PATH": path}
    times = []
    for _ in range(runs):
        start = time.monotonic()
        proc = subprocess.run(
            [exe, "-n", "-q"], cwd=folder, env=env, capture_output=True, text=True, timeout=120
        )
        times.append(time.monotonic() - start)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return min(times)


def _script(*args: str, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def test_down_leaves_no_trace_and_snakemake_starts_as_before_up(tmp_path):
    folder = tmp_path / "wf"
    folder.mkdir()
    (folder / "Snakefile").write_text('rule a:\n    output: "a.txt"\n    shell: "touch {output}"\n')
    # a stub SLURM client whose controller never answers: scontrol takes 8 s to give up, as
    # the real one does (MessageTimeout); it shows that the dry-run times below see the wait
    stub = tmp_path / "stub"
    stub.mkdir()
    for tool in ("sinfo", "squeue", "sacct", "scontrol"):
        (stub / tool).write_text("#!/bin/sh\nsleep 8\nexit 1\n" if tool == "scontrol" else "")
        (stub / tool).chmod(0o755)
    path = os.environ.get("PATH", "")

    before = _footprint()
    if before["slurm.conf"] and "ClusterName=loopback" in before["slurm.conf"].splitlines():
        pytest.skip("an older .ci/slurm-loopback left its cluster's files: run its down first")
    start_before = _dry_run_seconds(folder, path)
    start_stub = _dry_run_seconds(folder, f"{stub}{os.pathsep}{path}", runs=1)
    assert start_stub > start_before + 6  # the plugin probes scontrol at every start

    try:
        up = _script("up", timeout=600)
        assert up.returncode == 0, up.stdout + up.stderr
        assert " idle " in up.stdout
        assert _daemons()
    finally:
        down = _script("down", timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr

    after = _footprint()
    assert not Path("/run/slurmctld.pid").exists() and not Path("/run/slurmd.pid").exists()
    assert not [n for n in after["daemons"].values() if n.startswith("slurm")]
    assert after == before
    start_after = _dry_run_seconds(folder, path)
    assert start_after < start_before + 3, (start_before, start_after)
