"""BurstSR real-track loader on small files written in the official format."""

import pickle
import sys
import types

import cv2
import numpy as np
import pytest

from repro.burstsr import burstsr_data
from repro.core import ReproError


class _Ratio:  # as old exifread.utils.Ratio: num/den attributes
    def __init__(self, num, den):
        self.num, self.den = num, den


class _IfdTag:  # as exifread.classes.IfdTag: attributes, values a list
    def __init__(self, values):
        self.printable, self.tag, self.field_type, self.values = str(values), 0, 5, values


@pytest.fixture
def fake_exifread(monkeypatch):
    """Modules named as exifread's, so the pickles refer to the official class paths."""
    pkg, classes, utils = (types.ModuleType(n) for n in ("exifread", "c", "u"))
    classes.__name__, utils.__name__ = "exifread.classes", "exifread.utils"
    _IfdTag.__module__, _IfdTag.__qualname__ = "exifread.classes", "IfdTag"
    _Ratio.__module__, _Ratio.__qualname__ = "exifread.utils", "Ratio"
    classes.IfdTag, utils.Ratio = _IfdTag, _Ratio
    for name, mod in (("exifread", pkg), ("exifread.classes", classes), ("exifread.utils", utils)):
        monkeypatch.setitem(sys.modules, name, mod)
    return monkeypatch


def _write(path, meta, image):
    path.mkdir(parents=True)
    assert cv2.imwrite(str(path / "im_raw.png"), image)
    with open(path / "meta_info.pkl", "wb") as fh:
        pickle.dump(meta, fh, protocol=pickle.HIGHEST_PROTOCOL)


def _make(root, rng, n=3, h=5, w=6, drop=None):
    frames = [rng.integers(60, 1023, (h, w, 4)).astype(np.uint16) for _ in range(n)]
    for i, f in enumerate(frames):
        exif = {
            "Image ExposureTime": _IfdTag([_Ratio(1, 50)]),
            "Image FNumber": _IfdTag([_Ratio(17, 10)]),
            "Image ISOSpeedRatings": _IfdTag([200]),
        }
        meta = {
            "black_level": [64, 64, 64, 64],
            "cam_wb": [2.0, 1.0, 1.0, 1.5],
            "daylight_wb": [2.0, 1.0, 1.0, 1.6],
            "color_matrix": np.eye(3),
            "exif_data": exif,
        }
        _write(root / f"samsung_{i:02d}", meta, f)
    gt = rng.integers(2048, 16383, (8 * h, 8 * w, 3)).astype(np.uint16)
    canon_exif = {
        "EXIF ExposureTime": _IfdTag([_Ratio(1, 10)]),
        "EXIF FNumber": _IfdTag([_Ratio(8, 1)]),
        "EXIF ISOSpeedRatings": _IfdTag([100]),
    }
    canon_meta = {
        "black_level": [2048, 2049, 2050, 2051],
        "cam_wb": [2.1, 1.0, 1.0, 1.4],
        "daylight_wb": [2.0, 1.0, 1.0, 1.5],
        "rgb_xyz_matrix": np.eye(3),
        "exif_data": canon_exif,
        "crop_info": None,
    }
    canon_meta.pop(drop, None)
    _write(root / "canon", canon_meta, gt)
    return frames, gt


def test_loader_reads_the_official_layout(tmp_path, fake_exifread):
    rng = np.random.default_rng(0)
    frames, gt = _make(tmp_path / "val" / "0001_0", rng)
    (tmp_path / "val" / "0000_1").mkdir()
    for name in ("exifread.utils", "exifread.classes", "exifread"):  # the loader needs none
        fake_exifread.delitem(sys.modules, name)
    bursts = burstsr_data.list_bursts(tmp_path, "val")
    assert [b.name for b in bursts] == ["0000_1", "0001_0"]
    b = burstsr_data.load_burst(bursts[1], burst_size=3)
    expect = np.stack([(f.transpose(2, 0, 1) - 64.0) / 1023.0 for f in frames])
    np.testing.assert_allclose(b.burst.numpy(), expect, rtol=1e-6)
    # hand-worked: (1/50 * 200 / 1.7^2) / (1/10 * 100 / 8^2)
    scale = (0.02 * 200 / 2.89) / (0.1 * 100 / 64)
    assert b.exposure_scale == pytest.approx(scale)
    black = np.array([2048.0, 2049.0, 2051.0])[:, None, None]
    np.testing.assert_allclose(
        b.gt.numpy(), (gt.transpose(2, 0, 1) - black) / 16383.0 * scale, rtol=1e-6
    )
    assert b.burst.shape == (3, 4, 5, 6) and b.gt.shape == (3, 40, 48)
    assert b.meta["canon_black_level"] == [2048.0, 2049.0, 2051.0]


def test_loader_rejects_foreign_pickles_and_missing_keys(tmp_path, fake_exifread):
    rng = np.random.default_rng(1)
    _make(tmp_path / "b", rng, n=1, drop="black_level")
    with open(tmp_path / "evil.pkl", "wb") as fh:
        pickle.dump({"x": print}, fh)
    with pytest.raises(ReproError, match="builtins.print"):
        burstsr_data.load_meta(tmp_path / "evil.pkl")
    with pytest.raises(ReproError, match="canon/meta_info.pkl: missing key 'black_level'"):
        burstsr_data.load_burst(tmp_path / "b", burst_size=1)
    with pytest.raises(ReproError, match="burstsr_root"):
        burstsr_data.list_bursts(tmp_path, "train")
