"""Staged training of MHSAN: the schedule as data, one optimisation step, and a run on the
shared loop (:class:`repro.core.training.TrainLoop`).

The schedule is a list of stages, each ``{"epochs", "lr", "train": [parts]}`` with parts from
:data:`repro.vse.models.PARTS`. The paper (section 3.5, Adam throughout)::

    [{"epochs": 4,  "lr": 0.005,   "train": ["image_proj"]},
     {"epochs": 15, "lr": 0.0005,  "train": ["image_proj", "text"]},
     {"epochs": 40, "lr": 0.00005, "train": ["image_proj", "text", "image_attention", "cnn"]}]

(MHSAN's code: stage 1 trains only the image side's last linear layer; the text pipeline is
unfrozen after epoch index 4, the rest of the image pipeline but conv1..layer2 after index 19.)
Each stage starts a fresh Adam over the parameters it trains (the code instead adds parameter
groups to one Adam at the running learning rate).

Within an epoch, the global RNG and the batch generator come from
:func:`repro.core.training.seed_period` (seed, epoch), so a resumed run draws the same batches,
views and dropout masks as one that was never interrupted.
"""

from __future__ import annotations

import gc
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from repro.core import ReproError
from repro.core.distributed import Dist, session
from repro.core.params import parse
from repro.core.training import TrainLoop, seed_period
from repro.vse.cache import FeatureCache, cache_key
from repro.vse.data import (
    TRAIN_SPLITS,
    CaptionedImages,
    ImageViews,
    Preprocess,
    Vocabulary,
    check_train_splits,
)
from repro.vse.evaluate import protocol_metrics, validation_metrics
from repro.vse.losses import attention_penalty, mhsan_loss, triplet_loss
from repro.vse.models import MHSAN, PARTS, ModelConfig
from repro.vse.parallel import Shard, gather_rows, sharded
from repro.vse.protocols import PROTOCOLS, expected

VIEW_SPACE = 2**31 - 1  # view ids drawn while the CNN trains: in effect a fresh crop each time


@dataclass(frozen=True)
class Stage:
    """Epochs at one learning rate training the listed parts; ``negatives`` selects the triplet
    loss's negatives (``hardest``: MHSAN; ``all``: a sum-of-hinges warm-up, see
    :func:`repro.vse.losses.triplet_loss`)."""

    epochs: int
    lr: float
    train: tuple[str, ...]
    negatives: Literal["hardest", "all"] = "hardest"

    def __post_init__(self) -> None:
        object.__setattr__(self, "train", tuple(self.train))

    def check(self, where: str = "stage") -> None:
        """Known parts, at least one (called by :func:`repro.core.params.parse`)."""
        unknown = [p for p in self.train if p not in PARTS]
        if unknown:
            raise ReproError(
                f"{where}.train: unknown part '{unknown[0]}' (known: {', '.join(PARTS)})"
            )
        if not self.train:
            raise ReproError(f"{where}.train: a stage must train at least one part")

    @property
    def uses_cache(self) -> bool:
        """The backbone feature cache may be read only while the CNN is frozen."""
        return "cnn" not in self.train


PAPER_STAGES = (
    Stage(4, 5e-3, ("image_proj",)),
    Stage(15, 5e-4, ("image_proj", "text")),
    Stage(40, 5e-5, ("image_proj", "text", "image_attention", "cnn")),
)


def apply_stage(model: MHSAN, stage: Stage) -> bool:
    """Set ``requires_grad`` for the stage's parts only (and the backbone's train/eval mode);
    returns whether the feature cache may be used."""
    for p in model.parameters():
        p.requires_grad_(False)
    for part in stage.train:
        for p in model.part(part):
            p.requires_grad_(True)
    model.backbone.tuning = "cnn" in stage.train
    model.train(model.training)  # re-applies the backbone's modes
    return stage.uses_cache


