"""``repro-fmri``: white- vs black-box adversarial stimuli, DNN and fMRI RSA, one step each.

    repro-fmri stimuli  --data data/digits --target T.pt --substitute S.pt --params JSON --out DIR
    repro-fmri dnn      --stimuli DIR --target T.pt --substitute S.pt --params JSON --out DIR
    repro-fmri simulate --stimuli DIR --params JSON --out BIDS_DIR
    repro-fmri analyse  --bids BIDS_DIR --stimuli DIR --dnn DIR --params JSON --out DIR
    repro-fmri report   --stimuli DIR --dnn DIR --analysis DIR --out DIR [--params JSON]
                        [--reported config/reported/fmri-adv.yaml]

Each ``--params`` is exactly the step's parameter dataclass in ``repro.fmri.params``
(StimulusParams, DnnParams, SimParams, AnalysisParams); unknown keys stop with one line.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict
from pathlib import Path

from repro.core import cliutil


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="repro-fmri", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("stimuli", help="clean, white-box and black-box stimuli (PNG + CSV)")
    p.add_argument("--data", type=Path, required=True, help="array dataset (repro.data.arrays)")
    p.add_argument("--target", type=Path, required=True, help="target network weights")
    p.add_argument("--substitute", type=Path, required=True, help="substitute network weights")
    p.add_argument("--params", type=cliutil.json_arg, default={})
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("dnn", help="layer RDMs, accuracy and white/black tests of both networks")
    p.add_argument("--stimuli", type=Path, required=True)
    p.add_argument("--target", type=Path, required=True)
    p.add_argument("--substitute", type=Path, required=True)
    p.add_argument("--params", type=cliutil.json_arg, default={})
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("simulate", help="a simulated BIDS dataset on the stimuli")
    p.add_argument("--stimuli", type=Path, required=True)
    p.add_argument("--params", type=cliutil.json_arg, default={})
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("analyse", help="GLM, ROI RDMs, comparisons and tests on a BIDS dataset")
    p.add_argument("--bids", type=Path, required=True)
    p.add_argument("--stimuli", type=Path, required=True)
    p.add_argument("--dnn", type=Path, help="output of 'repro-fmri dnn' (layer RDMs)")
    p.add_argument("--params", type=cliutil.json_arg, default={})
    p.add_argument("--device", default="cpu", help="device of the permutation tests")
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("report", help="summary table, figures and provenance")
    p.add_argument("--stimuli", type=Path, required=True)
    p.add_argument("--dnn", type=Path, required=True)
    p.add_argument("--analysis", type=Path)
    p.add_argument("--params", type=cliutil.json_arg, default={}, help="config, for provenance")
    p.add_argument("--reported", type=Path, help="the abstract's claims (YAML, with sources)")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--out", type=Path, required=True)
    return parser


def _device(name: str) -> str:
    """A config device (``auto``, ``cpu``, ``cuda[:i]``) as torch names it; one line naming
    the key when it is malformed or not here."""
    from repro.core.device import resolve_device

    return str(resolve_device(name, "fmri_adv.device"))


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    log = logging.getLogger("repro.fmri")
    from repro.core.atomic import write_json
    from repro.fmri import params as P

    if args.command == "stimuli":
        from repro.fmri.stimuli import attack_success, build_stimuli

        prm = P.from_dict(P.StimulusParams, args.params, "stimuli")
        prm.device = _device(prm.device)
        stim = build_stimuli(args.data, args.target, args.substitute, prm, args.out)
        log.info(
            "%d stimuli; attack success on the target: %s", len(stim.table), attack_success(stim)
        )
    elif args.command == "dnn":
        import numpy as np

        from repro.fmri.dnn import dnn_analysis
        from repro.fmri.rsa import save_arrays
        from repro.fmri.stimuli import load_nets, read_stimuli

        prm = P.from_dict(P.DnnParams, args.params, "dnn")
        prm.device = _device(prm.device)
        stim = read_stimuli(args.stimuli)
        nets = load_nets(
            prm.nets,
            args.target,
            args.substitute,
            len(stim.classes),
            stim.images.shape[-1],
            prm.device,
        )
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
        write_json(args.out / "dnn.json", results)
    elif args.command == "simulate":
        from repro.fmri.simulate import simulate_bids
        from repro.fmri.stimuli import read_stimuli

        prm = P.from_dict(P.SimParams, args.params, "simulate")
        truth = simulate_bids(read_stimuli(args.stimuli), prm, args.out)
        log.info("simulated %d subjects x %d runs: %s", prm.n_subjects, prm.n_runs, truth["rois"])
    elif args.command == "analyse":
        from repro.fmri.rsa import analyse, load_dnn_rdms, save_arrays
        from repro.fmri.stimuli import read_stimuli

        prm = P.from_dict(P.AnalysisParams, args.params, "analyse")
        stim = read_stimuli(args.stimuli)
        refs = load_dnn_rdms(args.dnn, stim.ids) if args.dnn else {}
        results, arrays = analyse(args.bids, stim, refs, prm, _device(args.device))
        results["params_full"] = asdict(prm)
        save_arrays(args.out / "rdms.npz", arrays)
        write_json(args.out / "analysis.json", results)
    else:
        from repro.fmri.report import write_report

        write_report(
            args.stimuli, args.dnn, args.analysis, args.out, args.params, args.alpha, args.reported
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    return cliutil.run(_main, argv)
