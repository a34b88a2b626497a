"""BurstSR (NTIRE 2021 track 2, real) bursts in the official on-disk format.

Layout of ``<root>/<split>/<burst>/`` (split ``train`` or ``val``), as the toolkit's loader::

    samsung_00/im_raw.png ... samsung_13/im_raw.png   4-channel uint16 RGGB RAW (10-bit data)
    samsung_XX/meta_info.pkl                          black_level (4), cam_wb (4), daylight_wb,
                                                      color_matrix, exif_data, [crop_info, ...]
    canon/im_raw.png                                  3-channel uint16 DSLR image (14-bit data)
    canon/meta_info.pkl                               black_level (4 -> 0,1,3), cam_wb,
                                                      daylight_wb, rgb_xyz_matrix, exif_data, ...

PNGs are read with OpenCV and used in OpenCV's channel order, as the toolkit does. Frames are
black-level subtracted and divided by 1023; the ground truth is black-level subtracted, divided
by 16383 and scaled by the ratio of the light factors exposure * ISO / F^2 (phone / DSLR),
read from the EXIF tags ``Image ExposureTime``/``Image FNumber``/``Image ISOSpeedRatings``
(Samsung) and ``EXIF ...`` (Canon). No white balance; no clipping.

The pickles hold ``exifread`` objects; they are read with a restricted unpickler that maps
``exifread.classes.IfdTag`` and ``exifread.utils.Ratio`` to small stand-ins, so ``exifread`` is
not needed and no other code can run from a pickle.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from repro.core import ReproError

SAMSUNG_NORM = 1023.0
CANON_NORM = 16383.0
SAMSUNG_EXIF = ("Image ExposureTime", "Image FNumber", "Image ISOSpeedRatings")
CANON_EXIF = ("EXIF ExposureTime", "EXIF FNumber", "EXIF ISOSpeedRatings")


class ExifTag:
    """Stand-in for ``exifread.classes.IfdTag`` (attributes restored from the pickle)."""

    values: list[Any]


class ExifRatio:
    """Stand-in for ``exifread.utils.Ratio`` (old ``num``/``den`` or ``Fraction`` pickles)."""

    def __init__(self, num: Any = 0, den: Any = 1) -> None:
        self.value = Fraction(num) / Fraction(den)

    def __setstate__(self, state: dict[str, Any]) -> None:
        num = state.get("num", state.get("_numerator", 0))
        den = state.get("den", state.get("_denominator", 1))
        self.value = Fraction(num) / Fraction(den)

    def decimal(self) -> float:
        return float(self.value)


_ALLOWED = {
    ("exifread.classes", "IfdTag"): ExifTag,
    ("exifread.utils", "Ratio"): ExifRatio,
    ("fractions", "Fraction"): Fraction,
    ("collections", "OrderedDict"): __import__("collections").OrderedDict,
    ("copyreg", "_reconstructor"): __import__("copyreg")._reconstructor,
    ("builtins", "object"): object,
}
_NUMPY = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}


class _Unpickler(pickle.Unpickler):
    def __init__(self, fh: Any, path: Path) -> None:
        super().__init__(fh)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module.split(".")[0] == "numpy" and name in _NUMPY:
            return super().find_class(module, name)
        raise ReproError(f"{self.path}: pickle refers to {module}.{name}, which is not allowed")


def load_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A ``meta_info.pkl`` as a dict (restricted unpickler, see the module docstring)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            meta = _Unpickler(fh, path).load()
    except OSError as exc:
        raise ReproError(f"{path}: cannot read ({exc.strerror})") from exc
    except (pickle.UnpicklingError, EOFError) as exc:
        raise ReproError(f"{path}: not a valid pickle ({exc})") from exc
    if not isinstance(meta, dict):
        raise ReproError(f"{path}: expected a dict, got {type(meta).__name__}")
    return meta


def _key(meta: dict[str, Any], key: str, path: Path) -> Any:
    if key not in meta:
        raise ReproError(f"{path}: missing key '{key}'")
    return meta[key]


def exif_number(exif: dict[str, Any], key: str, path: Path) -> float:
    """First value of EXIF tag ``key`` as a float (``Ratio.decimal()`` or a plain number)."""
    if key not in exif:
        raise ReproError(f"{path}: exif_data has no tag '{key}'")
    value = exif[key].values[0] if hasattr(exif[key], "values") else exif[key]
    return float(value.decimal()) if hasattr(value, "decimal") else float(value)


def light_factor(exif: dict[str, Any], keys: tuple[str, str, str], path: Path) -> float:
    """exposure time * ISO / F-number^2 from the EXIF tags ``keys`` (time, F, ISO)."""
    t, f, iso = (exif_number(exif, k, path) for k in keys)
    return t * iso / f**2


def read_png(path: Path, channels: int) -> np.ndarray:
    """A uint16 PNG as ``(C, H, W)`` float64, OpenCV channel order (no swap)."""
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise ReproError(f"{path}: cannot read PNG")
    if data.dtype != np.uint16 or data.ndim != 3 or data.shape[2] != channels:
        raise ReproError(
            f"{path}: expected {channels}-channel uint16 PNG, got {data.dtype} {data.shape}"
        )
    return data.transpose(2, 0, 1).astype(np.float64)


@dataclass
class RealBurst:
    """One BurstSR burst, normalised as the toolkit's loader does."""

    name: str
    burst: torch.Tensor  # (N, 4, h, w) packed RAW, black level subtracted, / 1023
    gt: torch.Tensor  # (3, 8h, 8w) DSLR image, black level subtracted, / 16383, exposure-matched
    exposure_scale: float  # light factor phone / DSLR applied to the ground truth
    meta: dict[str, Any]  # black_level and cam_wb of frame 0 and of the DSLR image


