"""Build a model/method pair from a run's params and train it (what ``repro-distill train`` does).

Params (one JSON object per job, made by :mod:`repro.distill.plan`; read into
:class:`repro.distill.params.RunParams`)::

    {"dataset": "cifar100", "student": "resnet8", "teacher": "resnet32x4" | null,
     "variant": "energy_kd", "recipe": "cifar", "method": "kd", "args": {...},
     "train": {...TrainConfig...},
     "teacher_weights": "/path/resnet34-b627a593.pth",   # optional, see load_teacher_weights
     "init_weights": "/path/resnet18-f37072fd.pth"}      # optional, see load_init_weights

The data folder is either an array dataset (``repro.data.arrays``: ArrayData, whole split on
the device) or an image-folder index (ImageNet: FolderData, JPEGs decoded by DataLoader
workers; ``train`` and ``val`` splits).

Under ``torchrun`` (a rule asking for several GPUs: ``repro-core launch``) a training run is
one process per GPU (:mod:`repro.core.distributed`); the result is the same as one process's,
to rounding (see :mod:`repro.distill.trainer`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import torch

from repro.core import ReproError
from repro.core.atomic import sha256_file, write_json
from repro.core.device import resolve_device
from repro.core.distributed import Dist, session
from repro.core.params import parse, to_dict
from repro.core.seeding import seed_everything
from repro.data.arrays import read_meta
from repro.distill.arraydata import ArrayData, BatchAugment
from repro.distill.folderdata import FolderData, is_folder_index
from repro.distill.methods import build_method
from repro.distill.models import (
    build_model,
    load_init_weights,
    load_teacher_weights,
    load_trained,
    read_weights,
)
from repro.distill.params import GroupParams, PretrainedParams, RunParams, TrainConfig
from repro.distill.plan import GROUP_KEYS, Cell, cell_dir, expand_group, params_cell
from repro.distill.trainer import Trainer, evaluate

log = logging.getLogger("repro.distill")


def load_data(
    data_dir: str | os.PathLike[str], cfg: TrainConfig
) -> tuple[dict[str, Any], ArrayData | FolderData, ArrayData | FolderData]:
    """``(meta, train, test)`` of a prepared dataset: arrays, or an image-folder index."""
    meta = read_meta(data_dir)
    num_classes = len(meta["classes"])
    if is_folder_index(meta):
        kw = {"crop_size": cfg.image_size, "workers": cfg.workers}
        train = FolderData.load(data_dir, "train", cfg.device, flip=cfg.flip, **kw)
        return meta, train, FolderData.load(data_dir, "val", cfg.device, **kw)
    train = ArrayData.load(data_dir, "train", cfg.device, num_classes)
    return meta, train, ArrayData.load(data_dir, "test", cfg.device, num_classes)


def train_run(
    params: RunParams,
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    teacher_ckpt: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Train one (method, teacher, student, dataset, seed) run into ``out_dir`` (in one
    process, or in each process of a torchrun job)."""
    with session(params.train.device, "train.device") as dist:
        return _train_run(params, data_dir, out_dir, teacher_ckpt, _on(params.train, dist), dist)


def _on(cfg: TrainConfig, dist: Dist) -> TrainConfig:
    """``cfg`` with the device this process trains on (the params keep the configured one:
    the run's fingerprint does not depend on where it resumes)."""
    return dataclasses.replace(cfg, device=str(dist.device))


def _build_student(
    params: RunParams, cfg: TrainConfig, num_classes: int, in_channels: int
) -> torch.nn.Module:
    """The run's student, initialised from ``seed_everything(cfg.seed)`` (or the user's
    initial weights)."""
    seed_everything(cfg.seed)
    student = build_model(params.student, num_classes, in_channels)
    if params.starts_from_file:
        key = params.init_weights_key or "init_weights"
        load_init_weights(student, params.init_weights, key)
    return student