def adam(model: MHSAN, lr: float) -> torch.optim.Adam:
    """Adam over the parameters that currently train; the fused kernel (CPU and CUDA) makes
    one pass over each tensor instead of several with temporaries, which at the paper's
    widths (180 M trained parameters in stage 2) halves a CPU step."""
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr, fused=True)


@dataclass(frozen=True)
class LossConfig:
    margin: float = 0.2
    weight: float = 0.1  # lambda of the diversity penalty
    penalty: Literal["paper", "code"] = "paper"  # paper (squared Frobenius norm) | code (norm)


@dataclass
class Batch:
    """Matching pairs: either backbone feature maps or images, and padded captions."""

    tokens: Tensor
    lengths: Tensor
    features: Tensor | None = None
    images: Tensor | None = None


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    loss: LossConfig,
    grad_clip: float = 0.0,
    negatives: str = "hardest",
    shard: Shard | None = None,
) -> dict[str, Tensor]:
    """One optimiser step on a batch; returns the named loss terms, detached scalars (``loss``
    is the total; :meth:`repro.core.training.TrainLoop.check` turns them into floats).
    ``model``: the :class:`MHSAN` or its DistributedDataParallel wrapper.

    With a ``shard`` (``batch`` holds this rank's rows of a global batch), dropout is drawn for
    the global batch, the triplet loss is that of the global batch (:func:`gather_rows`), and
    the back-propagated loss is ``world * triplet + weight * share * penalties`` with ``share
    = world * rows / total``: DDP's average over ranks is then the global batch's gradient.
    The returned terms are this rank's shares of the global batch's (their sums over ranks):
    the triplet loss on rank 0 (0 elsewhere), the penalties' means weighted by rows / total."""
    model.train()
    with sharded(model, shard):
        img, img_attn, txt, txt_attn = model(
            batch.tokens, batch.lengths, batch.features, batch.images
        )
    if shard is None:
        terms = mhsan_loss(
            img, txt, img_attn, txt_attn, loss.margin, loss.weight, loss.penalty, negatives
        )
        total = terms["loss"]
    else:
        terms, total = _shard_terms(img, txt, img_attn, txt_attn, loss, negatives, shard)
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    if grad_clip > 0:
        params = [p for p in model.parameters() if p.requires_grad]
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    return {k: v.detach() for k, v in terms.items()}


def _shard_terms(
    img: Tensor,
    txt: Tensor,
    img_attn: Tensor,
    txt_attn: Tensor,
    loss: LossConfig,
    negatives: str,
    shard: Shard,
) -> tuple[dict[str, Tensor], Tensor]:
    """This rank's shares of the global batch's loss terms, and the loss it back-propagates
    (see :func:`train_step`)."""
    triplet = triplet_loss(gather_rows(img, shard), gather_rows(txt, shard), loss.margin, negatives)
    part = len(img) / shard.total
    penalties = attention_penalty(img_attn, loss.penalty), attention_penalty(txt_attn, loss.penalty)
    total = shard.world * triplet + loss.weight * shard.world * part * sum(penalties)
    terms = {
        "triplet": triplet if shard.rank == 0 else torch.zeros_like(triplet),
        "penalty_image": penalties[0] * part,
        "penalty_text": penalties[1] * part,
    }
    terms["loss"] = terms["triplet"] + loss.weight * (
        terms["penalty_image"] + terms["penalty_text"]
    )
    return terms, total


