"""The fake BurstSR val bursts and PWC-Net file (``repro.burstsr.fake``) read back through the
package's own loaders, with no stand-in ``exifread`` module anywhere."""

import json
import pickletools
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest
import torch

from repro.burstsr import burstsr_data, cli, fake, plan, pwcnet


def _globals(path):
    return {a for op, a, _ in pickletools.genops(path.read_bytes()) if op.name == "GLOBAL"}


def test_fake_burst_is_read_by_the_real_loader(tmp_path):
    assert "exifread" not in sys.modules  # the pickles name exifread's classes; none is needed
    fake.write_burst(tmp_path / "val" / "0000_0", np.random.default_rng(0))
    (burst,) = burstsr_data.list_bursts(tmp_path, "val")
    for sub in ("samsung_00", "samsung_13", "canon"):
        names = _globals(burst / sub / "meta_info.pkl")
        assert {"exifread.classes IfdTag", "exifread.utils Ratio"} <= names
    assert "exifread" not in sys.modules
    real = burstsr_data.load_burst(burst)
    assert real.burst.shape == (14, 4, 16, 16) and real.gt.shape == (3, 128, 128)
    # hand-worked light-factor ratio: (1/50 * 200 / 1.7^2) / (1/100 * 100 / 8^2)
    assert real.exposure_scale == pytest.approx((0.02 * 200 / 2.89) / (0.01 * 100 / 64))
    assert real.meta["canon_black_level"] == [2048.0] * 3
    # black level removed and 10-bit scaling: the scene is in [0.1, 0.9] x 700 / 1023
    assert real.burst.min() > 0.06 and real.burst.max() < 0.63
    # exposure matching brings the ground truth back to the frames' scale: frame 0 is the
    # ground truth's centre view, averaged onto the packed grid
    gt_lr = torch.nn.functional.avg_pool2d(real.gt[None], 8)[0]
    frame0 = real.burst[0, [0, 1, 3]]
    assert (gt_lr - frame0).abs().mean() < 0.02


def test_pwcnet_file_has_the_port_layout_and_loads(tmp_path):
    path = fake.write_pwcnet(tmp_path / fake.PWCNET_FILE)
    assert path.read_bytes()[:2] == b"\x80\x02"  # a legacy (pre-zip) torch.save pickle
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert len(state) == 126 and next(iter(state)) == "moduleExtractor.moduleOne.0.weight"
    assert state["moduleRefiner.moduleMain.0.weight"].shape == (128, 565, 3, 3)
    net = pwcnet.load_pwcnet(path)
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_the_plugin_is_registered():
    (ep,) = [e for e in entry_points(group="repro.fake") if e.name == "burstsr"]
    assert ep.load() is fake.write_fakes


@pytest.mark.slow
def test_write_fakes_is_scored_on_the_real_track_with_pwcnet(tmp_path):
    overlay = fake.write_fakes(tmp_path / "burstsr")
    section = overlay["burst_sr"]
    root = section["data"]["burstsr_root"]
    assert root == str(tmp_path / "burstsr" / "burstsr")
    assert section["pwcnet_weights"] == str(tmp_path / "burstsr" / "network-default.pytorch")
    params = plan.real_params(
        {
            "burst_sr": {
                "models": {"bicubic": {"kind": "bicubic"}},
                "eval": {"boundary_ignore": 40, "quantize_bits": 14, "limit": None},
                "device": "cpu",
                "pwcnet_weights": section["pwcnet_weights"],
            }
        },
        "bicubic",
    )
    out = tmp_path / "bicubic.json"
    args = ["evaluate-real", "--params", json.dumps(params), "--root", root, "--out", str(out)]
    assert cli.main(args) == 0
    row = json.loads(out.read_text())
    assert row["bursts"] == 3 and row["flow"] == "pwcnet"
    assert row["burst_names"] == list(fake.BURSTS)
    assert all(np.isfinite(row["psnr_per_burst"])) and 0 < row["ssim"] <= 1
