# Models trained alone with cross-entropy: the KD papers' teachers and student baselines.
# Recipe: config energy_kd.vanilla_train (+ student_lr); one job per (dataset, model, seed).


wildcard_constraints:
    model=r"[A-Za-z0-9_]+",
    teacher=r"[A-Za-z0-9_]+",
    student=r"[A-Za-z0-9_]+",
    seed=r"\d+",


rule train_vanilla:
    input:
        data="data/{dataset}/meta.json",
    output:
        model=f"{RESULTS}/vanilla/{{dataset}}/{{model}}/seed{{seed}}/model.pt",
        result=f"{RESULTS}/vanilla/{{dataset}}/{{model}}/seed{{seed}}/result.json",
    params:
        version=pkg_version("distill"),
        cfg=vanilla_cfg,
        out=vanilla_out,
    log:
        f"logs/{RUN}/vanilla/{{dataset}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"benchmarks/{RUN}/vanilla/{{dataset}}/{{model}}/seed{{seed}}.tsv"
    threads: kd_threads
    resources:
        mem_mb=kd_resource("mem_mb", 2000),
        runtime=kd_resource("runtime", 30),
        gpu=kd_resource("gpu", 0),
    conda:
        "../../envs/distill.yaml"
    shell:
        "repro-distill train --data data/{wildcards.dataset} --out {params.out}"
        " --params {params.cfg:q} > {log} 2>&1"


# A user-supplied pretrained teacher (energy_kd.pretrained_teachers, e.g. ImageNet) is not
# trained here; it is scored on the test split so the summary has its row.
rule evaluate_pretrained_teacher:
    input:
        data="data/{dataset}/meta.json",
        weights=pretrained_input,
    output:
        result=f"{RESULTS}/vanilla/{{dataset}}/{{model}}/pretrained/result.json",
    params:
        version=pkg_version("distill"),
        cfg=pretrained_cfg,
    log:
        f"logs/{RUN}/vanilla/{{dataset}}/{{model}}/pretrained.log",
    benchmark:
        f"benchmarks/{RUN}/vanilla/{{dataset}}/{{model}}/pretrained.tsv"
    threads: kd_threads
    resources:
        mem_mb=kd_resource("mem_mb", 2000),
        runtime=kd_resource("runtime", 30),
        gpu=kd_resource("gpu", 0),
    conda:
        "../../envs/distill.yaml"
    shell:
        "repro-distill evaluate --data data/{wildcards.dataset} --out {output.result}"
        " --params {params.cfg:q} > {log} 2>&1"
