"""L-inf adversarial attacks (FGSM, PGD) on 0..255 pixel images, batched.

FGSM (Goodfellow et al. 2015): ``x + eps * sign(grad_x CE(f(x), y))``. PGD (Madry et al.
2018): optional uniform random start in the eps-ball, then ``steps`` signed-gradient steps of
``step_size``, each followed by projection onto the eps-ball and the valid pixel range. Both
are untargeted (they raise the cross-entropy of the true label). Written here rather than
taken from an attack library because they are a few lines on top of autograd, and the pixel
units, the seeded generator and the exact uint8 projection below are what the stimuli need.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repro.fmri.params import AttackParams


class PixelModel(nn.Module):
    """A zoo model that takes float pixels ``(N, C, H, W)`` in 0..255 and returns logits.

    Normalisation is ``(x / 255 - mean) / std`` per channel (one value broadcasts).
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        shape = (1, -1, 1, 1)
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(shape))

    def forward(self, x: Tensor) -> Tensor:
        out = self.model((x / 255.0 - self.mean) / self.std)
        return out[0] if isinstance(out, tuple) else out


def _input_grad(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Gradient of the summed cross-entropy with respect to the input only."""
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgsm(model: nn.Module, x: Tensor, y: Tensor, epsilon: float) -> Tensor:
    """One signed-gradient step of size ``epsilon``, clipped to 0..255 (float result)."""
    return (x + epsilon * _input_grad(model, x, y).sign()).clamp(0.0, 255.0).detach()


def pgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    epsilon: float,
    step_size: float,
    steps: int,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    noise: Tensor | None = None,
) -> Tensor:
    """Projected gradient descent on the cross-entropy in the L-inf ball (float result).

    The random start is ``(2u - 1) * epsilon`` with ``u`` uniform on [0, 1): ``noise`` if
    given (same shape as ``x``), else drawn from ``generator``.
    """
    lo, hi = (x - epsilon).clamp(min=0.0), (x + epsilon).clamp(max=255.0)
    adv = x.clone()
    if random_start:
        if noise is None:
            noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        adv = adv + (2.0 * noise - 1.0) * epsilon
        adv = torch.maximum(torch.minimum(adv, hi), lo)
    for _ in range(steps):
        adv = adv + step_size * _input_grad(model, adv, y).sign()
        adv = torch.maximum(torch.minimum(adv, hi), lo).detach()
    return adv


def quantize(adv: Tensor, x: Tensor, epsilon: float) -> Tensor:
    """Round to uint8 while staying within ``floor(epsilon)`` of the integer image ``x``.

    ``x`` holds integer pixel values, so the bounds are integers and rounding never leaves
    the ball: the stored stimulus obeys the L-inf budget exactly.
    """
    budget = math.floor(epsilon)
    lo, hi = (x - budget).clamp(min=0.0), (x + budget).clamp(max=255.0)
    return torch.maximum(torch.minimum(adv.round(), hi), lo).to(torch.uint8)


def attack(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    params: AttackParams,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> Tensor:
    """Adversarial uint8 images ``(N, C, H, W)`` for uint8 ``images`` against ``model``.

    ``model`` is a :class:`PixelModel` (0..255 float input); it is put in eval mode and its
    parameters are left untouched. PGD's random start is drawn for all images at once, so
    the result for a seed does not depend on ``batch_size``.
    """
    model.eval()
    noise = None
    if params.method == "pgd" and params.random_start:
        noise = torch.rand(images.shape, generator=generator, device=images.device)
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].float()
        y = labels[start : start + batch_size]
        if params.method == "fgsm":
            adv = fgsm(model, x, y, params.epsilon)
        else:
            adv = pgd(
                model, x, y, params.epsilon, params.step_size, params.steps,
                params.random_start, generator,
                None if noise is None else noise[start : start + batch_size],
            )  # fmt: skip
        out.append(quantize(adv, x, params.epsilon))
    return torch.cat(out) if out else images.clone()


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, batch_size: int = 256) -> Tensor:
    """Predicted classes of uint8 ``images`` under ``model`` (a :class:`PixelModel`)."""
    model.eval()
    preds = [
        model(images[s : s + batch_size].float()).argmax(1)
        for s in range(0, len(images), batch_size)
    ]
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)
