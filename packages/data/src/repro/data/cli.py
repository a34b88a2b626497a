"""``repro-data``: fetch archives and prepare datasets in the documented on-disk formats.

Rules pass their config section as ``--params JSON``. Examples::

    repro-data prepare digits --out data/digits --params '{"test_fraction": 0.25, "seed": 0}'
    repro-data fetch cifar100 --out data/archives/cifar100.tar.gz --params '{...}'
    repro-data check --params '{...}' cifar100 imagenet
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from repro.core import ReproError, cliutil

#: Datasets read from an official archive, fetched to ``data/archives/<name>.archive``.
ARCHIVES = ("cifar100", "tinyimagenet", "zurich")


def fetch(dataset: str, out: Path, params: dict[str, Any]) -> None:
    """Place a verified archive at ``out``: a link to the user's file, or a download."""
    from repro.data.fetch import obtain_archive

    obtain_archive(
        dataset,
        params.get("archive"),
        params.get("url"),
        params.get("hash"),
        dest=out,
        key=f"data.{dataset}.archive",
        download=params.get("download", True),
    )


def prepare(
    dataset: str, out: Path, params: dict[str, Any], archive: Path | None, imbalance: float | None
) -> None:
    """Prepare one dataset into ``out``."""
    if dataset == "digits":
        from repro.data.digits import prepare_digits

        prepare_digits(out, params.get("test_fraction", 0.25), params.get("seed", 0), imbalance)
    elif dataset == "photos":
        from repro.data.photos import BUNDLED, prepare_photos

        prepare_photos(out, params.get("names", BUNDLED))
    elif dataset == "cifar100":
        from repro.data.cifar import prepare_cifar100

        prepare_cifar100(out, _need(archive, dataset), imbalance, params.get("lt_seed", 0))
    elif dataset == "tinyimagenet":
        from repro.data.tinyimagenet import prepare_tinyimagenet

        prepare_tinyimagenet(out, _need(archive, dataset))
    elif dataset == "zurich":
        from repro.data.zurich import prepare_zurich

        prepare_zurich(out, _need(archive, dataset), params.get("check_counts", True))
    elif dataset == "imagenet":
        from repro.data.imagenet import index_imagenet

        if not params.get("root"):
            raise ReproError(
                "imagenet: no ILSVRC-2012 folder configured; download it from "
                "https://image-net.org (train + val in class folders) and set "
                "config key 'data.imagenet.root'"
            )
        index_imagenet(params["root"], out, params.get("num_classes", 1000))
    else:
        raise ReproError(f"unknown dataset '{dataset}'")


def _need(archive: Path | None, dataset: str) -> Path:
    if archive is None:
        raise ReproError(f"{dataset}: --archive is required")
    return archive


def check(data_cfg: dict[str, Any], datasets: list[str], data_root: Path) -> list[str]:
    """Problems that would stop the given datasets from being prepared (empty when fine)."""
    problems = []
    for name in datasets:
        base = name.split("-lt")[0]
        if (data_root / name / "meta.json").is_file():
            continue
        cfg = data_cfg.get(base.replace("-", "_"), {})
        if base in ARCHIVES:
            path = cfg.get("archive")
            if (data_root / "archives" / f"{base}.archive").exists():
                continue
            origin = (
                f"download it from {cfg['url']}"
                if cfg.get("url")
                else "obtain it from its official source (docs)"
            )
            if path and not Path(path).is_file():
                problems.append(
                    f"{base}: {path} (config key 'data.{base}.archive') does not exist; {origin}"
                )
            elif not path and not (cfg.get("download", True) and cfg.get("url")):
                problems.append(
                    f"{base}: no archive is set and nothing to download; {origin} "
                    f"and set config key 'data.{base}.archive'"
                )
        elif base == "imagenet":
            root = cfg.get("root")
            if not root or not Path(root).is_dir():
                problems.append(
                    "imagenet: ILSVRC-2012 folder not found; download it from "
                    "https://image-net.org (train + val in class folders) and set "
                    "config key 'data.imagenet.root'"
                )
    return problems


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="repro-data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="obtain a verified official archive")
    p_fetch.add_argument("dataset", choices=sorted(ARCHIVES))
    p_prep = sub.add_parser("prepare", help="prepare a dataset")
    p_prep.add_argument(
        "dataset", choices=["digits", "photos", "cifar100", "tinyimagenet", "zurich", "imagenet"]
    )
    p_prep.add_argument("--archive", type=Path, help="official archive (from 'fetch')")
    p_prep.add_argument("--imbalance", type=float, help="long-tailed train split factor")
    for p in (p_fetch, p_prep):
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--params", type=cliutil.json_arg, default={}, help="config as JSON")
    p_check = sub.add_parser("check", help="say which datasets cannot be prepared, and why")
    p_check.add_argument("datasets", nargs="+")
    p_check.add_argument("--params", type=cliutil.json_arg, default={}, help="'data' config")
    p_check.add_argument("--root", type=Path, default=Path("data"))
    args = parser.parse_args(argv)

    if args.command == "fetch":
        fetch(args.dataset, args.out, args.params)
    elif args.command == "prepare":
        prepare(args.dataset, args.out, args.params, args.archive, args.imbalance)
    else:
        problems = check(args.params, args.datasets, args.root)
        if problems:
            raise ReproError(
                problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    return cliutil.run(_main, argv)
