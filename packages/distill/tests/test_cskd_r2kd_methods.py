"""The ``cskd`` and ``r2kd`` methods and the ``cswt`` policy: each method's total loss against
a composition written here with numpy / scipy, the seeding of their own draws, the pruned
teacher inside the method, and exact resume of an R2KD run with augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import spatial, stats
from torch import Tensor, nn

from repro.core.params import parse
from repro.distill.augment import cutout, randaugment
from repro.distill.losses.functional import cutmix, mixup
from repro.distill.methods import build_method
from repro.distill.methods.base import method_seed
from repro.distill.methods.r2kd import R2KD
from repro.distill.params import RunParams
from repro.distill.pruning import BlendedTeacher, prunable_layers
from repro.distill.temperature import as_policy


def run_params(data: dict) -> RunParams:
    """A run's params as ``repro-distill train`` reads its ``--params``."""
    return parse(RunParams, data)


C = 6


class Net(nn.Module):
    """conv-BN-ReLU-pool-linear (3 channels in), returning ``(logits, feats)``."""

    def __init__(self, seed: int, width: int = 5) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.conv = nn.Conv2d(3, width, 3, padding=1)
            self.bn = nn.BatchNorm2d(width)
            self.fc = nn.Linear(width, C)
            nn.init.normal_(self.fc.weight, std=2.0)
        self.double()  # float64: the hand compositions below agree to 1e-9

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        pooled = torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))
        return self.fc(pooled), {"pooled": pooled}


def _batch(n: int = 8, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 8, 8, generator=g, dtype=torch.float64)
    return x, torch.randint(C, (n,), generator=g)


def _np(x: Tensor) -> np.ndarray:
    return x.detach().double().numpy()


def _softmax(z: np.ndarray, t) -> np.ndarray:
    z = z / np.reshape(np.asarray(t, dtype=float), (-1, 1))
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


EPS = 1e-8  # both papers' code add it to the norm product of every cosine


def _cos(a: np.ndarray, b: np.ndarray, eps: float = EPS) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + eps))


def _pearson(a: np.ndarray, b: np.ndarray, eps: float = EPS) -> float:
    return _cos(a - a.mean(), b - b.mean(), eps)


def test_the_hand_correlations_are_scipy_without_the_eps() -> None:
    a, b = np.random.default_rng(0).normal(size=(2, 9))
    assert _pearson(a, b, 0.0) == pytest.approx(stats.pearsonr(a, b).statistic, abs=1e-12)
    assert 1 - _cos(a, b, 0.0) == pytest.approx(spatial.distance.cosine(a, b), abs=1e-12)


def _ce(z: np.ndarray, y: np.ndarray) -> float:
    logp = np.log(_softmax(z, 1.0))
    return float(-logp[np.arange(len(y)), y.astype(int)].mean())


def _cswt(zs: np.ndarray, zt: np.ndarray, t_min=2.0, t_max=6.0) -> np.ndarray:
    ps, pt = _softmax(zs, 1.0), _softmax(zt, 1.0)
    s = np.array([_cos(a, b) for a, b in zip(ps, pt, strict=True)])
    return t_min + (t_max - t_min) * (s.max() - s) / (s.max() - s.min())


def _columns_cosine_distance(zs, zt, t) -> float:
    ps, pt = _softmax(zs, t), _softmax(zt, t)
    return 1.0 - np.mean([_cos(ps[:, j], pt[:, j]) for j in range(ps.shape[1])])


def _gram_distance(zs, zt, t, classes: bool) -> float:
    ps, pt = _softmax(zs, t), _softmax(zt, t)
    gs, gt = (ps.T @ ps, pt.T @ pt) if classes else (ps @ ps.T, pt @ pt.T)
    return 1.0 - np.mean([_cos(a, b) for a, b in zip(gs, gt, strict=True)])


# ---------------------------------------------------------------- CSWT policy and CSKD


