# NTIRE 2021 burst super-resolution: stored validation bursts (track 1, synthetic), one
# training and one evaluation rule per model, the real-track evaluation on BurstSR val
# (track 2, only when burst_sr.data.burstsr_root is set) and the summary. See docs/burst-sr.md.

import os

BSR = config.get("burst_sr", {})
BSR_DIR = f"{RESULTS}/burst-sr"
NEVER = "(?!x)x"  # a wildcard constraint that matches nothing (no model of that kind)


# Helpers (lambdas, so that the rule file holds no function definitions: snakemake --lint).
# Configured model names of the given kinds (all kinds when none given).
bsr_models = lambda *kinds: [
    n for n, s in BSR.get("models", {}).items() if not kinds or s["kind"] in kinds
]
# Regex alternation of the model names of ``kinds`` for wildcard constraints.
bsr_constraint = lambda *kinds: "|".join(bsr_models(*kinds)) or NEVER
# Models scored on the validation bursts and listed in the summary.
bsr_scored = lambda: [
    n
    for n in bsr_models("bicubic", "bilinear", "single", "burst")
    if BSR["models"][n].get("evaluate", True)
]
# BurstSR folder of the real track (None: no real-track jobs are planned).
BSR_REAL_ROOT = BSR.get("data", {}).get("burstsr_root")
# Scored models that can run on real bursts (ground-truth-flow models cannot: no flow there).
bsr_real = lambda: (
    [
        n
        for n in bsr_scored()
        if BSR["models"][n]["kind"] != "burst" or BSR["models"][n].get("align") != "gt"
    ]
    if BSR_REAL_ROOT
    else []
)
# The prepared source images: the photographs, or Zurich RAW-to-RGB prepared from its
# archive (data.zurich) unless burst_sr.data.zurich_root points at an extracted copy.
bsr_source_input = lambda wildcards: (
    ["data/photos/meta.json"]
    if BSR.get("data", {}).get("source") == "photos"
    else [] if BSR.get("data", {}).get("zurich_root") else ["data/zurich/meta.json"]
)
# The trained weights a model needs for evaluation (none for interpolation).
bsr_checkpoint = lambda wildcards: (
    []
    if BSR["models"][wildcards.model]["kind"] in ("bicubic", "bilinear")
    else [f"{BSR_DIR}/models/{wildcards.model}.pt"]
)
# The flow network a burst model with align=flownet is trained with.
bsr_flownet = lambda wildcards: (
    [f"{BSR_DIR}/models/{BSR['models'][wildcards.model]['flownet']}.pt"]
    if BSR["models"][wildcards.model].get("align") == "flownet"
    else []
)


rule burst_sr_make_val:
    input:
        bsr_source_input,
    output:
        f"{BSR_DIR}/val/meta.json",
    params:
        version=pkg_version("burstsr"),
        cfg=as_json(BSR),
        out=lambda wildcards, output: os.path.dirname(output[0]),
    log:
        f"logs/{RUN}/burst-sr/make_val.log",
    benchmark:
        f"benchmarks/{RUN}/burst-sr/make_val.tsv"
    threads: BSR.get("threads", 1)
    resources:
        mem_mb=BSR.get("mem_mb", 4000),
        runtime=30,
    conda:
        "../../envs/burstsr.yaml"
    shell:
        "repro-burstsr make-val --params {params.cfg:q} --threads {threads} --out {params.out}"
        " > {log} 2>&1"


rule burst_sr_train_single:
    input:
        bsr_source_input,
    output:
        f"{BSR_DIR}/models/{{model}}.pt",
    wildcard_constraints:
        model=bsr_constraint("single"),
    params:
        version=pkg_version("burstsr"),
        cfg=as_json(BSR),
        seed=config["seed"],
    log:
        f"logs/{RUN}/burst-sr/train_{{model}}.log",
    benchmark:
        f"benchmarks/{RUN}/burst-sr/train_{{model}}.tsv"
    threads: BSR.get("threads", 1)
    resources:
        mem_mb=BSR.get("mem_mb", 4000),
        runtime=BSR.get("runtime", 60),
        gpu=BSR.get("gpus", 0),
    conda:
        "../../envs/burstsr.yaml"
    shell:
        "repro-burstsr train --params {params.cfg:q} --threads {threads} --model {wildcards.model}"
        " --seed {params.seed} --out {output} > {log} 2>&1"


