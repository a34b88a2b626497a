# NTIRE 2021 burst super-resolution: stored validation bursts (track 1, synthetic), one
# training and one evaluation job per trained model and seed (burst_sr.seeds;
# models/<model>/seed<k>/, eval/<model>/seed<k>.json) and one evaluation per untrained
# baseline (eval/<model>.json), the real-track evaluation on BurstSR val (track 2, only when
# burst_sr.data.burstsr_root is set) and the scorecard. Wiring only: each job's params, inputs,
# wildcard constraints, flags and resources come from repro.burstsr.plan (the paper's checks,
# pre-flight, datasets and targets too, through common.smk). See docs/burst-sr.md.
from repro.burstsr import plan as bsrplan

BSR_DIR = bsrplan.paper_dir(RESULTS)
BSR_SUMMARY = bsrplan.summary_files(RESULTS)


rule burst_sr_make_val:
    input:
        lambda wildcards: bsrplan.source_inputs(config),
    output:
        f"{BSR_DIR}/val/meta.json",
    params:
        version=pkg_version("burstsr"),
        cfg=as_json(bsrplan.val_params(config)),
        out=lambda wildcards, output: os.path.dirname(output[0]),
    log:
        f"logs/{RUN}/burst-sr/make_val.log",
    benchmark:
        f"benchmarks/{RUN}/burst-sr/make_val.tsv"
    threads: step_threads("burst-sr", "make_val")
    resources:
        **step_resources("burst-sr", "make_val"),
    conda:
        "../../envs/burstsr.yaml"
    shell:
        "repro-burstsr make-val --params {params.cfg:q} --out {params.out} > {log} 2>&1"


rule burst_sr_train:
    input:
        lambda wildcards: bsrplan.source_inputs(config),
        flownet=lambda wildcards: bsrplan.flownet_inputs(
            config, RESULTS, wildcards.model, int(wildcards.seed)
        ),
    output:
        model=f"{BSR_DIR}/models/{{model}}/seed{{seed}}/model.pt",
        result=f"{BSR_DIR}/models/{{model}}/seed{{seed}}/result.json",
    wildcard_constraints:
        model=bsrplan.model_constraint(config, *bsrplan.TRAINED),
        seed=r"\d+",
    params:
        version=pkg_version("burstsr"),
        cfg=lambda wildcards: as_json(
            bsrplan.train_params(config, wildcards.model, int(wildcards.seed))
        ),
        out=lambda wildcards, output: os.path.dirname(output.model),
        flownet=lambda wildcards, input: bsrplan.option("--flownet", input.flownet),
        launch=launch_prefix(),
    log:
        f"logs/{RUN}/burst-sr/train_{{model}}/seed{{seed}}.log",
    benchmark:
        f"benchmarks/{RUN}/burst-sr/train_{{model}}/seed{{seed}}.tsv"
    threads: step_threads("burst-sr", "train")
    resources:
        **step_resources("burst-sr", "train", retry=True),
    conda:
        "../../envs/burstsr.yaml"
    shell:
        "{params.launch} repro-burstsr train --params {params.cfg:q} {params.flownet}"
        " --out {params.out} > {log} 2>&1"


rule burst_sr_evaluate:
    input:
        val=f"{BSR_DIR}/val/meta.json",
        ckpt=lambda wildcards: bsrplan.checkpoint_inputs(RESULTS, wildcards.run),
    output:
        result=f"{BSR_DIR}/eval/{{run}}.json",
        example=f"{BSR_DIR}/eval/{{run}}_example.npy",
    wildcard_constraints:
        run=bsrplan.run_constraint(config, bsrplan.scored(config)),
    params:
        version=pkg_version("burstsr"),
        cfg=lambda wildcards: as_json(
            bsrplan.eval_params(config, *bsrplan.run_model(wildcards.run))
        ),
        val=lambda wildcards, input: os.path.dirname(input.val),
        ckpt=lambda wildcards, input: bsrplan.option("--checkpoint", input.ckpt),
        launch=launch_prefix(single=True),
    log:
        f"logs/{RUN}/burst-sr/evaluate_{{run}}.log",
    benchmark:
        f"benchmarks/{RUN}/burst-sr/evaluate_{{run}}.tsv"
    threads: step_threads("burst-sr", "evaluate")
    resources:
        **step_resources("burst-sr", "evaluate"),
    conda:
        "../../envs/burstsr.yaml"
    shell:
        "{params.launch} repro-burstsr evaluate --params {params.cfg:q} --val {params.val}"
        " {params.ckpt} --out {output.result} --example {output.example} > {log} 2>&1"