def test_cswt_policy_matches_the_formula_and_is_registered() -> None:
    zs, zt = 2 * torch.randn(7, C), 2 * torch.randn(7, C)
    policy = as_policy({"policy": "cswt", "t_min": 1.0, "t_max": 5.0})
    got = policy(zs, zt)
    np.testing.assert_allclose(got.numpy(), _cswt(_np(zs), _np(zt), 1.0, 5.0), atol=1e-5)
    assert got.min() == pytest.approx(1.0) and got.max() == pytest.approx(5.0)
    same = policy(zs, zs.clone())  # every similarity 1: the midpoint, finite
    assert torch.allclose(same, torch.full((7,), 3.0))
    with pytest.raises(ValueError, match="t_min"):
        as_policy({"policy": "cswt", "t_min": 6.0, "t_max": 2.0})


def test_cskd_paper_loss_is_ce_plus_column_cosine() -> None:
    images, targets = _batch()
    d = build_method("cskd", Net(0), Net(1))
    d.train()
    _, losses = d.forward_train(images, targets, epoch=1)
    zs, zt = _np(d.student(images)[0]), _np(d.teacher(images)[0])
    assert set(losses) == {"loss_ce", "loss_cs"}
    assert losses["loss_ce"].item() == pytest.approx(_ce(zs, _np(targets)), rel=1e-9)
    assert losses["loss_cs"].item() == pytest.approx(_columns_cosine_distance(zs, zt, 4.0), 1e-9)


def test_cskd_cswt_with_base_temperature_and_t2_scale() -> None:
    images, targets = _batch(10, 3)
    d = build_method(
        "cskd", Net(0), Net(1), temperature={"policy": "cswt"}, base_temperature=4,
        kd_weight=2.0, t2_scale=True,
    )  # fmt: skip
    d.train()
    _, losses = d.forward_train(images, targets, epoch=1)
    zs, zt = _np(d.student(images)[0]), _np(d.teacher(images)[0])
    temps = _cswt(zs, zt)
    want = 2.0 * (
        temps.mean() ** 2 * _columns_cosine_distance(zs, zt, temps)
        + 16.0 * _columns_cosine_distance(zs, zt, 4.0)
    )
    assert losses["loss_cs"].item() == pytest.approx(want, rel=1e-9)


def test_cskd_third_party_terms_and_confidence_masks() -> None:
    images, targets = _batch(9, 4)
    d = build_method(
        "cskd", Net(0), Net(1), temperature=3.0, class_correlation_weight=0.5,
        batch_correlation_weight=0.25, confidence_mask=True,
    )  # fmt: skip
    d.train()
    _, losses = d.forward_train(images, targets, epoch=1)
    zs, zt = _np(d.student(images)[0]), _np(d.teacher(images)[0])
    pt = _softmax(zt, 1.0)
    conf, mass = pt.max(axis=1), pt.sum(axis=0)
    f_samples = np.mean(conf <= np.percentile(conf, 50))  # 5 of 9
    f_classes = np.mean(mass <= np.percentile(mass, 50))
    assert f_samples == pytest.approx(5 / 9)
    assert losses["loss_cs"].item() == pytest.approx(
        f_samples * _columns_cosine_distance(zs, zt, 3.0), rel=1e-9
    )
    assert losses["loss_cc"].item() == pytest.approx(
        0.5 * f_classes * _gram_distance(zs, zt, 3.0, classes=True), rel=1e-9
    )
    assert losses["loss_bc"].item() == pytest.approx(
        0.25 * f_samples * _gram_distance(zs, zt, 3.0, classes=False), rel=1e-9
    )


def test_cskd_strong_view_is_randaugment_from_the_run_seed() -> None:
    images, targets = _batch(4, 5)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    d = build_method("cskd", Net(0), Net(1), strong_view=True)
    with pytest.raises(RuntimeError, match="bind_run"):
        d.forward_train(images, targets, epoch=1)
    d.bind_run(7, mean, std)
    d.train()
    seen = []
    original = d.student_logits
    d.student_logits = lambda x: (seen.append(x), original(x))[1]  # type: ignore[method-assign]
    _, losses = d.forward_train(images, targets, epoch=1)
    assert {"loss_ce", "loss_cs", "loss_ce_strong", "loss_cs_strong"} == set(losses)
    g = torch.Generator().manual_seed(method_seed(7))
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    pixels = ((images * s + m) * 255).round().clamp(0, 255).to(torch.uint8)
    want = (randaugment(pixels, g, 2, 10, per="sample").float() / 255 - m) / s
    assert not torch.equal(want.float(), ((pixels.float() / 255 - m) / s).float())
    torch.testing.assert_close(seen[1], want.double())


