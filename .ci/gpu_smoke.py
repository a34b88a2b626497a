"""CUDA smoke run of the paper path plus the GPU benchmarks, for a session that has a GPU.

    uv run python .ci/gpu_smoke.py [--device cuda] [--out .smoke] [--no-bench]

The GPU machine cannot download, so this builds CIFAR-100 and Zurich RAW-to-RGB archives in
the official formats (random images, from the repro-data test fixtures), derives a config
from config/paper.yaml that keeps the paper's models, recipes and GPU settings (AMP,
channels_last, DBSR widths, 384 px bursts) but trains one Energy KD pair for one epoch and
the burst models for a few iterations, runs the whole DAG with it in ``--out``, then the
benchmark scripts on ``--device`` (KD throughput, bursts, lockstep with the GPU-hours
estimate, stacking and CUDA streams). Wall times are printed; the first failure stops it.
``--device cpu`` runs the same path here (slowly) to check the script itself.

On a machine with 2 GPUs it then runs the 2-GPU torchrun case: one KD-pool training run
(resnet8 on the fake CIFAR-100, 2 epochs) through ``repro-core launch`` on 1 GPU and on 2 GPUs
(torchrun, NCCL, SyncBatchNorm), checks that both reach the same weights (within a stated
tolerance) and that a 2-GPU checkpoint resumes on 1 GPU to the same end; skipped otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _fixtures():
    """repro-data's official-format archive writers (its test conftest, loaded by path)."""
    path = ROOT / "packages" / "data" / "tests" / "conftest.py"
    spec = importlib.util.spec_from_file_location("repro_data_archives", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def smoke_config(out: Path, device: str) -> Path:
    """config/paper.yaml cut down to minutes of work, on fake archives in ``out``."""
    fx = _fixtures()
    cifar, zurich = out / "cifar-100-python.tar.gz", out / "Zurich-RAW-to-DSLR-Dataset.zip"
    fx.make_cifar100_archive(cifar, n_train=500, n_test=200)
    fx.make_zurich_zip(zurich, n_train=6, n_test=4)
    cfg = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    cfg.update(run="smoke", papers=["energy-kd", "burst-sr"], datasets=["cifar100"])
    md5 = hashlib.md5(cifar.read_bytes()).hexdigest()
    cfg["data"]["cifar100"].update(archive=str(cifar), hash=f"md5:{md5}", download=False)
    cfg["data"]["zurich"].update(archive=str(zurich), check_counts=False)
    kd = cfg["energy_kd"]
    pair = next(e for e in kd["experiments"] if e["teacher"] == "resnet32x4")
    kd["experiments"] = [{**pair, "methods": ["kd", "energy_kd"]}]
    kd["seeds"] = [0]
    for recipe in (kd["vanilla_train"], kd["student_train"], *kd["method_train"].values()):
        recipe.update(epochs=1, lr_milestones=[])
    for section in ("vanilla_train", "student_train"):
        kd[section]["device"] = device
    bsr = cfg["burst_sr"]
    bsr.update(device=device, threads=4 if device == "cuda" else 2)
    bsr["train"].update(iterations=4, batch_size=2, checkpoint_every=2, log_every=1)
    bsr["models"]["flownet"]["train"] = {"iterations": 4}
    bsr["val"]["count"] = 4
    path = out / "smoke.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run(cmd: list[str], cwd: Path) -> float:
    """Run a command, stream its output, stop on failure; returns its wall time (s)."""
    print("+", " ".join(cmd), flush=True)
    bindir = str(Path(sys.executable).parent)  # the rules call the packages' CLIs
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, env=env)
    return time.perf_counter() - t0


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _max_difference(a: Path, b: Path) -> float:
    import torch

    wa, wb = (torch.load(p / "model.pt", weights_only=True)["model"] for p in (a, b))
    return max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa)


