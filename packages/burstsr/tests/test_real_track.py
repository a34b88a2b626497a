"""Real track (BurstSR val): evaluation on files in the official format, and the DAG wiring."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from repro.burstsr import aligned, cli, evaluate, metrics, models, plan, summary
from repro.burstsr.params import RealParams, SummaryParams
from repro.core import ReproError
from repro.core.params import parse

# The official-format writers of test_burstsr_data.py (loaded by path: importlib import mode).
_spec = importlib.util.spec_from_file_location(
    "_bsr_data_helpers", Path(__file__).with_name("test_burstsr_data.py")
)
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
fake_exifread = _helpers.fake_exifread  # the fixture, so the pickles name exifread's classes
_IfdTag, _Ratio, _write = _helpers._IfdTag, _helpers._Ratio, _helpers._write

REPO = Path(__file__).resolve().parents[3]
SAMSUNG_BLACK, CANON_BLACK = 64, [2048, 2049, 2050, 2051]
# hand-worked light-factor ratio: (1/50 * 200 / 1.7^2) / (1/10 * 100 / 8^2)
SCALE = (0.02 * 200 / 2.89) / (0.1 * 100 / 64)


def write_burst(burst_dir, frames, gt):
    """One burst: 14 ``(h, w, 4)`` uint16 frames and a ``(8h, 8w, 3)`` uint16 DSLR image."""
    for i, f in enumerate(frames):
        exif = {
            "Image ExposureTime": _IfdTag([_Ratio(1, 50)]),
            "Image FNumber": _IfdTag([_Ratio(17, 10)]),
            "Image ISOSpeedRatings": _IfdTag([200]),
        }
        meta = {
            "black_level": [SAMSUNG_BLACK] * 4,
            "cam_wb": [2.0, 1.0, 1.0, 1.5],
            "daylight_wb": [2.0, 1.0, 1.0, 1.6],
            "color_matrix": np.eye(3),
            "exif_data": exif,
        }
        _write(burst_dir / f"samsung_{i:02d}", meta, f)
    canon_meta = {
        "black_level": CANON_BLACK,
        "cam_wb": [2.1, 1.0, 1.0, 1.4],
        "daylight_wb": [2.0, 1.0, 1.0, 1.5],
        "rgb_xyz_matrix": np.eye(3),
        "exif_data": {
            "EXIF ExposureTime": _IfdTag([_Ratio(1, 10)]),
            "EXIF FNumber": _IfdTag([_Ratio(8, 1)]),
            "EXIF ISOSpeedRatings": _IfdTag([100]),
        },
        "crop_info": None,
    }
    _write(burst_dir / "canon", canon_meta, gt)


def constant_burst(burst_dir, h=20):
    """Flat frames (R 500, G 300, B 200 above black) and a flat DSLR image of other colours."""
    frame = np.empty((h, h, 4), np.uint16)
    frame[:] = np.array([500, 300, 300, 200]) + SAMSUNG_BLACK
    gt = np.empty((8 * h, 8 * h, 3), np.uint16)
    gt[:] = np.array([3000, 5000, 2000]) + np.array(CANON_BLACK)[[0, 1, 3]]
    write_burst(burst_dir, [frame] * 14, gt)


def smooth_burst(burst_dir, h=20, seed=0):
    """Smooth random frames; the DSLR image is the bicubic prediction itself (PNG-rounded)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 4, 5, 5, generator=g)
    img = F.interpolate(coarse, size=(h, h), mode="bicubic", align_corners=False)[0]
    raw = (img.clamp(0.05, 1.0) * 600 + 100).round()
    raw[2] = raw[1]  # Gb = Gr
    frames = [raw.permute(1, 2, 0).numpy().astype(np.uint16)] * 14
    burst = ((raw - SAMSUNG_BLACK) / 1023.0)[None, None].float()
    pred = models.demosaic_upsample(burst.expand(1, 14, -1, -1, -1), "bicubic")[0]
    black = np.array(CANON_BLACK)[[0, 1, 3]][:, None, None]
    gt = (pred.double().numpy() / SCALE * 16383.0).round() + black
    write_burst(burst_dir, frames, gt.transpose(1, 2, 0).astype(np.uint16))