rule burst_sr_train_flownet:
    input:
        bsr_source_input,
    output:
        f"{BSR_DIR}/models/{{model}}.pt",
    wildcard_constraints:
        model=bsr_constraint("flownet"),
    params:
        version=pkg_version("burstsr"),
        cfg=as_json(BSR),
        seed=config["seed"],
    log:
        f"logs/{RUN}/burst-sr/train_{{model}}.log",
    benchmark:
        f"benchmarks/{RUN}/burst-sr/train_{{model}}.tsv"
    threads: BSR.get("threads", 1)
    resources:
        mem_mb=BSR.get("mem_mb", 4000),
        runtime=BSR.get("runtime", 60),
        gpu=BSR.get("gpus", 0),
    conda:
        "../../envs/burstsr.yaml"
    shell:
        "repro-burstsr train --params {params.cfg:q} --threads {threads} --model {wildcards.model}"
        " --seed {params.seed} --out {output} > {log} 2>&1"


rule burst_sr_train_burst:
    input:
        bsr_source_input,
        flownet=bsr_flownet,
    output:
        f"{BSR_DIR}/models/{{model}}.pt",
    wildcard_constraints:
        model=bsr_constraint("burst"),
    params:
        version=pkg_version("burstsr"),
        cfg=as_json(BSR),
        seed=config["seed"],
        flownet=lambda wildcards, input: f"--flownet {input.flownet}" if input.flownet else "",
    log:
        f"logs/{RUN}/burst-sr/train_{{model}}.log",
    benchmark:
        f"benchmarks/{RUN}/burst-sr/train_{{model}}.tsv"
    threads: BSR.get("threads", 1)
    resources:
        mem_mb=BSR.get("mem_mb", 4000),
        runtime=BSR.get("runtime", 60),
        gpu=BSR.get("gpus", 0),
    conda:
        "../../envs/burstsr.yaml"
    shell:
        "repro-burstsr train --params {params.cfg:q} --threads {threads} --model {wildcards.model}"
        " --seed {params.seed} {params.flownet} --out {output} > {log} 2>&1"


rule burst_sr_evaluate:
    input:
        val=f"{BSR_DIR}/val/meta.json",
        ckpt=bsr_checkpoint,
    output:
        result=f"{BSR_DIR}/eval/{{model}}.json",
        example=f"{BSR_DIR}/eval/{{model}}_example.npy",
    wildcard_constraints:
        model=bsr_constraint("bicubic", "bilinear", "single", "burst"),
    params:
        version=pkg_version("burstsr"),
        cfg=as_json(BSR),
        val=lambda wildcards, input: os.path.dirname(input.val),
        ckpt=lambda wildcards, input: f"--checkpoint {input.ckpt}" if input.ckpt else "",
    log:
        f"logs/{RUN}/burst-sr/evaluate_{{model}}.log",
    benchmark:
        f"benchmarks/{RUN}/burst-sr/evaluate_{{model}}.tsv"
    threads: BSR.get("threads", 1)
    resources:
        mem_mb=BSR.get("mem_mb", 4000),
        runtime=30,
        gpu=BSR.get("gpus", 0),
    conda:
        "../../envs/burstsr.yaml"
    shell:
        "repro-burstsr evaluate --params {params.cfg:q} --threads {threads}"
        " --model {wildcards.model} --val {params.val} {params.ckpt}"
        " --out {output.result} --example {output.example} > {log} 2>&1"


rule burst_sr_evaluate_real:
    input:
        ckpt=bsr_checkpoint,
    output:
        result=f"{BSR_DIR}/real/{{model}}.json",
    wildcard_constraints:
        model="|".join(bsr_real()) or NEVER,
    params:
        version=pkg_version("burstsr"),
        cfg=as_json(BSR),
        root=BSR_REAL_ROOT,
        ckpt=lambda wildcards, input: f"--checkpoint {input.ckpt}" if input.ckpt else "",
    log:
        f"logs/{RUN}/burst-sr/evaluate_real_{{model}}.log",
    benchmark:
        f"benchmarks/{RUN}/burst-sr/evaluate_real_{{model}}.tsv"
    threads: BSR.get("threads", 1)
    resources:
        mem_mb=BSR.get("mem_mb", 4000),
        runtime=60,
        gpu=BSR.get("gpus", 0),
    conda:
        "../../envs/burstsr.yaml"
    shell:
        "repro-burstsr evaluate-real --params {params.cfg:q} --threads {threads}"
        " --model {wildcards.model} --root {params.root:q} {params.ckpt}"
        " --out {output.result} > {log} 2>&1"


