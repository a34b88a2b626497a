"""MHSAN (Park et al., WACV 2020): two encoders into one joint space, compared by cosine.

Image: CNN feature map -> 1x1 conv to ``dim`` -> structured multi-head self-attention (Lin et
al., ICLR 2017) with ``heads`` rows, ``M = softmax(W_a relu(W_b V^T))`` over the positions, no
bias -> the ``heads`` attended vectors concatenated -> dropout -> linear -> L2 norm.
Text: word embeddings -> recurrent encoder, every time step kept -> the same attention with
tanh, padded positions masked to -inf -> concatenated -> dropout -> linear -> L2 norm.

Recurrent encoder: ``rnn: sru`` (default, the paper's 4-layer SRU; see :mod:`repro.vse.sru`
for why it is written here instead of imported from the ``sru`` package) or ``rnn: gru``
(``torch.nn.GRU``, the usual substitute in vsepp-style code).

Backbones: ``resnet152`` (the paper: torchvision ResNet-152 without avgpool/fc, stride 32,
2048 channels; ImageNet weights read from a file the user gives, ``weights_only=True``, never
downloaded) and ``small`` (the quick run: a seeded 3-layer CNN, stride 8, plus coordinate
channels). conv1..layer2 of the ResNet are always frozen (as in MHSAN's code); the ``cnn`` part
is layer3 and layer4 (for ``small``: its last conv). Frozen backbone modules are kept in eval
mode, so batch-norm uses its running statistics and a frozen backbone is a fixed function (which
the feature cache needs). MHSAN's code instead calls ``model.train()`` on the whole network, so
its frozen ResNet's batch-norm layers use batch statistics and drift during the frozen stages.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repro.core import ReproError
from repro.vse.parallel import Dropout
from repro.vse.sru import SRU

PARTS = ("image_proj", "image_attention", "cnn", "text")
"""Trainable parts, the vocabulary of the staged schedule:

- ``image_proj``: the image side's last linear layer (r*d -> d');
- ``image_attention``: the 1x1 conv and the image attention (W_b, W_a);
- ``cnn``: the backbone's tuned blocks (ResNet layer3 and layer4);
- ``text``: word embeddings, recurrent encoder, text attention and text projection.
"""


@dataclass(frozen=True)
class ModelConfig:
    """Architecture. Paper values: dim 2400, embed_dim 2400, attn_hidden 350, heads 10,
    word_dim 620, 4 SRU layers, dropout 0.5 (attention input and concatenation), rnn dropouts
    0.25."""

    backbone: Literal["resnet152", "small"] = "resnet152"
    backbone_weights: str | None = None  # ImageNet state_dict file for resnet152
    small_channels: int = 64  # width of the small CNN's layers (quick run)
    dim: int = 2400  # d: 1x1 conv output and recurrent hidden width
    embed_dim: int = 2400  # d': joint embedding width
    attn_hidden: int = 350  # d_a
    heads: int = 10  # r, on both sides
    word_dim: int = 620
    rnn: Literal["sru", "gru"] = "sru"
    rnn_layers: int = 4
    bidirectional: bool = False
    dropout: float = 0.5
    rnn_dropout: float = 0.25

    def check(self, where: str = "model") -> None:
        """Widths and counts of at least 1 (called by :func:`repro.core.params.parse`)."""
        for key in ("dim", "embed_dim", "attn_hidden", "heads", "word_dim", "rnn_layers"):
            if getattr(self, key) < 1:
                raise ReproError(f"{where}.{key}: must be at least 1, got {getattr(self, key)}")


class Backbone(nn.Module):
    """CNN trunk to a feature map: ``frozen`` (never trained) then ``tuned`` (the ``cnn`` part).

    Both stay in eval mode unless ``tuning`` is set (by the stage logic), so while the CNN is
    frozen it is a deterministic function of the image.
    """

    def __init__(self, frozen: nn.Module, tuned: nn.Module, channels: int, stride: int) -> None:
        super().__init__()
        self.frozen = frozen
        self.tuned = tuned
        self.channels = channels
        self.stride = stride
        self.tuning = False
        for p in self.frozen.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> Backbone:
        self.training = mode
        self.frozen.eval()
        self.tuned.train(mode and self.tuning)
        return self

    def forward(self, images: Tensor) -> Tensor:
        return self.tuned(self.frozen(images))


def resnet152_backbone(weights: str | None) -> Backbone:
    """torchvision ResNet-152 up to layer4. ``weights``: a torchvision ImageNet state_dict
    file, loaded with ``weights_only=True`` (``None``: random weights, for tests/benchmarks)."""
    from torchvision.models import resnet152

    path = Path(weights) if weights is not None else None
    if path is not None and not path.is_file():
        raise ReproError(f"model.backbone_weights: {path} not found")
    net = resnet152(weights=None)
    if path is not None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds for bad files
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            raise ReproError(
                f"model.backbone_weights: {path}: not a torchvision ResNet-152 state_dict "
                f"({type(exc).__name__}: {first})"
            ) from exc
    frozen = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2)
    return Backbone(frozen, nn.Sequential(net.layer3, net.layer4), channels=2048, stride=32)


class AppendCoordinates(nn.Module):
    """Append each cell's x and y (in [-1, 1]) to a feature map as two more channels."""

    def forward(self, fmap: Tensor) -> Tensor:
        b, _, h, w = fmap.shape
        ys = torch.linspace(-1, 1, h, device=fmap.device, dtype=fmap.dtype)
        xs = torch.linspace(-1, 1, w, device=fmap.device, dtype=fmap.dtype)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"))  # (2, h, w): x, y
        return torch.cat([fmap, grid.expand(b, 2, h, w)], dim=1)


