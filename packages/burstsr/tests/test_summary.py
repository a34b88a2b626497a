"""The scorecard's rows: a difference only against numbers measured on the same kind of data,
and our seeds' mean, std and n."""

import numpy as np
import pytest

from repro.burstsr import plan, summary
from repro.burstsr.params import SummaryParams
from repro.core.params import parse
from repro.core.scorecard import score_rows

SECTION = {
    "data": {"source": "zurich", "burstsr_root": None},
    "models": {
        "bicubic": {"kind": "bicubic", "reported_as": "Bicubic"},
        "single": {"kind": "single", "reported_as": "SingleImage"},
    },
    "eval": {"boundary_ignore": 40, "example_index": 0},
}
#: The same with the BurstSR val bursts set: the real track is planned.
WITH_REAL = {**SECTION, "data": {**SECTION["data"], "burstsr_root": "R"}}
REPORTED = [
    {"method": "Bicubic", "track": "synthetic", "psnr": 33.0, "source": "s"},
    {"method": "Bicubic", "track": "real", "psnr": 42.5, "source": "r"},
    {"method": "SingleImage", "track": "synthetic", "psnr": 36.9, "source": "p"},
]
#: The official SyntheticBurst val: 300 bursts of 14 frames, 384 px, from Zurich test.
ZURICH = {"count": 300, "source_kind": "zurich-test", "burst": {"burst_size": 14, "crop": 384,
          "downsample": 4}}  # fmt: skip
PHOTOS = {"count": 12, "source_kind": "photos", "source": ["astronaut", "coffee"],
          "burst": {"burst_size": 14, "crop": 160, "downsample": 4}}  # fmt: skip


def result(model="bicubic", psnr=30.0, bursts=300, seed=None, **extra):
    return {"model": model, "kind": SECTION["models"][model]["kind"], "psnr": psnr, "ssim": 0.9,
            "lpips": None, "bursts": bursts, "frames": 14, "seconds_per_burst": 0.1,
            "seed": seed, **extra}  # fmt: skip


def rows(meta, results, real=(), section=SECTION):
    params = parse(SummaryParams, plan.summary_params({"burst_sr": section}, "paper"))
    table, runs = summary.scorecard(params, results, list(real), meta)
    return {(r["model"], r["track"]): r for r in score_rows(table, runs, REPORTED) if r["model"]}


def test_the_official_synthetic_data_gets_a_difference():
    row = rows(ZURICH, [result()])["bicubic", "synthetic"]
    assert row["psnr_reported"] == 33.0 and row["psnr_ours"] == 30.0
    assert row["psnr_diff"] == pytest.approx(-3.0)
    assert not row["note"]


@pytest.mark.parametrize(
    ("meta", "bursts", "why"),
    [
        (PHOTOS, 12, "scikit-image photographs (astronaut, coffee)"),  # the quick run
        ({**ZURICH, "count": 4}, 4, "4 bursts, not 300"),  # a smoke run (val.count 4)
        (ZURICH, 50, "50 bursts, not 300"),  # eval.limit
        ({**ZURICH, "burst": {**ZURICH["burst"], "crop": 160}}, 300, "160 px, not 384"),
    ],
)
def test_other_data_shows_the_reported_value_but_no_difference(meta, bursts, why):
    got = rows(meta, [result(bursts=bursts), result("single", 31.0, bursts, seed=0)])
    for model in ("bicubic", "single"):
        row = got[model, "synthetic"]
        assert row["psnr_reported"] is not None and row["psnr_ours"] is not None
        assert row["psnr_diff"] is None
        assert row["note"].startswith("not comparable") and why in row["note"]


def test_the_real_track_needs_every_burst_and_pwcnet_flow():
    real = result(psnr=45.0, bursts=882, flow="pwcnet", track="real")
    got = rows(ZURICH, [result()], [real], WITH_REAL)
    assert got["bicubic", "real"]["psnr_diff"] == pytest.approx(2.5)
    for other in ({"bursts": 100}, {"flow": "dis_flow"}):
        row = rows(ZURICH, [result()], [{**real, **other}], WITH_REAL)["bicubic", "real"]
        assert row["psnr_diff"] is None and row["note"].startswith("not comparable")


def test_the_notes_say_the_rule(tmp_path):
    notes = summary.comparability_notes()
    text = " ".join(notes)
    assert "300" in text and "Zurich" in text and "882" in text and "PWC-Net" in text


