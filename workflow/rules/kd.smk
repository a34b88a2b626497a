# The KD run pool (config section `kd`) and the KD papers' scorecards. Models trained alone
# (teachers, student baselines) once per (dataset, model, seed); one job per KD cell
# (dataset, recipe, variant, teacher-student, seed), whichever papers ask for it, or with
# kd.lockstep one job per row of cells (train_kd_group; a cell asked for alone: train_kd).


wildcard_constraints:
    model=r"[A-Za-z0-9_]+",
    teacher=r"[A-Za-z0-9_]+",
    student=r"[A-Za-z0-9_]+",
    seed=r"\d+",


rule train_vanilla:
    input:
        data="data/{dataset}/meta.json",
        init=vanilla_init_input,
    output:
        model=f"{RESULTS}/vanilla/{{dataset}}/{{model}}/seed{{seed}}/model.pt",
        result=f"{RESULTS}/vanilla/{{dataset}}/{{model}}/seed{{seed}}/result.json",
    params:
        version=pkg_version("distill"),
        cfg=vanilla_cfg,
        out=lambda wildcards, output: os.path.dirname(output.result),
        launch=kd_launch,
    log:
        f"logs/{RUN}/vanilla/{{dataset}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"benchmarks/{RUN}/vanilla/{{dataset}}/{{model}}/seed{{seed}}.tsv"
    threads: kd_resource("threads")
    resources:
        mem_mb=kd_scaled("mem_mb"),
        runtime=kd_scaled("runtime"),
        gpu=kd_resource("gpu"),
    conda:
        "../../envs/distill.yaml"
    shell:
        "{params.launch} repro-distill train --data data/{wildcards.dataset} --out {params.out}"
        " --params {params.cfg:q} > {log} 2>&1"


# A user-supplied pretrained teacher (kd.pretrained_teachers, e.g. ImageNet) is not trained
# here; it is scored on the test split so the scorecards have its row.
rule evaluate_pretrained_teacher:
    input:
        data="data/{dataset}/meta.json",
        weights=pretrained_input,
    output:
        result=f"{RESULTS}/vanilla/{{dataset}}/{{model}}/pretrained/result.json",
    params:
        version=pkg_version("distill"),
        cfg=pretrained_cfg,
        launch=launch_prefix(single=True),
    log:
        f"logs/{RUN}/vanilla/{{dataset}}/{{model}}/pretrained.log",
    benchmark:
        f"benchmarks/{RUN}/vanilla/{{dataset}}/{{model}}/pretrained.tsv"
    threads: kd_resource("threads")
    resources:
        mem_mb=kd_scaled("mem_mb"),
        runtime=kd_scaled("runtime"),
        gpu=kd_resource("gpu"),
    conda:
        "../../envs/distill.yaml"
    shell:
        "{params.launch} repro-distill evaluate --data data/{wildcards.dataset} --out {output.result}"
        " --params {params.cfg:q} > {log} 2>&1"


rule train_kd:
    input:
        data="data/{dataset}/meta.json",
        teacher=kd_teacher,
        init=kd_init_input,
    output:
        model=f"{RESULTS}/kd/{{dataset}}/{{recipe}}/{{variant}}/{{teacher}}-{{student}}/seed{{seed}}/model.pt",
        result=f"{RESULTS}/kd/{{dataset}}/{{recipe}}/{{variant}}/{{teacher}}-{{student}}/seed{{seed}}/result.json",
    wildcard_constraints:
        variant=kdplan.variant_pattern(config),
        recipe=kdplan.recipe_pattern(config),
    params:
        version=pkg_version("distill"),
        cfg=kd_cfg,
        out=lambda wildcards, output: os.path.dirname(output.result),
        teacher=kd_teacher_arg,
        launch=kd_launch,
    log:
        f"logs/{RUN}/kd/{{dataset}}/{{recipe}}/{{variant}}/{{teacher}}-{{student}}/seed{{seed}}.log",
    benchmark:
        f"benchmarks/{RUN}/kd/{{dataset}}/{{recipe}}/{{variant}}/{{teacher}}-{{student}}/seed{{seed}}.tsv"
    threads: kd_resource("threads")
    resources:
        mem_mb=kd_scaled("mem_mb"),
        runtime=kd_scaled("runtime"),
        gpu=kd_resource("gpu"),
    conda:
        "../../envs/distill.yaml"
    shell:
        "{params.launch} repro-distill train --data data/{wildcards.dataset} --out {params.out}"
        " {params.teacher} --params {params.cfg:q} > {log} 2>&1"


