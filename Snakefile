# repro: one DAG that reproduces six papers. Wiring only: every rule calls a package's CLI.
from snakemake.utils import min_version

min_version("9.19")


# The quick config is the default; `--configfile FILE` replaces it (nothing of quick.yaml leaks
# into a paper run) and `--config key=value` (nested: `'kd={seeds: [1, 2]}'`) applies on top of
# whichever is in use.
if not workflow.overwrite_configfiles:

    configfile: "config/quick.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/provenance.smk"
include: "workflow/rules/common_kd.smk"
include: "workflow/rules/kd.smk"
include: "workflow/rules/burst_sr.smk"
include: "workflow/rules/fmri_adv.smk"
include: "workflow/rules/mhsan.smk"


# Before any job of a real run: every problem the planned jobs would hit, one line each.
onstart:
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