def small_backbone(channels: int) -> Backbone:
    """The quick run's CNN: three 3x3 stride-2 conv + ReLU layers (3 -> c/2 -> c -> c; the last
    is the ``cnn`` part), stride 8, then the cells' x and y as two more channels (c + 2 in all).

    He-normal weights keep the activations' scale, so a random, frozen copy gives usable
    features. The coordinates are a quick-run choice, not the paper's: a trained ResNet's
    features carry some position (from zero padding and large receptive fields), a random
    3-layer CNN's hardly any, and without position no attention head can single out a region,
    so captions about relative positions could not be matched by any number of heads."""
    c = channels

    def conv(cin: int, cout: int) -> nn.Module:
        layer = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        nn.init.zeros_(layer.bias)
        return nn.Sequential(layer, nn.ReLU())

    frozen = nn.Sequential(conv(3, c // 2), conv(c // 2, c))
    tuned = nn.Sequential(conv(c, c), AppendCoordinates())
    return Backbone(frozen, tuned, channels=c + 2, stride=8)


class StructuredSelfAttention(nn.Module):
    """``A = softmax_rows(W_a act(W_b dropout(V)^T))``, ``heads`` rows over the L positions;
    returns ``A V`` (B, heads, dim) and ``A`` (B, heads, L). ``pad`` (B, L), True at padded
    positions, sets their scores to -inf, so they get exactly zero attention."""

    def __init__(self, dim: int, hidden: int, heads: int, activation: str, dropout: float):
        super().__init__()
        self.w_b = nn.Linear(dim, hidden, bias=False)
        self.w_a = nn.Linear(hidden, heads, bias=False)
        self.act = {"relu": torch.relu, "tanh": torch.tanh}[activation]
        self.drop = Dropout(dropout)

    def forward(self, v: Tensor, pad: Tensor | None = None) -> tuple[Tensor, Tensor]:
        scores = self.w_a(self.act(self.w_b(self.drop(v)))).transpose(1, 2)  # (B, heads, L)
        if pad is not None:
            scores = scores.masked_fill(pad[:, None, :], float("-inf"))
        attn = torch.softmax(scores, dim=-1)
        return attn @ v, attn


class ImageHead(nn.Module):
    """Feature map (B, C, h, w) -> unit-norm embedding (B, d') and attention (B, r, h*w)."""

    def __init__(self, channels: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, cfg.dim, 1)
        self.attention = StructuredSelfAttention(
            cfg.dim, cfg.attn_hidden, cfg.heads, "relu", cfg.dropout
        )
        self.drop = Dropout(cfg.dropout)
        self.proj = nn.Linear(cfg.heads * cfg.dim, cfg.embed_dim)

    def forward(self, fmap: Tensor) -> tuple[Tensor, Tensor]:
        v = self.conv(fmap).flatten(2).transpose(1, 2)  # (B, h*w, d)
        attended, attn = self.attention(v)
        emb = self.proj(self.drop(attended.flatten(1)))
        return F.normalize(emb, dim=-1), attn


class TextEncoder(nn.Module):
    """Padded token ids (B, T) and lengths (B,) -> unit-norm embedding and attention (B, r, T).
    Token id 0 is padding."""

    def __init__(self, vocab_size: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.word_dim, padding_idx=0)
        self.kind = cfg.rnn
        if cfg.rnn == "sru":
            self.rnn = SRU(
                cfg.word_dim,
                cfg.dim,
                num_layers=cfg.rnn_layers,
                dropout=cfg.rnn_dropout,
                rnn_dropout=cfg.rnn_dropout,
                bidirectional=cfg.bidirectional,
            )
        else:
            self.rnn = nn.GRU(
                cfg.word_dim,
                cfg.dim,
                num_layers=cfg.rnn_layers,
                dropout=cfg.rnn_dropout if cfg.rnn_layers > 1 else 0.0,
                bidirectional=cfg.bidirectional,
            )
        width = cfg.dim * (2 if cfg.bidirectional else 1)
        self.attention = StructuredSelfAttention(
            width, cfg.attn_hidden, cfg.heads, "tanh", cfg.dropout
        )
        self.drop = Dropout(cfg.dropout)
        self.proj = nn.Linear(cfg.heads * width, cfg.embed_dim)

    def states(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """Recurrent states (B, T, width); rows past a sequence's length are undefined."""
        x = self.embed(tokens).transpose(0, 1)  # (T, B, word_dim)
        if self.kind == "sru":
            return self.rnn(x, lengths).transpose(0, 1)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, total_length=x.shape[0])
        return out.transpose(0, 1)

    def forward(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        h = self.states(tokens, lengths)
        steps = torch.arange(tokens.shape[1], device=tokens.device)
        pad = steps[None, :] >= lengths.to(tokens.device)[:, None]
        attended, attn = self.attention(h, pad)
        emb = self.proj(self.drop(attended.flatten(1)))
        return F.normalize(emb, dim=-1), attn


class MHSAN(nn.Module):
    """The joint model: ``backbone`` (images -> feature maps), ``image_head`` (feature maps ->
    embeddings) and ``text`` (captions -> embeddings). The image path is split at the feature
    map so that a frozen backbone's output can come from :mod:`repro.vse.cache`."""

    def __init__(self, cfg: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.backbone == "resnet152":
            self.backbone = resnet152_backbone(cfg.backbone_weights)
        else:
            self.backbone = small_backbone(cfg.small_channels)
        self.image_head = ImageHead(self.backbone.channels, cfg)
        self.text = TextEncoder(vocab_size, cfg)

    def forward(
        self,
        tokens: Tensor,
        lengths: Tensor,
        features: Tensor | None = None,
        images: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """A training step's forward: image embeddings and attention (from backbone
        ``features``, else from ``images``), then the captions'. Through here a
        DistributedDataParallel wrapper sees every parameter the step uses."""
        if features is not None:
            img, img_attn = self.embed_features(features)
        else:
            img, img_attn = self.embed_images(images)
        txt, txt_attn = self.embed_texts(tokens, lengths)
        return img, img_attn, txt, txt_attn

    def embed_features(self, fmap: Tensor) -> tuple[Tensor, Tensor]:
        return self.image_head(fmap)

    def embed_images(self, images: Tensor) -> tuple[Tensor, Tensor]:
        return self.image_head(self.backbone(images))

    def embed_texts(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        return self.text(tokens, lengths)

    def part(self, name: str) -> Iterator[nn.Parameter]:
        """Parameters of one trainable part (see :data:`PARTS`)."""
        if name == "image_proj":
            yield from self.image_head.proj.parameters()
        elif name == "image_attention":
            yield from self.image_head.conv.parameters()
            yield from self.image_head.attention.parameters()
        elif name == "cnn":
            yield from self.backbone.tuned.parameters()
        elif name == "text":
            yield from self.text.parameters()
        else:
            raise ReproError(f"unknown trainable part '{name}' (known: {', '.join(PARTS)})")


def seeded_model(cfg: ModelConfig, vocab_size: int, seed: int) -> MHSAN:
    """:class:`MHSAN` with initial weights drawn from ``seed`` (the global RNG is restored)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MHSAN(cfg, vocab_size)
