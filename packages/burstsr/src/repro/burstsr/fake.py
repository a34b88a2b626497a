"""Fake user files for a smoke run of the paper config (``repro-data fake``).

- ``burstsr/val/<burst>/``: BurstSR val bursts in the official layout (see
  :mod:`repro.burstsr.burstsr_data`): 14 ``samsung_XX/`` frames and ``canon/``, each an
  ``im_raw.png`` and a ``meta_info.pkl`` whose ``exif_data`` holds ``exifread`` objects, pickled
  under their official class paths ``exifread.classes.IfdTag`` and ``exifread.utils.Ratio``
  (exifread 2.x attributes: ``printable, tag, field_type, values, field_offset,
  field_length`` and ``num, den``), so the real loader reads them as it reads the real set.
- ``network-default.pytorch``: PWC-Net weights in the layout of sniklaus/pytorch-pwc's file
  (the port's ``moduleX`` key names, legacy non-zip ``torch.save`` format as that 2018 file),
  random values.

The bursts are the smallest the real-track scoring takes comfortably: 16 x 16 packed frames,
a 128 x 128 ground truth (its 40 px scoring border leaves 48 x 48, and the colour fit a 6 x 6
low-resolution window). The scene is a smooth random image, seen by each frame with a small
shift, mosaicked and scaled to the phone's 10-bit and the DSLR's 14-bit range over their black
levels.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from repro.core.atomic import atomic_path

BURSTS = ("0000_0", "0000_1", "0001_0")
FRAMES = 14
SIZE = 16  # packed phone frames (h = w); the DSLR image is 8x larger
SAMSUNG_BLACK = [64, 64, 64, 64]
CANON_BLACK = [2048, 2048, 2048, 2048]
PWCNET_FILE = "network-default.pytorch"


class IfdTag:
    """Written as ``exifread.classes.IfdTag`` (see :func:`exif_pickle`)."""

    def __init__(self, values: list[Any], tag: int, field_type: int) -> None:
        self.printable = ", ".join(str(v) for v in values)
        self.tag, self.field_type, self.values = tag, field_type, values
        self.field_offset, self.field_length = 0, len(values)


class Ratio:
    """Written as ``exifread.utils.Ratio`` (exifread 2.x: ``num``/``den``)."""

    def __init__(self, num: int, den: int) -> None:
        self.num, self.den = num, den

    def __repr__(self) -> str:
        return f"{self.num}/{self.den}"


_OFFICIAL = {
    IfdTag: ("exifread.classes", "IfdTag"),
    Ratio: ("exifread.utils", "Ratio"),
}


def exif_pickle(obj: Any) -> bytes:
    """``obj`` pickled (protocol 3) with :class:`IfdTag` / :class:`Ratio` under exifread's class
    paths: protocol 3 names a class by one ``GLOBAL`` opcode (``c<module>\\n<name>\\n``), which is
    rewritten from this module's path to exifread's."""
    data = pickle.dumps(obj, protocol=3)
    for cls, (module, name) in _OFFICIAL.items():
        ours = f"c{cls.__module__}\n{cls.__qualname__}\n".encode()
        data = data.replace(ours, f"c{module}\n{name}\n".encode())
    return data


def _exif(prefix: str, exposure: tuple[int, int], fnumber: tuple[int, int], iso: int) -> dict:
    return {
        f"{prefix} ExposureTime": IfdTag([Ratio(*exposure)], 0x829A, 5),
        f"{prefix} FNumber": IfdTag([Ratio(*fnumber)], 0x829D, 5),
        f"{prefix} ISOSpeedRatings": IfdTag([iso], 0x8827, 3),
    }


def _write(folder: Path, image: np.ndarray, meta: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _, png = cv2.imencode(".png", image)
    with atomic_path(folder / "im_raw.png") as tmp:
        tmp.write_bytes(png.tobytes())
    with atomic_path(folder / "meta_info.pkl") as tmp:
        tmp.write_bytes(exif_pickle(meta))


def _scene(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random RGB image in [0.1, 0.9], ``(size, size, 3)`` float."""
    coarse = rng.uniform(0.1, 0.9, (6, 6, 3)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC).clip(0.1, 0.9)


