"""The paper run at smoke size: config/paper.yaml + config/smoke.yaml on fake official-format
inputs (config/cpu.yaml too where torch sees no GPU), every paper, then the HTML report and
a check of the scorecards.

    uv run python .ci/smoke.py [--out .smoke] [--cores N] [--full] [-- <snakemake options>]

Steps: ``repro-data fake --out OUT/inputs`` (files in the exact official formats and
``inputs.yaml`` pointing the paper config at them), then in ``OUT`` (its own data/, results/,
logs/: nothing of a real run is touched) ``snakemake --configfile config/paper.yaml
config/smoke.yaml OUT/inputs/inputs.yaml``, ``snakemake --report OUT/report.html`` and the
check that every paper's scorecard has ours filled in every cell the run plans (rows that are
published only may stay empty). By default the KD tables and MHSAN's (dataset, model) jobs are
trimmed to a covering subset (:func:`cover`: every table, dataset, protocol, variant and
architecture at least once) so that it fits CI; ``--full`` runs every cell.
Devices are ``auto`` in the overlay: CUDA where there is one
(AMP, channels_last), else CPU. Prints each step's wall time; the first failure stops it.
"""

from __future__ import annotations

import argparse
import copy
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PAPERS = ("energy-kd", "cskd", "r2kd", "burst-sr", "fmri-adv", "mhsan")
#: The KD papers' sections and the leaderboard: the tables the covering subset trims.
KD_SECTIONS = ("energy_kd", "cskd", "r2kd")
BOARD = "kd_leaderboard"


def merge(base: dict, overlay: dict) -> dict:
    """Snakemake's merge of several --configfile files: dicts recursively, anything else
    (lists included) replaced."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def smoke_config() -> dict:
    """config/paper.yaml with config/smoke.yaml on top."""
    load = lambda name: yaml.safe_load((ROOT / "config" / name).read_text())  # noqa: E731
    return merge(load("paper.yaml"), load("smoke.yaml"))


def _tables(config: dict) -> list[tuple[str, int, dict]]:
    """(section, index, table) of every KD table; the leaderboard as one table (index -1)."""
    found = [(sec, i, t) for sec in KD_SECTIONS for i, t in enumerate(config[sec]["tables"])]
    return found + ([(BOARD, -1, config[BOARD])] if config.get(BOARD) else [])


def _models(pair: str) -> set[str]:
    return set(pair.split("-"))


def forward_flops(model: str) -> int:
    """FLOPs of one forward of a zoo model on a 32 x 32 image (a pair's relative cost)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from repro.distill.models import build_model

    net = build_model(model, num_classes=10).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, 3, 32, 32))
    return counter.get_total_flops()


def cover(config: dict, cost=forward_flops) -> dict:
    """An overlay trimming every KD table (and the leaderboard) to a covering subset of its
    pairs and variants: every table keeps at least one cell (so every dataset, recipe and
    scorecard table runs), every variant of the paper run runs at least once, every
    architecture at least once, seeds as the smoke config has them. Greedy: first each
    table's variants not yet covered, most first; then pairs, each time the pair that adds the
    most architectures per cell it costs (ties, and a table that needs no new architecture: the
    pair of the cheapest forwards, ``cost``). MHSAN: :func:`cover_mhsan`. Burst SR and fMRI
    are kept whole."""
    tables = _tables(config)
    costs: dict[str, int] = {}

    def pair_cost(pair: str) -> int:
        for m in _models(pair) - set(costs):
            costs[m] = cost(m)
        return sum(costs[m] for m in _models(pair))

    variants: dict[tuple, list[str]] = {(sec, i): [] for sec, i, _ in tables}
    done: set[str] = set()
    for sec, i, t in sorted(tables, key=lambda x: -len(set(x[2]["variants"]))):
        new = [v for v in t["variants"] if v not in done]
        variants[(sec, i)] = new
        done.update(new)
    pairs: dict[tuple, list[str]] = {(sec, i): [] for sec, i, _ in tables}
    needed = set().union(*(_models(p) for _, _, t in tables for p in t["pairs"]))
    while needed:
        best = max(
            ((sec, i, p) for sec, i, t in tables for p in t["pairs"]
             if p not in pairs[(sec, i)]),
            key=lambda c: (len(_models(c[2]) & needed) / max(1, len(variants[c[:2]])),
                           -pair_cost(c[2])),
        )  # fmt: skip
        pairs[best[:2]].append(best[2])
        needed -= _models(best[2])
    overlay: dict = {}
    for sec, i, t in tables:
        kept = {**t, "pairs": pairs[(sec, i)] or [min(t["pairs"], key=pair_cost)],
                "variants": variants[(sec, i)] or t["variants"][:1]}  # fmt: skip
        if sec == BOARD:
            overlay[BOARD] = {"pairs": kept["pairs"], "variants": kept["variants"]}
        else:
            overlay.setdefault(sec, {"tables": copy.deepcopy(config[sec]["tables"])})
            overlay[sec]["tables"][i] = kept
    overlay["mhsan"] = cover_mhsan(config["mhsan"])
    return overlay


