"""The paper run at smoke size: config/paper.yaml + config/smoke.yaml on fake official-format
inputs (config/cpu.yaml too where torch sees no GPU), every paper, then the HTML report and
a check of the scorecards.

    uv run python .ci/smoke.py [--out .smoke] [--cores N] [-- <more snakemake options>]

Steps: ``repro-data fake --out OUT/inputs`` (files in the exact official formats and
``inputs.yaml`` pointing the paper config at them), then in ``OUT`` (its own data/, results/,
logs/: nothing of a real run is touched) ``snakemake --configfile config/paper.yaml
config/smoke.yaml OUT/inputs/inputs.yaml``, ``snakemake --report OUT/report.html`` and the
check that every paper's scorecard has ours filled in every cell the run plans (rows that are
published only may stay empty). Devices are ``auto`` in the overlay: CUDA where there is one
(AMP, channels_last), else CPU. Prints each step's wall time; the first failure stops it.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPERS = ("energy-kd", "cskd", "r2kd", "burst-sr", "fmri-adv", "mhsan")


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


def snakemake_args(out: Path, inputs: Path, gpu: bool) -> list[str]:
    """The paper config, the smoke overlay, config/cpu.yaml without a GPU, the fake inputs."""
    cpu = [] if gpu else [ROOT / "config" / "cpu.yaml"]
    configs = [ROOT / "config" / "paper.yaml", ROOT / "config" / "smoke.yaml", *cpu, inputs]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".smoke")
    parser.add_argument("--cores", default="all")
    parser.add_argument("extra", nargs="*", help="more snakemake options (after --)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    bindir = Path(sys.executable).parent
    inputs = out / "inputs" / "inputs.yaml"
    times = {"fake inputs (repro-data fake)": run(
        [str(bindir / "repro-data"), "fake", "--out", str(inputs.parent)])}  # fmt: skip
    common = snakemake_args(out, inputs, has_gpu())
    times["paper run at smoke size (snakemake)"] = run(
        [str(bindir / "snakemake"), *common, "--cores", args.cores, *args.extra]
    )
    times["HTML report"] = run(
        [str(bindir / "snakemake"), *common, "--report", str(out / "report.html")]
    )
    for name, seconds in times.items():
        print(f"smoke: {name}: {seconds:.0f} s")
    problems = empty_cells(out / "results" / "smoke")
    for p in problems:
        print(f"smoke: {p}")
    if problems:
        return 1
    print(f"smoke: every planned scorecard cell of {len(PAPERS)} papers has a result; "
          f"report: {out / 'report.html'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
