"""Start a job's processes on the GPUs it asked for: the one launcher of every GPU rule.

Torch-free (the Snakefile imports :func:`prefix`; the launcher itself only claims devices and
``exec``s the real command). A rule declares ``resources: gpu=N`` (on a SLURM cluster also
``nodes=M``, and GPUs per node as ``gres: gpu:K``, through the profile's ``set-resources``);
its shell line starts with ``{params.launch}``, which :func:`prefix` builds from those
resources:

============================  ================================================================
job's resources               what runs
============================  ================================================================
``gpu=0`` (CPU), one node     the CLI, unchanged (the prefix is empty)
``gpu=1``                     ``repro-core launch --gpus=1 -- CLI``: claims a GPU, runs the CLI
``gpu=N`` (one node)          claims N GPUs, then ``torchrun --standalone --nproc-per-node N
                              --no-python CLI`` (one process per GPU, DDP)
``gpu=N``, ``nodes=M``        in the SLURM job: ``srun`` starts one launcher per node, each runs
                              ``torchrun --nnodes M --node-rank $SLURM_NODEID --nproc-per-node
                              N/M --master-addr <first host of $SLURM_JOB_NODELIST> ...``
============================  ================================================================

Devices on a workstation. Snakemake counts ``gpu`` against ``--resources gpu=N`` but sets no
``CUDA_VISIBLE_DEVICES``, so the launcher claims devices itself: one lock file per GPU in a
folder every job of the machine shares (``$REPRO_GPU_LOCKS``, default
``/tmp/repro-gpu-locks``), locked with ``flock``. The kernel drops a lock when the last process
holding it ends, however it ends (``kill -9`` included): the claimed descriptors are passed to
the ``exec``'d command, so the slot is held exactly as long as the job runs. Two jobs can
never hold the same slot. A job that finds too few free GPUs waits for them (Snakemake's
counter normally prevents that; it also makes a wrong ``--resources`` harmless).

A job may share a GPU with ``jobs_per_gpu - 1`` others (small CIFAR jobs leave a GPU mostly
idle): it takes the GPU's lock shared, plus one of ``jobs_per_gpu`` share slots exclusively;
a job that wants the whole GPU takes it exclusively, so it never meets a sharing job.

The GPUs to hand out are ``$REPRO_GPU_DEVICES`` (e.g. ``0,1,2``) if set, else the job's
``CUDA_VISIBLE_DEVICES`` (a restriction the user set for the whole run), else every GPU that
``nvidia-smi -L`` lists. Inside a SLURM job (``$SLURM_JOB_ID`` set) nothing is claimed: SLURM
has already given the job its devices. On a machine without any GPU the job runs unclaimed
(its device setting decides: ``auto`` falls back to the CPU, as it did before the launcher).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro.core import ReproError

LOCKS_ENV = "REPRO_GPU_LOCKS"
DEVICES_ENV = "REPRO_GPU_DEVICES"
DEFAULT_LOCKS = "/tmp/repro-gpu-locks"
#: The launcher as a command (works wherever the job's Python works, on every node).
LAUNCHER = [sys.executable, "-m", "repro.core.launch"]


@dataclass(frozen=True)
class Request:
    """What a job asked for: GPUs in total, nodes, and how its processes are laid out."""

    gpus: int = 0  # GPUs of the job in total (the rule's `gpu` resource)
    nodes: int = 1  # SLURM nodes (the `nodes` resource)
    procs: int = 0  # processes per node when gpus == 0 (CPU processes, gloo)
    jobs_per_gpu: int = 1  # jobs that may share one GPU (1: the GPU is the job's alone)
    single: bool = False  # one process whatever the GPUs (jobs that are not distributed)

    def __post_init__(self) -> None:
        for name, low in (("gpus", 0), ("nodes", 1), ("procs", 0), ("jobs_per_gpu", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ReproError(f"launch: {name} must be an integer >= {low}, got {value!r}")
        if self.gpus and self.gpus % self.nodes:
            raise ReproError(
                f"launch: {self.gpus} GPUs cannot be split evenly over {self.nodes} nodes"
            )
        if self.nodes > 1 and self.single:
            raise ReproError("launch: a single-process job cannot span several nodes")

    @property
    def per_node(self) -> int:
        """Processes started on each node (one per GPU)."""
        if self.single:
            return 1
        if self.gpus:
            return self.gpus // self.nodes
        return max(self.procs, 1)

    @property
    def world_size(self) -> int:
        return self.per_node * self.nodes

    def flags(self) -> list[str]:
        """The launcher's command-line flags for this request."""
        out = [f"--gpus={self.gpus}"]
        if self.nodes > 1:
            out.append(f"--nodes={self.nodes}")
        if self.procs:
            out.append(f"--procs={self.procs}")
        if self.jobs_per_gpu > 1:
            out.append(f"--jobs-per-gpu={self.jobs_per_gpu}")
        if self.single:
            out.append("--single")
        return out


