"""The Distiller contract and every registered method on tiny models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from repro.distill.losses import cutmix, dkd_loss, kd_loss, mixup
from repro.distill.methods import build_method
from repro.distill.methods.dkd import warmup_factor
from repro.distill.methods.heda import HEDA
from repro.distill.methods.kd import KD
from repro.distill.registry import method_names
from repro.distill.temperature.energy import EnergySplit

ENERGY = {"policy": "energy"}
#: The Energy KD paper's methods as variants: (method, arguments).
VARIANTS = {
    "energy_kd": ("kd", {"temperature": ENERGY}),
    "energy_dkd": ("dkd", {"temperature": ENERGY}),
    "heda": ("heda", {}),
}


def _variant(name: str, student: nn.Module, teacher: nn.Module, **extra):
    method, args = VARIANTS[name]
    args = {**args, "temperature": {**args["temperature"], **extra}} if extra else args
    return build_method(method, student, teacher, **args)


def _split(distiller) -> EnergySplit:
    (split,) = distiller.teacher_statistics()
    return split


C = 5


class TinyNet(nn.Module):
    """conv-BN-ReLU-pool-linear returning ``(logits, {"pooled": features})``."""

    def __init__(self, seed: int, num_classes: int = C) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        pooled = torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))
        return self.fc(pooled), {"pooled": pooled}


class IndexTeacher(nn.Module):
    """Returns ``table[i]`` for an image whose channel 0 is filled with the value i."""

    def __init__(self, table: Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table)

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        idx = x[:, 0, 0, 0].round().long()
        return self.table[idx], {"pooled": x.mean(dim=(2, 3))}


class Recorder(nn.Module):
    """Wraps a model and records every input batch."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.inputs: list[Tensor] = []

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        self.inputs.append(x.detach().clone())
        return self.model(x)


def _batch(n: int = 8, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 6, 6, generator=g), torch.randint(C, (n,), generator=g)


def _indexed_images(n: int) -> Tensor:
    x = torch.randn(n, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    x[:, 0] = torch.arange(n, dtype=x.dtype).reshape(n, 1, 1)
    return x


def _energy_table(offsets: list[float]) -> Tensor:
    """Logit rows a_i + p: energy E_i = -a_i + E(p), so a larger a_i means a lower energy."""
    p = torch.tensor([0.5, -1.0, 2.0, 0.0, 1.0])
    return torch.tensor(offsets).reshape(-1, 1) + p


@pytest.mark.parametrize("name", [*method_names(), "energy_kd", "energy_dkd"])
def test_every_method_trains_one_step(name: str) -> None:
    teacher = None if name == "ce" else TinyNet(1)
    if name in VARIANTS:
        distiller = _variant(name, TinyNet(0), teacher)
    else:
        distiller = build_method(name, TinyNet(0), teacher)
    distiller.prepare([_batch(8, s) for s in range(3)])
    distiller.train()
    images, targets = _batch()
    logits, losses = distiller.forward_train(images, targets, epoch=25)
    assert logits.shape == (8, C)
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    assert "loss_ce" in losses
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in distiller.student_parameters())
    if teacher is not None:
        assert not teacher.training
        assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
        assert len(distiller.student_parameters()) == len(list(distiller.student.parameters()))
    distiller.eval()
    torch.testing.assert_close(distiller(images), distiller.student(images)[0])


def test_registry_and_constructor_errors() -> None:
    assert set(method_names()) >= {"ce", "kd", "dkd", "heda"}
    with pytest.raises(KeyError, match="valid methods: ce, .*kd"):
        build_method("fitnet", TinyNet(0), TinyNet(1))
    with pytest.raises(ValueError, match="needs a teacher"):
        build_method("kd", TinyNet(0))
    with pytest.raises(ValueError, match="takes no teacher"):
        build_method("ce", TinyNet(0), TinyNet(1))
    with pytest.raises(ValueError, match="direction"):
        _variant("energy_kd", TinyNet(0), TinyNet(1), direction="up")
    with pytest.raises(ValueError, match="augmentation"):
        build_method("heda", TinyNet(0), TinyNet(1), augmentation="cutout")
    kd = build_method("kd", TinyNet(0), TinyNet(1), temperature=2.0)
    assert isinstance(kd, KD) and (kd.ce_weight, kd.kd_weight) == (0.1, 0.9)
    assert kd.temperature(None, None) == 2.0


