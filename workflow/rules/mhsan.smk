# MHSAN (multi-head self-attention visual-semantic embedding): the generated quick set and/or
# the user's COCO and Flickr30K through their Karpathy split files, one training job per
# (dataset, model, seed) with the frozen-backbone feature cache of its dataset, and one
# scorecard with a table per (dataset, protocol). Params: repro.vse.plan.
from repro.vse import plan as vseplan

MHSAN = config.get("mhsan", {})
MHSAN_ON = "mhsan" in PAPERS
MHSAN_RES = MHSAN.get("resources", {})
MHSAN_DATASETS = vseplan.datasets(MHSAN) if MHSAN_ON else []
# The figure's dataset: the report draws one test image of it.
MHSAN_FIGURE = vseplan.report_params(MHSAN)["figure"]["dataset"] if MHSAN_ON else None


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
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
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
        dataset="|".join(MHSAN_DATASETS) or NEVER,
        model="|".join(MHSAN.get("models", {})) or NEVER,
        seed=r"\d+",
    params:
        version=pkg_version("vse"),
        cfg=lambda wildcards: as_json(
            vseplan.run_params(MHSAN, wildcards.dataset, wildcards.model, int(wildcards.seed))
        ),
        split=lambda wildcards: vseplan.split_file(MHSAN, wildcards.dataset),
        images=lambda wildcards: vseplan.image_root(MHSAN, wildcards.dataset),
        out=lambda wildcards, output: os.path.dirname(output.result),
        device=MHSAN.get("device", "cpu"),
        cache=lambda wildcards: (
            f"--cache {vseplan.cache_dir(RESULTS, wildcards.dataset)}"
            if MHSAN.get("cache", True)
            else ""
        ),
    log:
        f"logs/{RUN}/mhsan/{{dataset}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"benchmarks/{RUN}/mhsan/{{dataset}}/{{model}}/seed{{seed}}.tsv"
    threads: MHSAN_RES.get("threads", 1)
    resources:
        mem_mb=MHSAN_RES.get("mem_mb", 4000),
        runtime=MHSAN_RES.get("runtime", 60),
        gpu=MHSAN_RES.get("gpu", 0),
    conda:
        "../../envs/vse.yaml"
    shell:
        "repro-vse train --params {params.cfg:q} --split-file {params.split:q}"
        " --images {params.images:q} --device {params.device} {params.cache}"
        " --out {params.out} > {log} 2>&1"


rule mhsan_report:
    input:
        runs=[
            f"{vseplan.run_dir(RESULTS, d, m, s)}/result.json"
            for d, m, s in (vseplan.runs(MHSAN) if MHSAN_ON else [])
        ],
        data=lambda wildcards: vseplan.generated_inputs(MHSAN, MHSAN_FIGURE) if MHSAN_ON else [],
        reported=REPORTED / "mhsan.yaml",
    output:
        csv=f"{RESULTS}/mhsan/summary.csv",
        html=report(
            f"{RESULTS}/mhsan/summary.html",
            caption="../report/mhsan_summary.rst",
            category="MHSAN",
            labels={"figure": "scorecard"},
        ),
        md=f"{RESULTS}/mhsan/summary.md",
        runs=f"{RESULTS}/mhsan/runs.csv",
        attention=report(
            f"{RESULTS}/mhsan/figures/attention.png",
            caption="../report/mhsan_attention.rst",
            category="MHSAN",
            labels={"figure": "attention maps"},
        ),
        heads=report(
            f"{RESULTS}/mhsan/figures/recall_vs_heads.png",
            caption="../report/mhsan_heads.rst",
            category="MHSAN",
            labels={"figure": "recall vs heads"},
        ),
        provenance=f"{RESULTS}/mhsan/provenance.json",
    params:
        version=pkg_version("vse"),
        cfg=as_json(vseplan.report_params(MHSAN)) if MHSAN_ON else "{}",
        results=lambda wildcards, output: str(Path(output.csv).parents[1]),
        split=lambda wildcards: vseplan.split_file(MHSAN, MHSAN_FIGURE),
        images=lambda wildcards: vseplan.image_root(MHSAN, MHSAN_FIGURE),
        out=lambda wildcards, output: os.path.dirname(output.csv),
    log:
        f"logs/{RUN}/mhsan/report.log",
    benchmark:
        f"benchmarks/{RUN}/mhsan/report.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/vse.yaml"
    shell:
        "repro-vse report --params {params.cfg:q} --results {params.results}"
        " --reported {input.reported} --split-file {params.split:q} --images {params.images:q}"
        " --out {params.out} > {log} 2>&1"


# Each dataset's split file and images and the ImageNet weights must be set and exist (before
# any training job; a dry run of the default target lists them as warnings).
PREFLIGHT_CHECKS.append(
    lambda planned: (
        vseplan.check(MHSAN)
        if MHSAN_ON and (planned is None or any(r == "mhsan_train" for r, _ in planned))
        else []
    )
)


if MHSAN_ON:
    PAPER_TARGETS.extend(rules.mhsan_report.output)
