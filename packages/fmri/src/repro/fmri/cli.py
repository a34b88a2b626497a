"""``repro-fmri``: white- vs black-box adversarial stimuli, DNN and fMRI RSA, one step each.

    repro-fmri stimuli  --params JSON --data data/digits --target T.pt --substitute S.pt --out DIR
    repro-fmri dnn      --params JSON --stimuli DIR --target T.pt --substitute S.pt --out DIR
    repro-fmri simulate --params JSON --stimuli DIR --out BIDS_DIR
    repro-fmri analyse  --params JSON --bids BIDS_DIR --stimuli DIR [--dnn DIR] --out DIR
    repro-fmri report   --params JSON --stimuli DIR --dnn DIR [--analysis DIR] --out DIR
                        [--reported packages/fmri/src/repro/fmri/reported/fmri-adv.yaml]

Each ``--params`` is exactly the step's parameter dataclass in ``repro.fmri.params``
(StimulusParams, DnnParams, SimParams, AnalysisParams, ReportParams; omitted: the defaults),
read by ``repro.core.params.parse``: unknown keys and wrong types stop with one line. The
device (``auto``, ``cpu``, ``cuda[:i]``) and the significance level are params too.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict
from pathlib import Path

from repro.core import cliutil
from repro.core.params import parse
from repro.fmri import params as P

log = logging.getLogger("repro.fmri")


#: Each subcommand's help and paths (flag, help, required); every one also takes --params
#: (its dataclass as JSON) and --out.
_NETS = [("--target", "target network weights", True), ("--substitute", "substitute weights", True)]
_PATHS = {
    "stimuli": (
        "clean, white-box and black-box stimuli (PNG + CSV)",
        [("--data", "array dataset (repro.data.arrays) or image index", True), *_NETS],
    ),
    "dnn": (
        "layer RDMs, accuracy and white/black tests of both networks",
        [("--stimuli", "output of 'repro-fmri stimuli'", True), *_NETS],
    ),
    "simulate": (
        "a simulated BIDS dataset on the stimuli",
        [("--stimuli", "output of 'repro-fmri stimuli'", True)],
    ),
    "analyse": (
        "GLM, ROI RDMs, comparisons and tests on a BIDS dataset",
        [
            ("--bids", "the BIDS dataset (docs/fmri-adv.md)", True),
            ("--stimuli", "output of 'repro-fmri stimuli'", True),
            ("--dnn", "output of 'repro-fmri dnn' (layer RDMs)", False),
        ],
    ),
    "report": (
        "summary table, figures and provenance",
        [
            ("--stimuli", "output of 'repro-fmri stimuli'", True),
            ("--dnn", "output of 'repro-fmri dnn'", True),
            ("--analysis", "output of 'repro-fmri analyse'", False),
            ("--reported", "the abstract's claims (YAML, with sources)", False),
        ],
    ),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="repro-fmri", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (text, paths) in _PATHS.items():
        p = sub.add_parser(name, help=text)
        p.add_argument("--params", type=cliutil.json_arg, default={}, help="the step's params")
        for flag, help_text, required in paths:
            p.add_argument(flag, type=Path, required=required, help=help_text)
        p.add_argument("--out", type=Path, required=True)
    return parser


def _device(name: str) -> str:
    """A config device (``auto``, ``cpu``, ``cuda[:i]``) as torch names it; one line naming
    the key when it is malformed or not here."""
    from repro.core.device import resolve_device

    return str(resolve_device(name, "fmri_adv.device"))


def _stimuli(args: argparse.Namespace) -> None:
    from repro.fmri.stimuli import attack_success, build_stimuli

    prm = parse(P.StimulusParams, args.params, "stimuli")
    prm.device = _device(prm.device)
    stim = build_stimuli(args.data, args.target, args.substitute, prm, args.out)
    log.info("%d stimuli; attack success on the target: %s", len(stim.table), attack_success(stim))


def _dnn(args: argparse.Namespace) -> None:
    import numpy as np

    from repro.core.atomic import write_json
    from repro.fmri.dnn import dnn_analysis
    from repro.fmri.rsa import dnn_rdms_object, save_arrays, save_rsatoolbox
    from repro.fmri.stimuli import load_nets, read_stimuli

    prm = parse(P.DnnParams, args.params, "dnn")
    prm.device = _device(prm.device)
    stim = read_stimuli(args.stimuli)
    n_classes, channels = len(stim.classes), stim.images.shape[-1]
    nets = load_nets(prm.nets, args.target, args.substitute, n_classes, channels, prm.device)
    results, rdms = dnn_analysis(stim, {"target": nets[0], "substitute": nets[1]}, prm)
    results["params"] = asdict(prm)
    save_arrays(
        args.out / "rdms.npz",
        {
            "names": np.array(list(rdms)),
            "rdms": np.stack(list(rdms.values())),
            "stimulus_ids": np.array(stim.ids),
        },
    )
    save_rsatoolbox(args.out / "rdms.hdf5", dnn_rdms_object(rdms, stim, prm))
    write_json(args.out / "dnn.json", results)


def _simulate(args: argparse.Namespace) -> None:
    from repro.fmri.simulate import simulate_bids
    from repro.fmri.stimuli import read_stimuli

    prm = parse(P.SimParams, args.params, "simulate")
    truth = simulate_bids(read_stimuli(args.stimuli), prm, args.out)
    log.info("simulated %d subjects x %d runs: %s", prm.n_subjects, prm.n_runs, truth["rois"])


def _analyse(args: argparse.Namespace) -> None:
    from repro.core.atomic import write_json
    from repro.fmri.rsa import analyse, load_dnn_rdms, roi_rdms_object, save_arrays, save_rsatoolbox
    from repro.fmri.stimuli import read_stimuli

    prm = parse(P.AnalysisParams, args.params, "analyse")
    prm.device = _device(prm.device)
    stim = read_stimuli(args.stimuli)
    refs = load_dnn_rdms(args.dnn, stim.ids) if args.dnn else {}
    results, arrays = analyse(args.bids, stim, refs, prm)
    results["params_full"] = asdict(prm)
    save_arrays(args.out / "rdms.npz", arrays)
    save_rsatoolbox(
        args.out / "rdms.hdf5", roi_rdms_object(arrays, stim, prm, results["simulated"])
    )
    write_json(args.out / "analysis.json", results)


def _report(args: argparse.Namespace) -> None:
    from repro.fmri.report import write_report

    prm = parse(P.ReportParams, args.params, "report")
    write_report(args.stimuli, args.dnn, args.analysis, args.out, prm, args.reported)


_STEPS = {
    "stimuli": _stimuli,
    "dnn": _dnn,
    "simulate": _simulate,
    "analyse": _analyse,
    "report": _report,
}


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    _STEPS[args.command](args)
    return 0


def main(argv: list[str] | None = None) -> int:
    return cliutil.run(_main, argv)
