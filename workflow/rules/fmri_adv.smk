# White- vs black-box adversarial examples in DNNs and brains (fMRI RSA): stimuli against the
# target (white-box) and the substitute (black-box, transferred), the networks' side, a
# simulated BIDS experiment (or the user's BIDS dataset), the brain side and the scorecard.
# Wiring only: files, each job's params, checks and resources come from repro.fmri.plan (the
# paper contract, entry point fmri-adv). See docs/fmri-adv.md.
from repro.fmri import plan as fmriplan

FMRI_DIR = fmriplan.paper_dir(RESULTS)


rule fmri_stimuli:
    input:
        data=lambda wildcards: fmriplan.data_file(config),
        target=lambda wildcards: fmriplan.network_file(config, RESULTS, "target"),
        substitute=lambda wildcards: fmriplan.network_file(config, RESULTS, "substitute"),
    output:
        f"{FMRI_DIR}/stimuli/meta.json",
    params:
        version=pkg_version("fmri"),
        cfg=lambda wildcards: as_json(fmriplan.stimuli_params(config)),
        data=lambda wildcards, input: os.path.dirname(input.data),
        out=lambda wildcards, output: os.path.dirname(output[0]),
        launch=launch_prefix(single=True),
    log:
        f"logs/{RUN}/fmri-adv/stimuli.log",
    benchmark:
        f"benchmarks/{RUN}/fmri-adv/stimuli.tsv"
    threads: step_threads("fmri-adv", "stimuli")
    resources:
        **step_resources("fmri-adv", "stimuli"),
    conda:
        "../../envs/fmri.yaml"
    shell:
        "{params.launch} repro-fmri stimuli --params {params.cfg:q} --data {params.data}"
        " --target {input.target} --substitute {input.substitute} --out {params.out}"
        " > {log} 2>&1"


rule fmri_dnn:
    input:
        stimuli=f"{FMRI_DIR}/stimuli/meta.json",
        target=lambda wildcards: fmriplan.network_file(config, RESULTS, "target"),
        substitute=lambda wildcards: fmriplan.network_file(config, RESULTS, "substitute"),
    output:
        result=f"{FMRI_DIR}/dnn/dnn.json",
        rdms=f"{FMRI_DIR}/dnn/rdms.npz",
        rsatoolbox=f"{FMRI_DIR}/dnn/rdms.hdf5",
    params:
        version=pkg_version("fmri"),
        cfg=lambda wildcards: as_json(fmriplan.dnn_params(config)),
        stimuli=lambda wildcards, input: os.path.dirname(input.stimuli),
        out=lambda wildcards, output: os.path.dirname(output.result),
        launch=launch_prefix(single=True),
    log:
        f"logs/{RUN}/fmri-adv/dnn.log",
    benchmark:
        f"benchmarks/{RUN}/fmri-adv/dnn.tsv"
    threads: step_threads("fmri-adv", "dnn")
    resources:
        **step_resources("fmri-adv", "dnn"),
    conda:
        "../../envs/fmri.yaml"
    shell:
        "{params.launch} repro-fmri dnn --params {params.cfg:q} --stimuli {params.stimuli}"
        " --target {input.target} --substitute {input.substitute} --out {params.out}"
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
    threads: step_threads("fmri-adv", "simulate")
    resources:
        **step_resources("fmri-adv", "simulate"),
    conda:
        "../../envs/fmri.yaml"
    shell:
        "repro-fmri simulate --params {params.cfg:q} --stimuli {params.stimuli}"
        " --out {params.out} > {log} 2>&1"