def test_train_keeps_teacher_in_eval_and_teacher_logits_have_no_grad() -> None:
    distiller = build_method("kd", TinyNet(0), TinyNet(1))
    distiller.train()
    assert distiller.student.training and not distiller.teacher.training
    assert not distiller.teacher_logits(_batch()[0]).requires_grad


@pytest.mark.parametrize("epoch,factor", [(0, 0.0), (10, 0.5), (20, 1.0), (30, 1.0)])
def test_dkd_warmup(epoch: int, factor: float) -> None:
    assert warmup_factor(epoch, 20) == factor
    distiller = build_method("dkd", TinyNet(0), TinyNet(1))
    images, targets = _batch()
    logits, losses = distiller.forward_train(images, targets, epoch=epoch)
    logits_t = distiller.teacher(images)[0]
    expected = factor * dkd_loss(logits, logits_t, targets, 1.0, 8.0, 4.0)
    torch.testing.assert_close(losses["loss_kd"], expected)


@pytest.mark.parametrize("name", ["energy_kd", "energy_dkd", "heda"])
def test_energy_methods_need_thresholds(name: str) -> None:
    distiller = _variant(name, TinyNet(0), TinyNet(1))
    with pytest.raises(RuntimeError, match="prepare"):
        distiller.forward_train(*_batch(), epoch=1)


@pytest.mark.parametrize("direction", ["paper", "code"])
def test_energy_kd_all_mid_equals_kd_t4(direction: str) -> None:
    energy = _variant("energy_kd", TinyNet(0), TinyNet(1), direction=direction)
    _split(energy).set_thresholds(-math.inf, math.inf)
    kd = build_method("kd", TinyNet(0), TinyNet(1))
    images, targets = _batch()
    _, got = energy.forward_train(images, targets, epoch=1)
    _, want = kd.forward_train(images, targets, epoch=1)
    torch.testing.assert_close(got["loss_kd"], want["loss_kd"])
    torch.testing.assert_close(got["loss_ce"], want["loss_ce"])


@pytest.mark.parametrize(
    "direction,temps", [("paper", [6.0, 6.0, 4.0, 4.0, 2.0]), ("code", [2.0, 2.0, 4.0, 4.0, 6.0])]
)
def test_energy_kd_per_sample_temperatures(direction: str, temps: list[float]) -> None:
    # Offsets 9, 8, 5, 4, 1 -> energies ordered low .. high; thresholds between 8/5 and 4/1.
    table = _energy_table([9.0, 8.0, 5.0, 4.0, 1.0])
    teacher = IndexTeacher(table)
    distiller = _variant("energy_kd", TinyNet(0), teacher, direction=direction)
    e_p = float(-4 * torch.logsumexp((table[0] - 9.0) / 4, 0))  # E(p)
    _split(distiller).set_thresholds(-6.5 + e_p, -2.5 + e_p)
    images, targets = _indexed_images(5), torch.arange(5) % C
    logits, losses = distiller.forward_train(images, targets, epoch=1)
    loop = np.mean(
        [kd_loss(logits[i : i + 1], table[i : i + 1], t).item() for i, t in enumerate(temps)]
    )
    assert losses["loss_kd"].item() == pytest.approx(0.9 * loop, rel=1e-5)