def _load_teacher(
    params: RunParams,
    teacher_ckpt: str | os.PathLike[str] | None,
    num_classes: int,
    in_channels: int,
) -> torch.nn.Module | None:
    if params.teacher and params.pretrained_teacher:
        key = params.teacher_weights_key or "teacher_weights"
        return load_teacher_weights(
            params.teacher, params.teacher_weights, num_classes, in_channels, key
        )
    if params.teacher:
        if teacher_ckpt is None:
            raise ReproError(f"method '{params.method}' needs --teacher (a model.pt)")
        return load_trained(params.teacher, teacher_ckpt, num_classes, in_channels)
    return None


def _run_name(params: RunParams) -> str:
    pair = f"{params.teacher} -> {params.student}" if params.teacher else None
    return f"{params.name} {pair or params.student} seed {params.train.seed}"


def _extra(params: RunParams, meta: dict[str, Any], cfg: TrainConfig, trainer: Trainer):
    """The cell's keys written to ``result.json`` beside the trainer's numbers."""
    return {
        "dataset": params.dataset if params.dataset is not None else meta["name"],
        "teacher": params.teacher,
        "student": params.student,
        "variant": params.name,
        "recipe": params.recipe,
        "method": params.method,
        "args": params.args,
        "seed": cfg.seed,
        "batch_size": cfg.batch_size,
        "normalize": {
            "mean": trainer.augment.mean.flatten().tolist(),
            "std": trainer.augment.std.flatten().tolist(),
        },
    }


def _train_run(
    params: RunParams,
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    teacher_ckpt: str | os.PathLike[str] | None,
    cfg: TrainConfig,
    dist: Dist,
) -> dict[str, Any]:
    seed_everything(cfg.seed)
    meta, train, test = load_data(data_dir, cfg)
    num_classes = len(meta["classes"])
    student = _build_student(params, cfg, num_classes, train.in_channels)
    teacher = _load_teacher(params, teacher_ckpt, num_classes, train.in_channels)
    distiller = build_method(params.method, student, teacher, **params.args)
    name = _run_name(params)
    trainer = Trainer(distiller, train, test, cfg, out_dir, name=name, dist=dist, params=params)
    trainer.fit()
    result = trainer.save_outputs(_extra(params, meta, cfg, trainer))
    log.info("result: %s", result)
    return result


