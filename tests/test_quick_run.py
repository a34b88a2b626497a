"""The whole quick reproduction, run once for real, then its tables, figures and HTML report."""

from __future__ import annotations

import csv
import json
import re
import shutil

import numpy as np
import pytest
from chromium import Chromium, find_chromium
from snakerun import snakemake

pytestmark = pytest.mark.slow


@pytest.fixture
def quick(quick_run):
    """A working directory in which `snakemake --cores 2` (the README's run) has finished: the
    test session's one quick run (tests/conftest.py)."""
    return quick_run


def _rows(path):
    return list(csv.DictReader(path.open()))


def test_data_and_provenance(quick):
    meta = json.loads((quick / "data/digits-lt10/meta.json").read_text())
    assert meta["splits"]["train"]["counts"][0] > 10 * meta["splits"]["train"]["counts"][-1] * 0.9
    images = np.load(quick / "data/digits/train_images.npy")
    assert images.dtype == np.uint8 and images.shape[1:] == (8, 8, 1)
    prov = json.loads((quick / "results/quick/provenance.json").read_text())
    assert prov["config"]["run"] == "quick" and prov["seed"] == 0
    assert prov["config"]["kd"]["variants"]["dkd"]["args"] == {"warmup": 5}
    assert prov["git"]["commit"] is None or len(prov["git"]["commit"]) == 40
    assert prov["packages"]["repro-data"] and len(prov["uv_lock_sha256"]) == 64
    again = snakemake("--cores", "2", cwd=quick)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def test_energy_kd_scorecard(quick):
    rows = _rows(quick / "results/quick/energy-kd/summary.csv")
    by = {(r["teacher"], r["student"], r["variant"]): r for r in rows}
    assert {v for _, _, v in by} == {"ce", "kd", "dkd", "energy_kd", "energy_dkd", "heda"}
    teacher, student = by[("", "wrn_16_2", "ce")], by[("", "resnet20", "ce")]
    assert float(teacher["top1_ours"]) > 90 and float(student["top1_ours"]) > 90
    assert all(r["n"] == "1" and r["test_n"] == "450" for r in rows)  # 1 seed, 450 test digits
    energy = json.loads(
        (quick / "results/quick/kd/digits/digits/energy_kd/wrn_16_2-resnet20/seed0/result.json")
        .read_text()
    )  # fmt: skip
    assert energy["prepared"]["tau_low"] < energy["prepared"]["tau_high"]
    prov = json.loads((quick / "results/quick/energy-kd/provenance.json").read_text())
    assert prov["spearman_energy_confidence"] < -0.5  # low energy = confident


def test_cskd_and_r2kd_scorecards(quick):
    rows = _rows(quick / "results/quick/cskd/summary.csv")
    by = {(r["teacher"], r["student"], r["variant"]): r for r in rows}
    assert {v for _, _, v in by} == {"ce", "kd", "dkd", "cskd", "cskd_cswt"}
    assert all(r["n"] == "1" and r["test_n"] == "450" and r["top1_ours"] for r in rows)
    assert float(by[("wrn_16_2", "resnet20", "cskd_cswt")]["top1_ours"]) > 80
    # the KD cell is the Energy KD paper's run (planned once)
    energy = {(r["variant"]): r for r in _rows(quick / "results/quick/energy-kd/summary.csv")}
    assert by[("wrn_16_2", "resnet20", "kd")]["top1_ours"] == energy["kd"]["top1_ours"]
    prov = json.loads((quick / "results/quick/cskd/provenance.json").read_text())
    assert 2.0 <= prov["cswt_temperature_mean"] <= 6.0
    rows = _rows(quick / "results/quick/r2kd/summary.csv")
    variants = {r["variant"]: r for r in rows if r["teacher"]}
    assert set(variants) == {"kd", "dkd", "r2kd", "r2kd_noprune", "r2kd_cutmix",
                             "r2kd_cutmix_noprune"}  # fmt: skip
    assert all(float(r["top1_ours"]) > 50 for r in variants.values())
    run = quick / "results/quick/kd/digits/digits/r2kd_cutmix/wrn_16_2-resnet20/seed0"
    result = json.loads((run / "result.json").read_text())
    assert 0.09 < result["prepared"]["pruned_fraction"] < 0.11  # 10 % of every layer pruned
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"loss_value", "loss_rank", "loss_value_aug", "loss_rank_aug"} <= set(header)


