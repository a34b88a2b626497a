"""The CLI contract: every subcommand takes ``--params JSON`` (threads included) and paths; the
summary writes its files into ``--out``."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from repro.burstsr import cli, plan
from repro.core.papers import reported_file


def test_make_val_evaluate_and_summarize_through_the_cli(tmp_path, zurich, monkeypatch):
    threads: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", threads.append)
    section = {
        "threads": 2,
        "burst": {"burst_size": 3, "crop": 16, "border_crop": 4},
        "data": {"source": "zurich", "zurich_root": str(zurich)},
        "val": {"count": 2, "seed": 5},
        "models": {"bicubic": {"kind": "bicubic", "reported_as": "Bicubic"}},
        "eval": {"boundary_ignore": 2, "quantize_bits": 14, "frame_counts": [1, 3],
                 "batch_size": 2, "example_index": 1, "lpips": False},
    }  # fmt: skip
    val = tmp_path / "val"
    assert cli.main(["make-val", "--params", json.dumps(plan.val_params({"burst_sr": section}))]
                    + ["--out", str(val)]) == 0  # fmt: skip
    assert json.loads((val / "meta.json").read_text())["count"] == 2
    job = json.dumps(plan.eval_params({"burst_sr": section}, "bicubic"))
    result, example = tmp_path / "bicubic.json", tmp_path / "bicubic.npy"
    assert cli.main(["evaluate", "--params", job, "--val", str(val), "--out", str(result)]
                    + ["--example", str(example)]) == 0  # fmt: skip
    assert threads == [2, 2]  # from the params, no --threads flag

    out = tmp_path / "summary"
    summ = plan.summary_params({"burst_sr": section}, "t")
    args = ["summarize", "--params", json.dumps(summ), "--reported"]
    args += [str(reported_file("burst-sr")), "--val", str(val)]
    args += ["--results", str(result), "--examples", str(example), "--real-results"]
    assert cli.main([*args, "--out", str(out)]) == 0
    assert threads == [2, 2, 1]  # the summary's own threads
    for name in plan.SUMMARY_FILES.values():
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "summary.csv").open()))
    ours = [r for r in rows if r["model"] == "bicubic" and r["track"] == "synthetic"]
    psnr = json.loads(result.read_text())["psnr"]
    assert len(ours) == 1 and float(ours[0]["psnr_ours"]) == pytest.approx(psnr, abs=5e-7)
    assert json.loads((out / "provenance.json").read_text())  # written last, beside them
    with pytest.raises(SystemExit):  # settings live in the params now
        cli.main(["evaluate", "--params", job, "--threads", "2", "--val", str(val)]
                 + ["--out", str(result)])  # fmt: skip


def test_unknown_params_keys_stop_with_one_line(tmp_path, capsys):
    job = json.dumps({"burst": {"crop": 16, "cropp": 3}})
    assert cli.main(["make-val", "--params", job, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --params.burst: unknown key 'cropp'") and err.count("\n") == 1