@pytest.mark.parametrize("name", ["energy_kd", "energy_dkd", "heda"])
def test_thresholds_survive_state_dict_round_trip(name: str) -> None:
    distiller = build_method(name, TinyNet(0), TinyNet(1), seed=3) if name == "heda" else None
    distiller = distiller or _variant(name, TinyNet(0), TinyNet(1))
    distiller.prepare([_batch(8, s) for s in range(2)])
    assert _split(distiller).ready
    state = distiller.state_dict()
    assert any(k.endswith("tau_low") for k in state) and any(k.endswith("tau_high") for k in state)
    fresh = _variant(name, TinyNet(0), TinyNet(1))
    assert not _split(fresh).ready
    fresh.load_state_dict(state)
    assert fresh.prepared() == distiller.prepared()
    assert set(fresh.prepared()) == {"tau_low", "tau_high"}
    if name == "heda":  # the mixing generator resumes where it was
        x = _batch()[0]
        torch.testing.assert_close(fresh.augment(x), distiller.augment(x))


@pytest.mark.parametrize("drop_last", [True, False])
def test_prepare_uses_eval_teacher_and_global_percentiles(drop_last: bool) -> None:
    teacher = TinyNet(1)
    distiller = _variant("energy_kd", TinyNet(0), teacher)
    distiller.train()
    teacher.train()  # even if someone switched it, prepare must not update BN statistics
    bn_before = (teacher.bn.running_mean.clone(), teacher.bn.running_var.clone())
    batches = [_batch(8, 0), _batch(8, 1), _batch(3, 2)]
    distiller.prepare(batches, drop_last=drop_last)
    assert not teacher.training
    assert torch.equal(teacher.bn.running_mean, bn_before[0])
    assert torch.equal(teacher.bn.running_var, bn_before[1])
    teacher.eval()
    used = batches[:2] if drop_last else batches
    with torch.no_grad():
        z = torch.cat([teacher(x)[0] for x, _ in used]).double().numpy()
    e = np.sort(-4.0 * np.log(np.exp(z / 4.0).sum(axis=1)))
    n = len(e)
    assert distiller.prepared()["tau_low"] == pytest.approx(e[int(n * 0.2)], rel=1e-5)
    assert distiller.prepared()["tau_high"] == pytest.approx(e[-(int(n * 0.2) + 1)], rel=1e-5)


def _heda(offsets: list[float], **cfg) -> tuple[HEDA, Recorder, Tensor]:
    table = _energy_table(offsets)
    student = Recorder(TinyNet(0))
    distiller = HEDA(student, IndexTeacher(table), seed=7, **cfg)
    images = _indexed_images(len(offsets))
    distiller.prepare([(images, torch.zeros(len(offsets), dtype=torch.long))])
    student.inputs.clear()
    return distiller, student, images


@pytest.mark.parametrize("augmentation", ["cutmix", "mixup"])
def test_heda_mixes_only_high_energy_samples(augmentation: str) -> None:
    # Energies (ascending a -> descending E): high-energy items are 2, 4, 5, 7 (small offsets).
    offsets = [9.0, 8.0, 1.0, 6.0, 2.0, 0.0, 7.0, 3.0]
    distiller, student, images = _heda(offsets, augmentation=augmentation)
    targets = torch.zeros(8, dtype=torch.long)
    logits, losses = distiller.forward_train(images, targets, epoch=1)
    high = [2, 4, 5, 7]  # r_high = 0.5: tau_high = e[-5]; strictly above it are 4 samples
    assert distiller.select(distiller.teacher_logits(images)).tolist() == high
    assert len(student.inputs) == 2
    mixed = student.inputs[1]
    assert mixed.shape[0] == len(high)
    if augmentation == "cutmix":  # every pixel comes from one of the selected images
        assert set(mixed[:, 0].unique().tolist()) <= set(map(float, high))
    # Independent re-computation of the extra term with the same seed.
    mix = cutmix if augmentation == "cutmix" else mixup
    alpha = 1.0 if augmentation == "cutmix" else 0.2
    want_mixed = mix(images[high], alpha, torch.Generator().manual_seed(7))[0]
    torch.testing.assert_close(mixed, want_mixed)
    s_logits = distiller.student.model(want_mixed)[0]
    want = 0.9 * kd_loss(s_logits, distiller.teacher(want_mixed)[0], 4.0)
    torch.testing.assert_close(losses["loss_aug"], want)
    torch.testing.assert_close(
        losses["loss_kd"], 0.9 * kd_loss(logits, distiller.teacher(images)[0], 4.0)
    )


