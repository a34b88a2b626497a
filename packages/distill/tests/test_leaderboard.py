"""The fair leaderboard: paired differences and their t intervals (against scipy), ranks, and
the written report."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy import stats

from repro.core import ReproError
from repro.core.params import parse
from repro.distill import plan
from repro.distill.leaderboard import (
    average_ranks,
    leaderboard_report,
    leaderboard_rows,
    paired_difference,
)
from repro.distill.params import Leaderboard


def test_paired_interval_equals_scipys_paired_t_test():
    rng = np.random.default_rng(0)
    base = 70 + rng.normal(size=5)
    other = base + 0.4 + 0.3 * rng.normal(size=5)
    got = paired_difference(list(other), list(base), 0.95)
    ci = stats.ttest_rel(other, base).confidence_interval(0.95)
    assert got["diff"] == pytest.approx(np.mean(other - base), abs=1e-12)
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert got["n"] == 5 and got["diff_std"] == pytest.approx(np.std(other - base, ddof=1))
    ci90 = stats.ttest_rel(other, base).confidence_interval(0.90)
    assert paired_difference(list(other), list(base), 0.90)["ci_low"] == pytest.approx(ci90.low)


def test_paired_interval_hand_worked_and_single_seed():
    # d = (1, 2, 3): mean 2, sd 1, n 3; t_{0.975, 2} = 4.302652729...
    got = paired_difference([71.0, 72.0, 73.0], [70.0, 70.0, 70.0])
    half = 4.302652729749464 / np.sqrt(3)
    assert (got["diff"], got["diff_std"]) == (2.0, 1.0)
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((2 - half, 2 + half), abs=1e-12)
    one = paired_difference([71.0], [70.5])
    assert one == {"diff": 0.5, "diff_std": None, "n": 1, "ci_low": None, "ci_high": None}
    with pytest.raises(ValueError, match="equal"):
        paired_difference([1.0, 2.0], [1.0])


def test_ranks_are_1_for_the_best_and_ties_share_the_average():
    assert average_ranks({"kd": 70.0, "dkd": 72.0, "cskd": 70.0, "r2kd": 69.0}) == {
        "kd": 2.5, "dkd": 1.0, "cskd": 2.5, "r2kd": 4.0,
    }  # fmt: skip


BOARD = parse(Leaderboard, {
    "title": "Fair KD leaderboard", "dataset": "cifar100", "recipe": "fair",
    "pairs": ["vgg13-vgg8", "wrn_40_2-wrn_16_2"], "variants": ["kd", "dkd", "r2kd"],
    "seeds": [0, 1, 2], "baseline": "kd", "confidence": 0.95, "run_recipes": {"kd": "cifar"},
})  # fmt: skip
#: best top-1 per (student, variant): one value per seed
ACC = {
    ("vgg8", "kd"): [72.0, 72.5, 73.0],
    ("vgg8", "dkd"): [73.0, 74.0, 74.5],  # +1.0, +1.5, +1.5 -> above
    ("vgg8", "r2kd"): [71.0, 73.5, 72.0],  # -1, +1, -1: interval across 0
    ("wrn_16_2", "kd"): [74.0, 74.0, 74.0],
    ("wrn_16_2", "dkd"): [74.5, 74.0, 75.5],
    ("wrn_16_2", "r2kd"): [73.0, 73.2, 72.9],  # -1.0, -0.8, -1.1 -> below
}


def _results() -> list[dict]:
    out = []
    for (student, variant), values in ACC.items():
        teacher = "vgg13" if student == "vgg8" else "wrn_40_2"
        for seed, value in enumerate(values):
            out.append({"dataset": "cifar100", "teacher": teacher, "student": student,
                        "variant": variant, "seed": seed, "best_top1": value,
                        "test_n": 10000})  # fmt: skip
    return out


def test_rows_rank_and_count_pairs_above_and_below_the_baseline():
    rows, ranks = leaderboard_rows(BOARD, _results())
    by = {(r["student"], r["variant"]): r for r in rows}
    assert by[("vgg8", "kd")]["diff"] is None and by[("vgg8", "kd")]["rank"] == 2.0
    d = np.array(ACC[("vgg8", "dkd")]) - np.array(ACC[("vgg8", "kd")])
    ci = stats.ttest_rel(ACC[("vgg8", "dkd")], ACC[("vgg8", "kd")]).confidence_interval()
    assert by[("vgg8", "dkd")]["diff"] == pytest.approx(d.mean())
    assert by[("vgg8", "dkd")]["ci_low"] == pytest.approx(ci.low) and ci.low > 0
    assert by[("vgg8", "dkd")]["top1_std"] == pytest.approx(np.std(ACC[("vgg8", "dkd")], ddof=1))
    summary = {r["variant"]: r for r in ranks}
    assert summary["dkd"]["mean_rank"] == 1.0 and summary["r2kd"]["mean_rank"] == 3.0
    assert summary["kd"]["mean_rank"] == 2.0
    assert (summary["dkd"]["above_baseline"], summary["dkd"]["below_baseline"]) == (1, 0)
    assert (summary["r2kd"]["above_baseline"], summary["r2kd"]["below_baseline"]) == (0, 1)
    with pytest.raises(ReproError, match="no result for vgg13-vgg8 r2kd seed"):
        leaderboard_rows(BOARD, [r for r in _results() if r["variant"] != "r2kd"])


def test_report_is_written_from_the_run_folders(tmp_path):
    for r in _results():
        recipe = BOARD.run_recipes.get(r["variant"], BOARD.recipe)
        cell = plan.Cell("cifar100", r["teacher"], r["student"], r["variant"], recipe, r["seed"])
        folder = tmp_path / "results" / plan.cell_dir("", cell).lstrip("/")
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(r))
    leaderboard_report(BOARD, tmp_path / "results", tmp_path / "out")
    rows = list(csv.DictReader((tmp_path / "out" / "summary.csv").open()))
    assert len(rows) == 6 and rows[0]["diff"] == ""  # the baseline has no difference
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "## cifar100: vgg13 -> vgg8" in md and "95 % t interval" in md
    assert "![" in md and "figures/paired_differences.png" in md
    assert (tmp_path / "out" / "figures" / "paired_differences.png").stat().st_size > 10_000
    assert "<table>" in (tmp_path / "out" / "summary.html").read_text()
    ranks = list(csv.DictReader((tmp_path / "out" / "ranks.csv").open()))
    assert [r["variant"] for r in ranks] == ["dkd", "kd", "r2kd"]
    (tmp_path / "results" / "kd/cifar100/fair/r2kd/vgg13-vgg8/seed2/result.json").unlink()
    with pytest.raises(ReproError, match="seed2/result.json is missing"):
        leaderboard_report(BOARD, tmp_path / "results", tmp_path / "out2")
