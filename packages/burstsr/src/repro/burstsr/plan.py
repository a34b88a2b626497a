"""Plan the burst SR jobs (torch-free: the Snakefile imports it).

Each job gets exactly the parameters that determine its output, taken from the ``burst_sr``
config section: editing one model's settings replans that model's training and evaluation
(and the summary), a published number (``config/reported/burst-sr.yaml``) only the summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Model kinds: interpolation baselines (no training), learned ones, and the flow network.
INTERPOLATION = ("bicubic", "bilinear")
SCORED = ("bicubic", "bilinear", "single", "burst")
#: Trained kinds: one folder per seed, ``models/<model>/seed<k>/``.
TRAINED = ("single", "flownet", "burst")
#: Config keys of a model that only label it in the summary (never rerun a job).
LABELS = ("reported_as", "evaluate")


def models(section: Mapping[str, Any], *kinds: str) -> list[str]:
    """Configured model names of the given kinds (all kinds when none given)."""
    return [n for n, s in section.get("models", {}).items() if not kinds or s["kind"] in kinds]


def scored(section: Mapping[str, Any]) -> list[str]:
    """Models scored on the validation bursts and listed in the summary."""
    return [n for n in models(section, *SCORED) if section["models"][n].get("evaluate", True)]


def seeds(section: Mapping[str, Any]) -> list[int]:
    """The seeds every trained model is trained (and scored) with (``burst_sr.seeds``)."""
    return [int(k) for k in section.get("seeds", [0])]


def trained(section: Mapping[str, Any], model: str) -> bool:
    """Whether ``model`` is trained (a folder per seed) rather than an untrained baseline."""
    return section["models"][model]["kind"] in TRAINED


def model_dir(results: str, model: str, seed: int) -> str:
    """A trained model's folder: ``<results>/models/<model>/seed<k>``."""
    return f"{results}/models/{model}/seed{seed}"


def model_file(results: str, model: str, seed: int) -> str:
    """A trained model's weights: ``<results>/models/<model>/seed<k>/model.pt``."""
    return f"{model_dir(results, model, seed)}/model.pt"


def _runs(section: Mapping[str, Any], names: list[str]) -> list[str]:
    return [
        f"{n}/seed{k}" if trained(section, n) else n
        for n in names
        for k in (seeds(section) if trained(section, n) else [None])
    ]


def eval_runs(section: Mapping[str, Any]) -> list[str]:
    """The scored runs as result names under ``eval/``: ``<model>/seed<k>`` for each trained
    model and seed, ``<model>`` for an untrained baseline (scored once)."""
    return _runs(section, scored(section))


def real_runs(section: Mapping[str, Any]) -> list[str]:
    """The same for the real track (``real/``)."""
    return _runs(section, real_models(section))


def run_model(run: str) -> tuple[str, int | None]:
    """(model, seed) of a run name (:func:`eval_runs`); seed None for a baseline."""
    model, sep, seed = run.rpartition("/seed")
    return (model, int(seed)) if sep and seed.isdigit() else (run, None)


def real_track_ok(spec: Mapping[str, Any]) -> bool:
    """Whether a model can run on real bursts (no ground-truth flow exists there)."""
    return spec["kind"] != "burst" or spec.get("align") != "gt"


def real_capable(section: Mapping[str, Any]) -> list[str]:
    """Scored models that can run on BurstSR val (whether or not its bursts are set)."""
    return [n for n in scored(section) if real_track_ok(section["models"][n])]


def real_planned(section: Mapping[str, Any]) -> bool:
    """Whether the real track runs: the user has set ``data.burstsr_root``."""
    return bool(section.get("data", {}).get("burstsr_root"))


#: Why a real-track row is empty when the track is not planned (the scorecard's note).
REAL_NOT_PLANNED = (
    "not run: burst_sr.data.burstsr_root unset (the BurstSR val bursts are the user's "
    "download; see docs/burst-sr.md)"
)


def real_models(section: Mapping[str, Any]) -> list[str]:
    """Scored models evaluated on BurstSR val (none unless ``data.burstsr_root`` is set)."""
    return real_capable(section) if real_planned(section) else []


def _spec(section: Mapping[str, Any], model: str) -> dict[str, Any]:
    return {k: v for k, v in section["models"][model].items() if k not in LABELS}


