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
    threads: kd_threads
    resources:
        mem_mb=kd_resource("mem_mb", 2000),
        runtime=kd_resource("runtime", 30),
        gpu=kd_resource("gpu", 0),
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
    threads: kd_threads
    resources:
        mem_mb=kd_resource("mem_mb", 2000),
        runtime=kd_resource("runtime", 30),
        gpu=kd_resource("gpu", 0),
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
        variant="|".join(POOL.get("variants", {})) or NEVER,
        recipe="|".join(POOL.get("recipes", {})) or NEVER,
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
    threads: kd_threads
    resources:
        mem_mb=kd_resource("mem_mb", 2000),
        runtime=kd_resource("runtime", 30),
        gpu=kd_resource("gpu", 0),
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
    threads: kd_threads
    resources:
        mem_mb=kd_resource("mem_mb", 2000),
        runtime=group_runtime,
        gpu=kd_resource("gpu", 0),
    conda:
        "../../envs/distill.yaml"
    shell:
        "{params.launch} repro-distill train-group --data data/{wildcards.dataset}"
        " --results {params.results} {params.teacher} --params {params.cfg:q}"
        " --done {output.done}"
        " > {log} 2>&1"


# One scorecard rule shape for every KD paper (report_energy_kd, report_cskd, report_r2kd): its
# tables over the pool, the published numbers, and the figures the plan lists for it.
for _paper in KD_PAPERS:

    rule:
        name:
            f"report_{kdplan.PAPERS[_paper]}"
        input:
            runs=report_inputs(_paper),
            reported=REPORTED / f"{_paper}.yaml",
            figure=figure_inputs(_paper),
        output:
            csv=f"{RESULTS}/{_paper}/summary.csv",
            html=report(
                f"{RESULTS}/{_paper}/summary.html",
                caption=f"../report/{kdplan.PAPERS[_paper]}_summary.rst",
                category=kdplan.TITLES[_paper],
                labels={"figure": "scorecard"},
            ),
            md=f"{RESULTS}/{_paper}/summary.md",
            runs=f"{RESULTS}/{_paper}/runs.csv",
            provenance=f"{RESULTS}/{_paper}/provenance.json",
            **figure_outputs(_paper),
        params:
            version=pkg_version("distill"),
            cfg=report_cfg_json(_paper),
            out=lambda wildcards, output: os.path.dirname(output.csv),
            results=lambda wildcards, output: str(Path(output.csv).parents[1]),
        log:
            f"logs/{RUN}/{_paper}/report.log",
        benchmark:
            f"benchmarks/{RUN}/{_paper}/report.tsv"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=20,
        conda:
            "../../envs/distill.yaml"
        shell:
            "repro-distill report --results {params.results} --reported {input.reported}"
            " --out {params.out} --params {params.cfg:q} > {log} 2>&1"

    PAPER_TARGETS.extend(workflow.get_rule(f"report_{kdplan.PAPERS[_paper]}").output)


# The fair KD leaderboard: every variant on the same pairs, recipe and seeds, paired by seed.
if LEADERBOARD is not None:

    rule report_kd_leaderboard:
        input:
            runs=leaderboard_inputs,
        output:
            csv=f"{RESULTS}/{kdplan.LEADERBOARD_DIR}/summary.csv",
            ranks=f"{RESULTS}/{kdplan.LEADERBOARD_DIR}/ranks.csv",
            md=f"{RESULTS}/{kdplan.LEADERBOARD_DIR}/summary.md",
            html=report(
                f"{RESULTS}/{kdplan.LEADERBOARD_DIR}/summary.html",
                caption="../report/kd_leaderboard_summary.rst",
                category="KD leaderboard",
                labels={"figure": "leaderboard"},
            ),
            figure=report(
                f"{RESULTS}/{kdplan.LEADERBOARD_DIR}/figures/paired_differences.png",
                caption="../report/kd_leaderboard_paired_differences.rst",
                category="KD leaderboard",
                labels={"figure": kdplan.FIGURE_LABELS["paired_differences"]},
            ),
            provenance=f"{RESULTS}/{kdplan.LEADERBOARD_DIR}/provenance.json",
        params:
            version=pkg_version("distill"),
            cfg=lambda wildcards: as_json(LEADERBOARD),
            out=lambda wildcards, output: os.path.dirname(output.csv),
            results=lambda wildcards, output: str(Path(output.csv).parents[1]),
        log:
            f"logs/{RUN}/{kdplan.LEADERBOARD_DIR}/report.log",
        benchmark:
            f"benchmarks/{RUN}/{kdplan.LEADERBOARD_DIR}/report.tsv"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=20,
        conda:
            "../../envs/distill.yaml"
        shell:
            "repro-distill leaderboard --results {params.results} --out {params.out}"
            " --params {params.cfg:q} > {log} 2>&1"

    PAPER_TARGETS.extend(rules.report_kd_leaderboard.output)
