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

import os
import time
from typing import Any

import torch

from repro.burstsr import models, synth
from repro.burstsr.sources import make_source
from repro.core import ReproError
from repro.core.checkpoint import load_checkpoint
from repro.core.device import resolve_device
from repro.core.distributed import Dist, session
from repro.core.seeding import seed_everything
from repro.core.training import TrainLoop

TRAINABLE = ("single", "burst", "flownet")


def pick_device(name: str) -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:<i>`` (the one convention, repro.core.device)."""
    return resolve_device(name, "burst_sr.device")


def build_model(
    spec: dict[str, Any], net: models.NetConfig, flownet: torch.nn.Module | None = None
) -> torch.nn.Module:
    """An untrained network for a model spec; ``flownet`` is the frozen aligner of a burst
    model with ``align`` flownet (a trained :class:`models.FlowNet`) or pwcnet
    (a :class:`repro.burstsr.pwcnet.PWCAligner`)."""
    kind = spec["kind"]
    if kind == "single":
        return models.SingleFrameNet(net)
    if kind == "flownet":
        return models.FlowNet(net)
    if kind == "burst":
        align = spec.get("align", "gt")
        if align in ("flownet", "pwcnet"):
            if flownet is None:
                raise ReproError(f"burst network with align={align} needs its flow network")
            return models.BurstNet(net, flownet)
        if align == "gt":
            return models.BurstNet(net)
        raise ReproError(f"burst_sr.models: align '{align}' not available (gt, flownet, pwcnet)")
    raise ReproError(f"burst_sr.models: kind '{kind}' is not trainable ({', '.join(TRAINABLE)})")


def _empty_aligner(spec: dict[str, Any], net: models.NetConfig) -> torch.nn.Module | None:
    """An untrained aligner of the right architecture (its weights come with the checkpoint)."""
    if spec.get("align") == "flownet":
        return models.FlowNet(net)
    if spec.get("align") == "pwcnet":
        from repro.burstsr.pwcnet import PWCAligner, PWCNet

        return PWCAligner(PWCNet())
    return None


def pwcnet_aligner(params: dict[str, Any], device: torch.device) -> torch.nn.Module:
    """The frozen PWC-Net aligner from the user's weights (``burst_sr.pwcnet_weights``)."""
    from repro.burstsr.pwcnet import PWCAligner, load_pwcnet

    path = params.get("pwcnet_weights")
    if not path:
        raise ReproError(
            "burst_sr.pwcnet_weights: not set (align=pwcnet needs pytorch-pwc's "
            "network-default weights; see docs/burst-sr.md)"
        )
    return PWCAligner(load_pwcnet(path, device), bgr=bool(params.get("pwcnet_bgr", False)))


def load_model(path: str | os.PathLike[str], device: torch.device) -> tuple[torch.nn.Module, dict]:
    """A trained network from its checkpoint (architecture stored beside the weights; a frozen
    aligner's weights are stored in it too, so the checkpoint is self-contained)."""
    ckpt = load_checkpoint(path, map_location=str(device))
    net = models.NetConfig.from_params(ckpt["net"])
    spec = ckpt["spec"]
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
    params: dict[str, Any], out_dir: str | os.PathLike[str], flownet_path: str | None = None
) -> dict[str, Any]:
    """Train one model (params from :func:`repro.burstsr.plan.train_params`) into ``out_dir``:
    ``model.pt`` (weights with the spec and widths to rebuild it), ``result.json``,
    ``metrics.csv`` and ``checkpoint.pt`` (in one process, or in each process of a torchrun
    job)."""
    if params["spec"]["kind"] not in TRAINABLE:
        raise ReproError(
            f"burst_sr.models.{params['model']}: kind '{params['spec']['kind']}' is not trainable"
        )
    with session(params.get("device", "cpu"), "burst_sr.device") as dist:
        return _train(params, out_dir, flownet_path, dist)


