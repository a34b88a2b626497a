"""PWC-Net optical flow (Sun et al., CVPR 2018) in plain PyTorch, weight-compatible with the
``sniklaus/pytorch-pwc`` port used by the NTIRE 2021 burst SR toolkit and DBSR.

What it is: the feature pyramid (6 levels, 16..196 channels), five flow decoders (levels 6..2,
densely connected, cost volume of max displacement 4 = 81 channels, features warped by the
upsampled flow), and the dilated context network ("refiner"). The cost volume and the
backward warp are plain torch (no CuPy, no custom CUDA), so the net runs on CPU and CUDA.

Weights: not bundled; the user supplies the port's file (``network-default.pytorch``, which
DBSR and the toolkit redistribute as ``pwcnet-network-default.pth``). As distributed, that
file is a plain state dict whose keys use the port's *original* attribute names, e.g.
``moduleExtractor.moduleOne.0.weight`` ... ``moduleRefiner.moduleMain.12.bias`` (later
versions of the port's ``run.py`` and DBSR rename ``module`` -> ``net`` while loading). The
attributes of :class:`PWCNet` carry exactly those original names, so
``PWCNet().load_state_dict(torch.load(path, weights_only=True))`` accepts the file as is;
:func:`load_pwcnet` also accepts the renamed ``net...`` keys and a DataParallel ``module.``
prefix.

Licence: the port is GPL-3.0. This module is an independent implementation of the network
described in the paper; only the state-dict key names and tensor shapes (the file format) are
shared with the port, no code is copied.

Conventions: :func:`estimate` takes RGB images in [0, 1] and, by default, reverses them to BGR,
the order the port's ``run.py`` feeds (it reads PIL images and flips the channels). The DBSR /
toolkit wrapper instead passes its inputs unchanged (``rgb2bgr=False`` by default), i.e. RGB:
``bgr=False`` reproduces that, and is the default of :func:`pwc_flow` and :class:`PWCAligner`
(the published AlignedPSNR scores and DBSR were computed that way; config
``burst_sr.pwcnet_bgr: true`` feeds the order the weights were trained on). The flow points
from the first image to the second:
``first(x) ~ second(x + flow(x))``.

Known differences from the port:

* Cost volume: same zero padding, channel order (displacement ``(dy, dx)``, ``dy`` major) and
  1/C normalisation as the CuPy kernel; only the floating-point summation order differs.
* Warp: the port as vendored by DBSR/NTIRE (the 2020 ``run.py``) builds the sampling grid for
  ``align_corners=False`` but normalises the flow by ``(W - 1) / 2``, so a flow ``f`` moves by
  ``f * W / (W - 1)`` pixels (``toolkit_warp=True``, the default, reproduces this). The 2018
  port (and the original Caffe model) move by exactly ``f`` (``toolkit_warp=False``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from repro.burstsr.camera import packed_to_rgb
from repro.core import ReproError

FlowFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

SEARCH_RADIUS = 4  # max displacement of the cost volume: (2 * 4 + 1) ** 2 = 81 channels
COST_CHANNELS = (2 * SEARCH_RADIUS + 1) ** 2
SLOPE = 0.1  # leaky-ReLU negative slope everywhere in the net
FLOW_SCALE = 20.0  # the network predicts flow / 20 (in full-resolution pixels)
SIZE_MULTIPLE = 64  # the input is resized to a multiple of 2 ** 6 (six pyramid levels)
PYRAMID_WIDTHS = (16, 32, 64, 96, 128, 196)  # feature channels at levels 1..6
DENSE_WIDTHS = (128, 128, 96, 64, 32)  # the densely connected decoder convolutions
REFINER_LAYERS = ((128, 1), (128, 2), (128, 4), (96, 8), (64, 16), (32, 1))  # (width, dilation)

# Attribute names of the distributed weight file: the n-th item of a six-long sequence
# (pyramid level n, decoder stage n) is called ``module<One|Two|Thr|Fou|Fiv|Six>``.
_ORDINALS = ("moduleOne", "moduleTwo", "moduleThr", "moduleFou", "moduleFiv", "moduleSix")


def correlation(
    first: torch.Tensor, second: torch.Tensor, radius: int = SEARCH_RADIUS
) -> torch.Tensor:
    """Cost volume ``(B, (2r+1)^2, H, W)``: channel ``(dy + r) * (2r + 1) + (dx + r)`` holds
    ``mean_c first[c, y, x] * second[c, y + dy, x + dx]`` (zero outside ``second``)."""
    _, channels, height, width = first.shape
    padded = F.pad(second, (radius, radius, radius, radius))
    planes = []
    for oy in range(2 * radius + 1):
        for ox in range(2 * radius + 1):
            window = padded[:, :, oy : oy + height, ox : ox + width]
            planes.append((first * window).sum(dim=1))
    return torch.stack(planes, dim=1) / channels


def backward_warp(
    features: torch.Tensor, flow: torch.Tensor, *, toolkit_warp: bool = True
) -> torch.Tensor:
    """Sample ``features`` at ``x + flow(x)`` (bilinear), zeroing every output pixel whose
    bilinear footprint leaves the image (the port's extra ones-channel mask, kept if > 0.999).

    ``toolkit_warp=True`` reproduces the port's normalisation, which moves by
    ``flow * W / (W - 1)`` (resp. ``H / (H - 1)``) pixels; ``False`` moves by ``flow`` exactly.
    """
    batch, _, height, width = features.shape
    if toolkit_warp:
        gain_x = width / max(width - 1, 1)
        gain_y = height / max(height - 1, 1)
    else:
        gain_x = gain_y = 1.0
    cols = torch.arange(width, device=flow.device, dtype=flow.dtype)
    rows = torch.arange(height, device=flow.device, dtype=flow.dtype)
    px = cols.view(1, 1, width) + gain_x * flow[:, 0]
    py = rows.view(1, height, 1) + gain_y * flow[:, 1]
    # pixel centre p <-> normalised (2p + 1) / size - 1 for align_corners=False
    grid = torch.stack(((2 * px + 1) / width - 1, (2 * py + 1) / height - 1), dim=-1)
    ones = features.new_ones(batch, 1, height, width)
    sampled = F.grid_sample(
        torch.cat((features, ones), dim=1),
        grid.to(features.dtype),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    inside = (sampled[:, -1:] > 0.999).to(features.dtype)
    return sampled[:, :-1] * inside


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation)


def _leaky() -> nn.LeakyReLU:
    return nn.LeakyReLU(negative_slope=SLOPE)


class _Pyramid(nn.Module):
    """Six levels of (stride-2 conv, conv, conv), each followed by a leaky ReLU."""

    def __init__(self) -> None:
        super().__init__()
        cin = 3
        for name, cout in zip(_ORDINALS, PYRAMID_WIDTHS, strict=True):
            layers = [_conv(cin, cout, stride=2), _leaky(), _conv(cout, cout), _leaky()]
            self.add_module(name, nn.Sequential(*layers, _conv(cout, cout), _leaky()))
            cin = cout

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Features at levels 1..6 (resolution 1/2 .. 1/64)."""
        levels = []
        x = image
        for name in _ORDINALS:
            x = getattr(self, name)(x)
            levels.append(x)
        return levels


def _decoder_input_width(level: int) -> int:
    """Channels entering the level's decoder: cost volume (+ features, flow, upsampled feat)."""
    if level == 6:
        return COST_CHANNELS
    return COST_CHANNELS + PYRAMID_WIDTHS[level - 1] + 2 + 2


class _Decoder(nn.Module):
    """Flow estimator at one pyramid level with DenseNet-style connections."""

    def __init__(self, level: int, toolkit_warp: bool = True) -> None:
        super().__init__()
        self.level = level
        self.toolkit_warp = toolkit_warp
        if level < 6:
            coarser = _decoder_input_width(level + 1) + sum(DENSE_WIDTHS)
            self.moduleUpflow = nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1)
            self.moduleUpfeat = nn.ConvTranspose2d(coarser, 2, 4, stride=2, padding=1)
            # flow is in units of 1/20 full-resolution pixel; level ``level`` is 2**level
            # times coarser, so one unit is 20 / 2**level pixels there (0.625 .. 5.0)
            self.warp_gain = FLOW_SCALE / 2**level
        width = _decoder_input_width(level)
        for name, grow in zip(_ORDINALS[:5], DENSE_WIDTHS, strict=True):
            self.add_module(name, nn.Sequential(_conv(width, grow), _leaky()))
            width += grow
        self.add_module(_ORDINALS[5], nn.Sequential(_conv(width, 2)))
        self.out_width = width

    def forward(
        self,
        feat1: torch.Tensor,
        feat2: torch.Tensor,
        coarse: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(flow, dense features) at this level from the pyramid features and level + 1."""
        if coarse is None:
            x = F.leaky_relu(correlation(feat1, feat2), SLOPE)
        else:
            up_flow = self.moduleUpflow(coarse[0])
            up_feat = self.moduleUpfeat(coarse[1])
            warped = backward_warp(feat2, up_flow * self.warp_gain, toolkit_warp=self.toolkit_warp)
            cost = F.leaky_relu(correlation(feat1, warped), SLOPE)
            x = torch.cat((cost, feat1, up_flow, up_feat), dim=1)
        for name in _ORDINALS[:5]:
            x = torch.cat((getattr(self, name)(x), x), dim=1)
        return getattr(self, _ORDINALS[5])(x), x


class _Refiner(nn.Module):
    """Context network: dilated convolutions (1, 2, 4, 8, 16, 1) predicting a flow residual."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = _decoder_input_width(2) + sum(DENSE_WIDTHS)
        for cout, dilation in REFINER_LAYERS:
            layers += [_conv(cin, cout, dilation=dilation), _leaky()]
            cin = cout
        self.moduleMain = nn.Sequential(*layers, _conv(cin, 2))

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.moduleMain(feat)


class PWCNet(nn.Module):
    """PWC-Net with the port's state-dict layout (``moduleExtractor``, ``moduleTwo`` ..
    ``moduleSix`` for the level-2..6 decoders, ``moduleRefiner``).

    ``forward(first, second)`` takes ``(B, 3, H, W)`` images (H, W multiples of 64, channel
    order as the weights expect: BGR, in [0, 1]) and returns flow / 20 at ``(H/4, W/4)``;
    use :func:`estimate` for pixels at the input size.
    """

    def __init__(self, *, toolkit_warp: bool = True) -> None:
        super().__init__()
        self.moduleExtractor = _Pyramid()
        for level in range(2, 7):
            self.add_module(_ORDINALS[level - 1], _Decoder(level, toolkit_warp))
        self.moduleRefiner = _Refiner()

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        levels = self.moduleExtractor(torch.cat((first, second), dim=0))
        batch = first.shape[0]
        state = None
        for level in range(6, 1, -1):
            feats = levels[level - 1]
            decoder = getattr(self, _ORDINALS[level - 1])
            state = decoder(feats[:batch], feats[batch:], state)
        assert state is not None
        flow, feat = state
        return flow + self.moduleRefiner(feat)


def estimate(
    net: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    first: torch.Tensor,
    second: torch.Tensor,
    *,
    bgr: bool = True,
) -> torch.Tensor:
    """Flow ``(B, 2, H, W)`` in pixels (x, y) with ``first(x) ~ second(x + flow(x))``.

    ``first``/``second``: ``(B, 3, H, W)`` RGB in [0, 1]. As in the port: reverse to BGR
    (``bgr``), resize both bilinearly to the next multiples of 64, run the net, upsample its
    output bilinearly to ``(H, W)``, multiply by 20 and by the size ratios ``W / W64``
    (x) and ``H / H64`` (y).
    """
    if first.dim() != 4 or first.shape[1] != 3 or first.shape != second.shape:
        raise ValueError(f"expected two (B, 3, H, W) images, got {first.shape}, {second.shape}")
    batch, _, height, width = first.shape
    h64 = math.ceil(height / SIZE_MULTIPLE) * SIZE_MULTIPLE
    w64 = math.ceil(width / SIZE_MULTIPLE) * SIZE_MULTIPLE
    pair = torch.cat((first, second), dim=0)
    if bgr:
        pair = pair.flip(1)
    pair = F.interpolate(pair, size=(h64, w64), mode="bilinear", align_corners=False)
    raw = net(pair[:batch], pair[batch:])
    flow = FLOW_SCALE * F.interpolate(
        raw, size=(height, width), mode="bilinear", align_corners=False
    )
    ratio = flow.new_tensor([width / w64, height / h64]).view(1, 2, 1, 1)
    return flow * ratio


def _to_file_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the accepted key spellings onto the distributed file's (``moduleX...``)."""

    def part(name: str) -> str:
        # the port's later ``run.py`` renames moduleX -> netX; undo that
        if name.startswith("net") and name[3:4].isupper():
            return "module" + name[3:]
        return name

    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")  # nn.DataParallel
        out[".".join(part(p) for p in key.split("."))] = value
    return out


def load_pwcnet(
    path: str | Path, device: str | torch.device = "cpu", *, toolkit_warp: bool = True
) -> PWCNet:
    """A frozen :class:`PWCNet` (eval mode, no grads) with the user-supplied port weights.

    Raises :class:`~repro.core.ReproError` (one line) for a missing/unreadable file or a key
    set that differs from the port's (naming the first missing or unexpected key).
    """
    path = Path(path)
    if not path.is_file():
        raise ReproError(f"PWC-Net weights not found: {path}")
    try:
        raw = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # any unreadable file is a user error here
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ReproError(f"cannot read PWC-Net weights {path}: {reason}") from exc
    if not isinstance(raw, Mapping):
        raise ReproError(f"PWC-Net weights {path}: expected a state dict, got {type(raw)}")
    state = _to_file_keys(raw)
    net = PWCNet(toolkit_warp=toolkit_warp)
    wanted = net.state_dict()
    missing = [k for k in wanted if k not in state]
    unexpected = [k for k in state if k not in wanted]
    if missing:
        raise ReproError(
            f"PWC-Net weights {path}: missing key {missing[0]!r} "
            f"({len(missing)} missing, {len(unexpected)} unexpected)"
        )
    if unexpected:
        raise ReproError(
            f"PWC-Net weights {path}: unexpected key {unexpected[0]!r} "
            f"({len(unexpected)} unexpected)"
        )
    for key, ref in wanted.items():
        if tuple(state[key].shape) != tuple(ref.shape):
            raise ReproError(
                f"PWC-Net weights {path}: key {key!r} has shape {tuple(state[key].shape)}, "
                f"expected {tuple(ref.shape)}"
            )
    net.load_state_dict(state)
    return net.to(device).eval().requires_grad_(False)


def _device_of(net: object, fallback: torch.device) -> torch.device:
    if isinstance(net, nn.Module):
        for p in net.parameters():
            return p.device
    return fallback


def pwc_flow(
    net: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *, bgr: bool = False
) -> FlowFn:
    """A :data:`FlowFn` for AlignedPSNR: ``(source, target) -> flow (2, H, W)`` with
    ``target(x) ~ source(x + flow(x))``.

    Each image is divided by its max (``x / (max(x) + 1e-6)``, as the toolkit does before
    PWC-Net). Since :func:`estimate` gives ``first(x) ~ second(x + flow(x))``, the target is
    passed as ``first`` and the source as ``second`` (the toolkit's wrapper does the same).
    """

    def flow_fn(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        device = _device_of(net, source.device)
        src = (source / (source.max() + 1e-6)).to(device)
        tgt = (target / (target.max() + 1e-6)).to(device)
        with torch.no_grad():
            flow = estimate(net, tgt[None], src[None], bgr=bgr)[0]
        return flow.to(device=source.device, dtype=source.dtype)

    return flow_fn


class PWCAligner(nn.Module):
    """Frozen PWC-Net aligning packed RGGB bursts to their frame 0.

    ``forward(bursts (B, N, 4, h, w)) -> flow (B, N, 2, h, w)`` in packed pixels, with
    frame 0's flow zero and ``frame_0(x) ~ frame_i(x + flow_i(x))``, i.e. backward-warping
    frame i with ``flow_i`` (:func:`repro.burstsr.models.warp`) reproduces frame 0. Frames
    enter PWC-Net as (R, mean(Gr, Gb), B) at packed resolution, unnormalised (as in DBSR);
    all ``B * (N - 1)`` pairs go through the net in one batch.
    """

    def __init__(self, net: PWCNet, *, bgr: bool = False) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.bgr = bgr

    def train(self, mode: bool = True) -> PWCAligner:
        """Set the mode of the module; the wrapped PWC-Net always stays in eval mode."""
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, bursts: torch.Tensor) -> torch.Tensor:
        batch, frames, _, height, width = bursts.shape
        zero = bursts.new_zeros(batch, 1, 2, height, width)
        if frames == 1:
            return zero
        rgb = packed_to_rgb(bursts)
        ref = rgb[:, :1].expand(-1, frames - 1, -1, -1, -1).reshape(-1, 3, height, width)
        others = rgb[:, 1:].reshape(-1, 3, height, width)
        with torch.no_grad():
            flow = estimate(self.net, ref, others, bgr=self.bgr)
        flow = flow.to(bursts.dtype).view(batch, frames - 1, 2, height, width)
        return torch.cat((zero, flow), dim=1)