def test_fair_leaderboard(quick):
    rows = _rows(quick / "results/quick/kd-leaderboard/summary.csv")
    assert len(rows) == 2 * 4  # 2 pairs x 4 variants
    for r in rows:
        assert r["n"] == "3"
        if r["variant"] == "kd":
            assert r["diff"] == "" and r["ci_low"] == ""
        else:
            assert float(r["ci_low"]) <= float(r["diff"]) <= float(r["ci_high"])
    ranks = _rows(quick / "results/quick/kd-leaderboard/ranks.csv")
    assert sorted(r["variant"] for r in ranks) == sorted(
        ["kd", "energy_kd", "cskd_cswt", "r2kd_cutmix"]
    )
    assert sum(float(r["mean_rank"]) for r in ranks) == pytest.approx(1 + 2 + 3 + 4)


def test_burst_sr_scorecard(quick):
    rows = _rows(quick / "results/quick/burst-sr/summary.csv")
    ours = {r["model"]: r for r in rows if r["model"] and r["track"] == "synthetic"}
    assert set(ours) == {"bicubic", "bilinear", "single", "dbsr_gtflow"}
    assert all(r["n"] == "1" for r in ours.values())  # one seed in the quick run
    assert (quick / "results/quick/burst-sr/models/single/seed0/model.pt").is_file()
    # the real track is not run (burst_sr.data.burstsr_root unset): its rows say so
    real = [r for r in rows if r["model"] and r["track"] == "real"]
    assert {r["model"] for r in real} == {"bicubic", "bilinear", "single"}
    assert all(r["psnr_ours"] == "" and "burstsr_root unset" in r["note"] for r in real)
    assert ours["dbsr_gtflow"]["method"] == "dbsr_gtflow (oracle: ground-truth flow)"
    assert ours["dbsr_gtflow"]["psnr_reported"] == ""  # never on a published row
    assert float(ours["dbsr_gtflow"]["psnr_ours"]) > float(ours["bicubic"]["psnr_ours"])
    # photographs, not the official val set: the reported value is shown, no difference
    assert float(ours["bicubic"]["psnr_reported"]) == 33.02 and ours["bicubic"]["psnr_diff"] == ""
    assert ours["bicubic"]["note"].startswith("not comparable: scikit-image photographs")
    md = (quick / "results/quick/burst-sr/summary.md").read_text()
    assert re.search(
        r"\| Bicubic \| synthetic \| bicubic \| 33\.02 \| 29\.\d\d \|", md
    )  # 2 decimals
    assert re.search(r"\| Bicubic \| synthetic \| bicubic \|[^\n]*\| 0\.862 \| 0\.8\d\d \|", md)
    assert "ModuleNotFoundError" not in md and "LPIPS empty: no AlexNet weights file" in md


def test_fmri_adv_scorecard(quick):
    rows = _rows(quick / "results/quick/fmri-adv/summary.csv")
    claims = {r["claim"]: r for r in rows if r["table"] == "The abstract's claims"}
    assert len(claims) == 4
    for claim, row in claims.items():
        assert row["holds_reported"] == "yes" and "arXiv 1905.02422" in row["source"]
        if "DNN" in claim:
            assert row["holds_ours"].split()[0] in ("yes", "no") and row["note"]
        else:  # simulated brain data and responses: not compared with the paper
            assert row["holds_ours"] == row["holds_diff"] == ""
            assert row["note"].startswith("not comparable: simulated data")
    # the simulation plants a white/black difference in one ROI: the brain claim is found
    brain = claims["white/black-box representations differ in the brain (significant)"]
    assert "on the simulated data: yes" in brain["note"]
    numbers = [r for r in rows if r["table"] == "Our numbers"]
    assert any(r["section"] == "attack success on target" for r in numbers)
    meta = json.loads((quick / "results/quick/fmri-adv/stimuli/meta.json").read_text())
    assert meta["attack_success"]["white"]["success_rate"] > 0.2