def params(bits=None):
    return {
        "device": "cpu",
        "data": {"burstsr_root": None},
        "models": {
            "bicubic": {"kind": "bicubic", "reported_as": "Bicubic"},
            "gtflow": {"kind": "burst", "align": "gt"},
        },
        "eval": {"boundary_ignore": 40, "quantize_bits": bits, "limit": None, "example_index": 0},
    }


REPORTED = [
    {"method": "Bicubic", "track": "synthetic", "psnr": 33.0, "source": "s"},
    {"method": "Bicubic", "track": "real", "psnr": 42.55, "source": "r"},
]


def test_flat_burst_is_scored_at_the_cap(tmp_path, fake_exifread):
    # Hand-worked: bicubic of a flat frame is flat (R, Gr, B); the 3x3 colour map takes it
    # exactly onto the flat ground truth, every pixel is valid, so the masked MSE is ~0
    # (PSNR capped at 100 dB) and the SSIM of two equal images is 1.
    constant_burst(tmp_path / "bsr" / "val" / "0000")
    out = tmp_path / "bicubic.json"
    p = params()
    job = json.dumps(plan.real_params({"burst_sr": p}, "bicubic"))
    assert cli.main(["evaluate-real", "--params", job]
                    + ["--root", str(tmp_path / "bsr"), "--out", str(out)]) == 0  # fmt: skip
    row = json.loads(out.read_text())
    assert row["track"] == "real" and row["bursts"] == 1 and row["frames"] == 14
    assert row["psnr_per_burst"] == [100.0]
    assert row["psnr"] == 100.0
    assert row["ssim"] == pytest.approx(1.0, abs=1e-9)
    assert row["burst_names"] == ["0000"] and row["flow"] == "dis_flow"


def test_prediction_as_ground_truth_matches_an_independent_computation(tmp_path, fake_exifread):
    root = tmp_path / "bsr"
    smooth_burst(root / "val" / "0000", seed=0)
    smooth_burst(root / "val" / "0001", seed=1)
    p = params(bits=14)
    row = evaluate.evaluate_real(
        parse(RealParams, plan.real_params({"burst_sr": p}, "bicubic")),
        str(root),
        str(tmp_path / "r.json"),
    )
    assert row["bursts"] == 2 and row["burst_names"] == ["0000", "0001"]
    expect = []
    for name in ("0000", "0001"):  # read the PNGs directly, not through the loader
        d = root / "val" / name
        frames = [
            cv2.imread(str(d / f"samsung_{i:02d}" / "im_raw.png"), cv2.IMREAD_UNCHANGED)
            for i in range(14)
        ]
        burst = torch.from_numpy((np.stack(frames).astype(np.float64) - 64) / 1023.0)
        burst = burst.permute(0, 3, 1, 2).float()
        png = cv2.imread(str(d / "canon" / "im_raw.png"), cv2.IMREAD_UNCHANGED).astype(float)
        gt = (png - np.array([2048.0, 2049.0, 2051.0])) / 16383.0 * SCALE
        gt = torch.from_numpy(gt.transpose(2, 0, 1)).float()
        pred = metrics.quantize(models.demosaic_upsample(burst[None], "bicubic"), 14)[0]
        expect.append(aligned.aligned_psnr_one(pred, gt, burst[0]))
    np.testing.assert_allclose(row["psnr_per_burst"], expect, rtol=1e-9)
    assert row["psnr"] == pytest.approx(np.mean(expect))
    # Not near the cap although the ground truth is the prediction (up to 14-bit rounding):
    # the colour map is fitted from frame 0 to the 1/8-downsampled ground truth, which on
    # these tiny smooth crops disagree by sub-pixel sampling offsets (measured ~39-40 dB).
    assert all(30 < v < 60 for v in expect), expect
    assert 0.99 < row["ssim"] <= 1.0


