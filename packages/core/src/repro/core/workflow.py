"""What ``workflow/rules/common.smk`` knows of one run, without Snakemake: the plans of its
papers, their targets, config problems, step resources and the pre-flight's outcome. The
rule files stay wiring; this logic is unit-tested in ``packages/core/tests/test_workflow_run.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from repro.core.papers import Paper, Planned, target_problems
from repro.core.preflight import Problem, collect, recap, skipped_datasets


def config_source(files: Iterable[Any], overrides: Mapping[str, Any]) -> str:
    """How error lines name the config: its files, ``+ --config`` when overrides were given."""
    source = " + ".join(str(f) for f in files) or "config"
    return f"{source} + --config" if overrides else source


def attempt_scaled(value: float) -> Callable[..., float]:
    """A resource that grows with the attempt (value x attempt): a job SLURM killed for time
    or memory is retried (the profiles' `retries`) with more, and resumes from its checkpoint."""
    return lambda wildcards, attempt: value * attempt


class Run:
    """One run: its config (validated), the registered papers' plans and its source name."""

    def __init__(self, config: dict[str, Any], plans: Mapping[str, Paper], source: str) -> None:
        self.config = config
        self.source = source
        self.all_plans = dict(plans)
        #: The plans of the papers this run reproduces.
        self.plans = {name: plans[name] for name in config["papers"] if name in plans}
        self.results = f"results/{config['run']}"

    def paper_targets(self) -> list[str]:
        """The papers' final outputs (scorecards, figures)."""
        return [t for plan in self.plans.values() for t in plan.targets(self.config, self.results)]

    def config_problems(self) -> list[str]:
        """The chosen papers' config problems, each line once, naming the config's source."""
        lines = (p for plan in self.plans.values() for p in plan.check(self.config))
        return list(dict.fromkeys(f"{self.source}: {p}" for p in lines))

    def target_problems(self, targets: Iterable[Any]) -> list[str]:
        """Command-line targets naming something that does not exist (repro.core.papers)."""
        return target_problems(self.plans, self.config, self.results, [str(t) for t in targets])

    def threads(self, paper: str, step: str) -> int:
        """The threads of one of a paper's steps (its plan's ``resources``)."""
        return self.all_plans[paper].resources(self.config, step).get("threads", 1)

    def resources(self, paper: str, step: str, retry: bool = False) -> dict[str, Any]:
        """One of a paper's steps' resources without threads; ``retry``: mem_mb and runtime
        grow with the attempt (:func:`attempt_scaled`)."""
        res = dict(self.all_plans[paper].resources(self.config, step))
        res.pop("threads", None)
        grow = ("mem_mb", "runtime") if retry else ()
        return {k: attempt_scaled(v) if k in grow else v for k, v in res.items()}

    def preflight(
        self,
        planned: Planned,
        check_dataset: Callable[[str], list[str]],
        planned_datasets: Iterable[str] | None,
    ) -> list[Problem]:
        """Every problem the planned jobs would hit (repro.core.preflight.collect)."""
        return collect(self.config, self.plans, planned, check_dataset, planned_datasets)

    def default_targets(self, problems: list[Problem]) -> list[str]:
        """What a plain ``snakemake`` builds: the listed datasets that can be prepared, the
        run's provenance and the papers' outputs."""
        skipped = skipped_datasets(problems)
        data = [f"data/{d}/meta.json" for d in self.config["datasets"] if d not in skipped]
        return [*data, f"{self.results}/provenance.json", *self.paper_targets()]


def announce(problems: list[Problem], dry_run: bool, at_exit: Callable[[str], None]) -> list[str]:
    """Warn about the pre-flight's problems (a dry run: every one, and a recap handed to
    ``at_exit`` for the end of the output); returns the lines a real run stops on."""
    for p in problems:
        if not p.blocking:
            print(f"warning: skipped (no chosen paper needs it): {p.line()}", file=sys.stderr)
        elif dry_run:
            print(f"warning: a real run would stop here: {p.line()}", file=sys.stderr)
    if dry_run:
        at_exit(recap(problems))
        return []
    return [p.line() for p in problems if p.blocking]


def record_outputs(
    snakefile: str,
    targets: list[str],
    rule: str,
    configfiles: list[str],
    overrides: Mapping[str, Any],
) -> None:
    """Record ``targets`` (files that exist) as outputs of ``rule`` in Snakemake's metadata,
    with this run's config (``snakemake --touch --forcerun <rule>``, no hooks, no lock: the
    run that wrote them holds it); a failure is one warning line, never the run's. Nothing to
    do without targets."""
    if not targets:
        return
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", os.getcwd()]
    cmd += [*targets, "--touch", "--nolock", "--no-hooks", "--quiet", "--cores", "1"]
    cmd += ["--forcerun", rule, "--configfile", *configfiles]
    if overrides:
        cmd += ["--config", *(f"{k}={json.dumps(v)}" for k, v in overrides.items())]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        print(f"warning: the lockstep cells' metadata was not recorded: {last}", file=sys.stderr)
