"""Lockstep KD students of one architecture: in turn vs stacked (torch.func) vs CUDA streams.

K students of one architecture (default K = 5 resnet8x4, the student of the paper pair
resnet32x4 -> resnet8x4; CIFAR-100 shapes, batch 64) are trained with the ``kd`` method's loss
(CE 0.1 + KD 0.9 at T = 4, ``repro.distill.losses.kd_loss``) against one teacher forward per
batch, SGD as ``TrainConfig`` (lr 0.05, momentum 0.9, weight decay 5e-4), channels_last
inputs. Three ways, in one process, on the same batches and teacher logits:

- in turn: each student's forward, backward and SGD step, one after another (what
  ``LockstepTrainer`` does for its cells);
- stacked: the K students' parameters and buffers stacked (``torch.func.stack_module_state``),
  one ``functional_call`` under ``torch.vmap`` for the K forwards, each student's loss on its
  slice of the stacked logits, one backward, one SGD over the stacked leaf tensors. BatchNorm
  runs in training mode: its stacked running statistics are vmapped too, so each student's
  slice is updated in place as its own module's would be. Under bf16 autocast the stacked
  model's Conv2d, Linear and BatchNorm2d layers cast for themselves (``autocast_under_vmap``):
  CPU autocast does not reach vmapped convolutions (torch 2.14.1), and under vmap a Linear's
  bias and BatchNorm's affine step would promote the activations to float32;
- streams (``--device cuda`` only): in turn, but each student on its own ``torch.cuda.Stream``
  (the teacher logits come from the default stream, which each side stream waits for; the
  default stream waits for all of them at the end of the step).

First a check: every way runs ``--check-steps`` steps (default 3) from the same initial
students on the same batches, and its per-student losses and weights, BatchNorm statistics
included, are compared with in turn's (asserted within ``TOLERANCE``; the differences are
printed, and whether they are bit-identical). Then each way, from fresh copies, is timed:
seconds per step of the K students (the teacher forward, the same for all ways, is timed
apart) and the ratios to in turn, in fp32 and in bf16 autocast.

    uv run python packages/distill/benchmarks/bench_stacking.py --threads 1 --steps 3
    uv run python packages/distill/benchmarks/bench_stacking.py --device cuda --steps 20
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state

from repro.distill.losses import kd_loss
from repro.distill.models import build_model

#: differences allowed between a way and in turn after the check's steps, per precision: (max
#: relative loss difference, max abs difference of weights and BatchNorm buffers). fp32: stacked
#: convolutions run as grouped convolutions (other kernels, other summation order), so the
#: first step's losses are bit-identical but its weights differ by rounding (~1e-7), which the
#: large gradients of the first steps from a random init amplify (measured 1e-6 / 1e-4 after 3
#: steps). bf16: two bf16 paths round differently, by about as much as bf16 differs from fp32
#: (measured 6e-3 / 3e-3): the check bounds gross errors only.
TOLERANCE = {"fp32": (1e-5, 1e-3), "bf16": (5e-2, 2e-2)}


def kd_objective(logits_s: Tensor, logits_t: Tensor, labels: Tensor) -> Tensor:
    """The ``kd`` method's loss at its defaults (``repro.distill.methods.kd``):
    0.1 * CE + 0.9 * KD at T = 4."""
    return 0.1 * F.cross_entropy(logits_s, labels) + 0.9 * kd_loss(logits_s, logits_t, 4.0)


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on ``device`` when ``bf16``, else a no-op (as the trainer's)."""
    if bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def sgd(params, lr: float, momentum: float, weight_decay: float) -> torch.optim.SGD:
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


class InTurn:
    """Each student's forward, backward and SGD step, one after another."""

    def __init__(
        self,
        students: Sequence[nn.Module],
        lr: float = 0.05,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
    ) -> None:
        self.students = [copy.deepcopy(s).to(memory_format=torch.channels_last) for s in students]
        for s in self.students:
            s.train()
        self.opts = [sgd(s.parameters(), lr, momentum, weight_decay) for s in self.students]

    def _one(self, k: int, x: Tensor, logits_t: Tensor, labels: Tensor, bf16: bool) -> Tensor:
        with autocast(x.device, bf16):
            loss = kd_objective(self.students[k](x)[0], logits_t, labels)
        self.opts[k].zero_grad(set_to_none=True)
        loss.backward()
        self.opts[k].step()
        return loss.detach()

    def step(self, x: Tensor, logits_t: Tensor, labels: Tensor, bf16: bool = False) -> Tensor:
        """One SGD step of every student on ``x``; their losses, shape (K,)."""
        return torch.stack([self._one(k, x, logits_t, labels, bf16) for k in range(len(self))])

    def __len__(self) -> int:
        return len(self.students)

    def state(self, k: int) -> dict[str, Tensor]:
        """Student ``k``'s parameters and buffers by name."""
        s = self.students[k]
        return {**dict(s.named_parameters()), **dict(s.named_buffers())}


