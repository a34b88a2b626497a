"""The stimulus set: clean images, white-box and black-box (transferred) adversarial versions.

Layout of a stimulus folder (written by :func:`write_stimuli`)::

    stimuli.csv        one row per stimulus (columns: COLUMNS), in analysis order:
                       all clean, then all white-box, then all black-box; within a
                       condition by class, then by source index
    images/<id>.png    the stimulus, 8-bit grey (L) or RGB, lossless
    meta.json          classes, image shape, params, attack-success summary

Stimulus ids are ``<condition>-<k>`` with ``k`` the 3-digit number of the source image in
the set, so ``clean-004``, ``white-004`` and ``black-004`` show the same picture.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repro.core import ReproError
from repro.core.atomic import atomic_path, write_json, write_text
from repro.fmri.attacks import PixelModel, attack, predict
from repro.fmri.params import NetParams, StimulusParams

CONDITIONS = ("clean", "white", "black")
COLUMNS = (
    "id", "condition", "source", "class", "class_name", "attack", "epsilon", "made_on",
    "target_pred", "substitute_pred", "success", "linf", "file",
)  # fmt: skip


def stimulus_id(condition: str, k: int) -> str:
    """The id of source image ``k``'s ``condition`` version (``trial_type`` in events.tsv)."""
    return f"{condition}-{k:03d}"


@dataclass
class StimulusSet:
    """Images ``(n, H, W, C)`` uint8 in table order, one table row (dict) per image."""

    images: np.ndarray
    table: list[dict[str, Any]]
    classes: list[str]

    def column(self, name: str) -> np.ndarray:
        return np.array([row[name] for row in self.table])

    @property
    def conditions(self) -> np.ndarray:
        return self.column("condition")

    @property
    def labels(self) -> np.ndarray:
        return self.column("class").astype(np.int64)

    @property
    def ids(self) -> list[str]:
        return [row["id"] for row in self.table]

    def triplets(self) -> np.ndarray:
        """``(n_sources, 3)`` row indices of the clean, white and black version of each source."""
        index = {(row["condition"], int(row["source"])): i for i, row in enumerate(self.table)}
        sources = sorted({int(row["source"]) for row in self.table})
        try:
            return np.array([[index[(c, s)] for c in CONDITIONS] for s in sources])
        except KeyError as exc:
            raise ReproError(f"stimulus set: source {exc.args[0][1]} lacks a version") from None


