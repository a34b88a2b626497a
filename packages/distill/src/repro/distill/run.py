"""Build a model/method pair from a run's params and train it (what ``repro-distill train`` does).

Params (one JSON object, from the workflow config)::

    {"student": "resnet8", "teacher": "resnet32x4" | null, "method": "kd",
     "method_args": {...}, "train": {...TrainConfig...}}
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from repro.core import ReproError
from repro.core.checkpoint import load_checkpoint
from repro.core.seeding import seed_everything
from repro.data.arrays import read_meta
from repro.distill.arraydata import ArrayData
from repro.distill.methods import build_method
from repro.distill.models import build_model
from repro.distill.trainer import TrainConfig, Trainer

log = logging.getLogger("repro.distill")


def load_model(
    name: str, checkpoint: str | os.PathLike[str], num_classes: int, in_channels: int
) -> torch.nn.Module:
    """A zoo model with weights from a ``model.pt`` written by the trainer."""
    model = build_model(name, num_classes, in_channels)
    state = load_checkpoint(checkpoint)["model"]
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ReproError(
            f"{checkpoint}: weights do not fit model '{name}' ({str(exc).splitlines()[0]})"
        ) from exc
    return model


def train_run(
    params: dict[str, Any],
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    teacher_ckpt: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Train one (method, teacher, student, dataset, seed) run into ``out_dir``."""
    cfg = TrainConfig.from_dict(dict(params.get("train", {})))
    seed_everything(cfg.seed)
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ReproError(f"train.device is '{cfg.device}' but no CUDA device is available")
    meta = read_meta(data_dir)
    num_classes = len(meta["classes"])
    train = ArrayData.load(data_dir, "train", cfg.device, num_classes)
    test = ArrayData.load(data_dir, "test", cfg.device, num_classes)
    student = build_model(params["student"], num_classes, train.in_channels)
    teacher = None
    if params.get("teacher"):
        if teacher_ckpt is None:
            raise ReproError(f"method '{params['method']}' needs --teacher (a model.pt)")
        teacher = load_model(params["teacher"], teacher_ckpt, num_classes, train.in_channels)
    distiller = build_method(params["method"], student, teacher, **params.get("method_args", {}))
    trainer = Trainer(distiller, train, test, cfg, out_dir)
    result = trainer.fit()
    extra = {
        "method": params["method"],
        "student": params["student"],
        "teacher": params.get("teacher"),
        "dataset": meta["name"],
        "seed": cfg.seed,
    }
    thresholds = {
        k: float(getattr(distiller, k)) for k in ("tau_low", "tau_high") if hasattr(distiller, k)
    }
    trainer.save_outputs({**extra, **thresholds})
    log.info("result: %s", result)
    return {**result, **extra}


def default_out(params: dict[str, Any], root: str | os.PathLike[str]) -> Path:
    """``<root>/<method>/<teacher>-<student>/seed<k>`` (teacher part omitted when absent)."""
    pair = (
        f"{params['teacher']}-{params['student']}" if params.get("teacher") else params["student"]
    )
    return Path(root) / params["method"] / pair / f"seed{params.get('train', {}).get('seed', 0)}"
