# The KD run pool (config section `kd`) and the KD papers' scorecards. Models trained alone
# (teachers, student baselines) once per (dataset, model, seed); one job per KD cell
# (dataset, recipe, variant, teacher-student, seed), whichever papers ask for it.


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


rule report_energy_kd:
    input:
        runs=report_inputs("energy-kd"),
        reported=REPORTED / "energy-kd.yaml",
        figure=energy_figure_inputs,
    output:
        csv=f"{RESULTS}/energy-kd/summary.csv",
        html=report(
            f"{RESULTS}/energy-kd/summary.html",
            caption="../report/energy_kd_summary.rst",
            category="Energy KD",
            labels={"figure": "scorecard"},
        ),
        md=f"{RESULTS}/energy-kd/summary.md",
        runs=f"{RESULTS}/energy-kd/runs.csv",
        confidence=report(
            f"{RESULTS}/energy-kd/figures/energy_vs_confidence.png",
            caption="../report/energy_kd_confidence.rst",
            category="Energy KD",
            labels={"figure": "teacher energy vs confidence"},
        ),
        histogram=report(
            f"{RESULTS}/energy-kd/figures/energy_histogram.png",
            caption="../report/energy_kd_histogram.rst",
            category="Energy KD",
            labels={"figure": "teacher energy and thresholds"},
        ),
        accuracy=report(
            f"{RESULTS}/energy-kd/figures/accuracy.png",
            caption="../report/energy_kd_accuracy.rst",
            category="Energy KD",
            labels={"figure": "accuracy by method"},
        ),
        provenance=f"{RESULTS}/energy-kd/provenance.json",
    params:
        version=pkg_version("distill"),
        cfg=lambda wildcards: as_json(report_cfg("energy-kd")),
        out=lambda wildcards, output: os.path.dirname(output.csv),
        results=lambda wildcards, output: str(Path(output.csv).parents[1]),
    log:
        f"logs/{RUN}/energy-kd/report.log",
    benchmark:
        f"benchmarks/{RUN}/energy-kd/report.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/distill.yaml"
    shell:
        "repro-distill report --results {params.results} --reported {input.reported}"
        " --out {params.out} --params {params.cfg:q} > {log} 2>&1"


if "energy-kd" in PAPERS:
    PAPER_TARGETS.extend(rules.report_energy_kd.output)
