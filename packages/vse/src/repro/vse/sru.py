"""Simple Recurrent Unit (Lei et al., EMNLP 2018), the paper's text encoder, in plain torch.

Why written here rather than taken from PyPI: the ``sru`` package (2.6.0, May 2021, the last
release) installs and runs on CPU with torch 2.14.1, but

- importing it JIT-compiles a C++ extension with ninja and a C++ compiler, on CPU too, so an
  environment without a compiler cannot import it;
- on CUDA it JIT-compiles its kernels with ``nvcc``; without ``nvcc`` it loads a stub whose
  every call raises "Failed to load SRU recurrence operators for GPU", so paper runs on a GPU
  would depend on a CUDA toolkit matching torch's;
- it relies on ``torch.jit.script``, deprecated in torch 2.14.

The recurrence is a few element-wise lines, so it is written out below. Per layer and direction,
with ``U = x W`` computed for all time steps in one matrix product::

    f_t = sigmoid(W_f x_t + v_f * c_{t-1} + b_f)            forget gate
    r_t = sigmoid(W_r x_t + v_r * c_{t-1} + b_r)            highway (reset) gate
    c_t = f_t * c_{t-1} + (1 - f_t) * (W x_t)
    h_t = r_t * g(c_t) + (1 - r_t) * s(x_t)

with ``g = tanh`` (MHSAN uses ``use_tanh=True``) and ``s`` the identity when the input and
output widths agree, else a learned projection ``W_x x_t``. This matches ``sru.SRU(...,
use_tanh=True, rescale=False)`` of sru 2.6.0 given the same weights. ``dropout`` is applied
between layers and ``rnn_dropout`` is variational dropout on each layer's input (one mask per
sequence, shared over time), the two dropouts MHSAN's code sets to 0.25.

Padding: sequences are right-padded, so a forward direction never sees padding before a real
token. The backward direction reverses each sequence within its own length, so its states at
real positions are exact too; states at padded positions are meaningless and must be masked.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from repro.vse.parallel import Dropout, Shard, variational_mask


def reverse_within_length(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence of ``x`` (T, B, ...) over its first ``lengths[b]`` steps only;
    padded steps stay in place. Applying it twice gives ``x`` back."""
    steps = x.shape[0]
    t = torch.arange(steps, device=x.device)[:, None]
    n = lengths.to(x.device)[None, :]
    index = torch.where(t < n, n - 1 - t, t)  # (T, B)
    index = index.view(steps, -1, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, index)


class SRULayer(nn.Module):
    """One SRU layer, optionally bidirectional (output width ``hidden * directions``)."""

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool = False) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.directions = 2 if bidirectional else 1
        out = hidden_size * self.directions
        self.project_skip = input_size != out
        self.n_mats = 4 if self.project_skip else 3
        self.weight = nn.Linear(input_size, self.directions * hidden_size * self.n_mats, bias=False)
        self.v = nn.Parameter(torch.empty(2, self.directions, hidden_size))  # v_f, v_r
        self.b = nn.Parameter(torch.zeros(2, self.directions, hidden_size))  # b_f, b_r
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = math.sqrt(3.0 / self.weight.in_features)  # unit-variance pre-activations
        nn.init.uniform_(self.weight.weight, -bound, bound)
        nn.init.uniform_(self.v, -math.sqrt(1.5), math.sqrt(1.5))  # variance 0.5
        nn.init.zeros_(self.b)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``x`` (T, B, input_size) -> hidden states (T, B, hidden * directions)."""
        steps, batch, _ = x.shape
        dirs, hid = self.directions, self.hidden_size
        u = self.weight(x).view(steps, batch, dirs, hid, self.n_mats)
        skip = u[..., 3] if self.project_skip else x.view(steps, batch, dirs, hid)
        if dirs == 2:  # the backward direction runs forward over each reversed sequence
            u = torch.stack([u[:, :, 0], reverse_within_length(u[:, :, 1], lengths)], 2)
            skip = torch.stack([skip[:, :, 0], reverse_within_length(skip[:, :, 1], lengths)], 2)
        v_f, v_r = self.v
        b_f, b_r = self.b
        # unbind once: indexing u[t] inside the loop would make each step's backward zero-fill
        # a gradient of the whole of u (quadratic in T)
        cand, gate_f, gate_r = (
            u[..., 0].unbind(0),
            (u[..., 1] + b_f).unbind(0),
            (u[..., 2] + b_r).unbind(0),
        )
        skips = skip.unbind(0)
        c = x.new_zeros(batch, dirs, hid)
        out = []
        for t in range(steps):
            f = torch.sigmoid(gate_f[t] + v_f * c)
            r = torch.sigmoid(gate_r[t] + v_r * c)
            c = f * c + (1 - f) * cand[t]
            out.append(r * torch.tanh(c) + (1 - r) * skips[t])
        h = torch.stack(out)  # (T, B, dirs, hid)
        if dirs == 2:
            h = torch.stack([h[:, :, 0], reverse_within_length(h[:, :, 1], lengths)], 2)
        return h.reshape(steps, batch, dirs * hid)


class SRU(nn.Module):
    """A stack of SRU layers over right-padded sequences (T, B, input_size)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 4,
        dropout: float = 0.25,
        rnn_dropout: float = 0.25,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        dirs = 2 if bidirectional else 1
        self.layers = nn.ModuleList(
            SRULayer(input_size if i == 0 else hidden_size * dirs, hidden_size, bidirectional)
            for i in range(num_layers)
        )
        self.dropout = Dropout(dropout, batch_dim=1)  # x is (T, B, width)
        self.rnn_dropout = rnn_dropout
        self.output_size = hidden_size * dirs
        self.shard: Shard | None = None  # set while a rank trains on its rows (parallel.py)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            if i > 0:
                x = self.dropout(x)
            if self.training and self.rnn_dropout > 0:  # variational: one mask over time
                x = x * variational_mask(x, 1.0 - self.rnn_dropout, self.shard)
            x = layer(x, lengths)
        return x
