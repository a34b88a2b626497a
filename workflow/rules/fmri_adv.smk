# White- vs black-box adversarial examples in DNNs and brains (fMRI RSA): stimuli against the
# target (white-box) and the substitute (black-box, transferred), the networks' side, a
# simulated BIDS experiment (or the user's BIDS dataset), the brain side and the scorecard.
# Each job's params come from repro.fmri.plan. See docs/fmri-adv.md.
from repro.fmri import plan as fmriplan

FMRI = config.get("fmri_adv", {})
FMRI_DIR = f"{RESULTS}/fmri-adv"
FMRI_ON = "fmri-adv" in PAPERS
if FMRI_ON:
    stop_on([f"{_CONFIG_SOURCE}: {p}" for p in fmriplan.check(config, RESULTS)])
    FMRI_TARGET, FMRI_SUBSTITUTE, FMRI_FORMAT = fmriplan.network_files(config, RESULTS)
else:
    FMRI_TARGET = FMRI_SUBSTITUTE = FMRI_FORMAT = None
FMRI_BIDS_ROOT = FMRI.get("brain", {}).get("bids_root")
# The BIDS folder the analysis reads: the user's, or the one simulated here.
fmri_bids = lambda: FMRI_BIDS_ROOT or f"{FMRI_DIR}/bids"


rule fmri_stimuli:
    input:
        data=lambda wildcards: f"data/{FMRI['dataset']}/meta.json",
        target=lambda wildcards: FMRI_TARGET or [],
        substitute=lambda wildcards: FMRI_SUBSTITUTE or [],
    output:
        f"{FMRI_DIR}/stimuli/meta.json",
    params:
        version=pkg_version("fmri"),
        cfg=lambda wildcards: as_json(fmriplan.stimuli_params(config, FMRI_FORMAT)),
        data=lambda wildcards, input: os.path.dirname(input.data),
        out=lambda wildcards, output: os.path.dirname(output[0]),
    log:
        f"logs/{RUN}/fmri-adv/stimuli.log",
    benchmark:
        f"benchmarks/{RUN}/fmri-adv/stimuli.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=FMRI.get("gpus", 0),
    conda:
        "../../envs/fmri.yaml"
    shell:
        "repro-fmri stimuli --data {params.data} --target {input.target}"
        " --substitute {input.substitute} --params {params.cfg:q} --out {params.out}"
        " > {log} 2>&1"


rule fmri_dnn:
    input:
        stimuli=f"{FMRI_DIR}/stimuli/meta.json",
        target=lambda wildcards: FMRI_TARGET or [],
        substitute=lambda wildcards: FMRI_SUBSTITUTE or [],
    output:
        result=f"{FMRI_DIR}/dnn/dnn.json",
        rdms=f"{FMRI_DIR}/dnn/rdms.npz",
    params:
        version=pkg_version("fmri"),
        cfg=lambda wildcards: as_json(fmriplan.dnn_params(config, FMRI_FORMAT)),
        stimuli=lambda wildcards, input: os.path.dirname(input.stimuli),
        out=lambda wildcards, output: os.path.dirname(output.result),
    log:
        f"logs/{RUN}/fmri-adv/dnn.log",
    benchmark:
        f"benchmarks/{RUN}/fmri-adv/dnn.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=FMRI.get("gpus", 0),
    conda:
        "../../envs/fmri.yaml"
    shell:
        "repro-fmri dnn --stimuli {params.stimuli} --target {input.target}"
        " --substitute {input.substitute} --params {params.cfg:q} --out {params.out}"
        " > {log} 2>&1"


rule fmri_simulate:
    input:
        stimuli=f"{FMRI_DIR}/stimuli/meta.json",
    output:
        f"{FMRI_DIR}/bids/dataset_description.json",
    params:
        version=pkg_version("fmri"),
        cfg=lambda wildcards: as_json(fmriplan.simulate_params(config)),
        stimuli=lambda wildcards, input: os.path.dirname(input.stimuli),
        out=lambda wildcards, output: os.path.dirname(output[0]),
    log:
        f"logs/{RUN}/fmri-adv/simulate.log",
    benchmark:
        f"benchmarks/{RUN}/fmri-adv/simulate.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/fmri.yaml"
    shell:
        "repro-fmri simulate --stimuli {params.stimuli} --params {params.cfg:q}"
        " --out {params.out} > {log} 2>&1"


