# MHSAN (multi-head self-attention visual-semantic embedding): the generated quick set (or the
# user's COCO / Flickr30K through their Karpathy split files), one training job per (model,
# seed) with the frozen-backbone feature cache, and the scorecard. Params: repro.vse.plan.
from repro.vse import plan as vseplan

MHSAN = config.get("mhsan", {})
MHSAN_ON = "mhsan" in PAPERS
MHSAN_RES = MHSAN.get("resources", {})
# The split file a job reads: generated here for the synthetic set, the user's otherwise.
mhsan_data = lambda wildcards: (
    [vseplan.split_file(MHSAN)] if MHSAN.get("dataset") == "synthetic" else []
)


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
        mhsan_data,
    output:
        model=f"{RESULTS}/mhsan/runs/{{model}}/seed{{seed}}/model.pt",
        result=f"{RESULTS}/mhsan/runs/{{model}}/seed{{seed}}/result.json",
    wildcard_constraints:
        model="|".join(MHSAN.get("models", {})) or NEVER,
    params:
        version=pkg_version("vse"),
        cfg=lambda wildcards: as_json(
            vseplan.run_params(MHSAN, wildcards.model, int(wildcards.seed))
        ),
        split=lambda wildcards: vseplan.split_file(MHSAN),
        images=lambda wildcards: vseplan.image_root(MHSAN),
        out=lambda wildcards, output: os.path.dirname(output.result),
        device=MHSAN.get("device", "cpu"),
        cache=lambda wildcards, output: (
            f"--cache {Path(output.result).parents[2] / 'cache'}" if MHSAN.get("cache", True) else ""
        ),
    log:
        f"logs/{RUN}/mhsan/{{model}}/seed{{seed}}.log",
    benchmark:
        f"benchmarks/{RUN}/mhsan/{{model}}/seed{{seed}}.tsv"
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
            f"{RESULTS}/mhsan/runs/{m}/seed{s}/result.json"
            for m, s in (vseplan.runs(MHSAN) if MHSAN_ON else [])
        ],
        data=mhsan_data,
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
        split=lambda wildcards: vseplan.split_file(MHSAN),
        images=lambda wildcards: vseplan.image_root(MHSAN),
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


# The user's COCO / Flickr30K files and ImageNet weights must be set and exist (before any
# training job; a dry run of the default target lists them as warnings).
PREFLIGHT_CHECKS.append(
    lambda planned: (
        vseplan.check(MHSAN)
        if MHSAN_ON and (planned is None or any(r == "mhsan_train" for r, _ in planned))
        else []
    )
)


if MHSAN_ON:
    PAPER_TARGETS.extend(rules.mhsan_report.output)