class Streams(InTurn):
    """In turn, each student's step on its own CUDA stream (overlapping on the GPU)."""

    def __init__(self, students: Sequence[nn.Module], **kw) -> None:
        super().__init__(students, **kw)
        self.streams = [torch.cuda.Stream() for _ in self.students]

    def step(self, x: Tensor, logits_t: Tensor, labels: Tensor, bf16: bool = False) -> Tensor:
        main = torch.cuda.current_stream()
        losses = []
        for k, stream in enumerate(self.streams):
            stream.wait_stream(main)  # x, the teacher logits and labels are made on `main`
            with torch.cuda.stream(stream):  # forward, backward and step all on `stream`
                losses.append(self._one(k, x, logits_t, labels, bf16))
            for t in (x, logits_t, labels):  # the allocator must not reuse them too early
                t.record_stream(stream)
        for stream in self.streams:
            main.wait_stream(stream)
        return torch.stack(losses)


def _autocast_dtype(x: Tensor) -> torch.dtype | None:
    """The autocast dtype active for ``x``'s device, or None."""
    kind = x.device.type
    return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else None


def _in_dtype(
    layer: nn.Module, x: Tensor, dtype: torch.dtype
) -> tuple[Tensor, Tensor, Tensor | None]:
    """``x``, ``layer.weight`` and ``layer.bias`` (or None) cast to ``dtype``."""
    bias = None if layer.bias is None else layer.bias.to(dtype)
    return x.to(dtype), layer.weight.to(dtype), bias


class _CastConv2d(nn.Conv2d):
    """Conv2d that casts its input and weights to the autocast dtype itself.

    Under ``torch.vmap``, CPU autocast does not reach convolutions (torch 2.14.1): the vmap
    rule of ``conv2d`` calls ``aten::convolution``, which is in the CUDA autocast list but not
    in the CPU one, so the stacked convolutions would silently run in float32."""

    def forward(self, x: Tensor) -> Tensor:
        dtype = _autocast_dtype(x)
        if dtype is None:
            return super().forward(x)
        return self._conv_forward(*_in_dtype(self, x, dtype))


class _CastLinear(nn.Linear):
    """Linear that casts to the autocast dtype itself (under vmap, autocast runs the matmul in
    bf16 but adds the bias in float32: a float32 output where the plain layer gives bf16)."""

    def forward(self, x: Tensor) -> Tensor:
        dtype = _autocast_dtype(x)
        if dtype is None:
            return super().forward(x)
        return F.linear(*_in_dtype(self, x, dtype))


class _CastBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d on a bf16 input: computed in float32 and returned in the input's dtype, as
    the plain layer under CPU autocast does inside its kernel (the vmap rule of batch_norm
    fails on a bf16 input with float32 statistics)."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype == torch.float32:
            return super().forward(x)
        return super().forward(x.float()).to(x.dtype)


_CAST = {nn.Conv2d: _CastConv2d, nn.Linear: _CastLinear, nn.BatchNorm2d: _CastBatchNorm2d}


def autocast_under_vmap(model: nn.Module) -> nn.Module:
    """``model`` with its Conv2d, Linear and BatchNorm2d layers switched (in place) to the
    variants above, so a vmapped forward under autocast casts as the plain model's does."""
    for m in model.modules():
        if type(m) in _CAST:
            m.__class__ = _CAST[type(m)]
    return model


class Stacked:
    """K students of one architecture as stacked tensors: one vmapped forward, one backward,
    one SGD over the stacked parameters (elementwise, so each student's update, momentum and
    weight decay included, is its own)."""

    def __init__(
        self,
        students: Sequence[nn.Module],
        lr: float = 0.05,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
    ) -> None:
        for s in students:
            s.train()
        self.params, self.buffers = stack_module_state(list(students))
        self.k = len(students)
        # the architecture only, on the meta device: functional_call swaps the tensors in
        self.base = autocast_under_vmap(copy.deepcopy(students[0]).to("meta"))
        self.forward = torch.vmap(self._forward, in_dims=(0, 0, None))
        self.opt = sgd(self.params.values(), lr, momentum, weight_decay)

    def _forward(self, params: dict, buffers: dict, x: Tensor) -> Tensor:
        return functional_call(self.base, (params, buffers), (x,))[0]

    def step(self, x: Tensor, logits_t: Tensor, labels: Tensor, bf16: bool = False) -> Tensor:
        """One SGD step of every student on ``x``; their losses, shape (K,)."""
        with autocast(x.device, bf16):
            logits = self.forward(self.params, self.buffers, x)  # (K, B, classes)
            # each student's loss on its own slice (plain tensors: any per-student loss works)
            losses = torch.stack([kd_objective(z, logits_t, labels) for z in logits])
        self.opt.zero_grad(set_to_none=True)
        losses.sum().backward()  # student k's parameters get the gradient of its loss only
        self.opt.step()
        return losses.detach()

    def __len__(self) -> int:
        return self.k

    def state(self, k: int) -> dict[str, Tensor]:
        """Student ``k``'s parameters and buffers by name (views into the stacks)."""
        return {name: v[k] for name, v in {**self.params, **self.buffers}.items()}


