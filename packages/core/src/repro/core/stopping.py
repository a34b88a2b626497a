"""How a Snakemake run stops on Ctrl-C or SIGTERM: one line saying what a rerun does.

Snakemake 9.27's local executor never signals its jobs: on Ctrl-C each stopped job gets an
error report and its log (tracebacks), and on SIGTERM the running jobs finish first; both
end with "At least one job did not complete successfully". The Snakefile's ``onstart``
installs :func:`stop_quietly_on_signals` instead (docs/decisions.md, "Stopping a run", has
the upstream reports). Uses psutil, a dependency of Snakemake, to find the jobs' processes.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import signal
import sys
import threading

import psutil


def stop_quietly_on_signals() -> None:
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
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGTERM if first else signal.SIGKILL)
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
