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

import dataclasses
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from repro.core import ReproError
from repro.core.config import check_keys
from repro.vse.cache import FeatureCache, cache_key
from repro.vse.data import CaptionedImages, ImageViews, Preprocess, Vocabulary
from repro.vse.losses import NEGATIVES, PENALTIES, attention_penalty, mhsan_loss
from repro.vse.models import MHSAN, PARTS, ModelConfig

VIEW_SPACE = 2**31 - 1  # view ids drawn while the CNN trains: in effect a fresh crop each time


@dataclass(frozen=True)
class Stage:
    """Epochs at one learning rate training the listed parts; ``negatives`` selects the triplet
    loss's negatives (``hardest``: MHSAN; ``all``: a sum-of-hinges warm-up, see
    :func:`repro.vse.losses.triplet_loss`)."""

    epochs: int
    lr: float
    train: tuple[str, ...]
    negatives: str = "hardest"

    @classmethod
    def from_dict(cls, params: dict, where: str = "stage") -> Stage:
        check_keys(params, ["epochs", "lr", "train", "negatives"], where)
        for key in ("epochs", "lr", "train"):
            if key not in params:
                raise ReproError(f"{where}: missing key '{key}'")
        unknown = [p for p in params["train"] if p not in PARTS]
        if unknown:
            raise ReproError(
                f"{where}.train: unknown part '{unknown[0]}' (known: {', '.join(PARTS)})"
            )
        negatives = str(params.get("negatives", "hardest"))
        stage = cls(int(params["epochs"]), float(params["lr"]), tuple(params["train"]), negatives)
        if not stage.train:
            raise ReproError(f"{where}.train: a stage must train at least one part")
        if stage.negatives not in NEGATIVES:
            raise ReproError(
                f"{where}.negatives: '{stage.negatives}' is not {' or '.join(NEGATIVES)}"
            )
        return stage

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
    penalty: str = "paper"  # paper (squared Frobenius norm) | code (norm)

    @classmethod
    def from_dict(cls, params: dict) -> LossConfig:
        check_keys(params, [f.name for f in dataclasses.fields(cls)], "loss")
        cfg = cls(**params)
        if cfg.penalty not in PENALTIES:
            raise ReproError(f"loss.penalty: '{cfg.penalty}' is not {' or '.join(PENALTIES)}")
        return cfg


@dataclass
class Batch:
    """Matching pairs: either backbone feature maps or images, and padded captions."""

    tokens: Tensor
    lengths: Tensor
    features: Tensor | None = None
    images: Tensor | None = None


def train_step(
    model: MHSAN,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    loss: LossConfig,
    grad_clip: float = 0.0,
    negatives: str = "hardest",
) -> dict[str, Tensor]:
    """One optimiser step on a batch; returns the named loss terms, detached scalars (``loss``
    is the total; :meth:`repro.core.training.TrainLoop.check` turns them into floats)."""
    model.train()
    if batch.features is not None:
        img, img_attn = model.embed_features(batch.features)
    else:
        img, img_attn = model.embed_images(batch.images)
    txt, txt_attn = model.embed_texts(batch.tokens, batch.lengths)
    terms = mhsan_loss(
        img, txt, img_attn, txt_attn, loss.margin, loss.weight, loss.penalty, negatives
    )
    optimizer.zero_grad(set_to_none=True)
    terms["loss"].backward()
    if grad_clip > 0:
        params = [p for p in model.parameters() if p.requires_grad]
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    return {k: v.detach() for k, v in terms.items()}


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
        self, captions: Tensor, gen: torch.Generator, cached: bool, fresh_views: bool = False
    ) -> Batch:
        """The pairs of ``captions`` (indices). Each image's view is drawn from ``gen`` among
        the ``views`` fixed ones, or with ``fresh_views`` (while the CNN trains) among 2^31 - 1,
        in effect a new random crop every time. ``cached``: feature maps from the cache."""
        if cached and fresh_views:
            raise ValueError("fresh views cannot come from the feature cache")
        items = captions // 5
        span = VIEW_SPACE if fresh_views and self.preprocess.random else self.views
        views = torch.randint(span, (len(items),), generator=gen)
        caps = captions.to(self.device)
        lengths = self.lengths[caps]
        tokens = self.tokens[caps, : int(lengths.max())]
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