def max_state_diff(a: InTurn | Stacked, b: InTurn | Stacked) -> float:
    """Max abs difference over every student's parameters and buffers."""
    worst = 0.0
    for k in range(len(a)):
        sa, sb = a.state(k), b.state(k)
        if sa.keys() != sb.keys():
            raise ValueError(f"student {k}: different tensors {sorted(sa.keys() ^ sb.keys())}")
        for name, t in sa.items():
            worst = max(
                worst, (t.detach().double() - sb[name].detach().double()).abs().max().item()
            )
    return worst


def compare(
    losses: Tensor, ref_losses: Tensor, way: InTurn | Stacked, ref: InTurn | Stacked
) -> tuple[float, float]:
    """(max relative loss difference, max abs weight/buffer difference) of ``way`` vs ``ref``."""
    d_loss = ((losses - ref_losses).abs() / ref_losses.abs()).max().item()
    return d_loss, max_state_diff(way, ref)


def build_ways(students: Sequence[nn.Module], cuda: bool) -> dict[str, InTurn | Stacked]:
    """In turn (the reference, first), stacked and, on CUDA, streams, each on its own copies
    of ``students``."""
    ways: dict[str, InTurn | Stacked] = {"in turn": InTurn(students), "stacked": Stacked(students)}
    if cuda:
        ways["streams"] = Streams(students)
    return ways


def make_students(arch: str, k: int, classes: int, device: torch.device) -> list[nn.Module]:
    """K students of ``arch``, each initialised from its own seed (1..K)."""
    students = []
    for i in range(k):
        torch.manual_seed(i + 1)
        students.append(build_model(arch, classes).to(device))
    return students


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--teacher", default="resnet32x4")
    parser.add_argument("--student", default="resnet8x4")
    parser.add_argument("--k", type=int, default=5, help="students")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--check-steps", type=int, default=3, help="steps of the check; 0: none")
    parser.add_argument("--threads", type=int, help="torch CPU threads (shared machine: 1)")
    parser.add_argument("--modes", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(0) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; {args.k} x {args.student} from "
          f"{args.teacher}, batch {args.batch}, {args.classes} classes; {args.steps} steps "
          f"timed after {args.warmup}; check after {args.check_steps}")  # fmt: skip
    if not cuda:
        print("streams: CUDA-only (not measured on CPU)")
    torch.manual_seed(0)
    teacher = build_model(args.teacher, args.classes).to(device).eval()
    teacher.to(memory_format=torch.channels_last)
    students = make_students(args.student, args.k, args.classes, device)
    n = max(args.warmup + args.steps, args.check_steps)
    gen = torch.Generator(device=device).manual_seed(0)
    images = [
        torch.randn(args.batch, 3, 32, 32, generator=gen, device=device).contiguous(
            memory_format=torch.channels_last
        )
        for _ in range(n)
    ]
    labels = [
        torch.randint(0, args.classes, (args.batch,), generator=gen, device=device)
        for _ in range(n)
    ]
    for mode in args.modes:
        bf16 = mode == "bf16"
        _sync(device)
        t0 = time.perf_counter()
        with torch.no_grad(), autocast(device, bf16):
            logits_t = [teacher(x)[0] for x in images]
        _sync(device)
        t_teacher = (time.perf_counter() - t0) / n
        # correctness: every way from the same initial students on the same first batches
        if args.check_steps:
            ways = build_ways(students, cuda)
            losses = {
                label: torch.stack(
                    [
                        way.step(images[i], logits_t[i], labels[i], bf16)
                        for i in range(args.check_steps)
                    ]
                )
                for label, way in ways.items()
            }
            tol_loss, tol_state = TOLERANCE[mode]
            for label in list(ways)[1:]:
                d_loss, d_state = compare(
                    losses[label], losses["in turn"], ways[label], ways["in turn"]
                )
                same = "bit-identical" if d_loss == 0 and d_state == 0 else "not bit-identical"
                print(f"{mode} check, {label} vs in turn after {args.check_steps} steps: max "
                      f"relative loss diff {d_loss:.2e}, max |weight/buffer diff| {d_state:.2e} "
                      f"({same}; tolerance {tol_loss:g} / {tol_state:g})")  # fmt: skip
                assert d_loss <= tol_loss and d_state <= tol_state, f"{label} differs from in turn"
        # speed: fresh students, `warmup` untimed steps, then `steps` timed
        times = {}
        for label, way in build_ways(students, cuda).items():
            for i in range(args.warmup + args.steps):
                if i == args.warmup:
                    _sync(device)
                    t0 = time.perf_counter()
                way.step(images[i], logits_t[i], labels[i], bf16)
            _sync(device)
            times[label] = (time.perf_counter() - t0) / args.steps
        ref = times["in turn"]
        line = f"{mode}: teacher forward {t_teacher:.3f} s; students s/step: in turn {ref:.3f}"
        for label in list(times)[1:]:
            line += (f", {label} {times[label]:.3f} ({times[label] / ref:.2f}x in turn; with the "
                     f"teacher {(times[label] + t_teacher) / (ref + t_teacher):.2f}x)")  # fmt: skip
        print(line)


if __name__ == "__main__":
    main()
