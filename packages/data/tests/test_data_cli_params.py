"""`repro-data` subcommands: a dataset name, its section as --params JSON (read into the
dataset's dataclass: one line per unknown key or wrong type) and paths; a long-tailed name
carries its imbalance factor."""

from __future__ import annotations

import json

import numpy as np
import pytest

from repro.data.arrays import load_split, read_meta
from repro.data.cli import main
from repro.data.longtail import longtail_counts


@pytest.mark.parametrize(
    ("name", "section", "line"),
    [
        ("digits", {"seed": "0"}, "data.digits.seed: must be an integer, not str '0'"),
        ("digits", {"test_fraction": 1.5}, "data.digits.test_fraction: 1.5 is not in (0, 1)"),
        ("digits", {"sed": 0}, "data.digits: unknown key 'sed' (allowed: seed, test_fraction)"),
        ("photos", {"names": "chelsea"}, "data.photos.names: must be a list, not str 'chelsea'"),
        ("cifar100", {"download": "yes"}, "data.cifar100.download: must be a boolean, not str"),
        ("tinyimagenet", {"lt_seed": 1.5}, "data.tinyimagenet.lt_seed: must be an integer"),
        ("zurich", {"lt_seed": 0}, "data.zurich: unknown key 'lt_seed' (allowed: archive, "),
        ("imagenet", {"num_classes": "10"}, "data.imagenet.num_classes: must be an integer"),
        ("imagenet", {"subset": {"classes": 0}}, "data.imagenet.subset.classes: 0 is not a posi"),
        ("cub200", {"subset": {"clases": 2}}, "data.cub200.subset: unknown key 'clases'"),
        ("dogs", {"check_counts": 0}, "data.dogs.check_counts: must be a boolean, not int 0"),
    ],
)
def test_a_bad_key_or_type_is_one_line_naming_it_before_any_work(
    name, section, line, tmp_path, capsys
):
    out = tmp_path / "out"
    assert main(["prepare", name, "--out", str(out), "--params", json.dumps(section)]) == 2
    (err,) = capsys.readouterr().err.splitlines()
    assert err.startswith(f"error: {line}")
    assert not out.exists()


def test_a_long_tailed_name_carries_its_factor(tmp_path):
    params = json.dumps({"test_fraction": 0.25, "seed": 0})
    assert main(["prepare", "digits", "--out", str(tmp_path / "d"), "--params", params]) == 0
    assert main(["prepare", "digits-lt10", "--out", str(tmp_path / "lt"), "--params", params]) == 0
    meta = read_meta(tmp_path / "lt")
    assert meta["name"] == "digits-lt10" and meta["source"]["imbalance"] == 10.0
    full = np.bincount(load_split(tmp_path / "d", "train")[1])
    lt = np.bincount(load_split(tmp_path / "lt", "train")[1])
    # LDAM's profile over the full train split's counts: head class kept, tail / 10
    profile = [int(full.max() * 0.1 ** (i / 9)) for i in range(10)]
    assert lt.tolist() == [min(p, f) for p, f in zip(profile, full, strict=True)]
    # the test split is the base's, byte for byte
    d_meta = read_meta(tmp_path / "d")
    assert meta["files"]["test_images.npy"] == d_meta["files"]["test_images.npy"]


def test_a_long_tailed_archive_dataset_reads_its_bases_section(tmp_path, make_cifar):
    make_cifar(tmp_path / "c.tar.gz", n_train=300, n_test=100)
    params = json.dumps({"url": "u", "hash": "md5:0", "lt_seed": 3})
    argv = ["prepare", "cifar100-lt10", "--archive", str(tmp_path / "c.tar.gz")]
    assert main([*argv, "--out", str(tmp_path / "lt"), "--params", params]) == 0
    meta = read_meta(tmp_path / "lt")
    assert meta["name"] == "cifar100-lt10"
    assert meta["source"] == {"archive": "c.tar.gz", "imbalance": 10.0, "lt_seed": 3}
    assert meta["splits"]["train"]["counts"] == longtail_counts(3, 100, 10)


def test_archive_paths_are_required_where_read_and_refused_elsewhere(tmp_path, capsys):
    out = str(tmp_path / "o")
    assert main(["prepare", "cifar100", "--out", out]) == 2
    assert main(["prepare", "digits", "--archive", str(tmp_path / "a"), "--out", out]) == 2
    assert main(["fetch", "imagenet", "--out", out]) == 2
    assert main(["fetch", "cifar100-lt10", "--out", out]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: cifar100: --archive is required (the file 'repro-data fetch' placed)",
        "error: digits: takes no --archive (generated dataset)",
        "error: imagenet: not fetched, only archives are (cifar100, tinyimagenet, zurich)",
        "error: cifar100-lt10: not fetched, only archives are (cifar100, tinyimagenet, zurich)",
    ]


def test_check_reads_each_datasets_section_into_its_dataclass(tmp_path, capsys):
    params = json.dumps({"cifar100": {"url": "u", "downlod": False}})
    argv = ["check", "cifar100", "--params", params, "--root", str(tmp_path)]
    assert main(argv) == 2
    (err,) = capsys.readouterr().err.splitlines()
    assert err.startswith("error: data.cifar100: unknown key 'downlod' (allowed: archive, ")