rule fmri_analyse:
    input:
        bids=lambda wildcards: [] if FMRI_BIDS_ROOT else f"{FMRI_DIR}/bids/dataset_description.json",
        stimuli=f"{FMRI_DIR}/stimuli/meta.json",
        dnn=f"{FMRI_DIR}/dnn/dnn.json",
    output:
        result=f"{FMRI_DIR}/analysis/analysis.json",
        rdms=f"{FMRI_DIR}/analysis/rdms.npz",
    params:
        version=pkg_version("fmri"),
        cfg=lambda wildcards: as_json(fmriplan.analysis_params(config)),
        bids=lambda wildcards: fmri_bids(),
        stimuli=lambda wildcards, input: os.path.dirname(input.stimuli),
        dnn=lambda wildcards, input: os.path.dirname(input.dnn),
        out=lambda wildcards, output: os.path.dirname(output.result),
        device=FMRI.get("device", "cpu"),
    log:
        f"logs/{RUN}/fmri-adv/analyse.log",
    benchmark:
        f"benchmarks/{RUN}/fmri-adv/analyse.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/fmri.yaml"
    shell:
        "repro-fmri analyse --bids {params.bids:q} --stimuli {params.stimuli}"
        " --dnn {params.dnn} --params {params.cfg:q} --device {params.device}"
        " --out {params.out} > {log} 2>&1"


rule fmri_report:
    input:
        stimuli=f"{FMRI_DIR}/stimuli/meta.json",
        dnn=f"{FMRI_DIR}/dnn/dnn.json",
        analysis=f"{FMRI_DIR}/analysis/analysis.json",
        reported=REPORTED / "fmri-adv.yaml",
    output:
        csv=f"{FMRI_DIR}/summary.csv",
        html=report(
            f"{FMRI_DIR}/summary.html",
            caption="../report/fmri_summary.rst",
            category="fMRI adversarial",
            labels={"figure": "scorecard"},
        ),
        md=f"{FMRI_DIR}/summary.md",
        stimuli=report(
            f"{FMRI_DIR}/figures/example_stimuli.png",
            caption="../report/fmri_stimuli.rst",
            category="fMRI adversarial",
            labels={"figure": "example stimuli"},
        ),
        rdms=report(
            f"{FMRI_DIR}/figures/rdm_panels.png",
            caption="../report/fmri_rdms.rst",
            category="fMRI adversarial",
            labels={"figure": "RDM panels"},
        ),
        wb=report(
            f"{FMRI_DIR}/figures/white_black_difference.png",
            caption="../report/fmri_wb.rst",
            category="fMRI adversarial",
            labels={"figure": "white vs black difference"},
        ),
        roi=report(
            f"{FMRI_DIR}/figures/roi_layer_similarity.png",
            caption="../report/fmri_roi_layer.rst",
            category="fMRI adversarial",
            labels={"figure": "ROI x layer similarity"},
        ),
        provenance=f"{FMRI_DIR}/provenance.json",
    params:
        version=pkg_version("fmri"),
        brain_data="measured" if FMRI_BIDS_ROOT else "simulated",  # named in the captions
        alpha=FMRI.get("alpha", 0.05),
        stimuli=lambda wildcards, input: os.path.dirname(input.stimuli),
        dnn=lambda wildcards, input: os.path.dirname(input.dnn),
        analysis=lambda wildcards, input: os.path.dirname(input.analysis),
        out=lambda wildcards, output: os.path.dirname(output.csv),
    log:
        f"logs/{RUN}/fmri-adv/report.log",
    benchmark:
        f"benchmarks/{RUN}/fmri-adv/report.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/fmri.yaml"
    shell:
        "repro-fmri report --stimuli {params.stimuli} --dnn {params.dnn}"
        " --analysis {params.analysis} --reported {input.reported} --alpha {params.alpha}"
        " --out {params.out} > {log} 2>&1"


# A user's BIDS dataset is validated before any job (runs, events, TR, masks: one line naming
# the file); a user's pretrained network must exist.
fmri_bids_problem = lambda: (
    fmriplan.validate_bids(FMRI_BIDS_ROOT, fmriplan.analysis_params(config))
    if FMRI_ON and FMRI_BIDS_ROOT
    else None
)
PREFLIGHT_CHECKS.append(
    lambda planned: (
        [p for p in [fmri_bids_problem()] if p]
        if planned is None or any(r == "fmri_analyse" for r, _ in planned)
        else []
    )
)
# The networks, when they are the user's pretrained files, must be set.
PREFLIGHT_CHECKS.append(
    lambda planned: (
        kdplan.unset_pretrained(
            config,
            [(FMRI["dataset"], FMRI["networks"][k]) for k in ("target", "substitute")],
        )
        if FMRI_ON and (planned is None or any(r == "fmri_stimuli" for r, _ in planned))
        else []
    )
)
DATASETS_NEEDED.append(lambda: {FMRI["dataset"]} if FMRI_ON else set())


if FMRI_ON:
    PAPER_TARGETS.extend(rules.fmri_report.output)
