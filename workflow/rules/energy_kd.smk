# Energy KD (issue 3): one job per (method, dataset, teacher, student, seed), then the report.
# Teachers come from train_vanilla, or from energy_kd.pretrained_teachers (ImageNet: user files).


rule train_energy_kd:
    input:
        data="data/{dataset}/meta.json",
        teacher=ekd_teacher,
    output:
        model=f"{RESULTS}/energy-kd/runs/{{dataset}}/{{method}}/{{teacher}}-{{student}}/seed{{seed}}/model.pt",
        result=f"{RESULTS}/energy-kd/runs/{{dataset}}/{{method}}/{{teacher}}-{{student}}/seed{{seed}}/result.json",
    wildcard_constraints:
        method="kd|dkd|energy_kd|energy_dkd|heda",
    params:
        version=pkg_version("distill"),
        cfg=ekd_cfg,
        out=ekd_out,
        teacher=ekd_teacher_arg,
    log:
        f"logs/{RUN}/energy-kd/{{dataset}}/{{method}}/{{teacher}}-{{student}}/seed{{seed}}.log",
    benchmark:
        f"benchmarks/{RUN}/energy-kd/{{dataset}}/{{method}}/{{teacher}}-{{student}}/seed{{seed}}.tsv"
    threads: kd_threads
    resources:
        mem_mb=kd_resource("mem_mb", 2000),
        runtime=kd_resource("runtime", 30),
        gpu=kd_resource("gpu", 0),
    conda:
        "../../envs/distill.yaml"
    shell:
        "repro-distill train --data data/{wildcards.dataset} --out {params.out}"
        " {params.teacher} --params {params.cfg:q} > {log} 2>&1"


rule report_energy_kd:
    input:
        runs=ekd_results(),
        teacher=ekd_report_teacher,
    output:
        csv=f"{RESULTS}/energy-kd/summary.csv",
        md=f"{RESULTS}/energy-kd/summary.md",
        runs=f"{RESULTS}/energy-kd/runs.csv",
        figures=multiext(
            f"{RESULTS}/energy-kd/figures/",
            "energy_vs_confidence.png",
            "energy_histogram.png",
            "accuracy.png",
        ),
        provenance=f"{RESULTS}/energy-kd/provenance.json",
    params:
        version=pkg_version("distill"),
        cfg=as_json(KD),
        out=lambda wildcards, output: os.path.dirname(output.csv),
        dataset=ekd_report_pair()[0],
        teacher_model=ekd_report_pair()[1],
        seed=config["seed"],
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
        "repro-distill report energy-kd --runs {input.runs} --out {params.out}"
        " --params {params.cfg:q} --data data/{params.dataset} --teacher {input.teacher}"
        " --teacher-model {params.teacher_model} --seed {params.seed} > {log} 2>&1"


if "energy-kd" in PAPERS:
    PAPER_TARGETS.extend(rules.report_energy_kd.output)
