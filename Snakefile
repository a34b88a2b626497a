# repro: one DAG that reproduces six papers. Wiring only: every rule calls a package's CLI.
import atexit
import logging
import signal
import sys
import threading
from pathlib import Path

import psutil
from snakemake.utils import min_version

min_version("9.19")


# The quick config is the default; `--configfile FILE` replaces it (nothing of quick.yaml leaks
# into a paper run) and `--config key=value` (nested: `'kd={seeds: [1, 2]}'`) applies on top of
# whichever is in use.
if not workflow.overwrite_configfiles:

    configfile: "config/quick.yaml"


report: "workflow/report/workflow.rst"


# Shared wiring first, then every other rule file in workflow/rules/ (one per step family: a
# new paper's rule file needs no line here).
include: "workflow/rules/common.smk"


for _rules in sorted(Path(workflow.basedir, "workflow/rules").glob("*.smk")):
    if _rules.name != "common.smk":

        include: _rules


def stop_quietly_on_signals():
    """Ctrl-C (SIGINT) or SIGTERM (`kill`, a preempted SLURM job) stops this run with one line
    saying what a rerun does, instead of Snakemake's error report for every stopped job and its
    log (and SIGTERM no longer waits for the running jobs to finish). The stopped jobs fail as
    on a plain Ctrl-C: Snakemake removes their outputs and cancels SLURM jobs; the full report
    stays in .snakemake/log/. A second signal kills the jobs still running."""
    stopped = []
    graceful = signal.getsignal(signal.SIGTERM)  # Snakemake's: start no more jobs
    for handler in logging.getLogger("snakemake.logging").handlers:
        if not isinstance(handler, logging.FileHandler):  # the console, not the run's log file
            handler.addFilter(lambda record: not stopped)

    def stop(signum, frame):
        first = not stopped
        stopped.append(signum)
        logging.lastResort = logging.NullHandler()  # Snakemake's last words, after its handlers
        for proc in psutil.Process().children(recursive=True):  # local jobs, their children
            try:
                proc.send_signal(signal.SIGTERM if first else signal.SIGKILL)
            except psutil.Error:
                pass
        if first:
            # also Snakemake's own stop, in case the interrupt below lands where Snakemake
            # swallows it (its console handler does); from a thread, as it takes a lock the
            # interrupted code may hold
            if callable(graceful):
                threading.Thread(target=graceful, args=(signum, None), daemon=True).start()
            name = signal.Signals(signum).name
            line = (
                f"Stopped by {name}. Finished jobs are kept; the same command continues: it "
                "reruns the stopped jobs and runs the rest (training resumes from its last "
                "checkpoint)."
            )
            atexit.register(print, line, file=sys.stderr, flush=True)
            raise KeyboardInterrupt  # Snakemake's own stop: clean up, unlock, exit 1

    # after Snakemake's scheduler set its own SIGTERM handler (wait for the running jobs)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


# Before any job of a real run: how a signal stops it, every problem the planned jobs would hit
# (one line each), and the user's command for provenance.
onstart:
    stop_quietly_on_signals()
    stop_on([p.line() for p in preflight_problems(planned_jobs()) if p.blocking])
    record_invocation()


# After the last job: one line naming the scorecards and the report command (printed at exit,
# after Snakemake's own closing lines).
onsuccess:
    import atexit
    from repro.core.messages import finished

    atexit.register(print, finished(RESULTS, _CONFIG_FILES))


rule all:
    default_target: True
    input:
        all_targets,