class PairSource:
    """Training pairs of one split: captions on the device, image views through the cache
    (CNN frozen) or decoded and preprocessed (CNN training)."""

    def __init__(
        self,
        data: CaptionedImages,
        vocab: Vocabulary,
        preprocess: Preprocess,
        model: MHSAN,
        views: int = 1,
        seed: int = 0,
        device: str | torch.device = "cpu",
        cache_root: str | None = None,
        cache_dtype: str = "float32",
        workers: int = 4,
    ) -> None:
        self.device = torch.device(device)
        self.tokens, self.lengths = (t.to(self.device) for t in vocab.encode(data.captions))
        self.images = ImageViews(data.paths, preprocess, seed, workers)
        self.views = views if preprocess.random else 1
        self.model = model
        self.preprocess = preprocess
        self.cache_root, self.cache_dtype = cache_root, cache_dtype
        self._cache: FeatureCache | None = None
        # what the cached views are of, besides the backbone: these images (a split of equal
        # size, e.g. COCO's val and test, must not read another's features) and, for random
        # crops, the seed that draws them
        paths = "\n".join(str(path) for path in data.paths).encode()
        self.cache_spec = {
            **preprocess.spec(),
            "images": hashlib.sha256(paths).hexdigest()[:16],
            "view_seed": seed if preprocess.random else None,
        }

    def cache(self) -> FeatureCache:
        """The feature cache of the backbone's weights when last checked (see
        :meth:`check_cache`; hashing ResNet-152's weights takes a fraction of a second, so it
        is done once per stage, not per batch)."""
        if self._cache is None:
            self.check_cache()
        return self._cache

    def check_cache(self) -> None:
        """Key the cache by the backbone's current weights; call when they may have changed
        (at the start of each stage)."""
        key = cache_key(self.model.backbone, self.cache_spec)
        if self._cache is None or self._cache.key != key:
            self._cache = FeatureCache(
                key,
                len(self.images.paths),
                self.views,
                self.cache_root,
                self.cache_dtype,
                self.device,
            )

    def backbone_features(self, items: list[int], views: list[int]) -> Tensor:
        was = self.model.backbone.training
        self.model.backbone.eval()
        try:
            return self.model.backbone(self.images.batch(items, views).to(self.device))
        finally:
            self.model.backbone.train(was)

    def batch(
        self,
        captions: Tensor,
        gen: torch.Generator,
        cached: bool,
        fresh_views: bool = False,
        part: Callable[[Any], Any] | None = None,
    ) -> Batch:
        """The pairs of ``captions`` (indices). Each image's view is drawn from ``gen`` among
        the ``views`` fixed ones, or with ``fresh_views`` (while the CNN trains) among 2^31 - 1,
        in effect a new random crop every time. ``cached``: feature maps from the cache.
        ``part`` (:meth:`repro.core.distributed.Dist.part`): keep this rank's rows of the
        global batch ``captions``, after the views are drawn for all of them and with the
        captions padded to the global batch's longest (so every draw is the global batch's)."""
        if cached and fresh_views:
            raise ValueError("fresh views cannot come from the feature cache")
        span = VIEW_SPACE if fresh_views and self.preprocess.random else self.views
        views = torch.randint(span, (len(captions),), generator=gen)
        caps = captions.to(self.device)
        width = int(self.lengths[caps].max())
        if part is not None:
            captions, views, caps = part((captions, views, caps))
        items = captions // 5
        lengths = self.lengths[caps]
        tokens = self.tokens[caps, :width]
        if cached:
            feats = self.cache().features(items, views, self.backbone_features)
            return Batch(tokens, lengths, features=feats)
        images = self.images.batch(items.tolist(), views.tolist()).to(self.device)
        return Batch(tokens, lengths, images=images)


@dataclass
class Encoded:
    """Embeddings of a split (images (N, d'), captions (5N, d')) and the mean diversity
    penalties of its attention maps (paper Table 5 reports the test set's)."""

    images: Tensor
    texts: Tensor
    penalty_image: float
    penalty_text: float


