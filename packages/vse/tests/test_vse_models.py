"""MHSAN encoders: unit-norm embeddings, masked padding, the SRU recurrence, the backbone file."""

from __future__ import annotations

import math

import pytest
import torch

from repro.core import ReproError
from repro.core.params import parse
from repro.vse import models
from repro.vse.models import ModelConfig, seeded_model
from repro.vse.sru import SRU, SRULayer, reverse_within_length

SMALL = dict(
    backbone="small",
    small_channels=8,
    dim=12,
    embed_dim=10,
    attn_hidden=6,
    heads=3,
    word_dim=5,
    rnn_layers=2,
    dropout=0.0,
    rnn_dropout=0.0,
)


def tiny(**kw) -> models.MHSAN:
    return seeded_model(parse(ModelConfig, {**SMALL, **kw}), vocab_size=20, seed=0).eval()


def captions() -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([5, 2, 3])
    tokens = torch.randint(2, 20, (3, 5), generator=torch.Generator().manual_seed(1))
    tokens[torch.arange(5)[None, :] >= lengths[:, None]] = 0
    return tokens, lengths


@pytest.mark.parametrize("rnn", ["sru", "gru"])
def test_embeddings_have_unit_norm_and_attention_rows_sum_to_one(rnn):
    model = tiny(rnn=rnn)
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        img, img_attn = model.embed_images(images)
        txt, txt_attn = model.embed_texts(*captions())
    assert img.shape == (4, 10) and txt.shape == (3, 10)
    torch.testing.assert_close(img.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(txt.norm(dim=1), torch.ones(3))
    assert img_attn.shape == (4, 3, 16)  # 3 heads over the 4x4 cells of a 32x32 image
    torch.testing.assert_close(img_attn.sum(-1), torch.ones(4, 3))
    torch.testing.assert_close(txt_attn.sum(-1), torch.ones(3, 3))


@pytest.mark.parametrize(("rnn", "bidirectional"), [("sru", False), ("sru", True), ("gru", True)])
def test_padding_never_receives_attention(rnn, bidirectional):
    model = tiny(rnn=rnn, bidirectional=bidirectional)
    tokens, lengths = captions()
    with torch.no_grad():
        emb, attn = model.embed_texts(tokens, lengths)
        pad = torch.arange(5)[None, :] >= lengths[:, None]
        assert (attn[pad[:, None, :].expand_as(attn)] == 0).all()
        # other ids in the padded slots, or more padding, change nothing
        noisy = torch.where(pad, torch.randint(2, 20, tokens.shape), tokens)
        torch.testing.assert_close(model.embed_texts(noisy, lengths)[0], emb)
        longer = torch.cat([tokens, torch.zeros(3, 4, dtype=torch.long)], dim=1)
        torch.testing.assert_close(model.embed_texts(longer, lengths)[0], emb)
        # a caption alone gives the same embedding as in the padded batch
        alone = model.embed_texts(tokens[1:2, :2], lengths[1:2])[0]
        torch.testing.assert_close(alone[0], emb[1])


def test_sru_step_by_hand():
    """One unit, identity skip, W = 1 for the candidate and 0 for the gates, v_f = 1, v_r = -1."""
    layer = SRULayer(1, 1)
    with torch.no_grad():
        layer.weight.weight.copy_(torch.tensor([[1.0], [0.0], [0.0]]))
        layer.v.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1))
        layer.b.zero_()
    h = layer(torch.tensor([2.0, 4.0]).view(2, 1, 1), torch.tensor([2]))
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    c1 = 0.5 * 2  # f1 = r1 = sigmoid(0)
    h1 = 0.5 * math.tanh(c1) + 0.5 * 2
    c2 = sig(c1) * c1 + (1 - sig(c1)) * 4  # f2 = sigmoid(v_f c1)
    h2 = sig(-c1) * math.tanh(c2) + (1 - sig(-c1)) * 4  # r2 = sigmoid(v_r c1)
    torch.testing.assert_close(h.flatten(), torch.tensor([h1, h2]))


