"""Feature cache and staged training: a cached stage trains exactly as an uncached one."""

from __future__ import annotations

import copy

import pytest
import torch

from repro.core import ReproError
from repro.core.params import parse
from repro.vse.cache import FeatureCache, cache_key
from repro.vse.data import (
    CaptionedImages,
    Preprocess,
    SyntheticConfig,
    Vocabulary,
    load_karpathy,
    make_synthetic,
)
from repro.vse.losses import attention_penalty
from repro.vse.models import ModelConfig, seeded_model
from repro.vse.train import (
    PAPER_STAGES,
    LossConfig,
    PairSource,
    Stage,
    apply_stage,
    encode,
    train_step,
)

SMALL = dict(
    backbone="small",
    small_channels=8,
    dim=12,
    embed_dim=10,
    attn_hidden=6,
    heads=3,
    word_dim=5,
    rnn_layers=1,
)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    make_synthetic(root, SyntheticConfig(train=6, val=0, test=0, image_size=32, seed=3))
    data = load_karpathy(root / "dataset_synthetic.json", root, ["train"])
    return data, Vocabulary.build(data.captions)


def test_key_follows_weights_and_preprocessing():
    model = seeded_model(parse(ModelConfig, SMALL), 10, 0)
    same = seeded_model(parse(ModelConfig, SMALL), 10, 0)
    spec = Preprocess().spec()
    key = cache_key(model.backbone, spec)
    assert cache_key(same.backbone, spec) == key
    assert cache_key(model.backbone, Preprocess(kind="resize").spec()) != key
    with torch.no_grad():
        same.backbone.tuned[0][0].weight[0, 0, 0, 0] += 1e-3
    assert cache_key(same.backbone, spec) != key


@pytest.mark.parametrize("on_disk", [False, True])
def test_each_view_is_computed_once(tmp_path, on_disk):
    calls = []

    def compute(items, views):
        calls.append(list(zip(items, views, strict=True)))
        return torch.tensor([[10.0 * i + v] for i, v in zip(items, views, strict=True)])

    root = tmp_path if on_disk else None
    cache = FeatureCache("k", items=4, views=2, root=root)
    out = cache.features(torch.tensor([1, 3, 1]), torch.tensor([0, 1, 0]), compute)
    assert out.flatten().tolist() == [10.0, 31.0, 10.0] and calls == [[(1, 0), (3, 1)]]
    out = cache.features(torch.tensor([3, 2]), torch.tensor([1, 1]), compute)
    assert out.flatten().tolist() == [31.0, 21.0] and calls[-1] == [(2, 1)]
    assert cache.computed == 3
    if on_disk:  # a new object on the same folder reads what the first wrote
        again = FeatureCache("k", items=4, views=2, root=root)
        assert again.features(torch.tensor([1, 2]), torch.tensor([0, 1]), compute).tolist() == [
            [10.0],
            [21.0],
        ]
        assert again.computed == 0
        assert FeatureCache("k", items=5, views=2, root=root).dir != again.dir  # own folder
        meta = again.dir / "meta.json"
        meta.write_text(meta.read_text().replace('"k"', '"other"'))
        with pytest.raises(ReproError, match="made for"):
            FeatureCache("k", items=4, views=2, root=root)
    with pytest.raises(ReproError, match="holds 4 images x 2 views"):
        cache.features(torch.tensor([4]), torch.tensor([0]), compute)


def test_two_runs_starting_together_share_one_file(tmp_path):
    first = FeatureCache("k", items=3, views=1, root=tmp_path)
    second = FeatureCache("k", items=3, views=1, root=tmp_path)  # before either has written
    zero = torch.zeros(1, dtype=torch.long)
    assert first.features(zero, zero, lambda i, v: torch.full((1, 2), 7.0)).sum() == 14
    # the second allocates after the first wrote: it must open that file, not truncate it
    second.features(zero + 1, zero, lambda i, v: torch.full((1, 2), 5.0))
    assert first.features(zero, zero, None).tolist() == [[7.0, 7.0]]
    assert second.features(zero, zero, lambda i, v: torch.full((1, 2), 7.0)).sum() == 14


def test_float16_storage_rounds_the_features():
    feats = torch.randn(3, 4, 2, 2, generator=torch.Generator().manual_seed(0))
    cache = FeatureCache("k", items=3, views=1, dtype="float16")
    out = cache.features(torch.arange(3), torch.zeros(3, dtype=torch.long), lambda i, v: feats[i])
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, feats.half().float())
    with pytest.raises(ReproError, match="cache dtype"):
        FeatureCache("k", items=3, views=1, dtype="int8")


def test_stage_sets_trainable_parts_and_cache_use():
    model = seeded_model(parse(ModelConfig, SMALL), 10, 0)
    assert apply_stage(model, PAPER_STAGES[0]) is True
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"image_head.proj.weight", "image_head.proj.bias"}
    assert apply_stage(model, PAPER_STAGES[1]) is True
    assert all(p.requires_grad for p in model.text.parameters())
    assert not any(p.requires_grad for p in model.image_head.attention.parameters())
    assert apply_stage(model, PAPER_STAGES[2]) is False
    assert all(p.requires_grad for p in model.backbone.tuned.parameters())
    assert not any(p.requires_grad for p in model.backbone.frozen.parameters())
    model.train()
    assert model.backbone.tuned.training and not model.backbone.frozen.training