def test_mhsan_scorecard(quick):
    rows = _rows(quick / "results/quick/mhsan/summary.csv")
    ours = {(r["model"], r["direction"]): r for r in rows if r["model"]}
    assert set(ours) == {(m, d) for m in ("r1", "r10") for d in ("i2t", "t2i")}
    assert all(r["test_n"] == "1000" for r in ours.values())  # 1,000 images, 5,000 captions
    # chance: R@10 of 1 in 1,000 images is 1 %; both models are far above it
    assert all(float(r["r10_ours"]) > 20 for r in ours.values())
    runs = {r["model"]: float(r["rsum"]) for r in _rows(quick / "results/quick/mhsan/runs.csv")}
    assert runs["r10"] > runs["r1"] + 10  # more heads help on the synthetic set


def test_every_figure_a_summary_lists_exists(quick):
    listed = []
    for md in sorted((quick / "results/quick").glob("*/summary.md")):
        for path in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md.read_text()):
            listed.append(md.parent / path)
    assert len(listed) >= 11 + 2 + 2 + 1  # + CSKD's, R2KD's and the leaderboard's
    for figure in listed:
        assert figure.stat().st_size > 10_000, figure


@pytest.mark.skipif(find_chromium() is None, reason="Debian's chromium is not installed")
def test_html_report_shows_each_scorecard_and_figure(quick):
    proc = snakemake("--report", "report.html", cwd=quick)
    assert proc.returncode == 0, proc.stderr[-3000:]
    browser = Chromium(find_chromium())
    try:
        shown = {}
        # what a panel shows: the widths of its loaded PNGs and the lengths of its frames
        shown_now = (
            "({img: Array.from(document.querySelectorAll('img')).filter(i => "
            "i.src.startsWith('data:image/png') && i.complete).map(i => i.naturalWidth),"
            " frames: Array.from(document.querySelectorAll('iframe')).map(f => "
            "(f.srcdoc || f.src || '').length)})"
        )
        for category in (
            "Energy KD", "CSKD", "R2KD", "KD leaderboard", "Burst SR", "fMRI adversarial", "MHSAN"
        ):  # fmt: skip
            browser.open((quick / "report.html").as_uri(), settle=0)
            link = (
                "Array.from(document.querySelectorAll('a'))"
                f".find(a => a.textContent.trim() == {json.dumps(category)})"
            )
            browser.wait_for(link)  # the results menu has rendered
            browser.evaluate(f"{link}.click()")
            eye_rows = (
                "Array.from(document.querySelectorAll('tr')).filter(tr => tr.querySelector("
                "'a[iconname=eye]'))"
            )
            browser.wait_for(f"{eye_rows}.length")
            labels = browser.evaluate(f"{eye_rows}.map(tr => tr.textContent.trim())")
            # a panel's identity: the lengths of its images' data and of its frames
            panel = (
                "Array.from(document.querySelectorAll('img, iframe'))"
                ".map(e => (e.src || '').length + (e.srcdoc || '').length).join(',')"
            )
            for label in labels:
                before = browser.evaluate(panel)
                browser.evaluate(
                    f"{eye_rows}.find(tr => tr.textContent.trim() == {json.dumps(label)})"
                    ".querySelector('a[iconname=eye]').click()"
                )
                # until the panel shows something new and every image in it has loaded
                browser.wait_for(
                    f"{panel} != {json.dumps(before)} && (s => s.img.length || s.frames.length)"
                    f"({shown_now}) && Array.from(document.querySelectorAll('img'))"
                    ".every(i => i.complete)"
                )
                shown[(category, label)] = browser.evaluate(shown_now)
    finally:
        browser.close()
    assert set(shown) == {
        ("Energy KD", "scorecard"),
        ("Energy KD", "accuracy by method"),
        ("Energy KD", "teacher energy and thresholds"),
        ("Energy KD", "teacher energy vs confidence"),
        ("CSKD", "scorecard"),
        ("CSKD", "accuracy by method"),
        ("CSKD", "CSWT temperature vs similarity"),
        ("R2KD", "scorecard"),
        ("R2KD", "accuracy by method"),
        ("R2KD", "accuracy with and without pruning"),
        ("KD leaderboard", "leaderboard"),
        ("KD leaderboard", "paired differences from KD"),
        ("Burst SR", "scorecard"),
        ("Burst SR", "visual comparison"),
        ("Burst SR", "PSNR vs burst size"),
        ("fMRI adversarial", "scorecard"),
        ("fMRI adversarial", "example stimuli"),
        ("fMRI adversarial", "RDM panels"),
        ("fMRI adversarial", "white vs black difference"),
        ("fMRI adversarial", "ROI x layer similarity"),
        ("MHSAN", "scorecard"),
        ("MHSAN", "attention maps"),
        ("MHSAN", "recall vs heads"),
    }
    for (category, label), seen in shown.items():
        if label in ("scorecard", "leaderboard"):
            assert seen["frames"] and max(seen["frames"]) > 1000, (category, seen)
        else:
            assert seen["img"] and max(seen["img"]) > 300, (category, label, seen)