def test_bidirectional_sru_backward_half_is_a_forward_pass_over_the_reversed_caption():
    torch.manual_seed(0)
    bi = SRULayer(6, 5, bidirectional=True)
    back = SRULayer(6, 5)  # 4 matrices (projected skip) in both
    k = bi.n_mats
    with torch.no_grad():
        back.weight.weight.copy_(bi.weight.weight[5 * k :])
        back.v.copy_(bi.v[:, 1:])
        back.b.copy_(torch.randn(2, 1, 5))
        bi.b[:, 1:] = back.b
    x, lengths = torch.randn(7, 3, 6), torch.tensor([7, 3, 5])
    with torch.no_grad():
        out = bi(x, lengths)[..., 5:]
        for b, n in enumerate(lengths.tolist()):
            ref = back(x[:n, b : b + 1].flip(0), lengths[b : b + 1]).flip(0)
            torch.testing.assert_close(out[:n, b], ref[:, 0])


def test_reverse_within_length():
    x = torch.arange(8).view(4, 2)  # columns: sequences of lengths 4 and 2
    rev = reverse_within_length(x, torch.tensor([4, 2]))
    assert rev[:, 0].tolist() == [6, 4, 2, 0] and rev[:, 1].tolist() == [3, 1, 5, 7]
    assert torch.equal(reverse_within_length(rev, torch.tensor([4, 2])), x)


def test_sru_variational_dropout_uses_one_mask_over_time():
    sru = SRU(4, 4, num_layers=1, dropout=0.0, rnn_dropout=0.5).train()
    seen = []
    sru.layers[0].register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    sru(torch.ones(6, 2, 4), torch.tensor([6, 6]))
    dropped = seen[0] == 0
    assert dropped.any() and (dropped == dropped[0]).all()  # same units dropped at every step


def test_config_errors_name_the_key():
    with pytest.raises(ReproError, match=r"^model\.rnn: 'lstm' is not one of 'sru', 'gru'$"):
        parse(ModelConfig, {"rnn": "lstm"}, "model")
    with pytest.raises(ReproError, match="^model: unknown key 'head'"):
        parse(ModelConfig, {"head": 3}, "model")
    with pytest.raises(ReproError, match=r"^model\.heads: must be at least 1, got 0$"):
        parse(ModelConfig, {"heads": 0}, "model")
    with pytest.raises(ReproError, match=r"^model\.dropout: must be a number, not str"):
        parse(ModelConfig, {"dropout": "0.5"}, "model")


def test_backbone_weights_file_is_loaded_with_weights_only(tmp_path, monkeypatch):
    """With a ResNet-18-shaped stand-in for ResNet-152 (building the real one takes seconds)."""
    import torchvision.models

    def stand_in(weights=None):
        from torchvision.models.resnet import BasicBlock, ResNet

        return ResNet(BasicBlock, [1, 1, 1, 1])

    monkeypatch.setattr(torchvision.models, "resnet152", stand_in)
    state = stand_in().state_dict()
    state["conv1.weight"] = torch.full_like(state["conv1.weight"], 0.5)
    torch.save(state, tmp_path / "good.pt")
    backbone = models.resnet152_backbone(str(tmp_path / "good.pt"))
    assert (backbone.frozen[0].weight == 0.5).all()
    assert not any(p.requires_grad for p in backbone.frozen.parameters())

    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "wrong.pt")
    with pytest.raises(ReproError, match="not a torchvision ResNet-152 state_dict"):
        models.resnet152_backbone(str(tmp_path / "wrong.pt"))
    torch.save({"net": stand_in()}, tmp_path / "pickled.pt")  # a module: refused by weights_only
    with pytest.raises(ReproError, match="pickled.pt"):
        models.resnet152_backbone(str(tmp_path / "pickled.pt"))
    with pytest.raises(ReproError, match="not found"):
        models.resnet152_backbone(str(tmp_path / "missing.pt"))


def test_frozen_backbone_stays_in_eval_mode():
    model = tiny()
    model.train()
    assert not model.backbone.frozen.training and not model.backbone.tuned.training
    model.backbone.tuning = True
    model.train()
    assert model.backbone.tuned.training and not model.backbone.frozen.training
