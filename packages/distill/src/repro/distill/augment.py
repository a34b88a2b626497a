"""Batched, seeded augmentations for R2KD's augmented copy of a training batch.

Every random draw comes from the CPU ``torch.Generator`` passed in, so a run is deterministic
for a seed and resumes exactly when the generator's state is checkpointed; the pixels stay on
the images' device. Representations:

- ``cutmix``, ``mixup``, ``cutout``, ``cutmixpick``: any image tensor; R2KD applies them to the
  normalised float batch (after crop/flip/normalisation), as the official code does. Cutout's
  hole is filled with 0, i.e. the dataset mean colour in normalised units (official and
  DeVries & Taylor's Cutout alike).
- ``autoaugment``: uint8 images 0..255 (torchvision's policies are defined on them). On a
  normalised batch, ``autoaugment_normalised`` converts with ``to_uint8`` and back with
  ``normalise``, as the official code does (it truncates to uint8; rounding here, which loses
  no level to float error).

``AUGMENTATIONS`` are the official ``-a`` choices (``autoaug`` is called ``autoaugment``
here); R2KD (:meth:`repro.distill.methods.r2kd.R2KD.augment`) calls each on its batch and
keeps the augmented images only (R2KD's augmented copy gets no labels or CE).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from repro.core import ReproError
from repro.distill.losses.functional import cutmix

Per = Literal["batch", "sample"]
PER: tuple[str, ...] = ("batch", "sample")
Policy = Literal["cifar10", "imagenet", "svhn"]
POLICIES: tuple[str, ...] = ("cifar10", "imagenet", "svhn")
EntropyOn = Literal["mixed", "clean"]
ENTROPY_ON: tuple[str, ...] = ("mixed", "clean")
AUGMENTATIONS: tuple[str, ...] = ("cutmix", "mixup", "cutout", "autoaugment", "cutmixpick")


def _check(value: str, allowed: tuple[str, ...], name: str) -> None:
    if value not in allowed:
        raise ReproError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _stats(values: Sequence[float] | Tensor, like: Tensor) -> Tensor:
    return torch.as_tensor(values, dtype=torch.float32, device=like.device).view(1, -1, 1, 1)


def normalise(
    images: Tensor, mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor
) -> Tensor:
    """uint8 0..255 -> float32 (x / 255 - mean) / std, as ``arraydata.BatchAugment`` does."""
    return (images.float() / 255.0 - _stats(mean, images)) / _stats(std, images)


def to_uint8(
    images: Tensor, mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor
) -> Tensor:
    """Normalised float -> uint8: round(255 (x std + mean)) clamped to 0..255."""
    x = (images * _stats(std, images) + _stats(mean, images)) * 255.0
    return x.round().clamp(0, 255).to(torch.uint8)


def cutout(
    images: Tensor,
    generator: torch.Generator | None = None,
    size: int = 8,
    per: Per = "batch",
    fill: float = 0.0,
) -> Tensor:
    """Cutout (DeVries & Taylor): set one square hole to ``fill``.

    The hole's centre (y, x) is uniform over the pixels and the hole covers rows
    [y - size // 2, y + size // 2) and the same columns, clipped at the border (so it is
    size x size for even ``size`` when inside, smaller at the border). ``per="batch"``: one hole
    for the whole batch (the official R2KD code draws one centre per batch); ``per="sample"``:
    one per image (the original Cutout). Draws y then x (one each, or B each).
    """
    _check(per, PER, "cutout per")
    if size < 0:
        raise ReproError(f"cutout size must be >= 0; got {size}")
    h, w = images.shape[-2:]
    n = images.shape[0] if per == "sample" else 1
    cy = torch.randint(h, (n, 1), generator=generator)
    cx = torch.randint(w, (n, 1), generator=generator)
    rows, cols = torch.arange(h), torch.arange(w)
    in_y = (rows >= (cy - size // 2).clamp(0, h)) & (rows < (cy + size // 2).clamp(0, h))
    in_x = (cols >= (cx - size // 2).clamp(0, w)) & (cols < (cx + size // 2).clamp(0, w))
    hole = (in_y[:, :, None] & in_x[:, None, :]).unsqueeze(1).to(images.device)  # (n, 1, H, W)
    return images.masked_fill(hole, fill)


def _seeded_torchvision(
    transform: Callable[[Tensor], Tensor],
    images: Tensor,
    generator: torch.Generator | None,
    per: Per,
) -> Tensor:
    """Run a torchvision v2 transform that draws from the global CPU RNG (it takes no
    generator) as a function of ``generator`` only: one seed is drawn from ``generator`` and the
    transform runs inside ``torch.random.fork_rng(devices=[])`` with the CPU default generator
    seeded from it, so the global RNG is left as it was. ``per="batch"``: one draw for the whole
    batch; ``per="sample"``: one per image (a Python loop over the images; slower)."""
    _check(per, PER, "per")
    if images.dtype != torch.uint8:
        raise ValueError(f"torchvision policies need uint8 images, got {images.dtype}")
    seed = int(torch.randint(2**63 - 1, (), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        if per == "batch":
            return transform(images)
        return torch.stack([transform(image) for image in images])


def autoaugment(
    images: Tensor,
    generator: torch.Generator | None = None,
    policy: Policy = "cifar10",
    per: Per = "batch",
) -> Tensor:
    """torchvision (v2) AutoAugment with a learned ``policy`` on a uint8 batch (N, C, H, W).

    Seeded from ``generator`` as described in :func:`_seeded_torchvision`. ``per="batch"``: one
    sub-policy draw applied to the whole batch, as in the official R2KD code (``AutoAugment``
    called on the batch tensor); ``per="sample"``: an independent draw per image, as AutoAugment
    is defined.
    """
    from torchvision.transforms import v2

    _check(policy, POLICIES, "autoaugment policy")
    _check(per, PER, "autoaugment per")
    transform = v2.AutoAugment(policy=v2.AutoAugmentPolicy(policy))
    return _seeded_torchvision(transform, images, generator, per)


def randaugment(
    images: Tensor,
    generator: torch.Generator | None = None,
    num_ops: int = 2,
    magnitude: int = 10,
    per: Per = "sample",
) -> Tensor:
    """torchvision (v2) RandAugment(num_ops, magnitude) on a uint8 batch, seeded from
    ``generator`` (:func:`_seeded_torchvision`); one draw per image by default, as RandAugment
    is defined (MLKD's strong view, which the third-party CSKD code uses, is RandAugment(2, 10))."""
    from torchvision.transforms import v2

    _check(per, PER, "randaugment per")
    transform = v2.RandAugment(num_ops=num_ops, magnitude=magnitude)
    return _seeded_torchvision(transform, images, generator, per)


def in_pixels(
    op: Callable[..., Tensor],
    images: Tensor,
    generator: torch.Generator | None,
    mean: Sequence[float] | Tensor,
    std: Sequence[float] | Tensor,
    **kw: Any,
) -> Tensor:
    """Apply a uint8 op (``autoaugment``, ``randaugment``) to a normalised float batch: to
    uint8 (``to_uint8``), the op, and back (``normalise``)."""
    out = op(to_uint8(images, mean, std), generator, **kw)
    return normalise(out, mean, std).to(images.dtype)


def autoaugment_normalised(
    images: Tensor,
    generator: torch.Generator | None = None,
    *,
    mean: Sequence[float] | Tensor,
    std: Sequence[float] | Tensor,
    policy: Policy = "cifar10",
    per: Per = "batch",
) -> Tensor:
    """``autoaugment`` on a normalised float batch: to uint8, augment, back to normalised."""
    return in_pixels(autoaugment, images, generator, mean, std, policy=policy, per=per)


def teacher_entropy(logits: Tensor) -> Tensor:
    """Per-sample entropy of softmax(logits), shape (B,), from log-softmax (no log(0))."""
    log_p = torch.log_softmax(logits.detach(), dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


def cutmixpick(
    images: Tensor,
    generator: torch.Generator | None = None,
    *,
    teacher: Callable[[Tensor], Tensor],
    pick: int = 64,
    alpha: float = 1.0,
    entropy_on: EntropyOn = "mixed",
    clean_logits: Tensor | None = None,
    runs: int = 1,
    return_logits: bool = False,
) -> Tensor | tuple[Tensor, Tensor | None]:
    """CutMixPick (Wang et al., NeurIPS 2022, "What makes a 'good' data augmentation in
    knowledge distillation"): CutMix the batch ``runs`` times (``runs`` x B candidates, each
    run with its own lambda, box and pairing) and keep the ``pick`` candidates of highest
    teacher entropy, in candidate order.

    ``teacher`` maps images to logits (it is called under ``torch.no_grad()``). The entropy is
    that of the mixed images (``entropy_on="mixed"``, default: the picked samples are the
    informative mixed ones) or, as in the official R2KD code, of the unmixed images
    (``"clean"``; pass the teacher's logits on ``images`` as ``clean_logits`` if they are at
    hand). The official R2KD code runs CutMix once and keeps min(B, 64), so at batch size 64 it
    keeps them all and equals CutMix; here too, ``runs=1`` with ``pick >= B`` returns exactly
    ``cutmix(images, alpha, generator)[0]`` and calls no teacher. Wang et al.'s scripts use two
    runs and keep B (``--mix_n_run 2``). With ``return_logits`` the result is ``(images,
    logits)``: the teacher's logits of the kept images when it was called on the mixed ones,
    else None.
    """
    _check(entropy_on, ENTROPY_ON, "cutmixpick entropy_on")
    if pick < 1 or runs < 1:
        raise ReproError(f"cutmixpick needs pick >= 1 and runs >= 1; got {pick}, {runs}")
    mixed = torch.cat([cutmix(images, alpha, generator)[0] for _ in range(runs)])
    logits: Tensor | None = None
    if pick >= mixed.shape[0]:
        return (mixed, None) if return_logits else mixed
    if entropy_on == "clean":
        if clean_logits is None:
            with torch.no_grad():
                clean_logits = teacher(images)
        entropy = teacher_entropy(clean_logits).repeat(runs)
    else:
        with torch.no_grad():
            logits = teacher(mixed)
        entropy = teacher_entropy(logits)
    keep = entropy.topk(pick).indices.sort().values
    kept_logits = None if logits is None else logits[keep]
    return (mixed[keep], kept_logits) if return_logits else mixed[keep]