def test_heda_include_first_two_quirk() -> None:
    offsets = [0.5, 8.0, 1.0, 6.0, 2.0, 0.0, 7.0, 3.0]  # item 0 is high-energy, item 1 is not
    distiller, student, images = _heda(offsets, include_first_two=True)
    assert distiller.select(distiller.teacher_logits(images)).tolist() == [0, 1, 0, 2, 4, 5]
    distiller.forward_train(images, torch.zeros(8, dtype=torch.long), epoch=1)
    assert student.inputs[1].shape[0] == 6


def test_heda_empty_subset_gives_zero_tensor() -> None:
    distiller, student, images = _heda([9.0, 8.0, 1.0, 6.0])
    distiller.split.set_thresholds(-math.inf, math.inf)
    _, losses = distiller.forward_train(images, torch.zeros(4, dtype=torch.long), epoch=1)
    assert isinstance(losses["loss_aug"], Tensor) and losses["loss_aug"].item() == 0.0
    assert len(student.inputs) == 1
    sum(losses.values()).backward()


def test_heda_gradient_reaches_student_not_teacher() -> None:
    teacher = TinyNet(1)
    distiller = HEDA(TinyNet(0), teacher, seed=0)
    distiller.prepare([_batch(8, s) for s in range(2)])
    distiller.split.set_thresholds(-math.inf, -math.inf)  # every sample is "high energy"
    _, losses = distiller.forward_train(*_batch(), epoch=1)
    assert losses["loss_aug"].item() > 0
    losses["loss_aug"].backward()
    assert all(
        p.grad is not None and p.grad.abs().sum() > 0 for p in distiller.student.parameters()
    )
    assert all(p.grad is None for p in teacher.parameters())


@pytest.mark.parametrize("kind", ["method", "policy"])
def test_statically_read_arguments_equal_the_signatures(kind: str) -> None:
    import inspect

    from repro.distill import registry

    names = registry.method_names() if kind == "method" else registry.policy_names()
    for name in names:
        cls = registry.method_class(name) if kind == "method" else registry.policy_class(name)
        sig = inspect.signature(cls.__init__).parameters.values()
        keyword_only = tuple(p.name for p in sig if p.kind is p.KEYWORD_ONLY)
        static = registry.method_args(name) if kind == "method" else registry.policy_args(name)
        assert static == keyword_only, name


@pytest.mark.parametrize("precision", ["autocast", "float32"])
def test_teacher_precision_under_bf16_autocast(precision: str) -> None:
    """Under bf16 autocast the teacher runs in bf16 (default) or float32 (``float32``), for
    every method alike; energies are float32 either way."""
    teacher = TinyNet(1)
    distiller = _variant("energy_kd", TinyNet(0), teacher)
    distiller.bind_run(0, [0.0] * 3, [1.0] * 3, precision)
    images, _ = _batch(16, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits_t = distiller.teacher_logits(images)
    energies = _split(distiller).energy(logits_t)
    with torch.no_grad():
        if precision == "float32":
            want = teacher.eval()(images)[0]
        else:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                want = teacher.eval()(images)[0]
    dtype = torch.float32 if precision == "float32" else torch.bfloat16
    assert logits_t.dtype == want.dtype == dtype
    assert torch.equal(logits_t, want)
    assert energies.dtype == torch.float32
    assert torch.equal(energies, -4.0 * torch.logsumexp(want.float() / 4.0, dim=1))