def ddp_case(out: Path) -> float:
    """One training run on 1 and on 2 GPUs (torchrun, NCCL), and a 2-GPU checkpoint resumed
    on 1 GPU; returns the wall time. Weights agree to ``ATOL`` (float32 sums in another order,
    and cuDNN's algorithms: not bit-exact)."""
    import json

    atol = 1e-3
    data = out / "data" / "cifar100"
    train = {"epochs": 2, "batch_size": 64, "lr": 0.05, "lr_milestones": [], "device": "cuda",
             "amp": False, "seed": 0}  # fmt: skip
    params = {"student": "resnet8", "method": "ce", "variant": "ce", "train": train}
    bindir = Path(sys.executable).parent
    env_locks = out / "gpu-locks"

    def train_on(gpus: int, folder: str, **extra) -> Path:
        run_dir = out / "ddp" / folder
        cmd = [str(bindir / "repro-core"), "launch", f"--gpus={gpus}", f"--locks={env_locks}",
               "--", str(bindir / "repro-distill"), "train", "--data", str(data),
               "--out", str(run_dir), "--params",
               json.dumps({**params, "train": {**train, **extra}})]  # fmt: skip
        print("+", " ".join(cmd), flush=True)
        proc = subprocess.run(cmd, cwd=out)
        if proc.returncode and not extra:
            raise SystemExit(f"2-GPU case: {folder} failed ({proc.returncode})")
        return run_dir

    t0 = time.perf_counter()
    one, two = train_on(1, "one"), train_on(2, "two")
    diff = _max_difference(one, two)
    print(f"2-GPU case: max |weight difference| 1 vs 2 GPUs = {diff:.3g} (tolerance {atol})")
    results = [json.loads((d / "result.json").read_text()) for d in (one, two)]
    print(f"2-GPU case: top-1 {results[0]['final_top1']:.2f} vs {results[1]['final_top1']:.2f}"
          f" (test_n {results[0]['test_n']} / {results[1]['test_n']})")  # fmt: skip
    stopped = train_on(2, "resumed", stop_after_steps=10)  # in epoch 2 (8 steps per epoch)
    train_on(1, "resumed")
    resumed = _max_difference(one, stopped)
    print(f"2-GPU case: 2-GPU checkpoint resumed on 1 GPU: max difference {resumed:.3g}")
    if diff > atol or resumed > atol or results[0]["test_n"] != results[1]["test_n"]:
        raise SystemExit("2-GPU case: results differ beyond the tolerance")
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=ROOT / ".smoke")
    parser.add_argument("--no-bench", action="store_true", help="skip the benchmark scripts")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    config = smoke_config(out, args.device)
    exe = Path(sys.executable).with_name("snakemake")
    times = {
        "snakemake (paper path, smoke sizes)": run(
            [
                str(exe),
                "-s",
                str(ROOT / "Snakefile"),
                "--directory",
                str(out),
                "--cores",
                "all",
                "--configfile",
                str(config),
            ],
            out,
        )  # fmt: skip
    }
    if not args.no_bench:
        for name, script, extra in (
            ("KD throughput benchmark", "packages/distill/benchmarks/bench_kd_throughput.py", []),
            ("burst benchmark", "packages/burstsr/benchmarks/bench_bursts.py", []),
            # lockstep vs alone vs reference, and the GPU-hours of the CIFAR-100 tables
            ("lockstep benchmark", "packages/distill/benchmarks/bench_lockstep.py", ["--estimate"]),
            ("stacking / streams benchmark", "packages/distill/benchmarks/bench_stacking.py", []),
        ):
            times[name] = run([sys.executable, script, "--device", args.device, *extra], ROOT)
    if args.device == "cuda" and gpu_count() >= 2:
        times["2-GPU torchrun case"] = ddp_case(out)
    else:
        print(f"2-GPU torchrun case: skipped ({gpu_count()} GPU(s) here, needs 2)")
    for name, seconds in times.items():
        print(f"{name}: {seconds:.1f} s")
    for paper in ("energy-kd", "burst-sr"):
        print((out / "results" / "smoke" / paper / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
