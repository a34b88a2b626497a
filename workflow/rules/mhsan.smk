# MHSAN (multi-head self-attention visual-semantic embedding): the generated quick set and/or
# the user's COCO and Flickr30K through their Karpathy split files, one training job per
# (dataset, model, seed) with the frozen-backbone feature cache of its dataset, and one
# scorecard with a table per (dataset, protocol). Params, targets, checks, resources:
# repro.vse.plan (the paper `mhsan` of repro.core.papers).
from repro.vse import plan as vseplan

MHSAN = config.get("mhsan", {})
MHSAN_REPORT = vseplan.report_outputs(RESULTS)


rule mhsan_make_synthetic:
    output:
        f"{vseplan.SYNTHETIC_DIR}/dataset_synthetic.json",
    params:
        version=pkg_version("vse"),
        cfg=as_json(MHSAN.get("synthetic", {})),
        out=lambda wildcards, output: os.path.dirname(output[0]),
    log:
        "logs/data/prepare_vse_synthetic.log",
    benchmark:
        "benchmarks/data/prepare_vse_synthetic.tsv"
    threads: step_threads("mhsan", "synthetic")
    resources:
        **step_resources("mhsan", "synthetic"),
    conda:
        "../../envs/vse.yaml"
    shell:
        "repro-vse make-synthetic --params {params.cfg:q} --out {params.out} > {log} 2>&1"


rule mhsan_train:
    input:
        lambda wildcards: vseplan.generated_inputs(MHSAN, wildcards.dataset),
    output:
        model=f"{RESULTS}/mhsan/runs/{{dataset}}/{{model}}/seed{{seed}}/model.pt",
        result=f"{RESULTS}/mhsan/runs/{{dataset}}/{{model}}/seed{{seed}}/result.json",
    wildcard_constraints:
        dataset=vseplan.dataset_pattern(config),
        model=vseplan.model_pattern(config),
        seed=r"\d+",
    params:
        version=pkg_version("vse"),
        cfg=lambda wildcards: as_json(
            vseplan.train_params(config, wildcards.dataset, wildcards.model, int(wildcards.seed))
        ),
        split=lambda wildcards: vseplan.split_file(MHSAN, wildcards.dataset),
        images=lambda wildcards: vseplan.image_root(MHSAN, wildcards.dataset),
        cache=lambda wildcards: vseplan.cache_dir(RESULTS, wildcards.dataset),
        out=lambda wildcards, output: os.path.dirname(output.result),
        launch=launch_prefix(),
    log:
        f"logs/{RUN}/mhsan/{{dataset}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"benchmarks/{RUN}/mhsan/{{dataset}}/{{model}}/seed{{seed}}.tsv"
    threads: step_threads("mhsan", "train")
    resources:
        **step_resources("mhsan", "train", retry=True),
    conda:
        "../../envs/vse.yaml"
    shell:
        "{params.launch} repro-vse train --params {params.cfg:q} --split-file {params.split:q}"
        " --images {params.images:q} --cache {params.cache} --out {params.out} > {log} 2>&1"


rule mhsan_report:
    input:
        runs=vseplan.run_results(config, RESULTS),
        data=vseplan.figure_inputs(config),
        reported=reported_file("mhsan"),
    output:
        csv=MHSAN_REPORT["csv"],
        html=report(
            MHSAN_REPORT["html"],
            caption=caption("mhsan", "mhsan_summary.rst"),
            category="MHSAN",
            labels={"figure": "scorecard"},
        ),
        md=MHSAN_REPORT["md"],
        runs=MHSAN_REPORT["runs"],
        attention=report(
            MHSAN_REPORT["attention"],
            caption=caption("mhsan", "mhsan_attention.rst"),
            category="MHSAN",
            labels={"figure": "attention maps"},
        ),
        heads=report(
            MHSAN_REPORT["heads"],
            caption=caption("mhsan", "mhsan_heads.rst"),
            category="MHSAN",
            labels={"figure": "recall vs heads"},
        ),
        provenance=MHSAN_REPORT["provenance"],
    params:
        version=pkg_version("vse"),
        cfg=as_json(vseplan.report_job(config)),
        results=lambda wildcards, output: str(Path(output.csv).parents[1]),
        split=lambda wildcards: vseplan.figure_split_file(config),
        images=lambda wildcards: vseplan.figure_images(config),
        out=lambda wildcards, output: os.path.dirname(output.csv),
    log:
        f"logs/{RUN}/mhsan/report.log",
    benchmark:
        f"benchmarks/{RUN}/mhsan/report.tsv"
    threads: step_threads("mhsan", "report")
    resources:
        **step_resources("mhsan", "report"),
    conda:
        "../../envs/vse.yaml"
    shell:
        "repro-vse report --params {params.cfg:q} --results {params.results}"
        " --reported {input.reported} --split-file {params.split:q} --images {params.images:q}"
        " --out {params.out} > {log} 2>&1"