# ---------------------------------------------------------------- R2KD


def _pearson_distance(a: np.ndarray, b: np.ndarray, axis: int) -> float:
    pairs = zip(a, b, strict=True) if axis == 1 else zip(a.T, b.T, strict=True)
    return 1.0 - np.mean([_pearson(x, y) for x, y in pairs])


def _hand_pruned(teacher: nn.Module, rate: float = 0.1) -> nn.Module:
    """The teacher with the round(rate * n) smallest |w| of each conv/linear weight zeroed."""
    import copy

    pruned = copy.deepcopy(teacher).eval()
    with torch.no_grad():
        for layer in (pruned.conv, pruned.fc):
            flat = layer.weight.flatten().clone()
            k = round(rate * flat.numel())
            flat[np.argsort(np.abs(flat.numpy()))[:k]] = 0.0
            layer.weight.copy_(flat.view_as(layer.weight))
    return pruned


def _r2kd_distance(zs: np.ndarray, zt: np.ndarray, t: float = 4.0) -> tuple[float, float]:
    ps, pt = _softmax(zs, t), _softmax(zt, t)
    value = 2.0 * t**2 * (_pearson_distance(ps, pt, 1) + _pearson_distance(ps, pt, 0))
    rho = [stats.spearmanr(a, b).statistic for a, b in zip(zs, zt, strict=True)]
    return value, 2.0 * (1.0 - float(np.mean(rho)))


@pytest.mark.parametrize("augmentation", ["none", "cutmix", "mixup", "cutout"])
def test_r2kd_total_loss_against_a_hand_composition(augmentation: str) -> None:
    images, targets = _batch(8, 1)
    teacher = Net(1)
    d = build_method("r2kd", Net(0), teacher, augmentation=augmentation, seed=11)
    d.train()
    logits, losses = d.forward_train(images, targets, epoch=1)
    hand = _hand_pruned(Net(1))
    with torch.no_grad():
        blend = lambda x: 0.7 * Net(1).eval()(x)[0] + 0.3 * hand(x)[0]  # noqa: E731
        zt = _np(blend(images))
    zs = _np(logits)
    value, rank = _r2kd_distance(zs, zt)
    total = _ce(zs, _np(targets)) + value + rank
    g = torch.Generator().manual_seed(11)
    aug = {
        "none": None,
        "cutmix": lambda: cutmix(images, 1.0, g)[0],
        "mixup": lambda: mixup(images, 0.2, g)[0],
        "cutout": lambda: cutout(images, g, size=8, per="sample"),
    }[augmentation]
    if aug is not None:
        x = aug()
        with torch.no_grad():
            value_a, rank_a = _r2kd_distance(_np(d.student(x)[0]), _np(blend(x)))
        total += value_a + rank_a
        assert losses["loss_value_aug"].item() == pytest.approx(value_a, rel=1e-9)
    assert losses["loss_value"].item() == pytest.approx(value, rel=1e-9)
    assert losses["loss_rank"].item() == pytest.approx(rank, rel=1e-9, abs=1e-6)
    assert sum(losses.values()).item() == pytest.approx(total, rel=1e-9)
    assert d.prepared()["pruned_fraction"] == pytest.approx(
        (round(0.1 * 135) + round(0.1 * 30)) / (135 + 30)
    )


def test_r2kd_cosine_form_without_pruning_uses_the_teacher_alone() -> None:
    images, targets = _batch(6, 2)
    d = build_method("r2kd", Net(0), Net(1), prune=False, form="cosine", rank="off")
    assert not isinstance(d.teacher, BlendedTeacher) and d.prepared() == {}
    d.train()
    logits, losses = d.forward_train(images, targets, epoch=1)
    assert set(losses) == {"loss_ce", "loss_value"}
    ps, pt = _softmax(_np(logits), 4.0), _softmax(_np(Net(1).eval()(images)[0]), 4.0)
    rows = 1 - np.mean([_cos(a, b) for a, b in zip(ps, pt, strict=True)])
    cols = 1 - np.mean([_cos(a, b) for a, b in zip(ps.T, pt.T, strict=True)])
    assert losses["loss_value"].item() == pytest.approx(2 * 16 * (rows + cols), rel=1e-9)


