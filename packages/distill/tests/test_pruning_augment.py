"""R2KD's pruned-blend teacher and the seeded batch augmentations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn
from torchvision.transforms import v2

from repro.core import ReproError
from repro.distill.arraydata import CIFAR100_STATS, BatchAugment
from repro.distill.augment import (
    AUGMENTATIONS,
    autoaugment,
    autoaugment_normalised,
    cutmixpick,
    cutout,
    normalise,
    teacher_entropy,
    to_uint8,
)
from repro.distill.losses.functional import cutmix, kd_loss, mixup
from repro.distill.methods.base import Distiller
from repro.distill.pruning import BlendedTeacher, prunable_layers, pruned_copy

# ---------------------------------------------------------------- pruning


class TupleNet(nn.Module):
    """Conv (108 weights) + BN + three Linear layers (20, 25, 15 weights); returns a tuple."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.fc1 = nn.Linear(4, 5)
            self.fc2 = nn.Linear(5, 5)
            self.fc3 = nn.Linear(5, 3, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        f = torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(f))))), {"feat": f}


BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def _images(n: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


# torch's l1_unstructured prunes round(rate * numel) entries, with Python's round (half to
# even): 108 -> round(10.8) = 11, 20 -> 2, 25 -> round(2.5) = 2, 15 -> round(1.5...) = 2.
EXPECTED_ZEROS = {"conv": 11, "fc1": 2, "fc2": 2, "fc3": 2}


def test_pruned_copy_zeroes_the_smallest_weights_per_layer() -> None:
    teacher = TupleNet()
    before = _state(teacher)
    pruned = pruned_copy(teacher, 0.1)
    for name, k in EXPECTED_ZEROS.items():
        w0 = before[f"{name}.weight"].flatten().numpy()
        w1 = getattr(pruned, name).weight.detach().flatten().numpy()
        smallest = np.argsort(np.abs(w0))[:k]  # no ties in random weights
        expected = w0.copy()
        expected[smallest] = 0.0
        np.testing.assert_array_equal(w1, expected)
        assert int((w1 == 0).sum()) == k
    # Biases and BatchNorm are untouched; the teacher is not modified.
    for key in ("conv.bias", "bn.weight", "bn.bias", "bn.running_var", "fc1.bias", "fc2.bias"):
        assert torch.equal(pruned.state_dict()[key], before[key])
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key])
    # Permanent: plain parameters, no masks or hooks; frozen, eval mode.
    assert set(pruned.state_dict()) == set(before)
    assert all(not m._forward_pre_hooks for m in pruned.modules())
    assert not any(p.requires_grad for p in pruned.parameters()) and not pruned.training
    assert [type(m) for m in prunable_layers(pruned)] == [nn.Conv2d] + [nn.Linear] * 3


def test_pruned_copy_of_a_channels_last_teacher_equals_the_contiguous_one() -> None:
    plain = pruned_copy(TupleNet(), 0.1)
    nhwc = pruned_copy(TupleNet().to(memory_format=torch.channels_last), 0.1)
    for a, b in zip(prunable_layers(plain), prunable_layers(nhwc), strict=True):
        assert torch.equal(a.weight, b.weight)


@pytest.mark.parametrize("rate", [0.0, 0.5, 1.0])
def test_pruned_copy_rates(rate: float) -> None:
    pruned = pruned_copy(TupleNet(), rate)
    for layer in prunable_layers(pruned):
        n = layer.weight.numel()
        assert int((layer.weight == 0).sum()) == round(rate * n)
    with pytest.raises(ReproError, match="rate"):
        pruned_copy(TupleNet(), 1.5)


def test_blend_arithmetic_with_an_independently_pruned_copy() -> None:
    teacher = TupleNet()
    hand = TupleNet()  # same init; prune by hand with numpy
    with torch.no_grad():
        for name, k in EXPECTED_ZEROS.items():
            w = getattr(hand, name).weight
            flat = w.flatten().clone()
            flat[np.argsort(np.abs(flat.numpy()))[:k]] = 0.0
            w.copy_(flat.view_as(w))
    hand.eval()
    x = _images()
    blended = BlendedTeacher(teacher, weight=0.7)
    with torch.no_grad():
        expected = 0.7 * teacher.eval()(x)[0] + 0.3 * hand(x)[0]
    out = blended(x)
    torch.testing.assert_close(out, expected)
    assert not out.requires_grad
    w1 = BlendedTeacher(teacher, weight=1.0)(x)
    torch.testing.assert_close(w1, teacher(x)[0])
    with pytest.raises(ReproError, match="pruned_bn"):
        BlendedTeacher(teacher, pruned_bn="batch")  # type: ignore[arg-type]