@torch.no_grad()
def encode(
    model: MHSAN,
    source: PairSource,
    batch_size: int = 128,
    cached: bool = True,
    penalty: str = "paper",
) -> Encoded:
    """Embed every image (view 0) and caption of ``source`` in eval mode."""
    model.eval()
    n = len(source.images.paths)
    images, texts, pen_i, pen_t = [], [], 0.0, 0.0
    for a in range(0, n, batch_size):
        items = torch.arange(a, min(a + batch_size, n))
        views = torch.zeros_like(items)
        if cached:
            feats = source.cache().features(items, views, source.backbone_features)
        else:
            feats = source.backbone_features(items.tolist(), views.tolist())
        emb, attn = model.embed_features(feats)
        images.append(emb)
        pen_i += float(attention_penalty(attn, penalty)) * len(items)
    for a in range(0, 5 * n, batch_size):
        lengths = source.lengths[a : a + batch_size]
        tokens = source.tokens[a : a + batch_size, : int(lengths.max())]
        emb, attn = model.embed_texts(tokens, lengths)
        texts.append(emb)
        pen_t += float(attention_penalty(attn, penalty)) * len(lengths)
    return Encoded(torch.cat(images), torch.cat(texts), pen_i / n, pen_t / (5 * n))


# ---------------------------------------------------------------- one training run

#: Params that do not change a run's output: left out of the resume fingerprint, so a run
#: resumes on another device, with other threads or with the disk cache switched.
SETTINGS = ("device", "threads", "cache")


@dataclass(frozen=True)
class RunParams:
    """A training job's ``--params``: everything that determines its output, and the
    :data:`SETTINGS` (the plan adds them from the config)."""

    dataset: str  # coco | f30k | synthetic: which Karpathy splits train (data.TRAIN_SPLITS)
    model: ModelConfig
    stages: tuple[Stage, ...]
    loss: LossConfig = LossConfig()
    preprocess_train: Preprocess = Preprocess(kind="random_resized_crop", size=(256, 256))
    preprocess_eval: Preprocess = Preprocess(kind="resize", size=(350, 350), flip=False)
    train_views: int = 1  # fixed views per image while the CNN is frozen (cache entries)
    batch_size: int = 128
    seed: int = 0
    min_word_count: int = 1
    grad_clip: float = 0.0
    workers: int = 4
    cache_dtype: Literal["float32", "float16"] = "float32"
    protocols: tuple[str, ...] = ("full",)  # protocols.PROTOCOLS, or "full": the whole test set
    test_images: int | None = None  # every protocol's test-set size instead of the official one
    # model selection: best mean validation rsum over 1,000-image folds (MHSAN's code), or over
    # the whole validation split as one set (protocols.val_folds)
    val_selection: Literal["folds", "whole"] = "folds"
    # the Karpathy splits that train: None (the dataset's data.TRAIN_SPLITS), a list of split
    # names, or "outside_eval" (every image whose split is neither val nor test)
    train_splits: tuple[str, ...] | str | None = None
    device: str = "cpu"  # auto, cpu, cuda (under torchrun: each process its local rank's GPU)
    threads: int = 0  # torch's CPU threads (0: torch's default)
    cache: bool = False  # the frozen backbone's features on disk (train_run's cache_root)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "protocols", tuple(self.protocols))

    def check(self, where: str = "params") -> None:
        """What the annotations cannot say (called by :func:`repro.core.params.parse`)."""
        if self.dataset not in TRAIN_SPLITS:
            raise ReproError(
                f"{where}.dataset: '{self.dataset}' is not one of {', '.join(TRAIN_SPLITS)}"
            )
        if not self.stages:
            raise ReproError(f"{where}.stages: at least one stage")
        bad = [x for x in self.protocols if x != "full" and x not in PROTOCOLS]
        if bad:
            raise ReproError(
                f"{where}.protocols: unknown '{bad[0]}' (known: full, {', '.join(PROTOCOLS)})"
            )
        try:
            object.__setattr__(self, "train_splits", check_train_splits(self.train_splits))
            for protocol in self.protocols:  # a test_images the folds do not divide
                expected(protocol, self.test_images)
        except ReproError as exc:
            raise ReproError(f"{where}.{exc}") from None


def split_metrics(
    sims: Tensor, protocols: Sequence[str], test_images: int | None = None
) -> dict[str, dict[str, float]]:
    """Metrics of each protocol on one test similarity matrix (``test_images``: the size every
    protocol expects instead of the official one)."""
    return {p: protocol_metrics(sims, p, test_images) for p in protocols}