def load_burst(burst_dir: str | os.PathLike[str], burst_size: int = 14) -> RealBurst:
    """Frames ``samsung_00`` .. ``samsung_{burst_size-1}`` and the ``canon`` ground truth."""
    root = Path(burst_dir)
    frames, first_meta = [], {}
    for i in range(burst_size):
        sub = root / f"samsung_{i:02d}"
        meta = load_meta(sub / "meta_info.pkl")
        pkl = sub / "meta_info.pkl"
        black = np.asarray(_key(meta, "black_level", pkl), dtype=np.float64).reshape(-1)
        if black.size != 4:
            raise ReproError(f"{pkl}: black_level has {black.size} values, expected 4")
        raw = read_png(sub / "im_raw.png", 4)
        frames.append((raw - black[:, None, None]) / SAMSUNG_NORM)
        if i == 0:
            first_meta = meta
    pkl0 = root / "samsung_00" / "meta_info.pkl"
    canon_pkl = root / "canon" / "meta_info.pkl"
    canon_meta = load_meta(canon_pkl)
    black_c = np.asarray(_key(canon_meta, "black_level", canon_pkl), dtype=np.float64).reshape(-1)
    if black_c.size == 4:
        black_c = black_c[[0, 1, 3]]
    if black_c.size != 3:
        raise ReproError(f"{canon_pkl}: black_level has {black_c.size} values, expected 3 or 4")
    gt = (read_png(root / "canon" / "im_raw.png", 3) - black_c[:, None, None]) / CANON_NORM
    scale = light_factor(_key(first_meta, "exif_data", pkl0), SAMSUNG_EXIF, pkl0) / light_factor(
        _key(canon_meta, "exif_data", canon_pkl), CANON_EXIF, canon_pkl
    )
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise ReproError(f"{root}: frames differ in size {sorted(shapes)}")
    meta_out = {
        "black_level": black.tolist(),
        "cam_wb": np.asarray(_key(first_meta, "cam_wb", pkl0), dtype=float).tolist(),
        "canon_black_level": black_c.tolist(),
        "canon_cam_wb": np.asarray(_key(canon_meta, "cam_wb", canon_pkl), dtype=float).tolist(),
    }
    return RealBurst(
        root.name,
        torch.from_numpy(np.stack(frames)).float(),
        torch.from_numpy(gt * scale).float(),
        scale,
        meta_out,
    )


def list_bursts(root: str | os.PathLike[str], split: str = "val") -> list[Path]:
    """Sorted burst folders of ``<root>/<split>`` (the toolkit's order)."""
    base = Path(root) / split
    if not base.is_dir():
        raise ReproError(f"burst_sr.data.burstsr_root: {base} is not a folder")
    bursts = sorted(p for p in base.iterdir() if p.is_dir())
    if not bursts:
        raise ReproError(f"burst_sr.data.burstsr_root: no bursts in {base}")
    return bursts
