# The run-level provenance record: commit, config, package versions, seed, host.


rule provenance:
    output:
        f"{RESULTS}/provenance.json",
    params:
        version=pkg_version("core"),
        cfg=as_json(config),
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
        "repro-core provenance --out {output} --config {params.cfg:q} --seed {params.seed}"
        " --code-dir {params.code:q}"
        " > {log} 2>&1"