def test_stage_errors_name_the_key():
    with pytest.raises(ReproError, match=r"^stages\[0\]\.train: unknown part 'words'"):
        parse(Stage, {"epochs": 1, "lr": 0.1, "train": ["words"]}, "stages[0]")
    with pytest.raises(ReproError, match=r"^stages\[1\]\.lr: required"):
        parse(Stage, {"epochs": 1, "train": ["text"]}, "stages[1]")
    with pytest.raises(ReproError, match=r"^stage\.negatives: 'some' is not one of"):
        parse(Stage, {"epochs": 1, "lr": 1, "train": ["text"], "negatives": "some"}, "stage")
    with pytest.raises(ReproError, match=r"^stage\.train: a stage must train at least one"):
        parse(Stage, {"epochs": 1, "lr": 1, "train": []}, "stage")
    with pytest.raises(ReproError, match=r"^loss\.penalty: 'both' is not one of"):
        parse(LossConfig, {"penalty": "both"}, "loss")
    stage = parse(Stage, {"epochs": 2, "lr": 1, "train": ["text"]}, "stage")
    assert stage == Stage(2, 1.0, ("text",)) and isinstance(stage.lr, float)


@pytest.mark.parametrize("view_kind", ["none", "random_resized_crop"])
def test_cached_stage_gives_the_uncached_losses(synthetic, view_kind):
    data, vocab = synthetic
    pre = Preprocess(kind=view_kind, size=(24, 24))
    stage = Stage(1, 1e-2, ("image_proj", "image_attention", "text"))
    runs = {}
    for cached in (True, False):
        torch.manual_seed(0)  # dropout masks: the same in both runs
        model = seeded_model(parse(ModelConfig, SMALL), len(vocab), 0)
        assert apply_stage(model, stage)
        source = PairSource(data, vocab, pre, model, views=3, seed=5, workers=1)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        gen = torch.Generator().manual_seed(1)
        losses = []
        for step in range(3):  # step 0 fills the cache, later steps read it
            caps = torch.randperm(30, generator=torch.Generator().manual_seed(step))[:8]
            batch = source.batch(caps, gen, cached=cached)
            assert (batch.features is not None) == cached
            terms = train_step(model, opt, batch, LossConfig())
            losses.append({k: float(v) for k, v in terms.items()})
        runs[cached] = (losses, model.state_dict(), source)
    for a, b in zip(runs[True][0], runs[False][0], strict=True):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)
    for name, value in runs[True][1].items():
        torch.testing.assert_close(value, runs[False][1][name], rtol=1e-5, atol=1e-6)
    cache = runs[True][2].cache()
    assert 0 < cache.computed <= 6 * 3  # each (image, view) computed at most once


def test_train_step_lowers_the_loss_on_a_fixed_batch(synthetic):
    data, vocab = synthetic
    model = seeded_model(
        parse(ModelConfig, {**SMALL, "dropout": 0.0, "rnn_dropout": 0.0}), len(vocab), 0
    )
    apply_stage(model, Stage(1, 1e-2, ("image_proj", "image_attention", "text")))
    source = PairSource(data, vocab, Preprocess(), model, workers=1)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = source.batch(torch.arange(0, 30, 5), torch.Generator(), cached=True)
    first = train_step(model, opt, batch, LossConfig(), negatives="all")
    assert set(first) == {"loss", "triplet", "penalty_image", "penalty_text"}
    for _ in range(15):
        last = train_step(model, opt, batch, LossConfig(), negatives="all")
    assert last["loss"] < 0.5 * first["loss"]


def test_encode_is_the_same_with_and_without_cache(synthetic):
    data, vocab = synthetic
    model = seeded_model(parse(ModelConfig, SMALL), len(vocab), 0)
    source = PairSource(data, vocab, Preprocess(), copy.deepcopy(model), workers=1)
    a = encode(source.model, source, batch_size=4, cached=True)
    b = encode(source.model, source, batch_size=4, cached=False)
    assert a.images.shape == (6, 10) and a.texts.shape == (30, 10)
    torch.testing.assert_close(a.images, b.images)
    torch.testing.assert_close(a.texts, b.texts)
    # the mean penalty over the split equals the penalty of all attention maps at once
    with torch.no_grad():
        source.model.eval()
        _, attn = source.model.embed_texts(source.tokens, source.lengths)
    assert a.penalty_text == pytest.approx(float(attention_penalty(attn)), rel=1e-5)


def test_splits_of_equal_size_and_other_seeds_do_not_share_a_disk_cache(synthetic, tmp_path):
    """COCO's val and test (5,000 images each) go through the same evaluation views: each
    must read its own features. Random crops of another seed are other views."""
    data, vocab = synthetic
    model = seeded_model(parse(ModelConfig, SMALL), len(vocab), 0)
    half = [
        CaptionedImages(data.paths[a : a + 3], data.captions[5 * a : 5 * a + 15]) for a in (0, 3)
    ]
    root = str(tmp_path / "cache")

    def source(part, pre=None, seed=0):
        pre = pre or Preprocess()
        return PairSource(part, vocab, pre, model, seed=seed, cache_root=root, workers=1)

    val, test = source(half[0]), source(half[1])
    a = encode(model, val, batch_size=4, cached=True)
    b = encode(model, test, batch_size=4, cached=True)
    assert val.cache().dir != test.cache().dir and test.cache().computed == 3
    assert not torch.allclose(a.images, b.images)
    assert source(half[0]).cache().dir == val.cache().dir  # a rerun reads it back
    crop = Preprocess(kind="random_resized_crop", size=(24, 24))
    assert source(half[0], crop, 0).cache().dir != source(half[0], crop, 1).cache().dir
    assert source(half[0], Preprocess(), 1).cache().dir == val.cache().dir  # no random views