def _int_resource(resources: Any, name: str, default: int) -> int:
    value = resources.get(name, default) if hasattr(resources, "get") else default
    return default if value is None else int(value)


def job_gpus(resources: Any) -> int:
    """GPUs of a job in total: the ``gpu`` resource, else ``gres: gpu[:type]:N`` (N per
    node, as SLURM counts it) times ``nodes``."""
    gpus = _int_resource(resources, "gpu", 0)
    gres = resources.get("gres") if hasattr(resources, "get") else None
    if not gpus and isinstance(gres, str):
        match = re.fullmatch(r"gpu(?::[^:,]+)?:(\d+)", gres.strip())
        if match:
            gpus = int(match.group(1)) * _int_resource(resources, "nodes", 1)
    return gpus


def prefix(resources: Any, *, jobs_per_gpu: int = 1, single: bool = False) -> str:
    """The shell prefix of a rule's command, from its Snakemake ``resources`` (``gpu`` or
    ``gres``, ``nodes``): empty for a CPU job on one node, else ``repro-core launch ... --``.

    Used as a params function taking ``resources``, which Snakemake does not count as a rerun
    trigger: running a finished job's rule on more GPUs does not rerun it."""
    request = Request(
        gpus=job_gpus(resources),
        nodes=_int_resource(resources, "nodes", 1),
        jobs_per_gpu=int(jobs_per_gpu or 1),
        single=single,
    )
    if request.gpus == 0 and request.nodes == 1:
        return ""
    return " ".join(["repro-core", "launch", *request.flags(), "--"])


# -- SLURM -------------------------------------------------------------------------------------
def first_host(nodelist: str) -> str:
    """The first host of a SLURM hostlist expression (``gpu[07-08,11],cpu1`` -> ``gpu07``),
    as ``scontrol show hostnames`` would list it first (zero padding kept)."""
    depth, item = 0, ""
    for ch in nodelist.strip():  # the first top-level comma ends the first item
        if ch == "," and depth == 0:
            break
        depth += {"[": 1, "]": -1}.get(ch, 0)
        item += ch
    host, rest = "", item
    while "[" in rest:
        head, _, tail = rest.partition("[")
        ranges, _, rest = tail.partition("]")
        host += head + ranges.split(",")[0].split("-")[0]
    host += rest
    if not host:
        raise ReproError(f"launch: SLURM node list '{nodelist}' names no host")
    return host


def rendezvous_port(env: Mapping[str, str]) -> int:
    """``$MASTER_PORT``, else a port derived from the job id (jobs sharing a node differ)."""
    if env.get("MASTER_PORT"):
        return int(env["MASTER_PORT"])
    return 20000 + int(env.get("SLURM_JOB_ID", "0")) % 10000


def torchrun_command(
    request: Request, env: Mapping[str, str], slurm: bool | None = None
) -> list[str]:
    """``torchrun`` and its options (the program follows) for this node of the job.

    One node: ``--standalone`` (a private rendezvous on a free local port, so concurrent jobs
    on one machine never meet). Several nodes (or ``slurm``: an srun task): a static
    rendezvous taken from the SLURM environment of the task: ``SLURM_NNODES`` nodes, this one
    ``SLURM_NODEID``, the first host of ``SLURM_JOB_NODELIST`` as the master; global ranks are
    ``node * per_node + local``.
    """
    base = ["torchrun"]
    per_node = f"--nproc-per-node={request.per_node}"
    if not (request.nodes > 1 if slurm is None else slurm):
        return [*base, "--standalone", per_node, "--no-python"]
    missing = [k for k in ("SLURM_JOB_NODELIST", "SLURM_NNODES", "SLURM_NODEID") if not env.get(k)]
    if missing:
        raise ReproError(
            f"launch: {request.nodes} nodes need a SLURM task environment ({', '.join(missing)} "
            "unset); run the job through the SLURM executor (profiles/slurm)"
        )
    if int(env["SLURM_NNODES"]) != request.nodes:
        raise ReproError(
            f"launch: the job asks for {request.nodes} nodes but SLURM gave it "
            f"{env['SLURM_NNODES']} (set the rule's `nodes` resource)"
        )
    return [
        *base,
        f"--nnodes={request.nodes}",
        f"--node-rank={int(env['SLURM_NODEID'])}",
        per_node,
        f"--master-addr={first_host(env['SLURM_JOB_NODELIST'])}",
        f"--master-port={rendezvous_port(env)}",
        "--no-python",
    ]