def _grads(rank: str) -> list[Tensor]:
    images, targets = _batch(8, 3)
    d = build_method("r2kd", Net(0), Net(1), rank=rank)
    d.train()
    _, losses = d.forward_train(images, targets, epoch=1)
    sum(losses.values()).backward()
    return [p.grad.clone() for p in d.student_parameters()]


def test_hard_rank_term_changes_no_gradient_and_soft_does() -> None:
    off, hard, soft = _grads("off"), _grads("hard"), _grads("soft")
    assert all(torch.equal(a, b) for a, b in zip(off, hard, strict=True))
    assert any(not torch.allclose(a, b) for a, b in zip(off, soft, strict=True))


def test_r2kd_teacher_and_pruned_copy_are_never_updated_and_not_checkpointed() -> None:
    teacher = Net(1)
    d = build_method("r2kd", Net(0), teacher, augmentation="cutmix", pruned_bn="train")
    assert d.teacher.teacher is teacher and d.teacher.pruned.training
    before = {k: v.clone() for k, v in d.teacher.state_dict().items()}
    opt = torch.optim.SGD(d.student_parameters(), lr=0.5)
    d.train()
    for seed in range(3):
        _, losses = d.forward_train(*_batch(8, seed), epoch=1)
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
    after = d.teacher.state_dict()
    for key, value in after.items():
        if "running" in key or "num_batches" in key:
            continue  # the official train-mode BatchNorm of the pruned copy drifts
        assert torch.equal(value, before[key]), key
    assert all(not p.requires_grad and p.grad is None for p in d.teacher.parameters())
    assert not d.teacher.teacher.training and d.teacher.pruned.training
    zeros = [int((m.weight == 0).sum()) for m in prunable_layers(d.teacher.pruned)]
    assert zeros == [round(0.1 * 135), round(0.1 * 30)]
    kept = {k for k in d.state_dict() if not k.startswith("teacher.")}
    assert "draws._extra_state" in kept  # the trainer's checkpoint keeps the generator


def test_cutmixpick_keeps_the_highest_teacher_entropy_of_two_cutmix_runs() -> None:
    images, targets = _batch(6, 4)
    d = build_method("r2kd", Net(0), Net(1), augmentation="cutmixpick", seed=3)
    d.train()
    aug, aug_t = d.augment(images, d.teacher_logits(images))
    g = torch.Generator().manual_seed(3)
    candidates = torch.cat([cutmix(images, 1.0, g)[0] for _ in range(2)])
    logits = d.teacher_logits(candidates)
    p = torch.softmax(logits, 1)
    entropy = -(p * p.log()).sum(1)
    keep = np.sort(np.argsort(-entropy.numpy())[:6])
    torch.testing.assert_close(aug, candidates[keep])
    torch.testing.assert_close(aug_t, logits[keep])


def test_draws_follow_the_run_seed_and_survive_a_state_dict_round_trip() -> None:
    images = _batch(8, 6)[0]

    def made(run_seed: int, **kw) -> R2KD:
        d = build_method("r2kd", Net(0), Net(1), **{"augmentation": "cutmix", **kw})
        d.bind_run(run_seed, [0.0] * 3, [1.0] * 3)
        return d

    a, b, c = made(1), made(1), made(2)
    first = a.augment(images, None)[0]
    assert torch.equal(first, b.augment(images, None)[0])
    assert not torch.equal(first, c.augment(images, None)[0])
    fixed = made(2, seed=5)
    assert torch.equal(fixed.augment(images, None)[0], cutmix(images, 1.0, _gen(5))[0])
    state = a.state_dict()
    nxt = a.augment(images, None)[0]
    restored = made(9)
    restored.load_state_dict(state)
    assert torch.equal(restored.augment(images, None)[0], nxt)
    before = torch.random.get_rng_state()
    made(3, augmentation="autoaugment").augment((images * 0.2).clamp(-1, 1), None)
    assert torch.equal(torch.random.get_rng_state(), before)  # the global RNG is untouched


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- runs


