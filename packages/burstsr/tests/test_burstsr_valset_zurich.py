"""Stored validation bursts and the Zurich RAW-to-RGB loader on files in the official formats."""

import json

import cv2
import numpy as np
import pytest
import torch

from repro.burstsr import sources, synth, valset
from repro.burstsr.params import SourceConfig
from repro.core import ReproError


class _Source:
    names = ["synthetic"]

    def crops(self, n, size, gen, flip=True):
        return torch.rand(n, 3, size, size, generator=gen)


def test_stored_bursts_round_trip_with_14_bit_pngs(tmp_path):
    cfg = synth.BurstConfig(crop=32)
    meta = valset.make_val(_Source(), cfg, 3, 7, tmp_path, chunk=2)
    assert meta["count"] == 3 and json.loads((tmp_path / "meta.json").read_text())["seed"] == 7
    raw = cv2.imread(str(tmp_path / "bursts" / "0001" / "im_raw_05.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.shape == (4, 4, 4) and raw.max() <= 2**14
    val = valset.load_val(tmp_path)
    # regenerate with the same seed and compare: PNG holds floor(x * 2^14)
    gen = torch.Generator().manual_seed(7)
    first = synth.generate(_Source().crops(2, cfg.source_size, gen), cfg, gen)
    expect = torch.floor(first.burst[1, 5] * 2**14) / 2**14
    torch.testing.assert_close(val.burst[1, 5], expect)
    torch.testing.assert_close(val.gt[0], torch.floor(first.gt[0] * 2**14) / 2**14)
    torch.testing.assert_close(val.flow[1], first.flow[1])
    torch.testing.assert_close(val.cam.red_gain[:2], first.cam.red_gain)
    # OpenCV keeps the channel order: channel 0 of the file (as OpenCV reads it) is R
    assert raw[..., 0][0, 0] == int(np.floor(first.burst[1, 5, 0, 0, 0].item() * 2**14))


def test_missing_val_dir_is_one_line_error(tmp_path):
    with pytest.raises(ReproError, match="meta.json"):
        valset.load_val(tmp_path / "nothing")


def _zurich(tmp_path, n=3):
    for split in ("train", "test"):
        (tmp_path / split / "canon").mkdir(parents=True)
        (tmp_path / split / "huawei_raw").mkdir(parents=True)
        for i in range(n):
            img = np.zeros((448, 448, 3), np.uint8)
            img[..., 0] = 200  # red in RGB
            cv2.imwrite(str(tmp_path / split / "canon" / f"{i}.jpg"), img[..., ::-1])
            cv2.imwrite(
                str(tmp_path / split / "huawei_raw" / f"{i}.png"), np.zeros((224, 224), np.uint16)
            )


def test_zurich_loader_reads_rgb_and_crops(tmp_path):
    _zurich(tmp_path)
    src = sources.ZurichSource(tmp_path, "train")
    assert len(src) == 3
    img = src.image(0)
    assert img.shape == (3, 448, 448) and img.dtype == torch.uint8
    assert abs(img[0].float().mean().item() - 200) < 5
    assert img[2].float().mean() < 12  # RGB, not OpenCV's BGR
    crops = src.crops(2, 432, torch.Generator().manual_seed(0))
    assert crops.shape == (2, 3, 432, 432)
    with pytest.raises(ReproError, match="expected 46839"):
        sources.ZurichSource(tmp_path, "train", check_count=True)
    with pytest.raises(ReproError, match="canon folder not found"):
        sources.ZurichSource(tmp_path / "missing", "test")
    made = sources.make_source(SourceConfig("zurich", zurich_root=str(tmp_path)), "val")
    assert made.folder.parts[-2] == "test"
