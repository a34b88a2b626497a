"""Feature maps of a frozen backbone, computed once per (image, view) and then read back.

While the CNN is frozen (MHSAN's first two stages, and every quick run) its output for a given
view of an image never changes, so the first request computes it and every later one reads it:
those stages then train at the speed of the attention and text parts. The cache is keyed by a
hash of the backbone's weights and buffers and of a spec of the views (the training code's
:class:`repro.vse.train.PairSource` puts the preprocessing, a digest of the split's image paths
and, for random crops, the seed in it), so a cache made by other weights, other images or other
views is never read. The stage logic (:func:`repro.vse.train.apply_stage`)
says when the cache may be used at all: never once the CNN trains.

Storage: in memory (a tensor on the training device; the quick run) or on disk under
``root/<key>-<items>x<views>-<dtype>/`` (a NumPy memmap ``features.npy`` of shape (items,
views, C, h, w), a ``filled.npy`` mask and ``meta.json``), reused by later runs with the same
key. Runs sharing a folder at the same time write the same values; at worst one of them
computes a view the other already stored. ``float16``
storage halves the size (COCO train at 8x8x2048 per view: 30 GB instead of 59 GB) at the cost
of rounding the features; ``float32`` (default) gives the uncached results exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from repro.core import ReproError
from repro.core.atomic import atomic_path, write_json

DTYPES = {"float32": (torch.float32, np.float32), "float16": (torch.float16, np.float16)}


def cache_key(backbone: nn.Module, preprocess: dict) -> str:
    """Hex digest (16 chars) of the backbone's state (names, dtypes, shapes, bytes) and of the
    preprocessing spec."""
    h = hashlib.sha256()
    for name, t in backbone.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    h.update(json.dumps(preprocess, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


class FeatureCache:
    """Feature maps for ``items`` images x ``views`` views, filled on first request."""

    def __init__(
        self,
        key: str,
        items: int,
        views: int,
        root: str | Path | None = None,
        dtype: str = "float32",
        device: str | torch.device = "cpu",
    ) -> None:
        if dtype not in DTYPES:
            raise ReproError(f"cache dtype must be one of {', '.join(DTYPES)}, got '{dtype}'")
        self.key, self.items, self.views = key, items, views
        self.dtype = dtype
        self.device = torch.device(device)
        name = f"{key}-{items}x{views}-{dtype}"
        self.dir = Path(root) / name if root is not None else None
        self.store: Tensor | np.ndarray | None = None
        self.filled = torch.zeros(items, views, dtype=torch.bool)
        self.computed = 0  # feature maps computed (not read) by this object
        if self.dir is not None and (self.dir / "meta.json").is_file():
            self._open_existing()

    def _meta(self, shape: tuple[int, ...]) -> dict:
        return {
            "key": self.key,
            "items": self.items,
            "views": self.views,
            "shape": list(shape),
            "dtype": self.dtype,
        }

    def _open_existing(self) -> None:
        meta = json.loads((self.dir / "meta.json").read_text())
        if meta != self._meta(tuple(meta["shape"])):
            raise ReproError(f"{self.dir}: feature cache made for {meta}, not this run")
        self.store = np.load(self.dir / "features.npy", mmap_mode="r+")
        if (self.dir / "filled.npy").is_file():  # absent if stopped before the first write
            self.filled = torch.from_numpy(np.load(self.dir / "filled.npy"))

    def _allocate(self, shape: tuple[int, ...]) -> None:
        full = (self.items, self.views, *shape)
        tdtype, ndtype = DTYPES[self.dtype]
        if self.dir is None:
            self.store = torch.empty(full, dtype=tdtype, device=self.device)
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        # create beside, then link into place: link never replaces, so of two runs starting
        # together one creates the file and the other opens it (the values they write agree)
        fd, tmp = tempfile.mkstemp(prefix=".features.", suffix=".npy", dir=self.dir)
        os.close(fd)
        try:
            np.lib.format.open_memmap(tmp, "w+", ndtype, full).flush()
            try:
                os.link(tmp, self.dir / "features.npy")
                write_json(self.dir / "meta.json", self._meta(shape))
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
        self.store = np.load(self.dir / "features.npy", mmap_mode="r+")
        if self.store.shape != full or self.store.dtype != ndtype:
            raise ReproError(f"{self.dir}/features.npy: shape {self.store.shape}, expected {full}")

    def _read(self, flat: Tensor) -> Tensor:
        i, v = flat // self.views, flat % self.views
        if isinstance(self.store, Tensor):
            out = self.store[i.to(self.device), v.to(self.device)]
        else:
            out = torch.from_numpy(np.asarray(self.store[i.numpy(), v.numpy()]))
        return out.to(self.device, torch.float32)

    def _write(self, flat: Tensor, feats: Tensor) -> None:
        i, v = flat // self.views, flat % self.views
        if isinstance(self.store, Tensor):
            self.store[i.to(self.device), v.to(self.device)] = feats.to(self.store.dtype)
        else:
            self.store[i.numpy(), v.numpy()] = feats.cpu().numpy().astype(self.store.dtype)
            self.store.flush()
        self.filled[i, v] = True
        if self.dir is not None:
            with atomic_path(self.dir / "filled.npy") as tmp, open(tmp, "wb") as fh:
                np.save(fh, self.filled.numpy())

    def features(
        self,
        items: Tensor,
        views: Tensor,
        compute: Callable[[list[int], list[int]], Tensor],
    ) -> Tensor:
        """Feature maps (B, C, h, w) of the given (item, view) pairs; ``compute(items, views)``
        is called, without gradients, only for pairs not yet cached (each pair once)."""
        items, views = items.cpu().long(), views.cpu().long()
        if items.numel() and (items.max() >= self.items or views.max() >= self.views):
            raise ReproError(
                f"feature cache holds {self.items} images x {self.views} views; "
                f"asked for image {int(items.max())}, view {int(views.max())}"
            )
        flat = items * self.views + views
        todo = flat[~self.filled[items, views]].unique()
        if len(todo):
            with torch.no_grad():
                feats = compute((todo // self.views).tolist(), (todo % self.views).tolist())
            if self.store is None:
                self._allocate(tuple(feats.shape[1:]))
            self._write(todo, feats)
            self.computed += len(todo)
        return self._read(flat)