def _toy_params(method: str, args: dict, epochs: int = 2, stop: int | None = None) -> dict:
    train = {
        "epochs": epochs, "batch_size": 32, "lr": 0.05, "lr_milestones": [1], "crop_padding": 1,
        "flip": True, "mean": [0.5], "std": [0.5], "threads": 1, "seed": 3,
    }  # fmt: skip
    if stop:
        train["stop_after_steps"] = stop
    return {"student": "resnet8", "teacher": "wrn_16_1", "method": method, "variant": method,
            "args": args, "train": train}  # fmt: skip


def _toy_data(root, n_train: int = 160, n_test: int = 40):
    """Learnable toy data: class k has a bright k-th row (8x8, 1 channel, 4 classes)."""
    from repro.data.arrays import write_arrays

    rng = np.random.default_rng(0)

    def split(n):
        y = rng.integers(0, 4, n)
        x = rng.integers(0, 60, (n, 8, 8, 1)).astype(np.uint8)
        x[np.arange(n), 2 * y, :, 0] = 250
        return x, y

    write_arrays(root, {"train": split(n_train), "test": split(n_test)}, list("abcd"), "toy", {})
    return root


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from repro.distill.run import train_run

    root = tmp_path_factory.mktemp("toy")
    data = _toy_data(root / "data")
    teacher = {"student": "wrn_16_1", "method": "ce",
               "train": {"epochs": 1, "batch_size": 32, "mean": [0.5], "std": [0.5],
                         "threads": 1}}  # fmt: skip
    train_run(run_params(teacher), data, root / "teacher")
    return data, root / "teacher" / "model.pt"


