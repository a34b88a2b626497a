"""Training of the learned baselines on synthetic bursts made on the fly.

Each iteration draws random crops, generates a batch of bursts on the training device and
takes one Adam step. The run folder, checkpoints (every ``checkpoint_every`` iterations, with
the optimiser, scheduler and data generators, so an interrupted run resumes bit for bit on
CPU), ``metrics.csv``, ``model.pt``, ``result.json`` and the non-finite-loss guard are
:class:`repro.core.training.TrainLoop`'s.

Under ``torchrun`` (a rule asking for several GPUs: ``repro-core launch``) each process trains
on its rows of every global batch (``batch_size`` stays the global batch) with DDP
(:mod:`repro.core.distributed`): every rank draws the same global crops and keeps its rows; the
bursts of a rank's rows are synthesised with that rank's own seed (``step seed + rank``: the
synthesis is the costly part, so no rank makes another's), so a run on N processes is a run of
the same recipe, statistically, not bit for bit. The recorded loss is the global batch's
(summed over ranks); rank 0 writes; checkpoints hold the plain model, and resume on any number
of processes.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import torch

from repro.burstsr import models, synth
from repro.burstsr.params import ModelSpec, NetConfig, TrainParams
from repro.burstsr.sources import make_source
from repro.core import ReproError
from repro.core.checkpoint import load_checkpoint
from repro.core.device import resolve_device
from repro.core.distributed import Dist, session
from repro.core.params import parse, to_dict
from repro.core.seeding import seed_everything
from repro.core.training import TrainLoop

TRAINABLE = ("single", "burst", "flownet")


def pick_device(name: str) -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:<i>`` (the one convention, repro.core.device)."""
    return resolve_device(name, "burst_sr.device")


def build_model(
    spec: ModelSpec, net: NetConfig, flownet: torch.nn.Module | None = None
) -> torch.nn.Module:
    """An untrained network for a model spec; ``flownet`` is the frozen aligner of a burst
    model with ``align`` flownet (a trained :class:`models.FlowNet`) or pwcnet
    (a :class:`repro.burstsr.pwcnet.PWCAligner`)."""
    kind = spec.kind
    if kind == "single":
        return models.SingleFrameNet(net)
    if kind == "flownet":
        return models.FlowNet(net)
    if kind == "burst":
        align = spec.alignment
        if align in ("flownet", "pwcnet"):
            if flownet is None:
                raise ReproError(f"burst network with align={align} needs its flow network")
            return models.BurstNet(net, flownet)
        if align == "gt":
            return models.BurstNet(net)
        raise ReproError(f"burst_sr.models: align '{align}' not available (gt, flownet, pwcnet)")
    raise ReproError(f"burst_sr.models: kind '{kind}' is not trainable ({', '.join(TRAINABLE)})")


def _empty_aligner(spec: ModelSpec, net: NetConfig) -> torch.nn.Module | None:
    """An untrained aligner of the right architecture (its weights come with the checkpoint)."""
    if spec.alignment == "flownet":
        return models.FlowNet(net)
    if spec.alignment == "pwcnet":
        from repro.burstsr.pwcnet import PWCAligner, PWCNet

        return PWCAligner(PWCNet())
    return None


def pwcnet_aligner(params: TrainParams, device: torch.device) -> torch.nn.Module:
    """The frozen PWC-Net aligner from the user's weights (``burst_sr.pwcnet_weights``)."""
    from repro.burstsr.pwcnet import PWCAligner, load_pwcnet

    path = params.pwcnet_weights
    if not path:
        raise ReproError(
            "burst_sr.pwcnet_weights: not set (align=pwcnet needs pytorch-pwc's "
            "network-default weights; see docs/burst-sr.md)"
        )
    return PWCAligner(load_pwcnet(path, device), bgr=params.pwcnet_bgr)


