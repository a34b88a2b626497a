"""Baselines: demosaic + interpolation, a single-frame CNN and a DBSR-style burst network.

Re-implemented from the architecture description in docs/burst-sr.md (no code copied). All
networks take packed bursts ``(B, N, 4, h, w)`` and return linear RGB ``(B, 3, 8h, 8w)``.
Widths and depths come from the config (``burst_sr.net``); the paper values are the defaults.
"""

from __future__ import annotations

import kornia
import torch
import torch.nn.functional as F
from torch import nn

from repro.burstsr.camera import packed_to_rgb, unpack
from repro.burstsr.params import NetConfig
from repro.core import ReproError


def conv(cin: int, cout: int, k: int = 3, act: bool = True, bias: bool = True) -> nn.Module:
    """k x k convolution (same padding), optionally followed by ReLU."""
    layer = nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias)
    return nn.Sequential(layer, nn.ReLU(inplace=True)) if act else layer


class ResBlock(nn.Module):
    """conv-ReLU-conv plus identity, then ReLU (no normalisation)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv(dim, dim), conv(dim, dim, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


def _blocks(dim: int, n: int) -> list[nn.Module]:
    return [ResBlock(dim) for _ in range(n)]


class Encoder(nn.Module):
    """Packed frame (4 ch) -> features: conv, residual blocks, conv to ``feat_dim``."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(
            conv(4, cfg.enc_dim),
            *_blocks(cfg.enc_dim, cfg.enc_blocks),
            conv(cfg.enc_dim, cfg.feat_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def icnr_(weight: torch.Tensor, scale: int) -> None:
    """ICNR init for a conv feeding PixelShuffle(scale): no checkerboard at initialisation."""
    cout, cin, kh, kw = weight.shape
    sub = torch.empty(cout // scale**2, cin, kh, kw)
    nn.init.kaiming_normal_(sub)
    weight.data.copy_(sub.repeat_interleave(scale**2, dim=0))


class Decoder(nn.Module):
    """Fused features -> linear RGB at ``scale`` x: residual blocks, PixelShuffle, blur, head.

    With ``cfg.residual`` (not in DBSR; a quick-run option for short CPU training) the head has
    no final ReLU and starts at zero; the networks add the output to the bilinear
    demosaic-and-upsample of frame 0 (:func:`_add_base`).
    """

    def __init__(self, cfg: NetConfig, scale: int = 8) -> None:
        super().__init__()
        self.pre = nn.Sequential(
            conv(cfg.feat_dim, cfg.dec_dim), *_blocks(cfg.dec_dim, cfg.dec_blocks)
        )
        self.up = nn.Conv2d(cfg.dec_dim, cfg.up_dim * scale**2, 1, bias=False)
        icnr_(self.up.weight, scale)
        self.shuffle = nn.PixelShuffle(scale)
        self.post = nn.Sequential(
            *_blocks(cfg.up_dim, cfg.up_blocks), conv(cfg.up_dim, 3, k=1, act=not cfg.residual)
        )
        if cfg.residual:  # start exactly at the interpolation baseline
            nn.init.zeros_(self.post[-1].weight)
            nn.init.zeros_(self.post[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.shuffle(F.relu(self.up(self.pre(x))))
        x = kornia.filters.gaussian_blur2d(x, (3, 3), (1.0, 1.0))  # anti-checkerboard
        return self.post(x)  # DBSR: ends with ReLU, non-negative, not clamped above


def _add_base(out: torch.Tensor, burst: torch.Tensor, cfg: NetConfig) -> torch.Tensor:
    """With ``cfg.residual``, add the bilinear demosaic-and-upsample of frame 0."""
    if not cfg.residual:
        return out
    scale = out.shape[-1] // (2 * burst.shape[-1])
    return out + demosaic_upsample(burst, "bilinear", scale=scale)


def warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward-warp ``(B, C, h, w)`` by a pixel flow ``(B, 2, h, w)`` (x, y), zero padding."""
    _, _, h, w = x.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=x.device, dtype=x.dtype),
        torch.arange(w, device=x.device, dtype=x.dtype),
        indexing="ij",
    )
    return kornia.geometry.transform.remap(
        x,
        xs + flow[:, 0],
        ys + flow[:, 1],
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    )


class WeightedSum(nn.Module):
    """Attention fusion: per-pixel, per-channel softmax weights over the frames."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.project = conv(cfg.feat_dim, cfg.offset_dim, k=1)
        self.offset = nn.Sequential(conv(2, cfg.offset_dim), ResBlock(cfg.offset_dim))
        self.weights = nn.Sequential(
            conv(3 * cfg.offset_dim, cfg.weight_dim),
            *_blocks(cfg.weight_dim, cfg.weight_blocks),
            conv(cfg.weight_dim, cfg.feat_dim, act=False),
        )

    def forward(self, feats: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        b, n, c, h, w = feats.shape
        p = self.project(feats.flatten(0, 1)).view(b, n, -1, h, w)
        base = p[:, :1].expand_as(p)
        off = self.offset(torch.remainder(flow, 1.0).flatten(0, 1)).view(b, n, -1, h, w)
        logits = self.weights(torch.cat((base, p - base, off), 2).flatten(0, 1))
        weight = logits.view(b, n, c, h, w).softmax(1)
        return (weight * feats).sum(1)


def _input_scale(burst: torch.Tensor, cfg: NetConfig) -> torch.Tensor:
    """Per-burst gain bringing frame 0's mean to 0.5 with ``cfg.normalize`` (else 1)."""
    if not cfg.normalize:
        return burst.new_ones(burst.shape[0], 1, 1, 1)
    return (burst[:, 0].flatten(1).mean(1).clamp_min(1e-3) / 0.5).view(-1, 1, 1, 1)


class SingleFrameNet(nn.Module):
    """The burst network's encoder and decoder on frame 0 alone (no fusion)."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder, self.decoder = Encoder(cfg), Decoder(cfg)

    def forward(self, burst: torch.Tensor, flow: torch.Tensor | None = None) -> torch.Tensor:
        scale = _input_scale(burst, self.cfg)
        out = self.decoder(self.encoder(burst[:, 0] / scale)) * scale
        return _add_base(out, burst, self.cfg)


class FlowNet(nn.Module):
    """Small flow network (frame i -> frame 0) on the packed grid, trained on synthetic bursts.

    A correlation volume over +-``flow_range`` packed pixels is turned into a soft-argmax flow
    and refined by a CNN. The correlation is written in plain torch (shifted products) so it
    runs on CPU and GPU without CuPy, unlike PWC-Net's CUDA kernel.
    """

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        d, dim = cfg.flow_range, cfg.flow_dim
        self.range = d
        self.features = nn.Sequential(conv(3, dim), conv(dim, dim), conv(dim, dim, act=False))
        ncost = (2 * d + 1) ** 2
        self.refine = nn.Sequential(
            conv(ncost + 2 * dim + 2, 2 * dim),
            conv(2 * dim, dim),
            conv(dim, dim),
            conv(dim, 2, act=False),
        )
        self.temperature = nn.Parameter(torch.tensor(10.0))
        offs = torch.arange(-d, d + 1, dtype=torch.float32)
        dy, dx = torch.meshgrid(offs, offs, indexing="ij")
        self.register_buffer(
            "disp", torch.stack((dx.flatten(), dy.flatten()), 0)[:, :, None, None], persistent=False
        )

    def correlation(self, f0: torch.Tensor, fi: torch.Tensor) -> torch.Tensor:
        """Mean over channels of f0(p) * fi(p + d) for every displacement d."""
        d = self.range
        h, w = f0.shape[-2:]
        padded = F.pad(fi, (d, d, d, d))
        return torch.stack(
            [
                (f0 * padded[..., dy : dy + h, dx : dx + w]).mean(1)
                for dy in range(2 * d + 1)
                for dx in range(2 * d + 1)
            ],
            1,
        )

    def forward(self, burst: torch.Tensor) -> torch.Tensor:
        """Flow ``(B, N, 2, h, w)`` in packed pixels; frame 0's flow is zero."""
        b, n, _, h, w = burst.shape
        rgb = packed_to_rgb(burst).flatten(0, 1)
        rgb = rgb / rgb.flatten(1).mean(1).clamp_min(1e-3)[:, None, None, None] * 0.5
        feats = self.features(rgb).view(b, n, -1, h, w)
        f0 = feats[:, :1].expand(-1, n - 1, -1, -1, -1).flatten(0, 1)
        fi = feats[:, 1:].flatten(0, 1)
        cost = self.correlation(f0, fi)
        soft = (cost * self.temperature).softmax(1)
        coarse = (soft[:, None] * self.disp[None]).sum(2)
        flow = coarse + self.refine(torch.cat((cost, f0, fi, coarse), 1))
        zero = flow.new_zeros(b, 1, 2, h, w)
        return torch.cat((zero, flow.view(b, n - 1, 2, h, w)), 1)


class BurstNet(nn.Module):
    """DBSR-style burst SR: shared encoder, warp to frame 0, attention fusion, decoder.

    ``flow`` (packed pixels, ``(B, N, 2, h, w)``) is given by the caller (ground truth) or
    computed by an attached :class:`FlowNet` (``self.flownet``, frozen).
    """

    def __init__(self, cfg: NetConfig, flownet: FlowNet | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder, self.fusion, self.decoder = Encoder(cfg), WeightedSum(cfg), Decoder(cfg)
        self.flownet = flownet
        if flownet is not None:
            flownet.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> BurstNet:
        super().train(mode)
        if self.flownet is not None:
            self.flownet.eval()
        return self

    def forward(self, burst: torch.Tensor, flow: torch.Tensor | None = None) -> torch.Tensor:
        b, n, _, h, w = burst.shape
        if self.flownet is not None:
            with torch.no_grad():
                flow = self.flownet(burst)
        if flow is None:
            raise ReproError("burst network: no flow given and no flow network attached")
        scale = _input_scale(burst, self.cfg)
        feats = self.encoder((burst / scale[:, None]).flatten(0, 1)).view(b, n, -1, h, w)
        if n > 1:
            warped = warp(feats[:, 1:].flatten(0, 1), flow[:, 1:].flatten(0, 1))
            feats = torch.cat((feats[:, :1], warped.view(b, n - 1, -1, h, w)), 1)
        return _add_base(self.decoder(self.fusion(feats, flow)) * scale, burst, self.cfg)


def upsample_aligned(rgb: torch.Tensor, scale: int, mode: str = "bicubic") -> torch.Tensor:
    """Upsample so that LR pixel i lands on HR pixel ``scale * i`` (the burst geometry).

    The challenge's frame-0 shift of (s/2 - 0.5) HR px combined with OpenCV's half-pixel
    resize puts LR pixel i exactly on ground-truth pixel s*i, which neither
    ``align_corners`` convention of ``F.interpolate`` matches; so the sampling grid is built
    here and read with ``grid_sample`` (edge values repeated past the last LR pixel).
    """
    _, _, h, w = rgb.shape
    ys = torch.arange(h * scale, device=rgb.device, dtype=rgb.dtype) / scale
    xs = torch.arange(w * scale, device=rgb.device, dtype=rgb.dtype) / scale
    gy, gx = torch.meshgrid(ys / max(h - 1, 1) * 2 - 1, xs / max(w - 1, 1) * 2 - 1, indexing="ij")
    grid = torch.stack((gx, gy), -1).expand(rgb.shape[0], -1, -1, -1)
    return F.grid_sample(rgb, grid, mode=mode, padding_mode="border", align_corners=True)


def demosaic_upsample(burst: torch.Tensor, mode: str = "bicubic", scale: int = 4) -> torch.Tensor:
    """Baseline (a): bilinear demosaic of frame 0 (kornia), then ``mode`` upsampling."""
    bayer = unpack(burst[:, 0])
    rgb = kornia.color.raw_to_rgb(bayer, kornia.color.CFA.BG)
    return upsample_aligned(rgb, scale, mode).clamp(0.0, 1.0)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (a frozen flow network is not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
