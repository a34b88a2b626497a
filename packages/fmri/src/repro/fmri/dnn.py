"""The DNN side: layer activations (forward hooks), layer RDMs, accuracy per condition.

For each network (target, substitute) and each chosen layer, the flattened activation of
every stimulus; the layer RDM over all stimuli (correlation distance by default, the RSA
convention for DNN layers); top-1 accuracy per condition with exact McNemar tests of the
drop from clean; and the white- vs black-box displacement difference per layer
(``stats.wb_difference``), corrected over each network's layers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from repro.core import ReproError
from repro.fmri import rdm as rdmlib
from repro.fmri import stats
from repro.fmri.attacks import PixelModel, predict
from repro.fmri.params import DnnParams
from repro.fmri.stimuli import CONDITIONS, StimulusSet


def default_layers(model: nn.Module) -> list[str]:
    """The stem, each stage and the classifier of a zoo model (module names).

    CIFAR zoo models: ``conv1``, ``stages.k``, the last Linear; torchvision-wrapped ImageNet
    models (``.net``): ``net.conv1``, ``net.layer1..4``, ``net.fc``. Otherwise every direct
    child with parameters.
    """
    names = dict(model.named_modules())
    linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if hasattr(model, "stages"):
        stem = ["conv1"] if "conv1" in names else []
        return stem + [f"stages.{k}" for k in range(len(model.stages))] + linear[-1:]
    if hasattr(model, "net"):
        blocks = [f"net.{n}" for n in ("conv1", "layer1", "layer2", "layer3", "layer4")]
        return [n for n in blocks if n in names] + linear[-1:]
    return [n for n, m in model.named_children() if any(True for _ in m.parameters())]


@torch.no_grad()
def activations(
    model: PixelModel, images: torch.Tensor, layers: list[str], batch_size: int = 256
) -> dict[str, np.ndarray]:
    """Flattened outputs ``(n, features)`` of ``layers`` of ``model.model`` for uint8 images."""
    inner = model.model
    store: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    handles = []
    for name in layers:
        try:
            module = inner.get_submodule(name)
        except AttributeError:
            raise ReproError(f"layer '{name}' not found in {type(inner).__name__}") from None

        def hook(_m, _inp, out, name=name):
            out = out[0] if isinstance(out, tuple) else out
            store[name].append(out.detach().flatten(1).float().cpu())

        handles.append(module.register_forward_hook(hook))
    model.eval()
    try:
        for s in range(0, len(images), batch_size):
            model(images[s : s + batch_size].float())
    finally:
        for h in handles:
            h.remove()
    return {name: torch.cat(chunks).numpy().astype(np.float64) for name, chunks in store.items()}


def layer_rdms(acts: dict[str, np.ndarray], distance: str, prefix: str) -> dict[str, np.ndarray]:
    """One RDM per layer, named ``<prefix>/<layer>``."""
    out = {}
    for name, a in acts.items():
        if distance == "correlation" and np.any(a.std(axis=1) == 0):
            raise ReproError(f"{prefix}/{name}: a stimulus gives a constant activation pattern")
        out[f"{prefix}/{name}"] = rdmlib.rdm(a, distance)
    return out


def accuracy_by_condition(stim: StimulusSet, preds: np.ndarray) -> dict[str, Any]:
    """Top-1 accuracy per condition and McNemar tests of clean vs each adversarial set."""
    labels, cond = stim.labels, stim.conditions
    trip = stim.triplets()
    ok = preds == labels
    out: dict[str, Any] = {"accuracy": {c: stats.fraction(ok[cond == c]) for c in CONDITIONS}}
    out["n"] = {c: int(np.sum(cond == c)) for c in CONDITIONS}
    out["mcnemar"] = {
        c: stats.mcnemar(ok[trip[:, 0]], ok[trip[:, k]]) for k, c in ((1, "white"), (2, "black"))
    }
    return out


def dnn_analysis(
    stim: StimulusSet,
    nets: dict[str, PixelModel],
    params: DnnParams,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Results (JSON-ready) and the layer RDMs of every network in ``nets`` (role -> model)."""
    device = torch.device(params.device)
    x = torch.from_numpy(np.ascontiguousarray(stim.images)).permute(0, 3, 1, 2).to(device)
    st = params.stats
    results: dict[str, Any] = {"networks": {}, "n_stimuli": len(stim.table)}
    all_rdms: dict[str, np.ndarray] = {}
    chosen = {"target": params.target_layers, "substitute": params.substitute_layers}
    names = {"target": params.nets.target, "substitute": params.nets.substitute}
    for role, model in nets.items():
        layers = chosen.get(role) or default_layers(model.model)
        acts = activations(model.to(device), x, layers, params.batch_size)
        rdms = layer_rdms(acts, params.distance, role)
        all_rdms.update(rdms)
        preds = predict(model, x, params.batch_size).cpu().numpy()
        wb = stats.wb_difference(
            np.stack(list(rdms.values())), stim.triplets(), st.n_permutations, st.seed
        )
        wb_adj = stats.correct(wb["p"], st.correction, wb["p_maxstat"])
        results["networks"][role] = {
            "model": names.get(role, role),
            "layers": layers,
            **accuracy_by_condition(stim, preds),
            "wb_difference": [
                {
                    "layer": layer,
                    "T": float(wb["T"][k]),
                    "d_clean_white": float(wb["d_white"][k]),
                    "d_clean_black": float(wb["d_black"][k]),
                    "effect_size": float(wb["effect"][k]),
                    "p": float(wb["p"][k]),
                    "p_adjusted": float(wb_adj[k]),
                    "significant": bool(wb_adj[k] < st.alpha),
                }
                for k, layer in enumerate(layers)
            ],
        }
    return results, all_rdms
