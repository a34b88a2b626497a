"""``repro-burstsr``: validation bursts, training, evaluation and the scorecard.

Each ``--params`` is one job's JSON, made by :mod:`repro.burstsr.plan`.
"""

from __future__ import annotations

import argparse

from repro.core import cliutil


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="repro-burstsr", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.add_argument(
            "--params", type=cliutil.json_arg, required=True, help="this job's params as JSON"
        )
        p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
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
    summ = add("summarize", "write the scorecard and figures")
    summ.add_argument("--reported", required=True, help="published numbers (YAML, with sources)")
    summ.add_argument("--val", required=True)
    summ.add_argument("--result", action="append", default=[], help="result JSON (repeat)")
    summ.add_argument("--example", action="append", default=[], help="prediction .npy (repeat)")
    summ.add_argument(
        "--real-result", action="append", default=[], help="real-track result JSON (repeat)"
    )
    summ.add_argument("--csv", required=True)
    summ.add_argument("--md", required=True)
    summ.add_argument("--fig-visual", required=True)
    summ.add_argument("--fig-frames", required=True)
    summ.add_argument("--provenance", required=True)
    return parser


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    params = args.params
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.command == "make-val":
        from repro.burstsr.sources import make_source
        from repro.burstsr.synth import BurstConfig
        from repro.burstsr.valset import make_val

        cfg = BurstConfig.from_params(params["burst"])
        meta = make_val(
            make_source(params["data"], "val"),
            cfg,
            int(params["val"]["count"]),
            int(params["val"]["seed"]),
            args.out,
        )
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
        from repro.core.provenance import write_provenance

        summarize(
            params,
            args.reported,
            args.val,
            args.result,
            args.example,
            args.csv,
            args.md,
            args.fig_visual,
            args.fig_frames,
            args.real_result,
        )
        write_provenance(args.provenance, params, None)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; bad input gives one line ``error: ...`` and exit status 2."""
    return cliutil.run(_main, argv)