rule burst_sr_evaluate_real:
    input:
        ckpt=lambda wildcards: bsrplan.checkpoint_inputs(RESULTS, wildcards.run),
    output:
        result=f"{BSR_DIR}/real/{{run}}.json",
    wildcard_constraints:
        run=bsrplan.run_constraint(config, bsrplan.real_models(config)),
    params:
        version=pkg_version("burstsr"),
        cfg=lambda wildcards: as_json(
            bsrplan.real_params(config, *bsrplan.run_model(wildcards.run))
        ),
        root=config["burst_sr"]["data"]["burstsr_root"],
        ckpt=lambda wildcards, input: bsrplan.option("--checkpoint", input.ckpt),
        launch=launch_prefix(single=True),
    log:
        f"logs/{RUN}/burst-sr/evaluate_real_{{run}}.log",
    benchmark:
        f"benchmarks/{RUN}/burst-sr/evaluate_real_{{run}}.tsv"
    threads: step_threads("burst-sr", "evaluate_real")
    resources:
        **step_resources("burst-sr", "evaluate_real"),
    conda:
        "../../envs/burstsr.yaml"
    shell:
        "{params.launch} repro-burstsr evaluate-real --params {params.cfg:q}"
        " --root {params.root:q} {params.ckpt} --out {output.result} > {log} 2>&1"


rule burst_sr_summary:
    input:
        val=f"{BSR_DIR}/val/meta.json",
        results=expand(f"{BSR_DIR}/eval/{{run}}.json", run=bsrplan.eval_runs(config)),
        examples=expand(f"{BSR_DIR}/eval/{{run}}_example.npy", run=bsrplan.eval_runs(config)),
        real=expand(f"{BSR_DIR}/real/{{run}}.json", run=bsrplan.real_runs(config)),
        reported=reported_file("burst-sr"),
    output:
        csv=BSR_SUMMARY["csv"],
        html=report(
            BSR_SUMMARY["html"],
            caption=caption("burst-sr", "burst_sr_summary.rst"),
            category="Burst SR",
            labels={"figure": "scorecard"},
        ),
        md=BSR_SUMMARY["md"],
        visual=report(
            BSR_SUMMARY["visual"],
            caption=caption("burst-sr", "burst_sr_visual.rst"),
            category="Burst SR",
            labels={"figure": "visual comparison"},
        ),
        frames=report(
            BSR_SUMMARY["frames"],
            caption=caption("burst-sr", "burst_sr_frames.rst"),
            category="Burst SR",
            labels={"figure": "PSNR vs burst size"},
        ),
        provenance=BSR_SUMMARY["provenance"],
    params:
        version=pkg_version("burstsr"),
        cfg=as_json(bsrplan.summary_params(config, RUN)),
        val=lambda wildcards, input: os.path.dirname(input.val),
        out=lambda wildcards, output: os.path.dirname(output.csv),
    log:
        f"logs/{RUN}/burst-sr/summary.log",
    benchmark:
        f"benchmarks/{RUN}/burst-sr/summary.tsv"
    threads: step_threads("burst-sr", "summary")
    resources:
        **step_resources("burst-sr", "summary"),
    conda:
        "../../envs/burstsr.yaml"
    shell:
        "repro-burstsr summarize --params {params.cfg:q} --reported {input.reported}"
        " --val {params.val} --results {input.results} --examples {input.examples}"
        " --real-results {input.real} --out {params.out} > {log} 2>&1"