def train_group(
    cells: list[RunParams],
    data_dir: str | os.PathLike[str],
    out_dirs: list[str | os.PathLike[str]],
    teacher_ckpt: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """Train the runs ``cells`` (each one run's params, as :func:`train_run` takes) in
    lockstep into ``out_dirs`` (one each): one batch and one teacher forward per step for the
    group (:mod:`repro.distill.lockstep`). Each run's folder ends as its alone run's would."""
    if not cells or len(cells) != len(out_dirs):
        raise ReproError(
            f"train-group: {len(cells)} cells and {len(out_dirs)} run folders (one per cell)"
        )
    for k, params in enumerate(cells[1:], 1):
        for key in GROUP_KEYS:
            mine, first = getattr(params, key), getattr(cells[0], key)
            if mine != first:
                raise ReproError(
                    f"train-group: cell {k} has {key} {mine!r}, cell 0 {first!r}; a lockstep "
                    "group shares one dataset and teacher"
                )
    with session(cells[0].train.device, "train.device") as dist:
        cfgs = [_on(p.train, dist) for p in cells]
        return _train_group(cells, data_dir, out_dirs, teacher_ckpt, cfgs, dist)


def train_group_job(
    params: GroupParams,
    data_dir: str | os.PathLike[str],
    results: str | os.PathLike[str],
    teacher_ckpt: str | os.PathLike[str] | None = None,
    done: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """``repro-distill train-group``: ``params`` as :func:`repro.distill.plan.group_params`
    factors them (each run's params are ``common`` updated with its entry). Each run's folder
    under ``results`` is its cell's (:func:`repro.distill.plan.cell_dir`, the cell named by
    its params), where the workflow looks for it; with ``done``, a JSON of the run folders
    and their results is written at the end (the workflow's marker)."""
    runs = expand_group(to_dict(params))
    root = str(Path(results))
    out_dirs = [cell_dir(root, _params_cell(p, k)) for k, p in enumerate(runs)]
    cells = [parse(RunParams, p, f"--params cell {k}") for k, p in enumerate(runs)]
    outcomes = train_group(cells, data_dir, out_dirs, teacher_ckpt)
    if done is not None:
        rows = [{"out": o, **r} for o, r in zip(out_dirs, outcomes, strict=True)]
        write_json(done, {"runs": rows})
    return outcomes


def _params_cell(params: dict[str, Any], k: int) -> Cell:
    try:
        return params_cell(params)
    except ValueError as err:
        raise ReproError(
            f"train-group: --params cell {k}: {err} (a cell's params name its dataset, "
            "teacher, student, variant, recipe and train.seed: its run folder)"
        ) from None


def _train_group(cells, data_dir, out_dirs, teacher_ckpt, cfgs, dist) -> list[dict[str, Any]]:
    from repro.distill.lockstep import LockstepTrainer
    from repro.distill.shared import SharedTeacher, share_pruned_copies

    meta, train, test = load_data(data_dir, cfgs[0])
    num_classes = len(meta["classes"])
    students = [
        _build_student(p, c, num_classes, train.in_channels)
        for p, c in zip(cells, cfgs, strict=True)
    ]
    teacher = _load_teacher(cells[0], teacher_ckpt, num_classes, train.in_channels)
    shared = None if teacher is None else SharedTeacher(teacher)
    # every method is built before any trainer converts the teacher (channels_last): R2KD
    # prunes a copy of the teacher as it was loaded, as in its alone run
    distillers = [
        build_method(p.method, s, shared, **p.args) for p, s in zip(cells, students, strict=True)
    ]
    if shared is not None:  # R2KD cells' equal pruned copies: one module, one forward
        share_pruned_copies(distillers, shared)
    trainers = [
        Trainer(d, train, test, c, out, name=_run_name(p), dist=dist, params=p)
        for p, c, d, out in zip(cells, cfgs, distillers, out_dirs, strict=True)
    ]
    results: list[dict[str, Any]] = [{} for _ in cells]

    def save(i: int, trainer: Trainer) -> None:
        results[i] = trainer.save_outputs(_extra(cells[i], meta, cfgs[i], trainer))
        log.info("result (%s): %s", trainer.loop.name, results[i])

    LockstepTrainer(trainers, shared).fit(on_done=save)
    return results


def evaluate_pretrained(
    params: PretrainedParams,
    data_dir: str | os.PathLike[str],
    out_json: str | os.PathLike[str],
) -> dict[str, Any]:
    """Top-1/top-5 of a user-supplied pretrained teacher on the test split, written as a
    ``result.json`` shaped like a run of a model trained alone (method ``ce``, as the papers
    list such teachers, so their reported numbers sit beside it; 0 epochs marks it)."""
    device = resolve_device(params.train.device, "train.device")
    cfg = dataclasses.replace(params.train, device=str(device))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    meta, train, test = load_data(data_dir, cfg)
    model = load_teacher_weights(
        params.teacher, params.teacher_weights, len(meta["classes"]), train.in_channels,
        params.teacher_weights_key,
    )  # fmt: skip
    mean = cfg.mean or [0.5] * train.in_channels
    std = cfg.std or [0.5] * train.in_channels
    augment = BatchAugment(mean, std, cfg.crop_padding, cfg.flip, train.size).to(device)
    amp = cfg.amp if device.type == "cuda" else cfg.cpu_bf16
    scores = evaluate(model.to(device), test, augment, cfg.eval_batch_size, amp)
    result = {
        "final_top1": scores["top1"],
        "final_top5": scores["top5"],
        "best_top1": scores["top1"],
        "best_top5": scores["top5"],
        "best_epoch": 0,
        "epochs": 0,
        "test_n": len(test),
        "variant": "ce",
        "method": "ce",
        "pretrained": True,
        "student": params.teacher,
        "teacher": None,
        "dataset": params.dataset if params.dataset is not None else meta["name"],
        "seed": None,
        "weights": str(params.teacher_weights),
        "weights_sha256": sha256_file(params.teacher_weights),
    }
    # what a checkpoint file records of itself (mdistiller's: its epoch and test accuracy)
    recorded = read_weights(params.teacher_weights, params.teacher_weights_key)[1]
    if recorded:
        result["checkpoint"] = recorded
    write_json(out_json, result)
    log.info("pretrained %s: %s", params.teacher, scores)
    return result