def test_ground_truth_flow_models_are_refused_and_summary_rows(tmp_path):
    from repro.core.scorecard import score_rows

    with pytest.raises(ReproError, match="ground-truth flow"):
        job = parse(RealParams, plan.real_params({"burst_sr": params()}, "gtflow"))
        evaluate.evaluate_real(job, str(tmp_path), str(tmp_path / "x.json"))
    real = {"model": "bicubic", "psnr": 45.0, "ssim": 0.97, "lpips": None, "bursts": 882,
            "seconds_per_burst": 0.1, "lpips_note": "not computed on the real track"}  # fmt: skip
    syn = {**real, "psnr": 30.0, "lpips_note": None, "bursts": 300}
    with_real = {**params(), "data": {"burstsr_root": "R"}}
    summ = parse(SummaryParams, plan.summary_params({"burst_sr": with_real}, "quick"))
    rows = score_rows(*summary.scorecard(summ, [syn], [real]), REPORTED)
    ours = [r for r in rows if r["model"] == "bicubic"]
    assert [(r["track"], r["psnr_ours"], r["psnr_reported"], r["test_n"]) for r in ours] == [
        ("synthetic", 30.0, 33.0, 300),
        ("real", 45.0, 42.55, 882),
    ]
    assert all(r["model"] for r in rows)  # both reported rows are matched by our cells
    # real track not run: its row stays, empty, with the reason
    summ = parse(SummaryParams, plan.summary_params({"burst_sr": params()}, "quick"))
    rows = score_rows(*summary.scorecard(summ, [syn], []), REPORTED)
    assert [
        (r["model"], r["psnr_ours"], r["psnr_reported"], r["planned"], r["note"])
        for r in rows
        if r["track"] == "real"
    ] == [("bicubic", None, 42.55, False, plan.REAL_NOT_PLANNED)]


def _dry_run(tmp_path, root):
    text = (REPO / "config" / "paper.yaml").read_text(encoding="utf-8")
    assert text.count("burstsr_root: null") == 1
    cfg = tmp_path / f"paper_{'real' if root else 'none'}.yaml"
    cfg.write_text(text.replace("burstsr_root: null", f"burstsr_root: {root or 'null'}"))
    cmd = [sys.executable, "-m", "snakemake", "-n", "-s", str(REPO / "Snakefile")]
    cmd += ["--directory", str(tmp_path), "results/paper/burst-sr/summary.csv"]
    cmd += ["--configfile", str(cfg)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.mark.slow
def test_dry_run_plans_real_track_jobs_only_with_a_root(tmp_path, fake_exifread):
    constant_burst(tmp_path / "bsr" / "val" / "0000")
    out = _dry_run(tmp_path, str(tmp_path / "bsr"))
    planned = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
               if line.startswith("burst_sr_")}  # fmt: skip
    seeds = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())["burst_sr"]["seeds"]
    # bicubic, bilinear once; single, dbsr_flownet once per seed
    assert planned["burst_sr_evaluate_real"] == 2 + 2 * len(seeds)
    for model in ("bicubic", "bilinear"):
        assert f"results/paper/burst-sr/real/{model}.json" in out
    for model in ("single", "dbsr_flownet"):
        for seed in seeds:
            assert f"results/paper/burst-sr/real/{model}/seed{seed}.json" in out
    assert "real/dbsr_gtflow" not in out
    assert "burst_sr_evaluate_real" not in _dry_run(tmp_path, None)


def test_aligned_psnr_uses_pwcnet_when_its_weights_are_set(tmp_path, fake_exifread):
    from repro.burstsr.evaluate import aligned_flow
    from repro.burstsr.pwcnet import PWCNet

    def flow_of(section, choice="auto"):
        section = {**section, "eval": {**section["eval"], "aligned_flow": choice}}
        return aligned_flow(parse(RealParams, plan.real_params({"burst_sr": section}, "bicubic")))[
            1
        ]

    p = params()
    assert flow_of(p) == "dis_flow"  # no weights: OpenCV DIS
    with pytest.raises(ReproError, match="aligned_flow: pwcnet needs burst_sr.pwcnet_weights"):
        flow_of(p, "pwcnet")
    torch.manual_seed(0)
    torch.save(PWCNet().state_dict(), tmp_path / "pwc.pth")
    p["pwcnet_weights"] = str(tmp_path / "pwc.pth")
    assert flow_of(p) == "pwcnet"
    assert flow_of(p, "dis") == "dis_flow"
    constant_burst(tmp_path / "bsr" / "val" / "0000")
    out = tmp_path / "bicubic.json"
    job = json.dumps(plan.real_params({"burst_sr": p}, "bicubic"))
    assert cli.main(["evaluate-real", "--params", job]
                    + ["--root", str(tmp_path / "bsr"), "--out", str(out)]) == 0  # fmt: skip
    row = json.loads(out.read_text())
    assert row["flow"] == "pwcnet" and np.isfinite(row["psnr"])
