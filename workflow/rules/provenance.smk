# The run-level provenance record: commit, uv.lock, config, package versions, seed, host.
# The job rebuilds the effective config from the config files and the --config overrides
# (so the command line stays short); the config's hash makes any config change rerun it.
from repro.core.provenance import config_hash


rule provenance:
    input:
        configs=_CONFIG_FILES,
    output:
        f"{RESULTS}/provenance.json",
    params:
        version=pkg_version("core"),
        config_hash=config_hash(config),
        overrides=as_json(OVERRIDES),
        schema=Path(workflow.basedir) / "workflow/schemas/config.schema.yaml",
        seed=config["seed"],
        code=workflow.basedir,
    log:
        f"logs/{RUN}/provenance.log",
    benchmark:
        f"benchmarks/{RUN}/provenance.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=2,
    conda:
        "../../envs/core.yaml"
    shell:
        "repro-core provenance --out {output} --configfile {input.configs}"
        " --overrides {params.overrides:q} --schema {params.schema:q} --seed {params.seed}"
        " --code-dir {params.code:q} > {log} 2>&1"
