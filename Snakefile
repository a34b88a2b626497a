# repro: one DAG that reproduces six papers. Wiring only: every rule calls a package's CLI.
from snakemake.utils import min_version

min_version("9.19")


configfile: "config/quick.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/provenance.smk"
include: "workflow/rules/common_kd.smk"
include: "workflow/rules/kd.smk"
include: "workflow/rules/energy_kd.smk"
include: "workflow/rules/burst_sr.smk"


rule all:
    default_target: True
    input:
        all_targets(),
