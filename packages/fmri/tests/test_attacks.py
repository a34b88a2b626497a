"""FGSM and PGD: budget, valid range, loss increase, a hand-computed FGSM step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from repro.distill.models import build_model
from repro.fmri.attacks import PixelModel, attack, fgsm, pgd, quantize
from repro.fmri.params import AttackParams


def _batch(digits, n=64):
    images, labels = digits
    x = torch.from_numpy(images[:n]).permute(0, 3, 1, 2).contiguous()
    return x, torch.from_numpy(labels[:n])


def _random_cnn(seed=0):
    torch.manual_seed(seed)
    return PixelModel(build_model("resnet8", 10, 1), [0.5], [0.5]).eval()


@pytest.fixture(scope="module")
def linear_softmax(digits):
    """Softmax regression on the pixels, trained to ~95%: a model whose loss can rise."""
    images, labels = digits
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    model = PixelModel(net, [0.5], [0.5])
    x = torch.from_numpy(images[:1400]).permute(0, 3, 1, 2).float()
    y = torch.from_numpy(labels[:1400])
    opt = torch.optim.Adam(net.parameters(), 0.05)
    for _ in range(100):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _loss(model, x, y):
    with torch.no_grad():
        return F.cross_entropy(model(x.float()), y, reduction="none")


def test_fgsm_equals_a_hand_computed_sign_gradient_step():
    rng = np.random.default_rng(0)
    d, k, mean, std, eps = 12, 4, 0.4, 0.3, 7.0
    w, b = rng.normal(size=(k, d)), rng.normal(size=k)
    x = rng.integers(0, 256, size=(5, d)).astype(np.float64)
    y = rng.integers(0, k, size=5)
    # by hand: z = W((x/255 - m)/s) + b, dCE/dx = W^T (softmax(z) - onehot(y)) / (255 s)
    z = ((x / 255 - mean) / std) @ w.T + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    grad = (p - np.eye(k)[y]) @ w / (255 * std)
    expected = np.clip(x + eps * np.sign(grad), 0, 255)

    lin = torch.nn.Linear(d, k).double()
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w))
        lin.bias.copy_(torch.from_numpy(b))
    model = PixelModel(lin, [mean], [std]).double()
    model.mean, model.std = model.mean.view(1, 1), model.std.view(1, 1)
    got = fgsm(model, torch.from_numpy(x), torch.from_numpy(y), eps).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert np.any(got != x)


def test_attacks_stay_within_epsilon_and_the_pixel_range_and_raise_the_loss(digits, linear_softmax):
    x, y = _batch(digits)
    model = linear_softmax
    before = _loss(model, x, y)
    for params in (
        AttackParams(method="fgsm", epsilon=8),
        AttackParams(method="pgd", epsilon=8, step_size=2, steps=5),
        AttackParams(method="pgd", epsilon=5.5, step_size=1.5, steps=4, random_start=False),
    ):
        adv = attack(model, x, y, params, torch.Generator().manual_seed(0), batch_size=16)
        assert adv.dtype == torch.uint8 and adv.shape == x.shape
        diff = (adv.int() - x.int()).abs()
        assert diff.max() <= params.epsilon and diff.max() == int(params.epsilon)
        after = _loss(model, adv, y)
        assert after.mean() > 1.5 * before.mean(), params
        assert (after > before).all(), params


def test_pgd_raises_the_loss_of_a_conv_zoo_model(digits, linear_softmax):
    x, y = _batch(digits, 16)
    model = _random_cnn()
    params = AttackParams(method="pgd", epsilon=8, step_size=2, steps=3)
    adv = attack(model, x, y, params, torch.Generator().manual_seed(0))
    assert (adv.int() - x.int()).abs().max() <= 8
    assert (_loss(model, adv, y) > _loss(model, x, y)).all()


def test_float_pgd_respects_the_ball_before_rounding(digits, linear_softmax):
    x, y = _batch(digits, 16)
    model = linear_softmax
    adv = pgd(model, x.float(), y, 6.3, 2.0, 3, True, torch.Generator().manual_seed(1))
    assert (adv - x.float()).abs().max() <= 6.3 + 1e-4
    assert adv.min() >= 0 and adv.max() <= 255
    q = quantize(adv, x.float(), 6.3)
    assert (q.int() - x.int()).abs().max() <= 6


def test_pgd_is_seeded_and_does_not_depend_on_the_batch_size(digits, linear_softmax):
    x, y = _batch(digits, 24)
    model = linear_softmax
    params = AttackParams(method="pgd", epsilon=8, step_size=2, steps=2)
    a = attack(model, x, y, params, torch.Generator().manual_seed(5), batch_size=24)
    b = attack(model, x, y, params, torch.Generator().manual_seed(5), batch_size=7)
    c = attack(model, x, y, params, torch.Generator().manual_seed(6), batch_size=24)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.slow
def test_pgd_beats_fgsm_on_a_trained_network(digits, tiny_trainer):
    images, labels = digits
    model = PixelModel(tiny_trainer("resnet8", images[:1400], labels[:1400], 60, 0), [0.5], [0.5])
    x = torch.from_numpy(images[1400:1600]).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(labels[1400:1600])
    gen = torch.Generator().manual_seed(0)
    acc = {}
    for method in ("fgsm", "pgd"):
        adv = attack(model, x, y, AttackParams(method=method, epsilon=32, step_size=4), gen)
        with torch.no_grad():
            acc[method] = (model(adv.float()).argmax(1) == y).float().mean().item()
    with torch.no_grad():
        clean = (model(x.float()).argmax(1) == y).float().mean().item()
    assert clean > 0.8
    assert acc["pgd"] < acc["fgsm"] < clean