def _train(
    params: dict[str, Any], out_dir: str | os.PathLike[str], flownet_path: str | None, dist: Dist
) -> dict[str, Any]:
    name, spec, seed = params["model"], params["spec"], int(params["seed"])
    tcfg = params["train"]
    device = dist.device
    if int(tcfg["batch_size"]) < dist.world:
        raise ReproError(
            f"burst_sr.train.batch_size {tcfg['batch_size']} is smaller than the {dist.world} "
            "processes (each process takes rows of the global batch)"
        )
    seed_everything(seed)
    net = models.NetConfig.from_params(params.get("net"))
    flownet = None
    if spec["kind"] == "burst" and spec.get("align") == "flownet":
        if not flownet_path:
            raise ReproError(f"burst_sr.models.{name}: align=flownet needs --flownet MODEL")
        flownet, _ = load_model(flownet_path, device)
    elif spec["kind"] == "burst" and spec.get("align") == "pwcnet":
        flownet = pwcnet_aligner(params, device)
    model = build_model(spec, net, flownet).to(device)
    burst_cfg = synth.BurstConfig.from_params(
        {**params["burst"], "burst_size": int(tcfg["burst_size"])}
    )
    source = make_source(params["data"], "train")
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=tcfg["lr"])
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=tcfg["lr_step"], gamma=tcfg["lr_gamma"])
    gen = torch.Generator().manual_seed(seed)
    iters, border = int(tcfg["iterations"]), int(tcfg["boundary_ignore"])
    log_every, ckpt_every = int(tcfg["log_every"]), int(tcfg["checkpoint_every"])
    loop = TrainLoop(
        out_dir,
        total=iters,
        unit="iteration",
        name=f"burst-sr {name}",
        rank=dist.rank,
        params=params,
    )
    history: list[float] = []

    def restore(state: dict[str, Any]) -> None:
        model.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history[:] = state["history"]

    start = loop.resume(restore, map_location=str(device)) - 1
    ddp = dist.wrap(model)  # DDP with several processes; the model itself with one
    bgen = torch.Generator(device=device)
    buffers = synth.Buffers()  # each step's bursts are used up within the step
    model.train()
    t0 = time.perf_counter()
    size = int(tcfg["batch_size"])
    for it in range(start, iters):
        crops = dist.part(source.crops(size, burst_cfg.source_size, gen)).to(device)
        bgen.manual_seed(int(torch.randint(2**62, (1,), generator=gen)) + dist.rank)
        data = synth.generate(crops, burst_cfg, bgen, buffers=buffers)
        if spec["kind"] == "flownet":
            pred = ddp(data.burst)[:, 1:]
            target = synth.flow_to_packed(data.flow)[:, 1:]
            loss = (pred - target).norm(dim=2).mean()  # end-point error, packed pixels
        else:
            flow = synth.flow_to_packed(data.flow)
            loss = l1_loss(ddp(data.burst, flow), data.gt, border)
        opt.zero_grad(set_to_none=True)
        share = dist.weight(len(crops), size)  # the rank's part of the global batch's mean
        (loss * share if dist.active else loss).backward()
        opt.step()
        sched.step()
        value = loop.check({"loss": loss}, it + 1)["loss"]
        if dist.active:  # the global batch's loss: the ranks' sums over their rows
            value = dist.sum([value * len(crops)])[0] / size
        history.append(value)
        if (it + 1) % log_every == 0 or it + 1 == iters:
            recent = history[-log_every:]
            loop.record(
                {
                    "iteration": it + 1,
                    "loss": sum(recent) / len(recent),
                    "lr": sched.get_last_lr()[0],
                    "seconds": time.perf_counter() - t0,
                }
            )
        if (it + 1) % ckpt_every == 0 and it + 1 < iters:
            loop.save(
                it + 1,
                {
                    "state_dict": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "generator": gen.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "history": history,
                },
            )
    tail = history[-20:]
    result = {
        "model": name,
        "kind": spec["kind"],
        "align": spec.get("align"),
        "iterations": iters,
        "final_loss": sum(tail) / len(tail) if tail else None,
        "parameters": models.count_parameters(model),
        "seed": seed,
        "seconds": time.perf_counter() - t0,
    }
    checkpoint = {
        "kind": spec["kind"],
        "spec": dict(spec),
        "net": net.to_dict(),
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "iterations": iters,
        "history": history,
        "seed": seed,
        "parameters": result["parameters"],
        "train": tcfg,
    }
    return loop.finish(checkpoint, result)
