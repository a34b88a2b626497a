"""``repro-distill``: train teachers/students with any KD method, and write paper reports.

    repro-distill train --data data/digits --out RUN_DIR --params JSON [--teacher model.pt]
    repro-distill evaluate --data data/imagenet --out result.json --params JSON
    repro-distill report energy-kd --runs R1/result.json ... --out results/quick/energy-kd \
        --params JSON --data data/digits --teacher model.pt
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from repro.core import cliutil


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="repro-distill",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train one run (resumes from its checkpoint)")
    p_train.add_argument(
        "--data", type=Path, required=True, help="prepared dataset (arrays or ImageNet index)"
    )
    p_train.add_argument("--out", type=Path, required=True, help="run folder")
    p_train.add_argument("--teacher", type=Path, help="teacher model.pt (KD methods)")
    p_train.add_argument("--params", type=cliutil.json_arg, required=True)
    p_eval = sub.add_parser("evaluate", help="score a user-supplied pretrained teacher")
    p_eval.add_argument("--data", type=Path, required=True, help="prepared dataset")
    p_eval.add_argument("--out", type=Path, required=True, help="result.json to write")
    p_eval.add_argument("--params", type=cliutil.json_arg, required=True)
    p_rep = sub.add_parser("report", help="summary table, figures and provenance of a paper")
    p_rep.add_argument("paper", choices=["energy-kd"])
    p_rep.add_argument("--runs", type=Path, nargs="+", required=True, help="result.json files")
    p_rep.add_argument("--out", type=Path, required=True)
    p_rep.add_argument("--params", type=cliutil.json_arg, required=True, help="paper config")
    p_rep.add_argument("--data", type=Path, required=True)
    p_rep.add_argument("--teacher", type=Path, required=True, help="teacher model.pt")
    p_rep.add_argument("--teacher-model", required=True)
    p_rep.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    if args.command == "train":
        from repro.distill.run import train_run

        train_run(args.params, args.data, args.out, args.teacher)
    elif args.command == "evaluate":
        from repro.distill.run import evaluate_pretrained

        evaluate_pretrained(args.params, args.data, args.out)
    else:
        from repro.distill.report import energy_kd_report

        energy_kd_report(
            args.runs, args.out, args.params, args.data, args.teacher, args.teacher_model, args.seed
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    return cliutil.run(_main, argv)