@dataclass(frozen=True)
class RunParams:
    """Everything that determines a training run's output (the ``--params`` of ``train``)."""

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
    cache_dtype: str = "float32"
    protocols: tuple[str, ...] = ("full",)  # protocols.PROTOCOLS, or "full": the whole test set
    test_images: int | None = None  # every protocol's test-set size instead of the official one
    # model selection: best mean validation rsum over 1,000-image folds (MHSAN's code), or over
    # the whole validation split as one set (protocols.val_folds)
    val_selection: str = "folds"
    # the Karpathy splits that train: None (the dataset's data.TRAIN_SPLITS), a list of split
    # names, or "outside_eval" (every image whose split is neither val nor test)
    train_splits: tuple[str, ...] | str | None = None

    @classmethod
    def from_dict(cls, params: dict) -> RunParams:
        from repro.vse.data import TRAIN_SPLITS, check_train_splits
        from repro.vse.protocols import PROTOCOLS, VAL_SELECTIONS, expected

        check_keys(params, [f.name for f in dataclasses.fields(cls)], "params")
        for key in ("dataset", "model", "stages"):
            if key not in params:
                raise ReproError(f"params: missing key '{key}'")
        p = dict(params)
        if p["dataset"] not in TRAIN_SPLITS:
            raise ReproError(
                f"params.dataset: '{p['dataset']}' is not one of {', '.join(TRAIN_SPLITS)}"
            )
        p["model"] = ModelConfig.from_dict(p["model"])
        p["stages"] = tuple(Stage.from_dict(s, f"stages[{i}]") for i, s in enumerate(p["stages"]))
        if not p["stages"]:
            raise ReproError("params.stages: at least one stage")
        if "loss" in p:
            p["loss"] = LossConfig.from_dict(p["loss"])
        for key in ("preprocess_train", "preprocess_eval"):
            if key in p:
                p[key] = Preprocess.from_dict(p[key])
        p["protocols"] = tuple(p.get("protocols", ("full",)))
        bad = [x for x in p["protocols"] if x != "full" and x not in PROTOCOLS]
        if bad:
            raise ReproError(
                f"params.protocols: unknown '{bad[0]}' (known: full, {', '.join(PROTOCOLS)})"
            )
        if p.get("val_selection", "folds") not in VAL_SELECTIONS:
            raise ReproError(
                f"params.val_selection: '{p['val_selection']}' is not {' or '.join(VAL_SELECTIONS)}"
            )
        try:
            p["train_splits"] = check_train_splits(p.get("train_splits"))
        except ReproError as exc:
            raise ReproError(f"params.{exc}") from None
        for protocol in p["protocols"]:  # a test_images the folds do not divide
            try:
                expected(protocol, p.get("test_images"))
            except ReproError as exc:
                raise ReproError(f"params.{exc}") from None
        return cls(**p)


def split_metrics(
    sims: Tensor, protocols: Sequence[str], test_images: int | None = None
) -> dict[str, dict[str, float]]:
    """Metrics of each protocol on one test similarity matrix (``test_images``: the size every
    protocol expects instead of the official one)."""
    from repro.vse.evaluate import protocol_metrics

    return {p: protocol_metrics(sims, p, test_images) for p in protocols}


def stage_at(stages: Sequence[Stage], epoch: int) -> int:
    """Index of the stage that 1-based ``epoch`` belongs to."""
    end = 0
    for i, stage in enumerate(stages):
        end += stage.epochs
        if epoch <= end:
            return i
    raise ValueError(f"epoch {epoch} is past the schedule's {end} epochs")