def cover_mhsan(section: dict) -> dict:
    """Each MHSAN model trained once, on one dataset, and every dataset trains (so each of its
    protocols is scored), as ``datasets.<d>.only`` lists: a model with overrides of its own
    on a dataset (Flickr30K's bidirectional 10-head model) runs there; the others go to the
    dataset with fewest models so far (config order on ties)."""
    datasets = list(section["datasets"])
    only: dict[str, list[str]] = {d: [] for d in datasets}
    placed = set()
    for d in datasets:
        for model in (section["datasets"][d] or {}).get("models", {}):
            only[d].append(model)
            placed.add(model)
    for model in section["models"]:
        if model not in placed:
            only[min(datasets, key=lambda d: len(only[d]))].append(model)
    return {"datasets": {d: {"only": models} for d, models in only.items() if models}}


def run(cmd: list[str], cwd: Path = ROOT) -> float:
    """Run a command with the environment's scripts on PATH; returns its wall time (s)."""
    print("+", " ".join(cmd), flush=True)
    bindir = str(Path(sys.executable).parent)  # the rules call the packages' CLIs
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, env=env)
    return time.perf_counter() - t0


def has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def snakemake_args(out: Path, inputs: Path, gpu: bool, full: bool) -> list[str]:
    """The paper config, the smoke overlay, the covering subset (unless ``full``),
    config/cpu.yaml without a GPU, the fake inputs."""
    extra = [] if gpu else [ROOT / "config" / "cpu.yaml"]
    if not full:
        path = out / "cover.yaml"
        path.write_text(
            "# written by .ci/smoke.py: the covering subset of the KD tables and MHSAN (cover())\n"
            + yaml.safe_dump(cover(smoke_config()), sort_keys=False)
        )
        extra.insert(0, path)
    configs = [ROOT / "config" / "paper.yaml", ROOT / "config" / "smoke.yaml", *extra, inputs]
    return ["-s", str(ROOT / "Snakefile"), "--directory", str(out),
            "--configfile", *map(str, configs)]  # fmt: skip


def empty_cells(results: Path) -> list[str]:
    """Planned scorecard rows without ours (n empty), one line each, over every paper."""
    problems = []
    for paper in PAPERS:
        path = results / paper / "summary.csv"
        if not path.is_file():
            problems.append(f"{paper}: {path} is missing")
            continue
        for row in csv.DictReader(path.open(encoding="utf-8")):
            if row.get("planned", "True") == "True" and not row.get("n"):
                keys = {
                    k: v
                    for k, v in row.items()
                    if v
                    and not k.endswith(("_reported", "_ours", "_std", "_diff"))
                    and k not in ("source", "note")
                }
                problems.append(f"{paper}: no result for planned cell {keys}")  # fmt: skip
    return problems


def missing_events(results: Path) -> list[str]:
    """Training runs without TensorBoard events (the paper config sets logging.tensorboard)."""
    return [
        f"no TensorBoard events beside {m}"
        for m in sorted(results.rglob("metrics.csv"))
        if not any((m.parent / "tensorboard").glob("events.out.tfevents.*"))
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".smoke")
    parser.add_argument("--cores", default="all")
    parser.add_argument(
        "--full", action="store_true",
        help="every cell of every table (default: the covering subset CI runs, see cover())",
    )  # fmt: skip
    parser.add_argument("extra", nargs="*", help="more snakemake options (after --)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    bindir = Path(sys.executable).parent
    inputs = out / "inputs" / "inputs.yaml"
    times = {"fake inputs (repro-data fake)": run(
        [str(bindir / "repro-data"), "fake", "--out", str(inputs.parent)])}  # fmt: skip
    common = snakemake_args(out, inputs, has_gpu(), args.full)
    times["paper run at smoke size (snakemake)"] = run(
        [str(bindir / "snakemake"), *common, "--cores", args.cores, *args.extra]
    )
    times["HTML report"] = run(
        [str(bindir / "snakemake"), *common, "--report", str(out / "report.html")]
    )
    for name, seconds in times.items():
        print(f"smoke: {name}: {seconds:.0f} s")
    problems = empty_cells(out / "results" / "smoke") + missing_events(out / "results" / "smoke")
    for p in problems:
        print(f"smoke: {p}")
    if problems:
        return 1
    print(f"smoke: every planned scorecard cell of {len(PAPERS)} papers has a result; "
          f"report: {out / 'report.html'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