def srun_command(request: Request) -> list[str]:
    """``srun`` starting one launcher task per node of the job's allocation. ``--overlap``
    lets the step share the resources of a step that runs the job itself (the SLURM
    executor's jobstep); the step gets every GPU of the job on each node (SLURM's default)."""
    n = request.nodes
    return [
        "srun",
        f"--nodes={n}",
        f"--ntasks={n}",
        "--ntasks-per-node=1",
        "--kill-on-bad-exit=1",
        "--overlap",
    ]


# -- devices on a workstation ------------------------------------------------------------------
def visible_devices(env: Mapping[str, str], devices: str | None = None) -> list[str]:
    """The GPUs this launcher may hand out (ids as CUDA_VISIBLE_DEVICES takes them)."""
    for text in (devices, env.get(DEVICES_ENV), env.get("CUDA_VISIBLE_DEVICES")):
        if text is not None and text.strip():
            ids = [d.strip() for d in text.split(",") if d.strip()]
            return [] if ids == ["-1"] else ids
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def _lock_name(device: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in device)


@dataclass
class Claim:
    """Devices held by this process (the open, locked descriptors keep them)."""

    devices: list[str]
    fds: list[int]

    def release(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def _open_lock(folder: Path, name: str) -> int:
    fd = os.open(folder / name, os.O_RDWR | os.O_CREAT, 0o666)
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o666)  # other users' jobs share the folder
    return fd