rule fmri_analyse:
    input:
        bids=lambda wildcards: fmriplan.simulated_bids(config, RESULTS),
        stimuli=f"{FMRI_DIR}/stimuli/meta.json",
        dnn=f"{FMRI_DIR}/dnn/dnn.json",
    output:
        result=f"{FMRI_DIR}/analysis/analysis.json",
        rdms=f"{FMRI_DIR}/analysis/rdms.npz",
        rsatoolbox=f"{FMRI_DIR}/analysis/rdms.hdf5",
    params:
        version=pkg_version("fmri"),
        cfg=lambda wildcards: as_json(fmriplan.analysis_params(config)),
        bids=lambda wildcards: fmriplan.bids_dir(config, RESULTS),
        stimuli=lambda wildcards, input: os.path.dirname(input.stimuli),
        dnn=lambda wildcards, input: os.path.dirname(input.dnn),
        out=lambda wildcards, output: os.path.dirname(output.result),
        launch=launch_prefix(single=True),
    log:
        f"logs/{RUN}/fmri-adv/analyse.log",
    benchmark:
        f"benchmarks/{RUN}/fmri-adv/analyse.tsv"
    threads: step_threads("fmri-adv", "analyse")
    resources:
        **step_resources("fmri-adv", "analyse"),
    conda:
        "../../envs/fmri.yaml"
    shell:
        "{params.launch} repro-fmri analyse --params {params.cfg:q} --bids {params.bids:q}"
        " --stimuli {params.stimuli} --dnn {params.dnn} --out {params.out} > {log} 2>&1"


rule fmri_report:
    input:
        stimuli=f"{FMRI_DIR}/stimuli/meta.json",
        dnn=f"{FMRI_DIR}/dnn/dnn.json",
        analysis=f"{FMRI_DIR}/analysis/analysis.json",
        reported=reported_file("fmri-adv"),
    output:
        csv=fmriplan.report_file(RESULTS, "csv"),
        html=report(
            fmriplan.report_file(RESULTS, "html"),
            caption=caption("fmri-adv", "fmri_summary.rst"),
            category="fMRI adversarial",
            labels={"figure": "scorecard"},
        ),
        md=fmriplan.report_file(RESULTS, "md"),
        stimuli=report(
            fmriplan.report_file(RESULTS, "stimuli"),
            caption=caption("fmri-adv", "fmri_stimuli.rst"),
            category="fMRI adversarial",
            labels={"figure": "example stimuli"},
        ),
        rdms=report(
            fmriplan.report_file(RESULTS, "rdms"),
            caption=caption("fmri-adv", "fmri_rdms.rst"),
            category="fMRI adversarial",
            labels={"figure": "RDM panels"},
        ),
        wb=report(
            fmriplan.report_file(RESULTS, "wb"),
            caption=caption("fmri-adv", "fmri_wb.rst"),
            category="fMRI adversarial",
            labels={"figure": "white vs black difference"},
        ),
        roi=report(
            fmriplan.report_file(RESULTS, "roi"),
            caption=caption("fmri-adv", "fmri_roi_layer.rst"),
            category="fMRI adversarial",
            labels={"figure": "ROI x layer similarity"},
        ),
        provenance=fmriplan.report_file(RESULTS, "provenance"),
    params:
        version=pkg_version("fmri"),
        brain_data=lambda wildcards: fmriplan.brain_data(config),  # named in the captions
        cfg=lambda wildcards: as_json(fmriplan.report_params(config)),
        stimuli=lambda wildcards, input: os.path.dirname(input.stimuli),
        dnn=lambda wildcards, input: os.path.dirname(input.dnn),
        analysis=lambda wildcards, input: os.path.dirname(input.analysis),
        out=lambda wildcards, output: os.path.dirname(output.csv),
    log:
        f"logs/{RUN}/fmri-adv/report.log",
    benchmark:
        f"benchmarks/{RUN}/fmri-adv/report.tsv"
    threads: step_threads("fmri-adv", "report")
    resources:
        **step_resources("fmri-adv", "report"),
    conda:
        "../../envs/fmri.yaml"
    shell:
        "repro-fmri report --params {params.cfg:q} --stimuli {params.stimuli} --dnn {params.dnn}"
        " --analysis {params.analysis} --reported {input.reported} --out {params.out}"
        " > {log} 2>&1"
