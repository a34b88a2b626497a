"""``repro-core``: provenance records, config checks and the GPU job launcher.

repro-core launch [--gpus N] [--nodes M] [--jobs-per-gpu K] -- CMD ...   (repro.core.launch)
"""

from __future__ import annotations

import argparse
import sys

from repro.core import cliutil


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["launch"]:  # its own parser: everything after `--` is the job's command
        from repro.core import launch

        return launch.launch(launch.build_parser().parse_args(argv[1:]))
    parser = argparse.ArgumentParser(
        prog="repro-core", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("launch", help="claim a job's GPUs and start it (torchrun for several)")
    prov = sub.add_parser("provenance", help="write a provenance JSON for a run")
    prov.add_argument("--out", required=True, help="JSON file to write")
    prov.add_argument("--configfile", nargs="+", required=True, help="the run's config files")
    prov.add_argument("--overrides", type=cliutil.json_arg, default={}, help="--config as JSON")
    prov.add_argument("--schema", required=True, help="config schema (fills the defaults)")
    prov.add_argument("--seed", type=int, default=None)
    prov.add_argument("--code-dir", default=None, help="checkout whose commit is recorded")
    stat = sub.add_parser(
        "status", help="the job logs written lately (running jobs) with their last line"
    )
    stat.add_argument("--logs", default="logs", help="the workflow's log folder")
    stat.add_argument("--since", type=float, default=30, help="minutes (default 30)")
    board = sub.add_parser(
        "tensorboard", help="TensorBoard events from every metrics.csv under a folder"
    )
    board.add_argument("results", help="e.g. results/quick")
    check = sub.add_parser("check-config", help="validate a YAML config against the schema")
    check.add_argument("config_file")
    check.add_argument("--schema", default="workflow/schemas/config.schema.yaml")
    args = parser.parse_args(argv)

    if args.command == "provenance":
        from repro.core.config import load_run_config
        from repro.core.papers import config_schema
        from repro.core.provenance import write_provenance

        config = load_run_config(args.configfile, args.overrides, config_schema(args.schema))
        write_provenance(args.out, config, args.seed, args.code_dir)
    elif args.command == "tensorboard":
        from repro.core.tensorboard import export

        print(f"{len(export(args.results))} runs' events written under {args.results}")
    elif args.command == "status":
        from repro.core.messages import status

        lines = status(args.logs, args.since)
        print(
            "\n".join(lines) or f"no log under {args.logs}/ written in the last {args.since:g} min"
        )
    else:
        from repro.core.config import read_yaml, validate_config
        from repro.core.papers import config_schema

        config = read_yaml(args.config_file) or {}
        validate_config(config, config_schema(args.schema), source=args.config_file)
        print(f"{args.config_file}: ok")
    return 0


def main(argv: list[str] | None = None) -> int:
    return cliutil.run(_main, argv)