def source(section: Mapping[str, Any], split: str) -> dict[str, Any]:
    """The source images of ``split`` ('train' or 'val'): photographs or Zurich."""
    data = section.get("data", {})
    if data.get("source", "photos") == "photos":
        key = "train_photos" if split == "train" else "val_photos"
        return {"source": "photos", "photos_dir": data.get("photos_dir"), key: data.get(key)}
    return {"source": "zurich", "zurich_root": data.get("zurich_root")}


def pwcnet(section: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "pwcnet_weights": section.get("pwcnet_weights"),
        "pwcnet_bgr": section.get("pwcnet_bgr", False),
    }


def val_params(section: Mapping[str, Any]) -> dict[str, Any]:
    """The stored validation bursts: burst model, source images and count/seed."""
    return {"burst": section["burst"], "data": source(section, "val"), "val": section["val"]}


def train_params(section: Mapping[str, Any], model: str, seed: int) -> dict[str, Any]:
    """Training one model: its spec and widths, the recipe, bursts, data, device and seed."""
    spec = _spec(section, model)
    params = {
        "model": model,
        "spec": spec,
        "net": section.get("net", {}),
        "train": {**section["train"], **spec.get("train", {})},
        "burst": section["burst"],
        "data": source(section, "train"),
        "device": section.get("device", "cpu"),
        "seed": seed,
    }
    if spec.get("align") == "pwcnet":
        params.update(pwcnet(section))
    return params


def _seeded(seed: int | None) -> dict[str, Any]:
    return {} if seed is None else {"seed": seed}


def eval_params(section: Mapping[str, Any], model: str, seed: int | None = None) -> dict[str, Any]:
    """Scoring one model (a trained one: its run of ``seed``) on the stored validation
    bursts."""
    return {
        "model": model,
        **_seeded(seed),
        "spec": _spec(section, model),
        "eval": section["eval"],
        "device": section.get("device", "cpu"),
        "lpips_weights": section.get("lpips_weights"),
    }


def real_params(section: Mapping[str, Any], model: str, seed: int | None = None) -> dict[str, Any]:
    """Scoring one model on BurstSR val (AlignedPSNR's flow network included)."""
    return {
        "model": model,
        **_seeded(seed),
        "spec": _spec(section, model),
        "eval": section["eval"],
        "device": section.get("device", "cpu"),
        **pwcnet(section),
    }


def method_label(name: str, spec: Mapping[str, Any]) -> str:
    """The summary's method name of one of our models: the published method it reproduces,
    or its own name, marked as an oracle when it aligns with the ground-truth motion."""
    if spec.get("reported_as"):
        return spec["reported_as"]
    if spec["kind"] == "burst" and spec.get("align", "gt") == "gt":
        return f"{name} (oracle: ground-truth flow)"
    return name


def summary_params(section: Mapping[str, Any], run: str) -> dict[str, Any]:
    """The summary: each scored model's label, kind and alignment, what the figures show."""
    return {
        "run": run,
        "models": {
            n: {
                "label": method_label(n, section["models"][n]),
                "kind": section["models"][n]["kind"],
                "align": section["models"][n].get("align"),
            }
            for n in scored(section)
        },
        "seeds": seeds(section),
        "real_track": {"models": real_capable(section), "planned": real_planned(section)},
        "eval": {k: section["eval"][k] for k in ("boundary_ignore", "example_index")},
        "source": section.get("data", {}).get("source", "photos"),
    }


def check(section: Mapping[str, Any]) -> list[str]:
    """One-line problems with the section (empty when fine)."""
    problems = []
    for name, spec in section.get("models", {}).items():
        key = f"burst_sr.models.{name}"
        if spec["kind"] == "burst" and spec.get("align", "gt") == "gt" and spec.get("reported_as"):
            problems.append(
                f"{key}.reported_as: align gt aligns with the ground-truth motion (an oracle), "
                f"so it cannot stand on the published '{spec['reported_as']}' row"
            )
        if spec.get("align") == "flownet" and spec.get("flownet") not in models(section, "flownet"):
            problems.append(f"{key}.flownet: no flownet model '{spec.get('flownet')}'")
    return problems