def _try_lock(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _try_device(folder: Path, device: str, share: int) -> list[int] | None:
    """Lock ``device`` (exclusively, or one of its ``share`` slots); the descriptors or None."""
    name = _lock_name(device)
    fd = _open_lock(folder, f"gpu-{name}.lock")
    if share == 1:
        if _try_lock(fd, fcntl.LOCK_EX):
            return [fd]
        os.close(fd)
        return None
    if not _try_lock(fd, fcntl.LOCK_SH):
        os.close(fd)
        return None
    for slot in range(share):
        sfd = _open_lock(folder, f"gpu-{name}.share{slot}")
        if _try_lock(sfd, fcntl.LOCK_EX):
            return [fd, sfd]
        os.close(sfd)
    os.close(fd)
    return None


def claim(
    devices: Sequence[str],
    count: int,
    folder: str | os.PathLike[str],
    *,
    share: int = 1,
    wait: float | None = None,
    poll: float = 0.5,
    say=None,
) -> Claim:
    """Hold ``count`` of ``devices`` (each whole, or one of ``share`` slots on it), waiting up
    to ``wait`` seconds (None: for ever) until enough are free. All or nothing: a job never
    sits on some GPUs while it waits for more."""
    if count > len(devices):
        shown = ",".join(devices) or "none"
        raise ReproError(
            f"launch: the job asks for {count} GPU(s) but this machine has {len(devices)} "
            f"visible ({shown}); set {DEVICES_ENV} or lower the rule's gpu resource"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        folder.chmod(0o1777)
    start, told = time.monotonic(), False
    while True:
        got: list[str] = []
        fds: list[int] = []
        for device in devices:
            held = _try_device(folder, device, share)
            if held:
                got.append(device)
                fds += held
                if len(got) == count:
                    return Claim(got, fds)
        for fd in fds:
            os.close(fd)
        if wait is not None and time.monotonic() - start > wait:
            raise ReproError(f"launch: no {count} free GPU(s) of {','.join(devices)} in {wait} s")
        if not told and say is not None:
            say(f"waiting for {count} free GPU(s) of {','.join(devices)} (locks in {folder})")
            told = True
        time.sleep(poll)


# -- the launcher --------------------------------------------------------------------------
def _torchrun_exe(argv: list[str]) -> list[str]:
    """Run the environment's own torchrun (next to this Python) when the command says torchrun."""
    if argv and argv[0] == "torchrun":
        local = Path(sys.executable).with_name("torchrun")
        return [str(local) if local.exists() else "torchrun", *argv[1:]]
    return argv


def plan(
    request: Request,
    env: Mapping[str, str],
    command: list[str],
    *,
    node_task: bool = False,
    srun: bool = False,
) -> list[str]:
    """The command line to ``exec`` for ``command`` (after any devices are claimed). Several
    nodes (or ``srun``, in a SLURM job on one node): ``srun`` runs the launcher once per node
    (``node_task``), which runs torchrun with the rendezvous from the SLURM environment."""
    if request.nodes > 1 or srun or node_task:
        if not env.get("SLURM_JOB_ID"):
            raise ReproError(
                f"launch: {request.nodes} node(s) through srun need a SLURM job (use "
                "profiles/slurm); on one machine set nodes to 1"
            )
        if not node_task:
            again = [*LAUNCHER, *request.flags(), "--node-task", "--", *command]
            return [*srun_command(request), *again]
        visible = [d for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
        if request.gpus and visible and len(visible) != request.per_node:
            raise ReproError(
                f"launch: node {env.get('SLURM_NODEID', '?')} got {len(visible)} GPU(s) from "
                f"SLURM but the job runs {request.per_node} per node; ask SLURM for them per "
                f"node (resource gres: 'gpu:{request.per_node}')"
            )
        return [*torchrun_command(request, env, slurm=True), *command]
    if request.per_node > 1:
        return [*torchrun_command(request, env), *command]
    return list(command)


def _say(message: str) -> None:
    print(f"repro-core launch: {message}", file=sys.stderr, flush=True)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="repro-core launch")
    parser.description = "Claim the job's GPUs and start its processes (torchrun for several)."
    parser.add_argument("--gpus", type=int, default=0, help="GPUs of the job in total")
    parser.add_argument("--nodes", type=int, default=1, help="SLURM nodes")
    parser.add_argument("--procs", type=int, default=0, help="CPU processes (gpus=0), gloo")
    parser.add_argument("--jobs-per-gpu", type=int, default=1, help="jobs sharing one GPU")
    parser.add_argument("--single", action="store_true", help="one process whatever the GPUs")
    parser.add_argument("--devices", help=f"GPUs to hand out (default ${DEVICES_ENV}, ...)")
    parser.add_argument("--locks", help=f"lock folder (default ${LOCKS_ENV} or {DEFAULT_LOCKS})")
    parser.add_argument("--wait", type=float, default=None, help="seconds to wait for GPUs")
    parser.add_argument(
        "--srun", action="store_true", help="in a SLURM job: start through srun, even on 1 node"
    )
    parser.add_argument("--node-task", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run")
    return parser


def launch(args: argparse.Namespace) -> int:
    """Claim devices, then replace this process with the job's command (never returns)."""
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise ReproError("launch: no command given (repro-core launch [options] -- CMD ...)")
    request = Request(
        gpus=args.gpus,
        nodes=args.nodes,
        procs=args.procs,
        jobs_per_gpu=args.jobs_per_gpu,
        single=args.single,
    )
    env = dict(os.environ)
    devices = None
    if request.gpus and request.nodes == 1 and not env.get("SLURM_JOB_ID"):
        devices = visible_devices(env, args.devices)
        if not devices:  # a CPU-only machine: the job's device setting decides (auto: CPU)
            _say(f"no GPU visible here; running without one (the job asked for {request.gpus})")
    if devices:
        folder = args.locks or env.get(LOCKS_ENV) or DEFAULT_LOCKS
        held = claim(
            devices, request.gpus, folder, share=request.jobs_per_gpu, wait=args.wait, say=_say
        )
        for fd in held.fds:
            os.set_inheritable(fd, True)  # the exec'd command keeps the locks
        env["CUDA_VISIBLE_DEVICES"] = ",".join(held.devices)
        _say(f"GPU {env['CUDA_VISIBLE_DEVICES']} (locks in {folder})")
    argv = _torchrun_exe(plan(request, env, command, node_task=args.node_task, srun=args.srun))
    if argv[: len(command)] != command:
        _say(" ".join(argv[: len(argv) - len(command)]))
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        raise ReproError(f"launch: cannot run {argv[0]} ({exc.strerror})") from exc
    return 1  # not reached


def main(argv: list[str] | None = None) -> int:
    from repro.core import cliutil

    return cliutil.run(lambda a: launch(build_parser().parse_args(a)), argv)


if __name__ == "__main__":
    raise SystemExit(main())