def train_run(
    params: dict,
    split_file: str | Path,
    image_root: str | Path,
    out: str | Path,
    device: str = "cpu",
    cache_root: str | Path | None = None,
) -> dict:
    """Train on the dataset's training splits (``train_splits``) through the staged schedule,
    select the epoch with the best validation rsum (``val_selection``; by default the mean over
    1,000-image folds, as MHSAN's code), evaluate it on ``test``.

    The run folder is :class:`repro.core.training.TrainLoop`'s (``checkpoint.pt`` after every
    epoch with the optimiser and the best epoch so far, exact resume, ``metrics.csv``,
    ``model.pt`` with the weights, vocabulary and params, ``result.json``), plus ``best.pt``,
    the best epoch's weights while the run lasts."""
    from repro.core.checkpoint import load_checkpoint, save_checkpoint
    from repro.core.device import resolve_device
    from repro.core.training import TrainLoop, seed_period
    from repro.vse.data import load_karpathy, load_train
    from repro.vse.evaluate import validation_metrics
    from repro.vse.models import seeded_model
    from repro.vse.protocols import check_size, val_folds

    run = RunParams.from_dict(params)
    dev = resolve_device(device, "device")
    out = Path(out)
    splits = {
        "train": load_train(split_file, image_root, run.dataset, run.train_splits),
        "val": load_karpathy(split_file, image_root, ["val"]),
        "test": load_karpathy(split_file, image_root, ["test"]),
    }
    for protocol in run.protocols:  # a test split of the wrong size stops before training
        check_size(protocol, len(splits["test"]), run.test_images)
    folds, fold_size = val_folds(len(splits["val"]), run.val_selection)  # likewise the val split
    vocab = Vocabulary.build(splits["train"].captions, run.min_word_count)
    model = seeded_model(run.model, len(vocab), run.seed).to(dev)
    root = str(cache_root) if cache_root is not None else None
    sources = {
        name: PairSource(
            data,
            vocab,
            run.preprocess_train if name == "train" else run.preprocess_eval,
            model,
            views=run.train_views if name == "train" else 1,
            seed=run.seed,
            device=dev,
            cache_root=root,
            cache_dtype=run.cache_dtype,
            workers=run.workers,
        )
        for name, data in splits.items()
    }
    total = sum(stage.epochs for stage in run.stages)
    loop = TrainLoop(
        out, total=total, unit="epoch", name=f"mhsan r={run.model.heads}", params=params
    )
    best = {"rsum": float("-inf"), "epoch": 0}
    saved_optimizer: dict = {}

    def restore(payload: dict) -> None:
        model.load_state_dict(payload["model"])
        best.update(payload["best"])
        saved_optimizer.update(stage=payload["stage"], state=payload["optimizer"])

    start = loop.resume(restore, map_location=str(dev))
    current, optimizer, cached = -1, None, True
    t0 = time.perf_counter()
    for epoch in range(start, total + 1):
        index = stage_at(run.stages, epoch)
        stage = run.stages[index]
        if index != current:  # entering a stage (or resuming inside one)
            current = index
            cached = apply_stage(model, stage)
            for source in sources.values():
                if cached:
                    source.check_cache()
            optimizer = adam(model, stage.lr)
            if saved_optimizer.get("stage") == index:  # resumed inside the saved stage
                optimizer.load_state_dict(saved_optimizer["state"])
            saved_optimizer.clear()
        gen = seed_period(run.seed, epoch)
        train = sources["train"]
        perm = torch.randperm(len(train.tokens), generator=gen)
        sums: dict[str, float] = {}
        steps, start_epoch = 0, time.perf_counter()
        for step, a in enumerate(range(0, len(perm), run.batch_size), 1):
            batch = train.batch(perm[a : a + run.batch_size], gen, cached, not cached)
            terms = train_step(model, optimizer, batch, run.loss, run.grad_clip, stage.negatives)
            for k, v in loop.check(terms, epoch, step).items():
                sums[k] = sums.get(k, 0.0) + v
            steps += 1
        row: dict = {"epoch": epoch, "stage": index + 1, "lr": stage.lr}
        row |= {k: v / steps for k, v in sums.items()}
        row["seconds"] = time.perf_counter() - start_epoch
        enc = encode(model, sources["val"], run.batch_size, cached, run.loss.penalty)
        val = validation_metrics(enc.images @ enc.texts.T, run.val_selection)
        row |= {f"val_{k}": v for k, v in val.items()}
        if row["val_rsum"] > best["rsum"]:
            best.update(rsum=row["val_rsum"], epoch=epoch)
            save_checkpoint(out / "best.pt", {k: v.cpu() for k, v in model.state_dict().items()})
        loop.record(row)
        payload = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "stage": index,
            "best": best,
        }
        loop.save(epoch, payload)
    seconds = time.perf_counter() - t0
    model.load_state_dict(load_checkpoint(out / "best.pt", map_location=str(dev)))
    if cached:  # the best epoch's CNN weights key the test set's cache
        sources["test"].check_cache()
    enc = encode(model, sources["test"], run.batch_size, cached, run.loss.penalty)
    result = {
        "params": params,
        "metrics": split_metrics(enc.images @ enc.texts.T, run.protocols, run.test_images),
        "test_n": {"images": len(splits["test"]), "captions": 5 * len(splits["test"])},
        "test_penalty_image": enc.penalty_image,
        "test_penalty_text": enc.penalty_text,
        "best_epoch": best["epoch"],
        "best_val_rsum": best["rsum"],
        "val_selection": {"mode": run.val_selection, "folds": folds, "fold_images": fold_size},
        "n_train_images": len(splits["train"]),
        "vocabulary_size": len(vocab),
        "train_seconds": seconds,
    }
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    result = loop.finish({"model": state, "vocab": vocab.words, "params": params}, result)
    (out / "best.pt").unlink(missing_ok=True)
    return result