class ArrayPool:
    """Source images held in memory: a split of an array dataset (``repro.data.arrays``)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, np.asarray(labels, dtype=np.int64)

    def load(self, idx: np.ndarray) -> np.ndarray:
        return self.images[idx]


class FolderPool:
    """Source images decoded on demand from an image-folder index (ImageNet:
    ``repro-data`` writes ``<index>/<split>.csv`` with paths relative to ``meta.json``'s
    root). Each image gets the standard evaluation crop: shorter side resized to
    ``size / 0.875`` (antialiased), then the central ``size x size`` (Pillow decodes,
    torchvision's tensor transforms crop)."""

    def __init__(self, root: Path, paths: list[str], labels: list[int], size: int) -> None:
        self.root, self.paths, self.size = root, paths, size
        self.labels = np.asarray(labels, dtype=np.int64)

    def load(self, idx: np.ndarray) -> np.ndarray:
        import torchvision.transforms.v2.functional as TF
        from PIL import Image

        out = []
        for i in np.atleast_1d(idx):
            path = self.root / self.paths[int(i)]
            try:
                with Image.open(path) as fh:
                    rgb = np.asarray(fh.convert("RGB"))
            except OSError as exc:
                raise ReproError(f"{path}: cannot decode ({str(exc).splitlines()[0]})") from exc
            img = torch.from_numpy(rgb.copy()).permute(2, 0, 1)
            img = TF.resize(img, [round(self.size / 0.875)], antialias=True)
            out.append(TF.center_crop(img, [self.size, self.size]).permute(1, 2, 0).numpy())
        return np.stack(out) if out else np.zeros((0, self.size, self.size, 3), np.uint8)


def open_pool(
    data_dir: str | os.PathLike[str], split: str, image_size: int
) -> tuple[ArrayPool | FolderPool, list[str]]:
    """The source images of ``split`` and the class names, from an array dataset or an
    image-folder index."""
    from repro.data.arrays import load_split, read_meta

    meta = read_meta(data_dir)
    if meta.get("name") == "imagenet":
        path = Path(data_dir) / f"{split}.csv"
        if not path.is_file():
            raise ReproError(f"{path}: not found; index the dataset first (snakemake {path})")
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        pool = FolderPool(
            Path(meta["root"]), [r["path"] for r in rows], [int(r["label"]) for r in rows],
            image_size,
        )  # fmt: skip
        return pool, list(meta["classes"])
    images, labels = load_split(data_dir, split)
    return ArrayPool(images, labels), list(meta["classes"])


def load_nets(
    nets: NetParams,
    target_path: str | os.PathLike[str],
    substitute_path: str | os.PathLike[str],
    num_classes: int,
    in_channels: int,
    device: str = "cpu",
) -> tuple[PixelModel, PixelModel]:
    """The target and substitute as :class:`PixelModel` s in eval mode on ``device``."""
    from repro.distill.models import load_teacher_weights, load_trained

    def load(name: str, path: str | os.PathLike[str], key: str) -> torch.nn.Module:
        if nets.weights_format == "trainer":
            return load_trained(name, path, num_classes, in_channels)
        return load_teacher_weights(name, path, num_classes, in_channels, config_key=key)

    channels = in_channels
    mean = nets.mean * channels if len(nets.mean) == 1 else nets.mean
    std = nets.std * channels if len(nets.std) == 1 else nets.std
    if len(mean) != channels:
        raise ReproError(f"nets.mean: {len(mean)} values for {channels}-channel images")
    out = []
    for name, path, key in (
        (nets.target, target_path, "nets.target"),
        (nets.substitute, substitute_path, "nets.substitute"),
    ):
        model = PixelModel(load(name, path, key), mean, std).to(device).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        out.append(model)
    return out[0], out[1]


def _to_tensor(images: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """uint8 NHWC array -> uint8 NCHW tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(device)


def select_sources(
    pool: ArrayPool | FolderPool,
    target: PixelModel,
    substitute: PixelModel,
    params: StimulusParams,
) -> np.ndarray:
    """Indices of ``per_class`` source images per class, drawn with the seed.

    With ``require_correct`` only images that both networks classify correctly are drawn, so
    that a wrong prediction on an adversarial version is the attack's doing.
    """
    rng = np.random.default_rng(params.seed)
    labels = pool.labels
    classes = params.classes if params.classes is not None else sorted(set(labels.tolist()))
    chosen = []
    for cls in classes:
        order = rng.permutation(np.flatnonzero(labels == cls))
        picked: list[int] = []
        chunk = max(4 * params.per_class, 64)
        for start in range(0, len(order), chunk):
            idx = order[start : start + chunk]
            if params.require_correct:
                x = _to_tensor(pool.load(idx), params.device)
                ok = (predict(target, x) == cls) & (predict(substitute, x) == cls)
                idx = idx[ok.cpu().numpy()]
            picked.extend(idx[: params.per_class - len(picked)].tolist())
            if len(picked) == params.per_class:
                break
        if len(picked) < params.per_class:
            raise ReproError(
                f"class {cls}: only {len(picked)} of {params.per_class} source images "
                f"{'that both networks classify correctly ' if params.require_correct else ''}"
                f"in split '{params.split}'"
            )
        chosen.extend(sorted(picked))
    return np.array(chosen, dtype=np.int64)


def make_stimuli(
    pool: ArrayPool | FolderPool,
    classes: list[str],
    target: PixelModel,
    substitute: PixelModel,
    params: StimulusParams,
) -> StimulusSet:
    """Clean sources, white-box versions (attack on ``target``) and black-box versions
    (attack on ``substitute``, transferred to the target), with the target's predictions."""
    device = torch.device(params.device)
    labels = pool.labels
    src = select_sources(pool, target, substitute, params)
    x = _to_tensor(pool.load(src), device)
    y = torch.from_numpy(labels[src]).to(device)
    gen = torch.Generator(device=device).manual_seed(params.seed)
    white = attack(target, x, y, params.attack, gen, params.batch_size)
    black = attack(substitute, x, y, params.attack, gen, params.batch_size)
    versions = {"clean": x, "white": white, "black": black}
    made_on = {"clean": "", "white": "target", "black": "substitute"}
    rows, out_images = [], []
    for cond in CONDITIONS:
        imgs = versions[cond]
        t_pred = predict(target, imgs, params.batch_size).cpu().numpy()
        s_pred = predict(substitute, imgs, params.batch_size).cpu().numpy()
        linf = (imgs.int() - x.int()).abs().amax(dim=(1, 2, 3)).cpu().numpy()
        for k in range(len(src)):
            cls = int(labels[src[k]])
            sid = stimulus_id(cond, k)
            rows.append(
                {
                    "id": sid,
                    "condition": cond,
                    "source": int(src[k]),
                    "class": cls,
                    "class_name": classes[cls],
                    "attack": "none" if cond == "clean" else params.attack.method,
                    "epsilon": 0.0 if cond == "clean" else float(params.attack.epsilon),
                    "made_on": made_on[cond],
                    "target_pred": int(t_pred[k]),
                    "substitute_pred": int(s_pred[k]),
                    "success": "" if cond == "clean" else int(t_pred[k] != cls),
                    "linf": int(linf[k]),
                    "file": f"images/{sid}.png",
                }
            )
        out_images.append(imgs.permute(0, 2, 3, 1).cpu().numpy())
    return StimulusSet(np.concatenate(out_images), rows, list(classes))


def attack_success(stim: StimulusSet) -> dict[str, dict[str, float]]:
    """Per adversarial condition: success rate on the target (wrong class), counted over the
    sources whose clean image the target classifies correctly, and that count."""
    clean_ok = {
        int(r["source"]): r["target_pred"] == r["class"]
        for r in stim.table
        if r["condition"] == "clean"
    }
    out = {}
    for cond in CONDITIONS[1:]:
        rows = [r for r in stim.table if r["condition"] == cond and clean_ok[int(r["source"])]]
        hits = [int(r["success"]) for r in rows]
        out[cond] = {"success_rate": float(np.mean(hits)) if hits else float("nan"), "n": len(hits)}
    return out


def _png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    arr = image[..., 0] if image.shape[-1] == 1 else image
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG")
    return buf.getvalue()


def write_stimuli(stim: StimulusSet, out_dir: str | os.PathLike[str], params: Any = None) -> None:
    """Write PNGs, ``stimuli.csv`` and ``meta.json`` (last, so its presence means complete)."""
    out = Path(out_dir)
    for row, image in zip(stim.table, stim.images, strict=True):
        with atomic_path(out / row["file"]) as tmp:
            tmp.write_bytes(_png_bytes(image))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(stim.table)
    write_text(out / "stimuli.csv", buf.getvalue())
    meta = {
        "classes": stim.classes,
        "shape": list(stim.images.shape[1:]),
        "n": len(stim.table),
        "params": asdict(params) if hasattr(params, "__dataclass_fields__") else params,
        "attack_success": attack_success(stim) if "target_pred" in stim.table[0] else None,
    }
    write_json(out / "meta.json", meta)


_INT_COLUMNS = ("source", "class", "target_pred", "substitute_pred", "linf")


def read_stimuli(stim_dir: str | os.PathLike[str]) -> StimulusSet:
    """Read a stimulus folder back (PNGs are lossless, so the images are exact)."""
    from PIL import Image

    root = Path(stim_dir)
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise ReproError(f"{meta_path}: not found; make the stimuli first (repro-fmri stimuli)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    with open(root / "stimuli.csv", newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    missing = [c for c in COLUMNS if table and c not in table[0]]
    if missing:
        raise ReproError(f"{root / 'stimuli.csv'}: missing column '{missing[0]}'")
    images = []
    for k, row in enumerate(table):
        try:
            for key in _INT_COLUMNS:
                row[key] = int(row[key])
            row["epsilon"] = float(row["epsilon"])
            row["success"] = int(row["success"]) if row["success"] != "" else ""
        except ValueError as exc:
            raise ReproError(f"{root / 'stimuli.csv'}: row {k + 2}: {exc}") from None
        path = root / row["file"]
        if not path.is_file():
            raise ReproError(f"{path}: stimulus image listed in stimuli.csv is missing")
        arr = np.asarray(Image.open(path))
        images.append(arr[..., None] if arr.ndim == 2 else arr)
    shape = tuple(meta["shape"])
    stack = np.stack(images) if images else np.zeros((0, *shape), np.uint8)
    if stack.shape[1:] != shape:
        raise ReproError(f"{root}: images have shape {stack.shape[1:]}, meta.json says {shape}")
    return StimulusSet(stack, table, list(meta["classes"]))


def build_stimuli(
    data_dir: str | os.PathLike[str],
    target_path: str | os.PathLike[str],
    substitute_path: str | os.PathLike[str],
    params: StimulusParams,
    out_dir: str | os.PathLike[str],
) -> StimulusSet:
    """What ``repro-fmri stimuli`` does: load the split and the networks, attack, write."""
    torch.manual_seed(params.seed)
    pool, classes = open_pool(data_dir, params.split, params.image_size)
    channels = 3 if isinstance(pool, FolderPool) else pool.images.shape[-1]
    target, substitute = load_nets(
        params.nets, target_path, substitute_path, len(classes), channels, params.device
    )
    stim = make_stimuli(pool, classes, target, substitute, params)
    write_stimuli(stim, out_dir, params)
    return stim