@pytest.mark.parametrize("pruned_bn", ["eval", "train"])
def test_teacher_and_pruned_copy_never_updated_by_a_student_step(pruned_bn: str) -> None:
    teacher = TupleNet(0)
    blended = BlendedTeacher(teacher, pruned_bn=pruned_bn)  # type: ignore[arg-type]
    student = TupleNet(5)
    distiller = Distiller(student, blended)
    distiller.train()
    assert not blended.teacher.training and blended.pruned.training == (pruned_bn == "train")
    assert student.training
    t_before, p_before = _state(blended.teacher), _state(blended.pruned)
    opt = torch.optim.SGD(distiller.student_parameters(), lr=0.5)
    x = _images()
    for _ in range(2):
        loss = kd_loss(distiller.student_logits(x), distiller.teacher_logits(x), 4.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(p.grad is None and not p.requires_grad for p in blended.parameters())
    assert all(torch.equal(v, t_before[k]) for k, v in blended.teacher.state_dict().items())
    after = blended.pruned.state_dict()
    for k, v in after.items():
        drifts = pruned_bn == "train" and k.startswith("bn.") and k[3:] in BN_BUFFERS
        assert torch.equal(v, p_before[k]) != drifts, k
    assert after["bn.num_batches_tracked"] == (2 if pruned_bn == "train" else 0)
    distiller.eval()
    assert blended.pruned.training == (pruned_bn == "train") and not blended.teacher.training


def test_pruned_bn_mode_decides_batch_dependence() -> None:
    x = _images(6)
    for mode, batch_dependent in (("eval", False), ("train", True)):
        blended = BlendedTeacher(TupleNet(), pruned_bn=mode)  # type: ignore[arg-type]
        full, first = blended(x)[:3], blended(x[:3])
        assert torch.allclose(full, first, atol=1e-6) != batch_dependent
    # Train mode uses batch statistics: the pruned copy's output equals a train-mode forward.
    blended = BlendedTeacher(TupleNet(), pruned_bn="train")
    reference = pruned_copy(TupleNet()).train()
    with torch.no_grad():
        expected = 0.7 * TupleNet().eval()(x)[0] + 0.3 * reference(x)[0]
    torch.testing.assert_close(blended(x), expected)


# ---------------------------------------------------------------- augmentations


def _uint8(n: int = 5, size: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


def test_normalise_and_to_uint8_round_trip_and_match_batch_augment() -> None:
    x = _uint8()
    mean, std = CIFAR100_STATS
    z = normalise(x, mean, std)
    torch.testing.assert_close(z, BatchAugment(mean, std)(x, train=False))
    assert torch.equal(to_uint8(z, mean, std), x)
    assert to_uint8(torch.full((1, 3, 1, 1), 50.0), mean, std).eq(255).all()  # clamped


@pytest.mark.parametrize("per", ["batch", "sample"])
def test_cutout_hole_position_and_size_come_from_the_generator(per: str) -> None:
    x = torch.ones(4, 3, 32, 32)
    out = cutout(x, torch.Generator().manual_seed(7), size=8, per=per)  # type: ignore[arg-type]
    n = 4 if per == "sample" else 1
    g = torch.Generator().manual_seed(7)  # the documented draw order: all y, then all x
    ys, xs = torch.randint(32, (n,), generator=g), torch.randint(32, (n,), generator=g)
    for i in range(4):
        y, x0 = int(ys[i % n]), int(xs[i % n])
        expected = torch.ones(32, 32)
        expected[max(y - 4, 0) : min(y + 4, 32), max(x0 - 4, 0) : min(x0 + 4, 32)] = 0
        for c in range(3):
            assert torch.equal(out[i, c], expected)
    again = cutout(x, torch.Generator().manual_seed(7), size=8, per=per)  # type: ignore[arg-type]
    assert torch.equal(out, again) and out.dtype == x.dtype


def test_cutout_interior_hole_is_size_squared_and_clipped_at_the_border() -> None:
    x = torch.ones(200, 1, 64, 64)
    out = cutout(x, torch.Generator().manual_seed(0), size=16, per="sample")
    zeros = (out == 0).sum(dim=(1, 2, 3))
    assert zeros.max() == 256 and zeros.min() >= 64  # a corner keeps at least 8 x 8
    assert (zeros < 256).any()  # some holes touch the border
    assert len({tuple(torch.nonzero(o[0] == 0)[0].tolist()) for o in out}) > 50


def test_autoaugment_is_torchvision_seeded_from_our_generator() -> None:
    x = _uint8(8, 32)
    rng_before = torch.get_rng_state()
    out = autoaugment(x, torch.Generator().manual_seed(3), "cifar10")
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global RNG is left alone
    assert out.shape == x.shape and out.dtype == torch.uint8
    # Second formulation: the same seed drawn, then torchvision on the global RNG.
    seed = int(torch.randint(2**63 - 1, (), generator=torch.Generator().manual_seed(3)))
    torch.manual_seed(seed)
    expected = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)(x)
    assert torch.equal(out, expected)
    g = torch.Generator().manual_seed(3)
    assert torch.equal(autoaugment(x, g, "cifar10"), out)
    outs = [autoaugment(x, torch.Generator().manual_seed(s), "cifar10") for s in range(6)]
    assert sum(not torch.equal(o, out) for o in outs) >= 4  # other seeds, other policies
    with pytest.raises(ValueError, match="uint8"):
        autoaugment(x.float(), g)
    with pytest.raises(ReproError, match="policy"):
        autoaugment(x, g, "cifar100")  # type: ignore[arg-type]


def test_autoaugment_per_batch_applies_one_draw_to_all_images() -> None:
    same = _uint8(1, 32).expand(6, 3, 32, 32).contiguous()
    changed_sample = 0
    for s in range(8):
        batch = autoaugment(same, torch.Generator().manual_seed(s), "imagenet", "batch")
        assert all(torch.equal(batch[0], b) for b in batch)
        sample = autoaugment(same, torch.Generator().manual_seed(s), "imagenet", "sample")
        again = autoaugment(same, torch.Generator().manual_seed(s), "imagenet", "sample")
        assert torch.equal(sample, again)
        changed_sample += not all(torch.equal(sample[0], b) for b in sample)
    assert changed_sample >= 6


def test_autoaugment_normalised_converts_both_ways() -> None:
    mean, std = CIFAR100_STATS
    x = _uint8(4, 32)
    z = normalise(x, mean, std)
    out = autoaugment_normalised(z, torch.Generator().manual_seed(1), mean=mean, std=std)
    expected = normalise(autoaugment(x, torch.Generator().manual_seed(1)), mean, std)
    torch.testing.assert_close(out, expected)


def _linear_teacher(size: int = 8, classes: int = 5):
    w = torch.randn(3 * size * size, classes, generator=torch.Generator().manual_seed(9))
    return lambda images: images.flatten(1) @ w


def test_cutmixpick_keeps_the_highest_entropy_mixed_images_in_batch_order() -> None:
    x = torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    teacher = _linear_teacher()
    mixed = cutmix(x, 1.0, torch.Generator().manual_seed(4))[0]
    for on, source in (("mixed", mixed), ("clean", x)):
        probs = torch.softmax(teacher(source), 1).numpy()
        h = stats.entropy(probs, axis=1)
        keep = np.sort(np.argsort(h)[-3:])
        got = cutmixpick(
            x, torch.Generator().manual_seed(4), teacher=teacher, pick=3, entropy_on=on
        )
        assert torch.equal(got, mixed[keep])
    logits64 = teacher(x).double()
    h64 = stats.entropy(torch.softmax(logits64, 1).numpy(), axis=1)
    np.testing.assert_allclose(teacher_entropy(logits64).numpy(), h64, rtol=1e-9)
    got = cutmixpick(
        x,
        torch.Generator().manual_seed(4),
        teacher=None,  # type: ignore[arg-type]
        pick=3,
        entropy_on="clean",
        clean_logits=teacher(x),
    )
    assert torch.equal(got, mixed[keep])
    # pick >= batch (the official 64 at batch size 64): exactly CutMix.
    everything = cutmixpick(x, torch.Generator().manual_seed(4), teacher=teacher, pick=64)
    assert torch.equal(everything, mixed)


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_each_augmentation_is_deterministic_for_a_seed(name: str) -> None:
    mean, std = CIFAR100_STATS
    z = normalise(_uint8(6, 8), mean, std)
    teacher = _linear_teacher()
    augment = {  # as R2KD.augment calls them on a normalised batch
        "cutmix": lambda g: cutmix(z, 1.0, g)[0],
        "mixup": lambda g: mixup(z, 0.2, g)[0],
        "cutout": lambda g: cutout(z, g, size=4),
        "autoaugment": lambda g: autoaugment_normalised(z, g, mean=mean, std=std),
        "cutmixpick": lambda g: cutmixpick(z, g, teacher=teacher, pick=4),
    }[name]
    a = augment(torch.Generator().manual_seed(0))
    b = augment(torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.dtype == z.dtype
    assert a.shape == ((4, 3, 8, 8) if name == "cutmixpick" else z.shape)
    assert not torch.equal(a[: min(len(a), 6)], z[: len(a)])
