# repro: one DAG that reproduces six papers. Wiring only: every rule calls a package's CLI.
import atexit
from pathlib import Path

from repro.core.stopping import stop_quietly_on_signals
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


# Before any job of a real run: how a signal stops it, every problem the planned jobs would hit
# (one line each), and the user's command for provenance.
onstart:
    stop_quietly_on_signals()
    STARTED.append(planned_jobs())
    stop_on([p.line() for p in preflight_problems(STARTED[0]) if p.blocking])
    record_invocation()


# After the last job: the lockstep cells recorded as their own jobs' outputs, and one line
# naming the scorecards and the report command (printed at exit, after Snakemake's own lines).
onsuccess:
    from repro.core.messages import finished

    record_grouped_cells(STARTED[0])
    atexit.register(print, finished(RESULTS, _CONFIG_FILES))


rule all:
    default_target: True
    input:
        all_targets,
