"""``repro-data``: fetch archives and prepare datasets in the documented on-disk formats.

Every subcommand takes a dataset name from the registry (``repro-data list``), its config
section as ``--params JSON`` and paths. A long-tailed dataset's name carries its imbalance
factor (``cifar100-lt10``) and takes its base's section. Examples::

    repro-data prepare digits-lt10 --out data/digits-lt10 --params '{"test_fraction": 0.25}'
    repro-data fetch cifar100 --out data/archives/cifar100.archive --params '{...}'
    repro-data prepare cifar100 --archive data/archives/cifar100.archive --out data/cifar100
    repro-data prepare cub200 --out data/cub200 --params '{"root": "/data/CUB_200_2011"}'
    repro-data check cifar100 imagenet --params '{<the whole data section>}' --root data
    repro-data fake --out .fake   # every package's fake inputs + .fake/inputs.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from repro.core import cliutil


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand (dataset names are checked by the registry)."""
    parser = argparse.ArgumentParser(
        prog="repro-data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="obtain a verified official archive")
    p_prep = sub.add_parser("prepare", help="prepare a dataset")
    p_prep.add_argument("--archive", type=Path, help="its official archive (from 'fetch')")
    for p in (p_fetch, p_prep):
        p.add_argument("dataset", help="a registered name ('repro-data list')")
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--params", type=cliutil.json_arg, default={}, help="data.<name> as JSON")
    p_check = sub.add_parser("check", help="say which datasets cannot be prepared, and why")
    p_check.add_argument("datasets", nargs="+")
    p_check.add_argument("--params", type=cliutil.json_arg, default={}, help="'data' as JSON")
    p_check.add_argument("--root", type=Path, default=Path("data"), help="the data folder")
    sub.add_parser("list", help="the registered datasets: name, kind, rule")
    p_fake = sub.add_parser(
        "fake",
        help="write small inputs in the official formats (every registered 'repro.fake' "
        "plug-in) and DIR/inputs.yaml, a config fragment that points a paper run at them",
    )
    p_fake.add_argument("--out", type=Path, required=True, metavar="DIR")
    return parser


def _main(argv: list[str] | None) -> int:
    from repro.data import registry

    args = build_parser().parse_args(argv)
    if args.command == "fetch":
        registry.fetch(args.dataset, args.out, args.params)
    elif args.command == "prepare":
        registry.prepare(args.dataset, args.out, args.params, args.archive)
    elif args.command == "list":
        for name, d in registry.registry().items():
            print(f"{name}{'[-lt<F>]' if d.long_tailed else ''}\t{d.kind}\t{d.rule}")
    elif args.command == "fake":
        from repro.data.inputs import write_inputs

        write_inputs(args.out)
    else:
        problems = registry.check(args.params, args.datasets, args.root)
        for line in problems:  # every problem, one line each
            print(f"error: {line}", file=sys.stderr)
        return 2 if problems else 0
    return 0


def main(argv: list[str] | None = None) -> int:
    return cliutil.run(_main, argv)