def write_burst(folder: str | Path, rng: np.random.Generator, size: int = SIZE) -> None:
    """One burst of ``FRAMES`` frames in the official layout (see the module docstring)."""
    folder = Path(folder)
    hr = 8 * size
    scene = _scene(rng, hr + 16)
    gt = scene[8 : 8 + hr, 8 : 8 + hr]
    for i in range(FRAMES):
        dy, dx = (0, 0) if i == 0 else rng.integers(-4, 5, 2)
        view = scene[8 + dy : 8 + dy + hr, 8 + dx : 8 + dx + hr]
        rgb = cv2.resize(view, (2 * size, 2 * size), interpolation=cv2.INTER_AREA)
        packed = np.stack(
            [rgb[0::2, 0::2, 0], rgb[0::2, 1::2, 1], rgb[1::2, 0::2, 1], rgb[1::2, 1::2, 2]], -1
        )
        noisy = packed * 700 + rng.normal(0, 2, packed.shape) + SAMSUNG_BLACK[0]
        meta = {
            "black_level": list(SAMSUNG_BLACK),
            "cam_wb": [1.9, 1.0, 1.0, 1.6],
            "daylight_wb": [2.0, 1.0, 1.0, 1.5],
            "color_matrix": np.array(
                [[1.7, -0.6, -0.1, 0.0], [-0.2, 1.5, -0.3, 0.0], [0.0, -0.6, 1.6, 0.0]],
                np.float32,
            ),
            "exif_data": _exif("Image", (1, 50), (17, 10), 200),
        }
        _write(folder / f"samsung_{i:02d}", noisy.round().clip(0, 1023).astype(np.uint16), meta)
    canon = {
        "black_level": list(CANON_BLACK),
        "cam_wb": [2.1, 1.0, 1.0, 1.4],
        "daylight_wb": [2.0, 1.0, 1.0, 1.5],
        "rgb_xyz_matrix": np.array(
            [[0.66, -0.13, -0.08], [-0.49, 1.27, 0.24], [-0.1, 0.19, 0.63], [0.0, 0.0, 0.0]],
            np.float32,
        ),
        "exif_data": _exif("EXIF", (1, 100), (8, 1), 100),
    }
    # The light-factor ratio phone / DSLR is (1/50 * 200 / 1.7^2) / (1/100 * 100 / 8^2) = 88.6:
    # the ground truth is stored that much darker, so that exposure matching restores it.
    scale = (0.02 * 200 / 1.7**2) / (0.01 * 100 / 64)
    dslr = gt * 700 / 1023 * 16383 / scale + CANON_BLACK[0]
    _write(folder / "canon", dslr.round().clip(0, 16383).astype(np.uint16), canon)


def write_pwcnet(path: str | Path, seed: int = 0) -> Path:
    """Random PWC-Net weights in the port's file layout (``moduleExtractor.moduleOne.0.weight``
    ...), saved in the legacy (non-zip) ``torch.save`` format of the 2018 file."""
    from repro.burstsr.pwcnet import PWCNet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state = PWCNet().state_dict()
    buf = io.BytesIO()
    torch.save(state, buf, _use_new_zipfile_serialization=False)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())
    return Path(path)


def write_fakes(out: Path) -> dict[str, Any]:
    """BurstSR val bursts and PWC-Net weights under ``out``; the config overlay naming them."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    root = out / "burstsr"
    for name in BURSTS:
        write_burst(root / "val" / name, rng)
    pwc = write_pwcnet(out / PWCNET_FILE)
    return {
        "burst_sr": {
            "data": {"burstsr_root": str(root.resolve())},
            "pwcnet_weights": str(pwc.resolve()),
        }
    }