def test_seeds_give_mean_std_and_n():
    psnr, ssim = [31.0, 32.5, 30.25], [0.91, 0.93, 0.9]
    runs = [result()] + [
        {**result("single", p, seed=k), "ssim": s}
        for k, (p, s) in enumerate(zip(psnr, ssim, strict=True))
    ]
    got = rows(ZURICH, runs)
    single = got["single", "synthetic"]
    assert single["n"] == 3
    assert single["psnr_ours"] == pytest.approx(np.mean(psnr))
    assert single["psnr_std"] == pytest.approx(np.std(psnr, ddof=1))  # the sample std
    assert single["ssim_ours"] == pytest.approx(np.mean(ssim))
    assert single["ssim_std"] == pytest.approx(np.std(ssim, ddof=1))
    assert single["psnr_diff"] == pytest.approx(np.mean(psnr) - 36.9)
    bicubic = got["bicubic", "synthetic"]
    assert bicubic["n"] == 1 and bicubic["psnr_std"] is None  # untrained: evaluated once


def test_every_trained_model_has_a_folder_per_seed():
    section = {**SECTION, "seeds": [0, 3]}
    assert plan.seeds({"burst_sr": section}) == [0, 3] and plan.seeds({"burst_sr": SECTION}) == [0]
    assert plan.eval_runs({"burst_sr": section}) == ["bicubic", "single/seed0", "single/seed3"]
    assert plan.run_model("single/seed3") == ("single", 3)
    assert plan.run_model("bicubic") == ("bicubic", None)
    assert plan.model_dir("R", "single", 3) == "R/models/single/seed3"
    assert plan.model_file("R", "single", 3) == "R/models/single/seed3/model.pt"
    assert (
        plan.train_params({"burst_sr": {**section, "train": {}, "burst": {}}}, "single", 3)["seed"]
        == 3
    )
    assert plan.eval_params({"burst_sr": section}, "single", 3)["seed"] == 3
    assert "seed" not in plan.eval_params({"burst_sr": section}, "bicubic", None)
    assert plan.real_runs({"burst_sr": section}) == []
    real = {**WITH_REAL, "seeds": [0, 3]}
    assert plan.real_runs({"burst_sr": real}) == ["bicubic", "single/seed0", "single/seed3"]


def test_the_figures_show_the_lowest_seed_and_the_mean_over_seeds():
    runs = [result("single", seed=2), result(), result("single", seed=0), result("single", seed=1)]
    shown, paths = summary.first_seed(runs, ["s2", "b", "s0", "s1"])
    assert [(r["model"], r["seed"]) for r in shown] == [("single", 0), ("bicubic", None)]
    assert paths == ["s0", "b"]


def test_real_track_rows_are_planned_only_with_the_burstsr_data():
    """Unset data.burstsr_root: a real-track row per model that could run there, empty, not
    planned, its note saying why; set: the same rows, planned, filled by the real runs."""
    got = rows(ZURICH, [result(), result("single", seed=0)])
    for model in ("bicubic", "single"):
        row = got[model, "real"]
        assert row["planned"] is False and row["psnr_ours"] is None and row["n"] is None
        assert row["note"] == plan.REAL_NOT_PLANNED and "burstsr_root unset" in row["note"]
    assert got["bicubic", "real"]["psnr_reported"] == 42.5  # the published row stays beside it
    real = [result(psnr=45.0, bursts=882, flow="pwcnet", track="real")]
    real += [result("single", p, 882, seed=k, flow="pwcnet") for k, p in enumerate([46, 47])]
    got = rows(ZURICH, [result(), result("single", seed=0)], real, WITH_REAL)
    assert got["bicubic", "real"]["planned"] is True and not got["bicubic", "real"]["note"]
    assert got["bicubic", "real"]["psnr_diff"] == pytest.approx(45.0 - 42.5)
    assert got["single", "real"]["planned"] is True and got["single", "real"]["n"] == 2
    assert got["single", "real"]["psnr_ours"] == pytest.approx(np.mean([46, 47]))


def test_our_rows_follow_the_runs_order_then_the_real_track():
    section = {**SECTION, "models": dict(reversed(SECTION["models"].items()))}
    params = parse(SummaryParams, plan.summary_params({"burst_sr": section}, "paper"))
    table, runs = summary.scorecard(params, [result(), result("single", seed=0)], [], ZURICH)
    ours = [(r["track"], r["model"]) for r in score_rows(table, runs, REPORTED) if r["model"]]
    assert ours == [("synthetic", "bicubic"), ("synthetic", "single"), ("real", "single"),
                    ("real", "bicubic")]  # fmt: skip
