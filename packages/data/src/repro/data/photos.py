"""scikit-image's bundled colour photographs: the quick run's burst-SR source images.

Written as ``<name>.png`` (8-bit sRGB) plus ``meta.json`` with shapes and SHA-256 sums.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from repro.core import ReproError
from repro.core.atomic import atomic_path, sha256_file, write_json
from repro.data.dataset import Dataset

#: Colour photographs that ship inside the scikit-image wheel (no download needed).
BUNDLED = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina")


def load_photo(name: str) -> np.ndarray:
    """One bundled photograph as ``uint8`` RGB ``(H, W, 3)``."""
    import skimage.data

    if name not in BUNDLED:
        raise ReproError(f"photos: unknown photograph '{name}' (bundled: {', '.join(BUNDLED)})")
    image = np.asarray(getattr(skimage.data, name)())
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def prepare_photos(
    out_dir: str | os.PathLike[str], names: Sequence[str] = BUNDLED
) -> dict[str, Any]:
    """Write each photograph as PNG and a ``meta.json`` describing them."""
    from PIL import Image

    out = Path(out_dir)
    files, shapes = {}, {}
    for name in names:
        image = load_photo(name)
        with atomic_path(out / f"{name}.png") as tmp:
            Image.fromarray(image).save(tmp, format="PNG")
        files[f"{name}.png"] = sha256_file(out / f"{name}.png")
        shapes[name] = list(image.shape)
    meta = {
        "name": "photos",
        "images": list(names),
        "shapes": shapes,
        "files": files,
        "source": {"origin": "skimage.data"},
        "format_version": 1,
    }
    write_json(out / "meta.json", meta)
    return meta


def load_photos(data_dir: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read prepared photographs back as ``{name: uint8 (H, W, 3)}``."""
    import json

    from PIL import Image

    data_dir = Path(data_dir)
    meta = json.loads((data_dir / "meta.json").read_text(encoding="utf-8"))
    return {n: np.asarray(Image.open(data_dir / f"{n}.png").convert("RGB")) for n in meta["images"]}


@dataclass
class PhotosParams:
    """``data.photos``: which bundled photographs to write."""

    names: list[str] = field(default_factory=lambda: list(BUNDLED))


class Photos(Dataset):
    """scikit-image's bundled photographs (PNG files, not arrays)."""

    name = "photos"
    params = PhotosParams
    schema = "photos"
    rule = "prepare_photos"

    def prepare(
        self, params: PhotosParams, out: Path, archive: Path | None, imbalance: float | None
    ) -> dict[str, Any]:
        return prepare_photos(out, params.names)


DATASETS = (Photos(),)