rule burst_sr_summary:
    input:
        val=f"{BSR_DIR}/val/meta.json",
        results=expand(f"{BSR_DIR}/eval/{{model}}.json", model=bsr_scored()),
        examples=expand(f"{BSR_DIR}/eval/{{model}}_example.npy", model=bsr_scored()),
        real=expand(f"{BSR_DIR}/real/{{model}}.json", model=bsr_real()),
    output:
        csv=f"{BSR_DIR}/summary.csv",
        md=f"{BSR_DIR}/summary.md",
        visual=f"{BSR_DIR}/figures/visual_comparison.png",
        frames=f"{BSR_DIR}/figures/psnr_vs_frames.png",
        provenance=f"{BSR_DIR}/provenance.json",
    params:
        version=pkg_version("burstsr"),
        cfg=as_json(BSR),
        val=lambda wildcards, input: os.path.dirname(input.val),
        results=lambda wc, input: " ".join(f"--result {p}" for p in input.results),
        examples=lambda wc, input: " ".join(f"--example {p}" for p in input.examples),
        real=lambda wc, input: " ".join(f"--real-result {p}" for p in input.real),
        seed=config["seed"],
        run=RUN,
    log:
        f"logs/{RUN}/burst-sr/summary.log",
    benchmark:
        f"benchmarks/{RUN}/burst-sr/summary.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/burstsr.yaml"
    shell:
        "repro-burstsr summarize --params {params.cfg:q} --threads {threads} --val {params.val}"
        " {params.results} {params.examples} {params.real} --csv {output.csv} --md {output.md}"
        " --fig-visual {output.visual} --fig-frames {output.frames}"
        " --provenance {output.provenance} --run {params.run} --seed {params.seed} > {log} 2>&1"


# A set burstsr_root must be a BurstSR folder: checked before any job of a real run (the dry
# run does not check), only when a real-track job is planned.
# (every job counts as planned if Snakemake's internals moved, as in pending_acquisitions).
bsr_real_planned = lambda: not hasattr(workflow.dag, "needrun_jobs") or any(
    job.rule.name == "burst_sr_evaluate_real" for job in workflow.dag.needrun_jobs()
)
PREFLIGHT_CHECKS.append(
    lambda: (
        [
            f"burst_sr.data.burstsr_root: {BSR_REAL_ROOT}/val is not a folder "
            "(BurstSR val bursts expected, see docs/burst-sr.md)"
        ]
        if BSR_REAL_ROOT
        and not os.path.isdir(os.path.join(BSR_REAL_ROOT, "val"))
        and bsr_real_planned()
        else []
    )
)


# PWC-Net weights are the user's file: a set path must exist, and align=pwcnet needs one;
# checked before any job when a training or real-track job is planned.
BSR_PWC = BSR.get("pwcnet_weights")
bsr_pwc_planned = lambda: not hasattr(workflow.dag, "needrun_jobs") or any(
    job.rule.name in ("burst_sr_train_burst", "burst_sr_evaluate_real")
    for job in workflow.dag.needrun_jobs()
)
bsr_pwc_problems = lambda: (
    [f"burst_sr.pwcnet_weights: {BSR_PWC} does not exist (see docs/burst-sr.md)"]
    if BSR_PWC and not os.path.isfile(BSR_PWC)
    else [
        f"burst_sr.models.{n}: align=pwcnet needs burst_sr.pwcnet_weights "
        "(pytorch-pwc's network-default weights; see docs/burst-sr.md)"
        for n in bsr_models("burst")
        if BSR["models"][n].get("align") == "pwcnet" and not BSR_PWC
    ][:1]
)
PREFLIGHT_CHECKS.append(lambda: [p for p in bsr_pwc_problems() if bsr_pwc_planned()])


if "burst-sr" in PAPERS:
    PAPER_TARGETS.extend(
        [
            f"{BSR_DIR}/summary.csv",
            f"{BSR_DIR}/figures/visual_comparison.png",
            f"{BSR_DIR}/figures/psnr_vs_frames.png",
        ]
    )
