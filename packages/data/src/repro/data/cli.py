"""``repro-data``: fetch archives and prepare datasets in the documented on-disk formats.

Rules pass their config section as ``--params JSON``. Examples::

    repro-data prepare digits --out data/digits --params '{"test_fraction": 0.25, "seed": 0}'
    repro-data fetch cifar100 --out data/archives/cifar100.tar.gz --params '{...}'
    repro-data check --params '{...}' cifar100 imagenet
    repro-data prepare cub200 --out data/cub200 --params '{"root": "/data/CUB_200_2011"}'
    repro-data fake --out .fake   # every package's fake inputs + .fake/inputs.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from repro.core import ReproError, cliutil

#: Datasets read from an official archive, fetched to ``data/archives/<name>.archive``.
ARCHIVES = ("cifar100", "tinyimagenet", "zurich")
#: Fine-grained sets indexed in place from the user's copy (``data.<name>.root``).
FGVR = ("cub200", "mit67", "stanford40", "dogs")


def verifier(dataset: str, params: dict[str, Any]):
    """The layout check :func:`repro.data.fetch.obtain_archive` runs on ``dataset``'s archive
    before linking or recording it (``params["check_counts"]``, default true, requires the
    official counts where the listing gives them: Zurich and Tiny-ImageNet)."""
    counts = params.get("check_counts", True)
    if dataset == "cifar100":
        from repro.data.cifar import verify_cifar100

        return verify_cifar100
    if dataset == "tinyimagenet":
        from repro.data.tinyimagenet import verify_tinyimagenet

        return lambda path, label: verify_tinyimagenet(path, label, counts)
    if dataset == "zurich":
        from repro.data.zurich import verify_zurich

        return lambda path, label: verify_zurich(path, counts, label)
    raise ReproError(f"unknown archive dataset '{dataset}' (one of {', '.join(ARCHIVES)})")


def fetch(dataset: str, out: Path, params: dict[str, Any]) -> None:
    """Place a verified archive at ``out``: a link to the user's file, or a download (network
    errors retried inside, see :func:`repro.data.fetch.download_file`)."""
    from repro.data.fetch import obtain_archive

    obtain_archive(
        dataset,
        params.get("archive"),
        params.get("url"),
        params.get("hash"),
        dest=out,
        key=f"data.{dataset}.archive",
        download=params.get("download", True),
        verify=verifier(dataset, params),
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
        index_imagenet(params["root"], out, params.get("num_classes", 1000), params.get("subset"))
    elif dataset in FGVR:
        from repro.data.fgvr import index_fgvr

        index_fgvr(
            dataset, params.get("root"), out, params.get("check_counts", True),
            params.get("subset"),
        )  # fmt: skip
    else:
        raise ReproError(f"unknown dataset '{dataset}'")


def _need(archive: Path | None, dataset: str) -> Path:
    if archive is None:
        raise ReproError(f"{dataset}: --archive is required")
    return archive


def _archive_problem(base: str, cfg: dict[str, Any], data_root: Path) -> str | None:
    key = f"data.{base}.archive"
    url = cfg.get("url")
    origin = f"download it from {url}" if url else "obtain it from its official source (docs)"
    path = cfg.get("archive")
    if path:
        if Path(path).is_file():
            return None
        what = "a folder, not a file" if Path(path).is_dir() else "not there"
        return f"{base}: {key} is set to {path}, which is {what}; {origin} and fix the path"
    if (data_root / "archives" / f"{base}.archive").exists():  # fetched and verified earlier
        return None
    if url and cfg.get("download", True):
        return None
    unset = (
        f"{key} is unset and data.{base}.download is false"
        if url
        else f"{key} and data.{base}.url are both unset"
    )
    return f"{base}: no archive is set: {unset}; {origin} and set {key} to its path"


def _imagenet_problem(cfg: dict[str, Any]) -> str | None:
    root = cfg.get("root")
    where = (
        "download ILSVRC-2012 from https://image-net.org (train/ and val/ with one folder "
        "per class)"
    )
    if not root:
        return f"imagenet: data.imagenet.root is not set; {where} and set it to that folder"
    root_path = Path(root)
    if not root_path.is_dir():
        what = "a file, not a folder" if root_path.exists() else "not there"
        return f"imagenet: data.imagenet.root is set to {root}, which is {what}; {where}"
    missing = [s for s in ("train", "val") if not (root_path / s).is_dir()]
    if missing:
        return (
            f"imagenet: data.imagenet.root is set to {root}, which has no {missing[0]}/ folder; "
            f"{where}"
        )
    return None


def check(data_cfg: dict[str, Any], datasets: list[str], data_root: Path) -> list[str]:
    """Every problem that would stop the given datasets from being prepared, one line each
    naming the config key and the value that was set (empty when fine). Datasets already
    prepared under ``data_root`` are skipped; long-tailed variants share their base's check."""
    groups: dict[str, list[str]] = {}
    for name in datasets:
        groups.setdefault(name.split("-lt")[0], []).append(name)
    problems = []
    for base, names in groups.items():
        if all((data_root / n / "meta.json").is_file() for n in names):
            continue
        cfg = data_cfg.get(base.replace("-", "_")) or {}
        if base in ARCHIVES:
            problem = _archive_problem(base, cfg, data_root)
        elif base == "imagenet":
            problem = _imagenet_problem(cfg)
        elif base in FGVR:
            from repro.data.fgvr import root_problem

            problem = root_problem(base, cfg)
        else:
            problem = None
        if problem:
            problems.append(problem)
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
        "dataset",
        choices=["digits", "photos", "cifar100", "tinyimagenet", "zurich", "imagenet", *FGVR],
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
    p_fake = sub.add_parser(
        "fake",
        help="write small inputs in the official formats (every registered 'repro.fake' "
        "plug-in) and DIR/inputs.yaml, a config fragment that points a paper run at them",
    )
    p_fake.add_argument("--out", type=Path, required=True, metavar="DIR")
    args = parser.parse_args(argv)

    if args.command == "fetch":
        fetch(args.dataset, args.out, args.params)
    elif args.command == "prepare":
        prepare(args.dataset, args.out, args.params, args.archive, args.imbalance)
    elif args.command == "fake":
        from repro.data.inputs import write_inputs

        write_inputs(args.out)
    else:
        problems = check(args.params, args.datasets, args.root)
        for line in problems:  # every problem, one line each
            print(f"error: {line}", file=sys.stderr)
        return 2 if problems else 0
    return 0


def main(argv: list[str] | None = None) -> int:
    return cliutil.run(_main, argv)
