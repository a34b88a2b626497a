"""Burst SR training under torchrun (2 gloo processes on CPU) and its checkpoint in 1 process."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from burstsr_tiny import tiny_section

from repro.burstsr import plan
from repro.core.checkpoint import load_checkpoint

BIN = __import__("pathlib").Path(sys.executable).parent


def _section(root, iterations: int) -> dict:
    return tiny_section(root, iterations, 3, {"b": {"kind": "burst", "align": "gt"}})


def _cli(params: dict, out, procs: int = 1) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "repro-burstsr"), "train", "--params", json.dumps(params), "--out", str(out)]
    if procs > 1:
        cmd = [str(BIN / "repro-core"), "launch", f"--procs={procs}", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_two_processes_train_and_their_checkpoint_resumes_in_one(tmp_path, zurich):
    root = zurich
    out = tmp_path / "run"
    two = _cli(plan.train_params({"burst_sr": _section(root, 3)}, "b", 1), out, procs=2)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "--nproc-per-node=2" in two.stderr
    ckpt = load_checkpoint(out / "checkpoint.pt")  # after iteration 2 (rows 2 + 1 of 3)
    state = ckpt["payload"]["state_dict"]
    assert ckpt["period"] == 2 and not any(k.startswith("module.") for k in state)
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 4 and all(np.isfinite(float(r.split(",")[1])) for r in rows[1:])
    # the 2-process checkpoint resumes in one process (the same job: iteration 3 again)
    (out / "model.pt").unlink()
    one = _cli(plan.train_params({"burst_sr": _section(root, 3)}, "b", 1), out)
    assert one.returncode == 0, one.stderr[-3000:]
    assert "resumed from" in one.stderr and "after iteration 2" in one.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["iterations"] == 3 and len(load_checkpoint(out / "model.pt")["history"]) == 3
    # a job replanned with other parameters (longer) starts again instead of resuming
    (out / "model.pt").unlink()
    longer = _cli(plan.train_params({"burst_sr": _section(root, 5)}, "b", 1), out)
    assert longer.returncode == 0, longer.stderr[-3000:]
    assert "from other parameters" in longer.stderr and "resumed from" not in longer.stderr
