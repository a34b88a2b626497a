# NTIRE 2021 burst super-resolution: stored validation bursts (track 1, synthetic), one
# training and one evaluation job per trained model and seed (burst_sr.seeds;
# models/<model>/seed<k>/, eval/<model>/seed<k>.json) and one evaluation per untrained
# baseline (eval/<model>.json), the real-track evaluation on BurstSR val (track 2, only when
# burst_sr.data.burstsr_root is set) and the scorecard. Each job's params come from
# repro.burstsr.plan. See docs/burst-sr.md.
from repro.burstsr import plan as bsrplan

BSR = config.get("burst_sr", {})
BSR_DIR = f"{RESULTS}/burst-sr"
BSR_REAL_ROOT = BSR.get("data", {}).get("burstsr_root")
BSR_PWC = BSR.get("pwcnet_weights")
if "burst-sr" in PAPERS:
    stop_on([f"{_CONFIG_SOURCE}: {p}" for p in bsrplan.check(BSR)])

# Helpers (lambdas, so that the rule file holds no function definitions: snakemake --lint).
# Regex alternation of the model names of ``kinds`` for wildcard constraints.
bsr_constraint = lambda *kinds: "|".join(bsrplan.models(BSR, *kinds)) or NEVER
# Regex alternation of run names (eval/<run>.json): <model>/seed<k> of a trained model,
# <model> of an untrained baseline; ``names`` the models.
bsr_run_constraint = lambda names: (
    "|".join(
        f"{n}/seed\\d+" if bsrplan.trained(BSR, n) else n for n in names
    )
    or NEVER
)
# The prepared source images: the photographs, or Zurich RAW-to-RGB prepared from its
# archive (data.zurich) unless burst_sr.data.zurich_root points at an extracted copy.
bsr_source_input = lambda wildcards: (
    ["data/photos/meta.json"]
    if BSR.get("data", {}).get("source") == "photos"
    else [] if BSR.get("data", {}).get("zurich_root") else ["data/zurich/meta.json"]
)
# The trained model a run needs for evaluation (none for an untrained baseline).
bsr_checkpoint = lambda wildcards: (
    []
    if bsrplan.run_model(wildcards.run)[1] is None
    else [bsrplan.model_file(BSR_DIR, *bsrplan.run_model(wildcards.run))]
)
# The flow network a burst model with align=flownet is trained with (same seed).
bsr_flownet = lambda wildcards: (
    [bsrplan.model_file(BSR_DIR, BSR["models"][wildcards.model]["flownet"], int(wildcards.seed))]
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
        cfg=as_json(bsrplan.val_params(BSR)) if BSR else "{}",
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


rule burst_sr_train:
    input:
        bsr_source_input,
        flownet=bsr_flownet,
    output:
        model=f"{BSR_DIR}/models/{{model}}/seed{{seed}}/model.pt",
        result=f"{BSR_DIR}/models/{{model}}/seed{{seed}}/result.json",
    wildcard_constraints:
        model=bsr_constraint(*bsrplan.TRAINED),
        seed=r"\d+",
    params:
        version=pkg_version("burstsr"),
        cfg=lambda wildcards: as_json(
            bsrplan.train_params(BSR, wildcards.model, int(wildcards.seed))
        ),
        out=lambda wildcards, output: os.path.dirname(output.model),
        flownet=lambda wildcards, input: f"--flownet {input.flownet}" if input.flownet else "",
        launch=launch_prefix(),
    log:
        f"logs/{RUN}/burst-sr/train_{{model}}/seed{{seed}}.log",
    benchmark:
        f"benchmarks/{RUN}/burst-sr/train_{{model}}/seed{{seed}}.tsv"
    threads: BSR.get("threads", 1)
    resources:
        mem_mb=attempt_scaled(BSR.get("mem_mb", 4000)),
        runtime=attempt_scaled(BSR.get("runtime", 60)),
        gpu=BSR.get("gpus", 0),
    conda:
        "../../envs/burstsr.yaml"
    shell:
        "{params.launch} repro-burstsr train --params {params.cfg:q} --threads {threads}"
        " {params.flownet} --out {params.out} > {log} 2>&1"


rule burst_sr_evaluate:
    input:
        val=f"{BSR_DIR}/val/meta.json",
        ckpt=bsr_checkpoint,
    output:
        result=f"{BSR_DIR}/eval/{{run}}.json",
        example=f"{BSR_DIR}/eval/{{run}}_example.npy",
    wildcard_constraints:
        run=bsr_run_constraint(bsrplan.scored(BSR)),
    params:
        version=pkg_version("burstsr"),
        cfg=lambda wildcards: as_json(
            bsrplan.eval_params(BSR, *bsrplan.run_model(wildcards.run))
        ),
        val=lambda wildcards, input: os.path.dirname(input.val),
        ckpt=lambda wildcards, input: f"--checkpoint {input.ckpt}" if input.ckpt else "",
        launch=launch_prefix(single=True),
    log:
        f"logs/{RUN}/burst-sr/evaluate_{{run}}.log",
    benchmark:
        f"benchmarks/{RUN}/burst-sr/evaluate_{{run}}.tsv"
    threads: BSR.get("threads", 1)
    resources:
        mem_mb=BSR.get("mem_mb", 4000),
        runtime=30,
        gpu=BSR.get("gpus", 0),
    conda:
        "../../envs/burstsr.yaml"
    shell:
        "{params.launch} repro-burstsr evaluate --params {params.cfg:q} --threads {threads}"
        " --val {params.val} {params.ckpt} --out {output.result} --example {output.example}"
        " > {log} 2>&1"


rule burst_sr_evaluate_real:
    input:
        ckpt=bsr_checkpoint,
    output:
        result=f"{BSR_DIR}/real/{{run}}.json",
    wildcard_constraints:
        run=bsr_run_constraint(bsrplan.real_models(BSR)),
    params:
        version=pkg_version("burstsr"),
        cfg=lambda wildcards: as_json(
            bsrplan.real_params(BSR, *bsrplan.run_model(wildcards.run))
        ),
        root=BSR_REAL_ROOT,
        ckpt=lambda wildcards, input: f"--checkpoint {input.ckpt}" if input.ckpt else "",
        launch=launch_prefix(single=True),
    log:
        f"logs/{RUN}/burst-sr/evaluate_real_{{run}}.log",
    benchmark:
        f"benchmarks/{RUN}/burst-sr/evaluate_real_{{run}}.tsv"
    threads: BSR.get("threads", 1)
    resources:
        mem_mb=BSR.get("mem_mb", 4000),
        runtime=60,
        gpu=BSR.get("gpus", 0),
    conda:
        "../../envs/burstsr.yaml"
    shell:
        "{params.launch} repro-burstsr evaluate-real --params {params.cfg:q} --threads {threads}"
        " --root {params.root:q} {params.ckpt} --out {output.result} > {log} 2>&1"


rule burst_sr_summary:
    input:
        val=f"{BSR_DIR}/val/meta.json",
        results=expand(f"{BSR_DIR}/eval/{{run}}.json", run=bsrplan.eval_runs(BSR)),
        examples=expand(f"{BSR_DIR}/eval/{{run}}_example.npy", run=bsrplan.eval_runs(BSR)),
        real=expand(f"{BSR_DIR}/real/{{run}}.json", run=bsrplan.real_runs(BSR)),
        reported=REPORTED / "burst-sr.yaml",
    output:
        csv=f"{BSR_DIR}/summary.csv",
        html=report(
            f"{BSR_DIR}/summary.html",
            caption="../report/burst_sr_summary.rst",
            category="Burst SR",
            labels={"figure": "scorecard"},
        ),
        md=f"{BSR_DIR}/summary.md",
        visual=report(
            f"{BSR_DIR}/figures/visual_comparison.png",
            caption="../report/burst_sr_visual.rst",
            category="Burst SR",
            labels={"figure": "visual comparison"},
        ),
        frames=report(
            f"{BSR_DIR}/figures/psnr_vs_frames.png",
            caption="../report/burst_sr_frames.rst",
            category="Burst SR",
            labels={"figure": "PSNR vs burst size"},
        ),
        provenance=f"{BSR_DIR}/provenance.json",
    params:
        version=pkg_version("burstsr"),
        cfg=as_json(bsrplan.summary_params(BSR, RUN)) if BSR else "{}",
        val=lambda wildcards, input: os.path.dirname(input.val),
        results=lambda wc, input: " ".join(f"--result {p}" for p in input.results),
        examples=lambda wc, input: " ".join(f"--example {p}" for p in input.examples),
        real=lambda wc, input: " ".join(f"--real-result {p}" for p in input.real),
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
        "repro-burstsr summarize --params {params.cfg:q} --reported {input.reported}"
        " --threads {threads} --val {params.val} {params.results} {params.examples}"
        " {params.real} --csv {output.csv} --md {output.md} --fig-visual {output.visual}"
        " --fig-frames {output.frames} --provenance {output.provenance} > {log} 2>&1"


# Pre-flight (before any job; a dry run of the default target too): a set burstsr_root must
# be a BurstSR folder when a real-track job is planned; PWC-Net weights are the user's file: a
# set path must exist, and align=pwcnet needs one, when a training or real-track job is
# planned (planned None: everything the config implies).
bsr_planned = lambda planned, rules_: planned is None or any(r in rules_ for r, _ in planned)
PREFLIGHT_CHECKS.append(
    lambda planned: (
        [
            f"burst_sr.data.burstsr_root: {BSR_REAL_ROOT}/val is not a folder "
            "(BurstSR val bursts expected, see docs/burst-sr.md)"
        ]
        if "burst-sr" in PAPERS
        and BSR_REAL_ROOT
        and not os.path.isdir(os.path.join(BSR_REAL_ROOT, "val"))
        and bsr_planned(planned, ("burst_sr_evaluate_real",))
        else []
    )
)
BSR_LPIPS = BSR.get("lpips_weights")
PREFLIGHT_CHECKS.append(
    lambda planned: (
        [f"burst_sr.lpips_weights: {BSR_LPIPS} does not exist (AlexNet state_dict file)"]
        if "burst-sr" in PAPERS
        and BSR_LPIPS
        and not os.path.isfile(BSR_LPIPS)
        and bsr_planned(planned, ("burst_sr_evaluate",))
        else []
    )
)
bsr_pwc_problems = lambda: (
    [f"burst_sr.pwcnet_weights: {BSR_PWC} does not exist (see docs/burst-sr.md)"]
    if BSR_PWC and not os.path.isfile(BSR_PWC)
    else [
        f"burst_sr.models.{n}: align=pwcnet needs burst_sr.pwcnet_weights "
        "(pytorch-pwc's network-default weights; see docs/burst-sr.md)"
        for n in bsrplan.models(BSR, "burst")
        if BSR["models"][n].get("align") == "pwcnet" and not BSR_PWC
    ][:1]
)
PREFLIGHT_CHECKS.append(
    lambda planned: (
        bsr_pwc_problems()
        if "burst-sr" in PAPERS
        and bsr_planned(planned, ("burst_sr_train", "burst_sr_evaluate_real"))
        else []
    )
)
DATASETS_NEEDED.append(
    lambda: (
        {"zurich"}
        if "burst-sr" in PAPERS
        and BSR.get("data", {}).get("source") == "zurich"
        and not BSR.get("data", {}).get("zurich_root")
        else set()
    )
)


if "burst-sr" in PAPERS:
    PAPER_TARGETS.extend(
        [
            f"{BSR_DIR}/summary.csv",
            f"{BSR_DIR}/figures/visual_comparison.png",
            f"{BSR_DIR}/figures/psnr_vs_frames.png",
        ]
    )