def test_r2kd_run_with_augmentation_resumes_bit_identically(toy, tmp_path) -> None:
    from repro.core.checkpoint import load_checkpoint
    from repro.distill.run import train_run

    data, teacher = toy
    args = {"augmentation": "cutmix", "pruned_bn": "train", "rank": "soft"}
    full = train_run(run_params(_toy_params("r2kd", args)), data, tmp_path / "full", teacher)
    with pytest.raises(SystemExit):  # 5 steps per epoch: stop in the middle of epoch 2
        train_run(run_params(_toy_params("r2kd", args, stop=7)), data, tmp_path / "crash", teacher)
    assert load_checkpoint(tmp_path / "crash" / "checkpoint.pt")["period"] == 1
    resumed = train_run(run_params(_toy_params("r2kd", args)), data, tmp_path / "crash", teacher)
    a = load_checkpoint(tmp_path / "full" / "model.pt")["model"]
    b = load_checkpoint(tmp_path / "crash" / "model.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["final_top1"] == full["final_top1"]
    assert full["prepared"]["pruned_fraction"] > 0.09


def test_every_method_of_a_seed_sees_the_same_batches_and_crops(toy, tmp_path, monkeypatch):
    from repro.distill.arraydata import BatchAugment
    from repro.distill.run import train_run

    data, teacher = toy
    seen: list[Tensor] = []
    original = BatchAugment.forward

    def record(self, images, train=True):
        out = original(self, images, train)
        if train:
            seen.append(out.detach().clone())
        return out

    monkeypatch.setattr(BatchAugment, "forward", record)
    runs = {}
    for method, args in (("kd", {}), ("r2kd", {"augmentation": "mixup"}), ("heda", {})):
        seen.clear()
        train_run(run_params(_toy_params(method, args, epochs=1)), data, tmp_path / method, teacher)
        runs[method] = list(seen)
    kd = runs["kd"]
    for method in ("r2kd", "heda"):
        other = runs[method][-len(kd) :]  # heda's prepare step draws batches first
        assert all(torch.equal(x, y) for x, y in zip(kd, other, strict=True)), method


# ---------------------------------------------------------------- cskd_lud = the lud code's loss


def _lud_args() -> dict:
    """``kd.variants.cskd_lud.args`` of config/paper.yaml (the variant itself, not a copy)."""
    import pathlib

    import yaml

    root = next(p for p in pathlib.Path(__file__).parents if (p / "config/paper.yaml").is_file())
    with open(root / "config" / "paper.yaml") as fh:
        variant = yaml.safe_load(fh)["kd"]["variants"]["cskd_lud"]
    assert variant["method"] == "cskd"
    return variant["args"]


def _t_softmax(z: Tensor, t) -> Tensor:
    t = torch.as_tensor(t, dtype=z.dtype)
    return torch.softmax(z / (t.reshape(-1, 1) if t.dim() else t), dim=1)


def _t_cos_rows(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(1).abs() / (a.norm(dim=1) * b.norm(dim=1) + EPS)


def _lud_total(student: nn.Module, teacher: nn.Module, weak: Tensor, strong: Tensor, y: Tensor):
    """The lud code's CSKD loss (``llieeai/lud`` ``mdistiller/distillers/CSKD.py`` @2704bb2),
    written here from its formulas: CE on both views; on the weak view the column term at T = 4
    and at the CSWT temperatures (alpha T^2 scaled), times the fraction of samples whose teacher
    max-probability is <= the median; the class- and batch-correlation terms (P^T P, P P^T) at
    both temperatures on the weak view only, times the class / sample fractions; on the strong
    view the two column terms unmasked, at the **weak view's** CSWT temperatures."""
    zs_w, zs_s = student(weak)[0], student(strong)[0]
    with torch.no_grad():
        zt_w, zt_s = teacher(weak)[0], teacher(strong)[0]
    pt = torch.softmax(zt_w, 1)
    conf, mass = pt.max(1).values.numpy(), pt.sum(0).numpy()
    f_samples = float(np.mean(conf <= np.percentile(conf, 50)))
    f_classes = float(np.mean(mass <= np.percentile(mass, 50)))
    s = _t_cos_rows(torch.softmax(zs_w.detach(), 1), pt)
    temps = 2.0 + 4.0 * (s.max() - s) / (s.max() - s.min())

    def cs(zs, zt, t):
        scale = (t.mean() if isinstance(t, Tensor) else torch.tensor(t)) ** 2
        return 2.0 * scale * (1 - _t_cos_rows(_t_softmax(zs, t).T, _t_softmax(zt, t).T).mean())

    def gram(zs, zt, t, classes):
        ps, pt_ = _t_softmax(zs, t), _t_softmax(zt, t)
        gs, gt = (ps.T @ ps, pt_.T @ pt_) if classes else (ps @ ps.T, pt_ @ pt_.T)
        return 1 - _t_cos_rows(gt, gs).mean()

    ce = nn.functional.cross_entropy(zs_w, y) + nn.functional.cross_entropy(zs_s, y)
    weak_cs = f_samples * (cs(zs_w, zt_w, 4.0) + cs(zs_w, zt_w, temps))
    strong_cs = cs(zs_s, zt_s, 4.0) + cs(zs_s, zt_s, temps)
    cc = f_classes * (gram(zs_w, zt_w, 4.0, True) + gram(zs_w, zt_w, temps, True))
    bc = f_samples * (gram(zs_w, zt_w, 4.0, False) + gram(zs_w, zt_w, temps, False))
    return ce + weak_cs + strong_cs + cc + bc


def test_cskd_lud_is_the_lud_codes_loss_value_and_gradients() -> None:
    import copy

    weak, y = _batch(12, 6)
    strong = weak.flip(3) + 0.7 * _batch(12, 7)[0]  # any other view: RandAugment is tested above
    student, teacher = Net(0), Net(1)
    hand_student = copy.deepcopy(student)
    d = build_method("cskd", student, teacher, **_lud_args())
    d.strong = lambda images: strong  # type: ignore[method-assign]
    d.train()
    _, losses = d.forward_train(weak, y, epoch=1)
    got = sum(losses.values())
    got.backward()
    hand_student.train()
    want = _lud_total(hand_student, copy.deepcopy(teacher).eval(), weak, strong, y)
    want.backward()
    assert got.item() == pytest.approx(want.item(), rel=1e-9)
    for (name, a), b in zip(student.named_parameters(), hand_student.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-7, atol=1e-9, msg=name)
