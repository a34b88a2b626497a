"""Run Snakemake on this checkout in a scratch folder, and read what a dry run plans (imported
by the workflow tests)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def snakemake(
    *args: str, cwd: Path = ROOT, timeout: int = 600, snakefile: Path = ROOT / "Snakefile"
) -> subprocess.CompletedProcess:
    """Run the workspace's Snakemake with this repo's Snakefile (or a copy's); returns the
    finished process."""
    exe = Path(sys.executable).with_name("snakemake")
    env = {**os.environ, "PATH": f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [str(exe), "-s", str(snakefile), "--directory", str(cwd), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def job_counts(stdout: str) -> dict[str, int]:
    """Snakemake's own "Job stats" table of a run's output: rule -> jobs (and 'total')."""
    block = stdout.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


@dataclass(frozen=True)
class Job:
    """One planned job as a dry run prints it; ``text`` is its whole block (files,
    wildcards, resources and shell command)."""

    rule: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    text: str


#: A job's block: "rule NAME:", its indented fields (input, output, ...), its shell command.
_JOB = re.compile(
    r"^(?:local)?(?:rule|checkpoint) (\w+):\n((?:    .*\n)*)(Shell command: .*\n)?", re.M
)


def _files(block: str, field: str) -> tuple[str, ...]:
    found = re.search(rf"^    {field}: (.*)$", block, re.M)
    return tuple(found[1].split(", ")) if found else ()


class Plan:
    """The jobs a dry run plans. ``needed(targets)`` is the part of them those targets need
    (their producers and everything upstream), so one dry run of several targets answers
    what a dry run of each would plan: with nothing yet built, Snakemake plans exactly the
    jobs upstream of what is asked for."""

    def __init__(self, jobs: list[Job]):
        self.jobs = jobs

    @classmethod
    def parse(cls, stdout: str) -> Plan:
        """The jobs of a dry run's output; checked against its own job stats."""
        jobs = [
            Job(m[1], _files(m[2], "input"), _files(m[2], "output"), m[0])
            for m in _JOB.finditer(stdout)
        ]
        plan = cls(jobs)
        stats = {rule: n for rule, n in job_counts(stdout).items() if rule != "total"}
        assert plan.counts == stats, (plan.counts, stats)
        return plan

    @property
    def counts(self) -> dict[str, int]:
        """Jobs per rule (as Snakemake's job stats, without the total)."""
        return dict(Counter(job.rule for job in self.jobs))

    @property
    def text(self) -> str:
        """The jobs' printed blocks, in order."""
        return "\n".join(job.text for job in self.jobs)

    def needed(self, *targets: str) -> Plan:
        """The jobs that produce ``targets`` (files, or a rule name such as ``all``) and
        every job upstream of them, in the dry run's order."""
        producer = {out: job for job in self.jobs for out in job.outputs}
        by_rule = {job.rule: job for job in self.jobs}
        todo = [producer.get(t) or by_rule.get(t) for t in targets]
        assert all(todo), [t for t, job in zip(targets, todo, strict=True) if job is None]
        seen: set[int] = set()
        while todo:
            job = todo.pop()
            if id(job) not in seen:
                seen.add(id(job))
                todo += [producer[f] for f in job.inputs if f in producer]
        return Plan([job for job in self.jobs if id(job) in seen])


def dry_run(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess, Plan]:
    """``snakemake -n`` (the workflow profile prints each shell command) in ``cwd``: the
    finished process and its planned jobs."""
    proc = snakemake("-n", "--cores", "1", *args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, Plan.parse(proc.stdout)
