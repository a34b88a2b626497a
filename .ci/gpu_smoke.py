"""The paper run at smoke size on a GPU, then the GPU benchmarks, for a session that has one.

    uv run python .ci/gpu_smoke.py [--device cuda] [--out .smoke] [--no-bench]

One command checks every paper's CUDA path: ``.ci/smoke.py`` (config/paper.yaml +
config/smoke.yaml on fake official-format inputs: all six papers, the scorecards and the HTML
report), whose devices are ``auto``, so on a GPU every training and attack job runs on CUDA
with the paper's AMP and channels_last; then the benchmark scripts on ``--device`` (KD
throughput, bursts, lockstep with the GPU-hours estimate, stacking and CUDA streams). Wall
times are printed; the first failure stops it. ``--device cpu --no-bench`` runs the same smoke
here (what CI runs). ``--device cuda`` refuses to start without a GPU, so a CPU fallback is
never mistaken for a CUDA check.

On a machine with 2 GPUs it then runs the 2-GPU torchrun case: one KD-pool training run
(resnet8 on the fake CIFAR-100, 2 epochs) through ``repro-core launch`` on 1 GPU and on 2 GPUs
(torchrun, NCCL, SyncBatchNorm), checks that both reach the same weights (within a stated
tolerance) and that a 2-GPU checkpoint resumes on 1 GPU to the same end; skipped otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _smoke():
    """.ci/smoke.py, loaded by path (the same smoke CI runs)."""
    spec = importlib.util.spec_from_file_location(
        "repro_smoke", Path(__file__).with_name("smoke.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    if args.device.startswith("cuda") and not gpu_count():
        raise SystemExit("gpu_smoke: --device cuda, but torch sees no GPU here")
    t0 = time.perf_counter()
    if _smoke().main(["--out", str(out)]):
        raise SystemExit("gpu_smoke: the smoke run left planned scorecard cells empty")
    times = {"paper run at smoke size, report and scorecard check": time.perf_counter() - t0}
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
