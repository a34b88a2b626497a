"""``repro-distill``: train teachers/students with any KD method, and write paper scorecards.

    repro-distill train --data data/digits --out RUN_DIR --params JSON [--teacher model.pt]
    repro-distill train-group --data data/digits --results results/quick \
        [--teacher model.pt] --params '{"common": {...}, "cells": [...]}' [--done group.json]
    repro-distill evaluate --data data/imagenet --out result.json --params JSON
    repro-distill report --results results/quick \
        --reported packages/distill/src/repro/distill/reported/energy-kd.yaml \
        --out results/quick/energy-kd --params JSON
    repro-distill leaderboard --results results/quick --out results/quick/kd-leaderboard \
        --params JSON

Each ``--params`` is one job's JSON, made by :mod:`repro.distill.plan` and read into the
subcommand's dataclass of :mod:`repro.distill.params` (an unknown key or a wrong type stops
with one line naming it); every other argument is a path. Settings such as the device and
the threads are in the params (``train``); a report's ``"partial": true`` previews it while
runs are missing. ``train-group`` writes each cell's run folder under ``--results`` where the
workflow reads it (``plan.cell_dir`` of the cell its params name), so its command lists no
folders.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from repro.core import cliutil
from repro.core.params import loads, to_dict
from repro.distill import params as P

PARAMS_HELP = "the job's params (JSON; made by repro.distill.plan)"


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
    p_train.add_argument("--params", required=True, help=PARAMS_HELP + ": RunParams")
    p_group = sub.add_parser(
        "train-group",
        help="train several runs of one dataset, teacher and seed in lockstep (one teacher "
        "forward per batch; each run folder ends as its alone run's)",
    )
    p_group.add_argument("--data", type=Path, required=True, help="prepared dataset")
    p_group.add_argument(
        "--results",
        type=Path,
        required=True,
        help="the run's results folder: each cell's run folder is <results>/kd/<dataset>/"
        "<recipe>/<variant>/<teacher>-<student>/seed<k>, from its params",
    )
    p_group.add_argument("--teacher", type=Path, help="teacher model.pt (KD methods)")
    p_group.add_argument(
        "--params",
        required=True,
        help='{"common": {...}, "cells": [what each run adds to common]} (GroupParams)',
    )
    p_group.add_argument("--done", type=Path, help="JSON written at the end: the runs' results")
    p_eval = sub.add_parser("evaluate", help="score a user-supplied pretrained teacher")
    p_eval.add_argument("--data", type=Path, required=True, help="prepared dataset")
    p_eval.add_argument("--out", type=Path, required=True, help="result.json to write")
    p_eval.add_argument("--params", required=True, help=PARAMS_HELP + ": PretrainedParams")
    p_rep = sub.add_parser("report", help="a KD paper's scorecard, figures and provenance")
    p_rep.add_argument("--results", type=Path, required=True, help="the run's results folder")
    p_rep.add_argument("--reported", type=Path, required=True, help="the paper's reported numbers")
    p_rep.add_argument("--out", type=Path, required=True)
    p_rep.add_argument("--params", required=True, help=PARAMS_HELP + ": ReportParams")
    p_rep.add_argument("--data", type=Path, default=Path("data"), help="prepared datasets")
    p_lb = sub.add_parser("leaderboard", help="the fair KD leaderboard (paired by seed)")
    p_lb.add_argument("--results", type=Path, required=True, help="the run's results folder")
    p_lb.add_argument("--out", type=Path, required=True)
    p_lb.add_argument("--params", required=True, help=PARAMS_HELP + ": Leaderboard")
    args = parser.parse_args(argv)

    if args.command == "train":
        from repro.distill.run import train_run

        train_run(loads(P.RunParams, args.params), args.data, args.out, args.teacher)
    elif args.command == "train-group":
        from repro.distill.run import train_group_job

        group = loads(P.GroupParams, args.params)
        train_group_job(group, args.data, args.results, args.teacher, args.done)
    elif args.command == "evaluate":
        from repro.distill.run import evaluate_pretrained

        evaluate_pretrained(loads(P.PretrainedParams, args.params), args.data, args.out)
    elif args.command == "leaderboard":
        from repro.distill.leaderboard import leaderboard_report

        leaderboard_report(loads(P.Leaderboard, args.params), args.results, args.out)
    else:
        from repro.distill.report import kd_report

        job = loads(P.ReportParams, args.params)
        kd_report(to_dict(job), args.results, args.reported, args.out, args.data, job.partial)
    return 0


def main(argv: list[str] | None = None) -> int:
    return cliutil.run(_main, argv)