def load_model(path: str | os.PathLike[str], device: torch.device) -> tuple[torch.nn.Module, dict]:
    """A trained network from its checkpoint (architecture stored beside the weights; a frozen
    aligner's weights are stored in it too, so the checkpoint is self-contained)."""
    ckpt = load_checkpoint(path, map_location=str(device))
    net = parse(NetConfig, ckpt["net"], f"{path}: net")
    spec = parse(ModelSpec, ckpt["spec"], f"{path}: spec")
    model = build_model(spec, net, _empty_aligner(spec, net))
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval(), ckpt


def l1_loss(pred: torch.Tensor, gt: torch.Tensor, border: int) -> torch.Tensor:
    """L1 with ``border`` HR pixels ignored."""
    if border > 0:
        pred, gt = (
            pred[..., border:-border, border:-border],
            gt[..., border:-border, border:-border],
        )
    return (pred - gt).abs().mean()


def train(
    params: TrainParams, out_dir: str | os.PathLike[str], flownet_path: str | None = None
) -> dict[str, Any]:
    """Train one model (params from :func:`repro.burstsr.plan.train_params`) into ``out_dir``:
    ``model.pt`` (weights with the spec and widths to rebuild it), ``result.json``,
    ``metrics.csv`` and ``checkpoint.pt`` (in one process, or in each process of a torchrun
    job)."""
    if params.spec.kind not in TRAINABLE:
        raise ReproError(
            f"burst_sr.models.{params.model}: kind '{params.spec.kind}' is not trainable"
        )
    with session(params.device, "burst_sr.device") as dist:
        return Trainer(params, out_dir, flownet_path, dist).fit()


