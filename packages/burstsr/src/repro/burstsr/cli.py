"""``repro-burstsr``: validation bursts, training, evaluation and the scorecard.

Each subcommand takes ``--params JSON`` (one job's parameters, made by
:mod:`repro.burstsr.plan`; read into the step's dataclass in :mod:`repro.burstsr.params`,
threads and device included) and paths.
"""

from __future__ import annotations

import argparse

from repro.burstsr import params as P
from repro.core import cliutil
from repro.core.params import loads

#: Each subcommand's params dataclass.
PARAMS = {
    "make-val": P.ValParams,
    "train": P.TrainParams,
    "evaluate": P.EvalParams,
    "evaluate-real": P.RealParams,
    "summarize": P.SummaryParams,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="repro-burstsr", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.add_argument("--params", required=True, help="this job's params as JSON")
        return p

    val = add("make-val", "generate and store the validation bursts")
    val.add_argument("--out", required=True, help="folder (meta.json is written last)")
    train = add("train", "train one model")
    train.add_argument("--out", required=True, help="run folder (model.pt, result.json, ...)")
    train.add_argument("--flownet", default=None, help="flow network's model.pt (align=flownet)")
    ev = add("evaluate", "score one model on the stored validation bursts")
    ev.add_argument("--val", required=True, help="validation-burst folder")
    ev.add_argument("--checkpoint", default=None, help="trained model.pt (learned models)")
    ev.add_argument("--out", required=True, help="result JSON")
    ev.add_argument("--example", default=None, help="where to save one prediction (.npy)")
    real = add("evaluate-real", "score one model on the BurstSR val bursts (AlignedPSNR/SSIM)")
    real.add_argument("--root", required=True, help="BurstSR folder with val/<burst>/")
    real.add_argument("--checkpoint", default=None, help="trained model.pt (learned models)")
    real.add_argument("--out", required=True, help="result JSON")
    summ = add("summarize", "write the scorecard, its figures and provenance.json")
    summ.add_argument("--reported", required=True, help="published numbers (YAML, with sources)")
    summ.add_argument("--val", required=True, help="validation-burst folder")
    summ.add_argument(
        "--results", nargs="*", action="extend", default=[], help="result JSONs (evaluate)"
    )
    summ.add_argument(
        "--examples", nargs="*", action="extend", default=[], help="their predictions (.npy)"
    )
    summ.add_argument(
        "--real-results", nargs="*", action="extend", default=[], help="real-track result JSONs"
    )
    summ.add_argument("--out", required=True, help="folder (summary.*, figures/, provenance)")
    return parser


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    params = loads(PARAMS[args.command], args.params)
    if params.threads:
        import torch

        torch.set_num_threads(params.threads)
    if args.command == "make-val":
        from repro.burstsr.sources import make_source
        from repro.burstsr.valset import make_val

        data = make_source(params.data, "val")
        meta = make_val(data, params.burst, params.val.count, params.val.seed, args.out)
        print(f"wrote {meta['count']} bursts to {args.out}")
    elif args.command == "train":
        from repro.burstsr.train import train

        train(params, args.out, args.flownet)
    elif args.command == "evaluate":
        from repro.burstsr.evaluate import evaluate

        evaluate(params, args.val, args.out, args.checkpoint, args.example)
    elif args.command == "evaluate-real":
        from repro.burstsr.evaluate import evaluate_real

        evaluate_real(params, args.root, args.out, args.checkpoint)
    else:
        from repro.burstsr.summary import summarize

        summarize(
            params, args.reported, args.val, args.results, args.examples, args.real_results,
            args.out,
        )  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; bad input gives one line ``error: ...`` and exit status 2."""
    return cliutil.run(_main, argv)