def test_a_lockstep_cell_equals_the_same_cell_trained_alone(quick):
    """quick.yaml trains each KD row in one lockstep job; one of its cells, asked for as a
    target, trains alone and ends with the same weights, metrics and result. The cell: R2KD
    with CutMix (its own random draws and an extra teacher pass on the mixed batch), 5 epochs
    of the leaderboard's recipe in a row whose other cells train 20 (it shares their first
    five). It retrains the cell in place, then puts the lockstep job's cell back (the
    session's quick run is shared)."""
    from repro.core.checkpoint import load_checkpoint

    def rows(folder):
        table = _rows(folder / "metrics.csv")
        return [{k: v for k, v in r.items() if k != "seconds"} for r in table]

    cell = quick / "results/quick/kd/digits/digits_short/r2kd_cutmix/wrn_16_2-resnet20/seed0"
    grouped = cell.with_name("seed0.grouped")
    cell.rename(grouped)
    try:
        target = str((cell / "result.json").relative_to(quick))
        proc = snakemake("--cores", "2", target, cwd=quick)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "rule train_kd:" in proc.stdout + proc.stderr  # the cell's own job, not its group
        alone, group = (load_checkpoint(d / "model.pt")["model"] for d in (cell, grouped))
        assert alone.keys() == group.keys() and all(alone[k].equal(group[k]) for k in alone)
        assert rows(cell) == rows(grouped) and len(rows(cell)) > 1
        result = json.loads((cell / "result.json").read_text())
        assert result == json.loads((grouped / "result.json").read_text())
    finally:
        shutil.rmtree(cell, ignore_errors=True)
        grouped.rename(cell)


def test_a_grouped_cell_asked_for_alone_has_its_metadata(quick):
    """After the run, the cells its lockstep jobs wrote are recorded as their own train_kd
    outputs: asking for one (with another job to run) plans nothing for it and logs no
    "missing provenance/metadata" line (issue 21.8)."""
    cell = "results/quick/kd/digits/digits_short/cskd_cswt/wrn_16_2-resnet8/seed2/result.json"
    assert (quick / cell).is_file()
    proc = snakemake("-n", cell, "results/quick/provenance.json", "-R", "provenance", cwd=quick)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "provenance/metadata" not in out and "rule train_kd:" not in out
    assert re.search(r"^provenance\s+1$", proc.stdout, re.M)