class Trainer:
    """One model's training: built from its params (:meth:`__init__`), resumed
    (:meth:`start`), one optimiser step per iteration (:meth:`train_step`, then
    :meth:`end_step`: metrics row and checkpoint), and the outputs (:meth:`finish`)."""

    def __init__(
        self,
        params: TrainParams,
        out_dir: str | os.PathLike[str],
        flownet_path: str | None,
        dist: Dist,
    ) -> None:
        self.params, self.cfg, self.spec = params, params.train, params.spec
        self.dist, self.device = dist, dist.device
        if self.cfg.batch_size < dist.world:
            raise ReproError(
                f"burst_sr.train.batch_size {self.cfg.batch_size} is smaller than the "
                f"{dist.world} processes (each process takes rows of the global batch)"
            )
        seed_everything(params.seed)
        self.model = build_model(self.spec, params.net, self._aligner(flownet_path)).to(self.device)
        self.burst_cfg = dataclasses.replace(params.burst, burst_size=self.cfg.burst_size)
        self.source = make_source(params.data, "train")
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(trainable, lr=self.cfg.lr)
        self.sched = torch.optim.lr_scheduler.StepLR(
            self.opt, step_size=self.cfg.lr_step, gamma=self.cfg.lr_gamma
        )
        self.gen = torch.Generator().manual_seed(params.seed)  # crops and burst seeds
        self.loop = TrainLoop(
            out_dir,
            total=self.cfg.iterations,
            unit="iteration",
            name=f"burst-sr {params.model}",
            rank=dist.rank,
            params=to_dict(params),
        )
        self.history: list[float] = []  # every iteration's loss (the global batch's)

    def _aligner(self, flownet_path: str | None) -> torch.nn.Module | None:
        """The frozen aligner of a burst model with align flownet or pwcnet (else None)."""
        align = self.spec.alignment
        if align == "flownet":
            if not flownet_path:
                raise ReproError(
                    f"burst_sr.models.{self.params.model}: align=flownet needs --flownet MODEL"
                )
            return load_model(flownet_path, self.device)[0]
        if align == "pwcnet":
            return pwcnet_aligner(self.params, self.device)
        return None

    # -- checkpoints -----------------------------------------------------------------------
    def _payload(self) -> dict[str, Any]:
        return {
            "state_dict": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "generator": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "history": self.history,
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["state_dict"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.history[:] = state["history"]

    # -- training --------------------------------------------------------------------------
    def start(self) -> int:
        """Resume from the checkpoint if there is one and wrap the model for data
        parallelism; returns the first iteration still to run (0-based)."""
        start = self.loop.resume(self._restore, map_location=str(self.device)) - 1
        self.ddp = self.dist.wrap(self.model)  # DDP with several processes; else the model
        self.bgen = torch.Generator(device=self.device)  # this step's burst synthesis
        self.buffers = synth.Buffers()  # each step's bursts are used up within the step
        self.model.train()
        self.t0 = time.perf_counter()
        return start

    def train_step(self, it: int) -> float:
        """Iteration ``it`` (0-based): this rank's rows of the global batch's crops, their
        bursts, the loss, one optimiser step; returns the global batch's loss."""
        dist, size = self.dist, self.cfg.batch_size
        crops = dist.part(self.source.crops(size, self.burst_cfg.source_size, self.gen))
        crops = crops.to(self.device)
        self.bgen.manual_seed(int(torch.randint(2**62, (1,), generator=self.gen)) + dist.rank)
        data = synth.generate(crops, self.burst_cfg, self.bgen, buffers=self.buffers)
        loss = self._loss(data)
        self.opt.zero_grad(set_to_none=True)
        share = dist.weight(len(crops), size)  # the rank's part of the global batch's mean
        (loss * share if dist.active else loss).backward()
        self.opt.step()
        self.sched.step()
        value = self.loop.check({"loss": loss}, it + 1)["loss"]
        if dist.active:  # the global batch's loss: the ranks' sums over their rows
            value = dist.sum([value * len(crops)])[0] / size
        self.history.append(value)
        return value

    def _loss(self, data: synth.Bursts) -> torch.Tensor:
        """End-point error of the flow network (packed pixels), L1 of an SR network."""
        if self.spec.kind == "flownet":
            pred = self.ddp(data.burst)[:, 1:]
            target = synth.flow_to_packed(data.flow)[:, 1:]
            return (pred - target).norm(dim=2).mean()
        flow = synth.flow_to_packed(data.flow)
        return l1_loss(self.ddp(data.burst, flow), data.gt, self.cfg.boundary_ignore)

    def end_step(self, it: int) -> None:
        """After iteration ``it``: a metrics row every ``log_every`` iterations (and at the
        end), a checkpoint every ``checkpoint_every`` (not at the end: model.pt follows)."""
        done, cfg = it + 1, self.cfg
        if done % cfg.log_every == 0 or done == cfg.iterations:
            recent = self.history[-cfg.log_every :]
            self.loop.record(
                {
                    "iteration": done,
                    "loss": sum(recent) / len(recent),
                    "lr": self.sched.get_last_lr()[0],
                    "seconds": time.perf_counter() - self.t0,
                }
            )
        if done % cfg.checkpoint_every == 0 and done < cfg.iterations:
            self.loop.save(done, self._payload())

    def fit(self) -> dict[str, Any]:
        """Train to ``train.iterations`` (resuming from the checkpoint if there is one)."""
        for it in range(self.start(), self.cfg.iterations):
            self.train_step(it)
            self.end_step(it)
        return self.finish()

    def finish(self) -> dict[str, Any]:
        """Write ``model.pt`` (weights, spec, widths, history) and ``result.json``."""
        params, spec, iters = self.params, self.spec, self.cfg.iterations
        tail = self.history[-20:]
        result = {
            "model": params.model,
            "kind": spec.kind,
            "align": spec.align,
            "iterations": iters,
            "final_loss": sum(tail) / len(tail) if tail else None,
            "parameters": models.count_parameters(self.model),
            "seed": params.seed,
            "seconds": time.perf_counter() - self.t0,
        }
        checkpoint = {
            "kind": spec.kind,
            "spec": to_dict(spec),
            "net": to_dict(params.net),
            "state_dict": {k: v.cpu() for k, v in self.model.state_dict().items()},
            "iterations": iters,
            "history": self.history,
            "seed": params.seed,
            "parameters": result["parameters"],
            "train": to_dict(self.cfg),
        }
        return self.loop.finish(checkpoint, result)
