"""``repro-vse``: MHSAN image-text retrieval.

    repro-vse make-synthetic --params JSON --out DIR
    repro-vse train --params JSON --split-file dataset_coco.json --images DIR --out RUN_DIR
    repro-vse evaluate --params JSON --checkpoint RUN_DIR/model.pt --split-file F --images DIR \
        --out result.json
    repro-vse report --params JSON --results results/quick --reported config/reported/mhsan.yaml \
        --split-file F --images DIR --out results/quick/mhsan
    repro-vse flickr-extend --split-file dataset_flickr30k.json \
        --captions results_20130124.token --out dataset_flickr30k_all.json

``--device`` (auto, cpu, cuda, cuda:<i>) and ``--cache DIR`` (frozen-backbone feature cache on disk;
default: in memory) do not change results.
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
    for name, text in (("train", "train and test one model"), ("evaluate", "score a model.pt")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--params", type=cliutil.json_arg, required=True)
        p.add_argument("--split-file", type=Path, required=True, help="Karpathy split JSON")
        p.add_argument("--images", type=Path, required=True, help="image root folder")
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:<i>")
        p.add_argument("--cache", type=Path, help="feature cache folder (default: in memory)")
        if name == "evaluate":
            p.add_argument("--checkpoint", type=Path, required=True)
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
        from repro.vse.data import SyntheticConfig, make_synthetic

        make_synthetic(args.out, SyntheticConfig.from_dict(args.params))
    elif args.command == "train":
        from repro.vse.train import train_run

        train_run(args.params, args.split_file, args.images, args.out, args.device, args.cache)
    elif args.command == "flickr-extend":
        from repro.vse.data import extend_flickr_split

        counts = extend_flickr_split(args.split_file, args.captions, args.out)
        print(f"{args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + " images")
    elif args.command == "report":
        from repro.vse.report import mhsan_report

        mhsan_report(
            args.params, args.results, args.reported, args.split_file, args.images, args.out
        )
    else:
        from repro.vse.evaluate import evaluate_run

        evaluate_run(
            args.params,
            args.checkpoint,
            args.split_file,
            args.images,
            args.out,
            args.device,
            args.cache,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    return cliutil.run(_main, argv)