def stage_at(stages: Sequence[Stage], epoch: int) -> int:
    """Index of the stage that 1-based ``epoch`` belongs to."""
    end = 0
    for i, stage in enumerate(stages):
        end += stage.epochs
        if epoch <= end:
            return i
    raise ValueError(f"epoch {epoch} is past the schedule's {end} epochs")


def load_splits(
    run: RunParams, split_file: str | Path, image_root: str | Path
) -> dict[str, CaptionedImages]:
    """The run's train, val and test splits; a test split of the wrong size for a protocol
    stops here, before any training."""
    from repro.vse.data import load_karpathy, load_train
    from repro.vse.protocols import check_size

    splits = {
        "train": load_train(split_file, image_root, run.dataset, run.train_splits),
        "val": load_karpathy(split_file, image_root, ["val"]),
        "test": load_karpathy(split_file, image_root, ["test"]),
    }
    for protocol in run.protocols:
        check_size(protocol, len(splits["test"]), run.test_images)
    return splits


class Trainer:
    """One training run: built by ``__init__`` (splits, vocabulary, model, pair sources, run
    folder), stepped by :meth:`train_epoch` and :meth:`end_epoch`, finished by :meth:`finish`
    (the best epoch on the test split); :meth:`fit` runs it all.

    Runs unchanged in 1 or N processes (``dist``, :func:`repro.core.distributed.session`):
    every rank draws the same global batches and keeps its rows; the model is wrapped in DDP
    per stage (a stage changes which parameters train); epoch rows are sums over ranks. Every
    rank validates (the others would wait for rank 0 anyway); rank 0 writes and tests."""

    def __init__(
        self,
        run: RunParams,
        split_file: str | Path,
        image_root: str | Path,
        out: str | Path,
        dist: Dist,
        params: Mapping[str, Any],
        cache_root: str | Path | None = None,
    ) -> None:
        from repro.vse.models import seeded_model
        from repro.vse.protocols import val_folds

        if run.cache and cache_root is None:
            raise ReproError("params.cache: true needs a cache folder (--cache DIR)")
        self.run, self.dist, self.out, self.params = run, dist, Path(out), dict(params)
        if dist.active:
            self._check_parallel()
        if run.threads:
            torch.set_num_threads(run.threads)
        self.splits = load_splits(run, split_file, image_root)
        # a validation split model selection cannot use stops here too
        self.folds, self.fold_size = val_folds(len(self.splits["val"]), run.val_selection)
        self.vocab = Vocabulary.build(self.splits["train"].captions, run.min_word_count)
        self.model = seeded_model(run.model, len(self.vocab), run.seed).to(dist.device)
        if dist.active and dist.device.type == "cuda":  # batch statistics of the global batch
            tuned = self.model.backbone.tuned
            self.model.backbone.tuned = torch.nn.SyncBatchNorm.convert_sync_batchnorm(tuned)
        self.sources = self._pair_sources(str(cache_root) if run.cache else None)
        self.total = sum(stage.epochs for stage in run.stages)
        fingerprint = {k: v for k, v in self.params.items() if k not in SETTINGS}
        self.loop = TrainLoop(
            self.out, total=self.total, unit="epoch", name=f"mhsan r={run.model.heads}",
            params=fingerprint, rank=dist.rank,
        )  # fmt: skip
        self.best: dict[str, float] = {"rsum": float("-inf"), "epoch": 0}
        self.stage, self.cached = -1, True
        self.optimizer: torch.optim.Optimizer | None = None
        self.ddp: torch.nn.Module = self.model
        self._saved_optimizer: dict[str, Any] = {}

    def _pair_sources(self, cache_root: str | None) -> dict[str, PairSource]:
        """Each split's pairs: training views (random crops, ``train_views``) and
        evaluation views, on this process's device, through the feature cache."""
        run = self.run
        return {
            name: PairSource(
                data,
                self.vocab,
                run.preprocess_train if name == "train" else run.preprocess_eval,
                self.model,
                views=run.train_views if name == "train" else 1,
                seed=run.seed,
                device=self.dist.device,
                cache_root=cache_root,
                cache_dtype=run.cache_dtype,
                workers=run.workers,
            )
            for name, data in self.splits.items()
        }

    def _check_parallel(self) -> None:
        cfg = self.run.model
        if cfg.rnn == "gru" and cfg.rnn_layers > 1 and cfg.rnn_dropout > 0:
            raise ReproError(
                "params.model.rnn: the gru's own dropout between layers cannot be drawn for the "
                "global batch; train it in one process or set rnn_dropout 0"
            )

    # -- checkpoints -----------------------------------------------------------------------
    def _restore(self, payload: dict[str, Any]) -> None:
        self.model.load_state_dict(payload["model"])
        self.best.update(payload["best"])
        self._saved_optimizer.update(stage=payload["stage"], state=payload["optimizer"])

    def start(self) -> int:
        """Resume from the run folder's checkpoint if there is one; the first epoch to train."""
        return self.loop.resume(self._restore, map_location=str(self.dist.device))

    # -- training --------------------------------------------------------------------------
    def enter_stage(self, index: int) -> None:
        """Train stage ``index``'s parts: their Adam (its state when resumed inside the saved
        stage), the feature caches keyed by the backbone's weights, the DDP wrapper."""
        self.stage = index
        stage = self.run.stages[index]
        self.cached = apply_stage(self.model, stage)
        for source in self.sources.values():
            if self.cached:
                source.check_cache()
        self.optimizer = adam(self.model, stage.lr)
        if self._saved_optimizer.get("stage") == index:  # resumed inside the saved stage
            self.optimizer.load_state_dict(self._saved_optimizer["state"])
        self._saved_optimizer.clear()
        if self.ddp is not self.model:  # the last stage's wrapper (and its hooks) go first
            self.ddp = self.model
            gc.collect()
        self.ddp = self.dist.wrap(self.model)

    def step(self, captions: Tensor, gen: torch.Generator, epoch: int, step: int) -> dict:
        """One optimiser step on the global batch ``captions`` (this rank's rows of it); its
        loss terms as floats (this rank's shares with several processes)."""
        part = self.dist.part if self.dist.active else None
        shard = Shard(self.dist.rank, self.dist.world, len(captions)) if part else None
        batch = self.sources["train"].batch(captions, gen, self.cached, not self.cached, part)
        stage = self.run.stages[self.stage]
        terms = train_step(
            self.ddp, self.optimizer, batch, self.run.loss, self.run.grad_clip,
            stage.negatives, shard,
        )  # fmt: skip
        return self.loop.check(terms, epoch, step)

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """Train one epoch (entering its stage if needed); its row of mean loss terms. A last
        global batch with fewer captions than processes is skipped (by every rank)."""
        index = stage_at(self.run.stages, epoch)
        if index != self.stage:  # entering a stage (or resuming inside one)
            self.enter_stage(index)
        gen = seed_period(self.run.seed, epoch)
        perm = torch.randperm(len(self.sources["train"].tokens), generator=gen)
        size = self.run.batch_size
        sums: dict[str, float] = {}
        steps, start = 0, time.perf_counter()
        for step, a in enumerate(range(0, len(perm), size), 1):
            if len(perm[a : a + size]) < self.dist.world:
                continue
            for k, v in self.step(perm[a : a + size], gen, epoch, step).items():
                sums[k] = sums.get(k, 0.0) + v
            steps += 1
        totals = dict(zip(sums, self.dist.sum(list(sums.values())), strict=True))
        stage = self.run.stages[index]
        row: dict[str, Any] = {"epoch": epoch, "stage": index + 1, "lr": stage.lr}
        row |= {k: v / steps for k, v in totals.items()}
        row["seconds"] = time.perf_counter() - start
        return row

    def end_epoch(self, epoch: int, row: dict[str, Any]) -> None:
        """Validate (keeping the best epoch's weights in ``best.pt``), record the row and
        checkpoint."""
        from repro.core.checkpoint import save_checkpoint

        run = self.run
        enc = encode(self.model, self.sources["val"], run.batch_size, self.cached, run.loss.penalty)
        val = validation_metrics(enc.images @ enc.texts.T, run.val_selection)
        row |= {f"val_{k}": v for k, v in val.items()}
        if row["val_rsum"] > self.best["rsum"]:
            self.best.update(rsum=row["val_rsum"], epoch=epoch)
            if self.dist.is_main:
                state = {k: v.cpu() for k, v in self.model.state_dict().items()}
                save_checkpoint(self.out / "best.pt", state)
        self.loop.record(row)
        payload = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "stage": self.stage,
            "best": self.best,
        }
        self.loop.save(epoch, payload)

    def fit(self) -> dict[str, Any]:
        """Train to the end of the schedule (resuming if a checkpoint is there), then
        :meth:`finish`."""
        start = self.start()
        t0 = time.perf_counter()
        for epoch in range(start, self.total + 1):
            self.end_epoch(epoch, self.train_epoch(epoch))
        return self.finish(time.perf_counter() - t0)

    # -- the end ---------------------------------------------------------------------------
    def finish(self, seconds: float) -> dict[str, Any]:
        """Rank 0: the best epoch's weights on the test split; ``model.pt`` and
        ``result.json`` (the other ranks return {})."""
        from repro.core.checkpoint import load_checkpoint

        if not self.dist.is_main:
            return {}
        run, splits = self.run, self.splits
        best = load_checkpoint(self.out / "best.pt", map_location=str(self.dist.device))
        self.model.load_state_dict(best)
        if self.cached:  # the best epoch's CNN weights key the test set's cache
            self.sources["test"].check_cache()
        enc = encode(
            self.model, self.sources["test"], run.batch_size, self.cached, run.loss.penalty
        )
        result = {
            "params": self.params,
            "metrics": split_metrics(enc.images @ enc.texts.T, run.protocols, run.test_images),
            "test_n": {"images": len(splits["test"]), "captions": 5 * len(splits["test"])},
            "test_penalty_image": enc.penalty_image,
            "test_penalty_text": enc.penalty_text,
            "best_epoch": self.best["epoch"],
            "best_val_rsum": self.best["rsum"],
            "val_selection": {
                "mode": run.val_selection,
                "folds": self.folds,
                "fold_images": self.fold_size,
            },  # fmt: skip
            "n_train_images": len(splits["train"]),
            "vocabulary_size": len(self.vocab),
            "train_seconds": seconds,
        }
        state = {k: v.cpu() for k, v in self.model.state_dict().items()}
        payload = {"model": state, "vocab": self.vocab.words, "params": self.params}
        result = self.loop.finish(payload, result)
        (self.out / "best.pt").unlink(missing_ok=True)
        return result


def train_run(
    params: Mapping[str, Any],
    split_file: str | Path,
    image_root: str | Path,
    out: str | Path,
    cache_root: str | Path | None = None,
) -> dict:
    """Train on the dataset's training splits (``train_splits``) through the staged schedule,
    select the epoch with the best validation rsum (``val_selection``; by default the mean over
    1,000-image folds, as MHSAN's code), evaluate it on ``test``; in 1 process, or in each of
    torchrun's (:func:`repro.core.distributed.session`). ``cache_root``: the feature cache's
    folder when ``params.cache`` is true.

    The run folder is :class:`repro.core.training.TrainLoop`'s (``checkpoint.pt`` after every
    epoch with the optimiser and the best epoch so far, exact resume, ``metrics.csv``,
    ``model.pt`` with the weights, vocabulary and params, ``result.json``), plus ``best.pt``,
    the best epoch's weights while the run lasts."""
    run = parse(RunParams, params, "params")
    with session(run.device, "mhsan.device") as dist:
        trainer = Trainer(run, split_file, image_root, out, dist, params, cache_root)
        return trainer.fit()
