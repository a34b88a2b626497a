"""``repro-vse``: MHSAN image-text retrieval.

    repro-vse make-synthetic --params JSON --out DIR
    repro-vse train --params JSON --split-file dataset_coco.json --images DIR --out RUN_DIR \
        [--cache DIR]
    repro-vse report --params JSON --results results/quick \
        --reported packages/vse/src/repro/vse/reported/mhsan.yaml \
        --split-file F --images DIR --out results/quick/mhsan
    repro-vse flickr-extend --split-file dataset_flickr30k.json \
        --captions results_20130124.token --out dataset_flickr30k_all.json

Each subcommand's ``--params`` is its job's params (:mod:`repro.vse.plan`); a training job's
``device`` (auto, cpu, cuda), ``threads`` and ``cache`` (the frozen backbone's features on disk
in ``--cache DIR``, else in memory) are among them and do not change results. Under torchrun
(``repro-core launch``) ``train`` runs data-parallel.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from repro.core import cliutil


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="repro-vse", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_syn = sub.add_parser("make-synthetic", help="write the seeded synthetic captioned images")
    p_syn.add_argument("--params", type=cliutil.json_arg, required=True)
    p_syn.add_argument("--out", type=Path, required=True)
    p_train = sub.add_parser("train", help="train and test one model")
    p_train.add_argument("--params", type=cliutil.json_arg, required=True)
    p_train.add_argument("--split-file", type=Path, required=True, help="Karpathy split JSON")
    p_train.add_argument("--images", type=Path, required=True, help="image root folder")
    p_train.add_argument("--out", type=Path, required=True)
    p_train.add_argument("--cache", type=Path, help="feature cache folder (with params.cache)")
    p_rep = sub.add_parser("report", help="the scorecard, figures and provenance")
    p_rep.add_argument("--params", type=cliutil.json_arg, required=True)
    p_rep.add_argument("--results", type=Path, required=True, help="the run's results folder")
    p_rep.add_argument("--reported", type=Path, required=True, help="published numbers (YAML)")
    p_rep.add_argument("--split-file", type=Path, required=True, help="Karpathy split JSON")
    p_rep.add_argument("--images", type=Path, required=True, help="image root folder")
    p_rep.add_argument("--out", type=Path, required=True)
    p_ext = sub.add_parser(
        "flickr-extend",
        help="add the Flickr30K images Karpathy's split file lacks, as split restval",
    )
    p_ext.add_argument("--split-file", type=Path, required=True, help="dataset_flickr30k.json")
    p_ext.add_argument(
        "--captions", type=Path, required=True, help="Flickr30K's results_20130124.token"
    )
    p_ext.add_argument("--out", type=Path, required=True, help="the extended split file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    if args.command == "make-synthetic":
        from repro.core.params import parse
        from repro.vse.data import SyntheticConfig, make_synthetic

        make_synthetic(args.out, parse(SyntheticConfig, args.params, "params"))
    elif args.command == "train":
        from repro.vse.train import train_run

        train_run(args.params, args.split_file, args.images, args.out, args.cache)
    elif args.command == "flickr-extend":
        from repro.vse.data import extend_flickr_split

        counts = extend_flickr_split(args.split_file, args.captions, args.out)
        print(f"{args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + " images")
    else:
        from repro.vse.report import mhsan_report

        mhsan_report(
            args.params, args.results, args.reported, args.split_file, args.images, args.out
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    return cliutil.run(_main, argv)