# kd.lockstep: the cells of a row (dataset, pair, seed, same batches) in one job, one teacher
# forward per batch; it writes each cell's folder as train_kd would (the job derives the
# folders under --results from its cells' params: plan.cell_dir), and its marker lists them.
rule train_kd_group:
    input:
        data="data/{dataset}/meta.json",
        teacher=kd_teacher,
        init=kd_init_input,
    output:
        done=f"{RESULTS}/{kdplan.GROUPS_DIR}/{{dataset}}/{{teacher}}-{{student}}/seed{{seed}}/{{key}}.json",
    wildcard_constraints:
        key=r"[0-9a-f]{8}",
    params:
        version=pkg_version("distill"),
        cfg=group_cfg,
        results=lambda wildcards, output: output.done.split(f"/{kdplan.GROUPS_DIR}/")[0],
        teacher=kd_teacher_arg,
        launch=kd_launch,
    log:
        f"logs/{RUN}/{kdplan.GROUPS_DIR}/{{dataset}}/{{teacher}}-{{student}}/seed{{seed}}/{{key}}.log",
    benchmark:
        f"benchmarks/{RUN}/{kdplan.GROUPS_DIR}/{{dataset}}/{{teacher}}-{{student}}/seed{{seed}}/{{key}}.tsv"
    threads: kd_resource("threads")
    resources:
        mem_mb=kd_scaled("mem_mb"),
        runtime=group_runtime,
        gpu=kd_resource("gpu"),
    conda:
        "../../envs/distill.yaml"
    shell:
        "{params.launch} repro-distill train-group --data data/{wildcards.dataset}"
        " --results {params.results} {params.teacher} --params {params.cfg:q}"
        " --done {output.done}"
        " > {log} 2>&1"


# One scorecard rule shape for every KD paper (report_energy_kd, report_cskd, report_r2kd): its
# tables over the pool, the published numbers, and the figures its module lists.
for _paper in KD_PAPERS:

    rule:
        name:
            f"report_{kdplan.PAPERS[_paper]}"
        input:
            runs=kdplan.report_inputs(config, RESULTS, _paper, KD_GROUPS),
            reported=reported_file(_paper),
            figure=kdplan.figure_inputs(config, RESULTS, _paper, KD_GROUPS),
        output:
            **outputs(kdplan.report_outputs(config, RESULTS, _paper)),
        params:
            version=pkg_version("distill"),
            cfg=report_cfg_json(_paper),
            out=lambda wildcards, output: os.path.dirname(output.csv),
            results=lambda wildcards, output: str(Path(output.csv).parents[1]),
        log:
            f"logs/{RUN}/{_paper}/report.log",
        benchmark:
            f"benchmarks/{RUN}/{_paper}/report.tsv"
        threads: step_threads(_paper, "report")
        resources:
            **step_resources(_paper, "report"),
        conda:
            "../../envs/distill.yaml"
        shell:
            "repro-distill report --results {params.results} --reported {input.reported}"
            " --out {params.out} --params {params.cfg:q} > {log} 2>&1"


# The fair KD leaderboard: every variant on the same pairs, recipe and seeds, paired by seed.
if LEADERBOARD is not None:

    rule report_kd_leaderboard:
        input:
            runs=leaderboard_inputs,
        output:
            **outputs(kdplan.leaderboard_outputs(RESULTS)),
        params:
            version=pkg_version("distill"),
            cfg=lambda wildcards: as_json(LEADERBOARD),
            out=lambda wildcards, output: os.path.dirname(output.csv),
            results=lambda wildcards, output: str(Path(output.csv).parents[1]),
        log:
            f"logs/{RUN}/{kdplan.LEADERBOARD_DIR}/report.log",
        benchmark:
            f"benchmarks/{RUN}/{kdplan.LEADERBOARD_DIR}/report.tsv"
        threads: step_threads(KD_PAPERS[0], "leaderboard")  # any KD paper's plan: they share it
        resources:
            **step_resources(KD_PAPERS[0], "leaderboard"),
        conda:
            "../../envs/distill.yaml"
        shell:
            "repro-distill leaderboard --results {params.results} --out {params.out}"
            " --params {params.cfg:q} > {log} 2>&1"
