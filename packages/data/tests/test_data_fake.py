"""``repro-data fake``: the plug-in runner, and repro-data's fake inputs read by the package's
own verifiers, fetch and prepare/index functions with the official class counts."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from repro.core import ReproError
from repro.data import inputs
from repro.data.arrays import load_split, read_meta
from repro.data.cli import main
from repro.data.fake import (
    IMAGENET_QUIRKS,
    make_cifar100_archive,
    make_dogs,
    make_tinyimagenet_zip,
    write_fakes,
)
from repro.data.fgvr import index_fgvr
from repro.data.imagenet import index_imagenet
from repro.data.inputs import write_inputs
from repro.data.registry import check, fetch

FGVR_CLASSES = {"cub200": 200, "mit67": 67, "stanford40": 40, "dogs": 120}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory) -> tuple[Path, list[str]]:
    """``repro-data fake --out DIR`` with repro-data's own plug-in (written once for this
    module; other packages' plug-ins are their tests' business) -> DIR and the printed lines."""
    out = tmp_path_factory.mktemp("fake")
    ours = [(name, write) for name, write in inputs.plugins() if name == "data"]
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(io.StringIO()) as log:
        mp.setattr(inputs, "plugins", lambda: ours)
        assert main(["fake", "--out", str(out)]) == 0
    return out, log.getvalue().splitlines()


@pytest.fixture(scope="module")
def fake(fake_run) -> dict:
    """The ``data`` overlay of repro-data's fake inputs."""
    return yaml.safe_load((fake_run[0] / "inputs.yaml").read_text())["data"]


def _leaves(tree: dict) -> list:
    return [x for v in tree.values() for x in (_leaves(v) if isinstance(v, dict) else [v])]


def test_repro_data_registers_its_writer_as_a_fake_plug_in():
    found = inputs.plugins()
    assert dict(found)["data"] is write_fakes
    assert [name for name, _ in found] == sorted(name for name, _ in found)


def test_cli_writes_inputs_yaml_whose_paths_exist(fake_run, tmp_path, capsys):
    out, lines = fake_run
    text = (out / "inputs.yaml").read_text()
    assert text.startswith("# Fake inputs in the official file formats")
    usage = f"snakemake --configfile config/paper.yaml config/smoke.yaml {out}/inputs.yaml"
    assert usage in text
    cfg = yaml.safe_load(text)
    data = cfg["data"]
    assert set(data) == {"cifar100", "tinyimagenet", "zurich", "imagenet", *FGVR_CLASSES}
    paths = [v for v in _leaves(cfg) if isinstance(v, str) and "/" in v]
    assert len(paths) == 8
    for path in paths:
        assert Path(path).is_absolute() and Path(path).exists(), path
        assert Path(path).is_relative_to(out / "data")  # the plug-in's own folder
    assert data["cifar100"]["download"] is False and data["tinyimagenet"]["check_counts"] is False
    (line,) = [x for x in lines if x.startswith("data: ")]  # one line per plug-in
    assert "files" in line and " s); sets data.cifar100, data.tinyimagenet" in line
    assert lines[-1] == f"wrote {out / 'inputs.yaml'}"
    # a folder it did not write is refused, in one line
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main(["fake", "--out", str(tmp_path / "mine")]) == 2
    assert "was not written by 'repro-data fake'" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_paper_config_with_the_overlay_is_valid(fake_run):
    """config/paper.yaml + inputs.yaml, deep-merged as Snakemake merges config files, passes
    the workflow's schema (every key the overlay sets exists for its dataset)."""
    from repro.core.config import deep_update, validate_config
    from repro.core.papers import config_schema

    root = Path(__file__).resolve().parents[3]
    cfg = yaml.safe_load((root / "config" / "paper.yaml").read_text())
    deep_update(cfg, yaml.safe_load((fake_run[0] / "inputs.yaml").read_text()))
    schema = config_schema(root / "workflow" / "schemas" / "config.schema.yaml")
    validate_config(cfg, schema, "paper + fake")
    assert cfg["data"]["tinyimagenet"]["check_counts"] is False
    assert cfg["data"]["zurich"]["hash"] is None  # the first fetch records one


def test_overlays_are_deep_merged_and_a_conflict_names_both_plug_ins(tmp_path):
    def writer(overlay):
        def write(out: Path) -> dict:
            out.mkdir(parents=True)
            (out / "x.bin").write_bytes(b"x")
            return overlay

        return write

    a = writer({"data": {"cifar100": {"archive": "/a", "download": False}}})
    b = writer({"data": {"cifar100": {"download": False}, "imagenet": {"root": "/b"}}})
    merged = write_inputs(tmp_path / "ok", [("a", a), ("b", b)], log=lambda line: None)
    assert merged == {"data": {"cifar100": {"archive": "/a", "download": False},
                               "imagenet": {"root": "/b"}}}  # fmt: skip
    assert yaml.safe_load((tmp_path / "ok" / "inputs.yaml").read_text()) == merged
    assert (tmp_path / "ok" / "a" / "x.bin").is_file() and (tmp_path / "ok" / "b").is_dir()
    (tmp_path / "ok" / "a" / "stale.bin").write_bytes(b"old")
    write_inputs(tmp_path / "ok", [("a", a)], log=lambda line: None)  # replaces its own output
    assert not (tmp_path / "ok" / "a" / "stale.bin").exists()
    c = writer({"data": {"cifar100": {"archive": "/c"}}})
    with pytest.raises(ReproError, match=r"plug-ins 'a' and 'c' both set data\.cifar100\.archive"):
        write_inputs(tmp_path / "bad", [("a", a), ("c", c)], log=lambda line: None)
    d = writer({"data": {"cifar100": 1}})
    with pytest.raises(ReproError, match=r"plug-ins 'a' and 'd' both set data\.cifar100 "):
        write_inputs(tmp_path / "bad", [("a", a), ("d", d)], log=lambda line: None)
    assert not (tmp_path / "bad" / "inputs.yaml").exists()


def test_writers_give_the_same_bytes_every_time(tmp_path):
    for k in (1, 2):  # gzip headers hold the file name: the same name in two folders
        make_cifar100_archive(tmp_path / f"{k}" / "c.tar.gz", 100, 100)
        make_tinyimagenet_zip(tmp_path / f"{k}" / "t.zip", 20, per_class=2, n_val=20)
        make_dogs(tmp_path / f"{k}" / "dogs", classes=2)
    for name in ("c.tar.gz", "t.zip", "dogs/train_list.mat"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name


def test_the_overlay_passes_the_start_up_check_and_each_archive_fetches(fake, tmp_path):
    everything = ["cifar100", "cifar100-lt100", "tinyimagenet", "zurich", "imagenet",
                  *FGVR_CLASSES]  # fmt: skip
    assert check(fake, everything, tmp_path / "data") == []
    for name in ("cifar100", "tinyimagenet", "zurich"):
        params = fake[name]
        if name != "zurich":
            assert (
                params["hash"]
                == "md5:" + hashlib.md5(Path(params["archive"]).read_bytes()).hexdigest()
            )
        dest = tmp_path / "data" / "archives" / f"{name}.archive"
        fetch(name, dest, {**params, "url": None})  # verified, then linked (no download)
        assert dest.resolve() == Path(params["archive"])


def test_cifar100_has_every_class_in_both_splits(fake, tmp_path):
    from repro.data.cifar import prepare_cifar100, verify_cifar100

    verify_cifar100(fake["cifar100"]["archive"])
    meta = prepare_cifar100(tmp_path / "c", fake["cifar100"]["archive"])
    assert len(meta["classes"]) == 100
    for split, per_class in (("train", 2), ("test", 1)):
        _, labels = load_split(tmp_path / "c", split)
        assert np.bincount(labels, minlength=100).tolist() == [per_class] * 100


def test_tinyimagenet_has_200_classes_and_greyscale_jpegs(fake, tmp_path):
    import zipfile

    from repro.data.tinyimagenet import prepare_tinyimagenet, verify_tinyimagenet

    archive = fake["tinyimagenet"]["archive"]
    verify_tinyimagenet(archive, check_counts=False)
    with pytest.raises(ReproError, match="200 classes x 1 train images and 200 val images"):
        verify_tinyimagenet(archive)  # hence check_counts: false in the overlay
    with zipfile.ZipFile(archive) as zf:
        greys = [n for n in zf.namelist() if n.endswith(".JPEG")
                 and Image.open(zf.open(n)).mode == "L"]  # fmt: skip
    assert any("/train/" in n for n in greys) and any("/val/" in n for n in greys)
    meta = prepare_tinyimagenet(tmp_path / "t", archive)
    assert len(meta["classes"]) == 200
    x, y = load_split(tmp_path / "t", "train")
    assert x.shape == (200, 64, 64, 3) and np.bincount(y).tolist() == [1] * 200
    _, yt = load_split(tmp_path / "t", "test")
    assert np.bincount(yt).tolist() == [1] * 200


def test_zurich_prepares_without_the_official_counts(fake, tmp_path):
    from repro.data.zurich import prepare_zurich

    meta = prepare_zurich(tmp_path / "z", fake["zurich"]["archive"], check_counts=False)
    assert meta["counts"] == {"train": 6, "test": 4}
    assert Image.open(tmp_path / "z" / "test" / "canon" / "3.jpg").size == (448, 448)


def test_imagenet_has_1000_classes_and_its_quirks(fake, tmp_path):
    root = Path(fake["imagenet"]["root"])
    meta = index_imagenet(root, tmp_path / "i", 1000)
    assert len(meta["classes"]) == 1000 and meta["counts"] == {"train": 1030, "val": 1030}
    with (tmp_path / "i" / "val.csv").open() as f:
        val = list(csv.DictReader(f))
    labels = np.array([int(r["label"]) for r in val])
    assert np.bincount(labels)[:11].tolist() == [4] * 10 + [1]  # the fMRI study's 10 x 4
    kinds = {}
    for row in val + list(csv.DictReader((tmp_path / "i" / "train.csv").open())):
        path = root / row["path"]
        assert path.suffix == ".JPEG"
        with Image.open(path) as img:
            kind = "PNG" if img.format == "PNG" else img.mode
        if kind != "RGB":
            kinds.setdefault(kind, []).append((row["path"].split("/")[0], int(row["label"])))
            if kind == "PNG":
                assert path.read_bytes()[:8] == PNG_SIGNATURE  # a PNG file under a .JPEG name
            else:
                assert path.read_bytes()[:2] == b"\xff\xd8" and img.format == "JPEG"
    expected = {kind: [("val", c), ("train", c)] for (c, _), kind in IMAGENET_QUIRKS.items()}
    assert kinds == expected and set(kinds) == {"L", "CMYK", "PNG"}
    assert all(c < 10 for c, _ in IMAGENET_QUIRKS)  # among the images the fMRI study draws


@pytest.mark.parametrize("name", list(FGVR_CLASSES))
def test_fine_grained_sets_index_with_the_official_classes(fake, tmp_path, name):
    params = fake[name]
    assert params["check_counts"] is False
    meta = index_fgvr(name, params["root"], tmp_path / name, params["check_counts"])
    n = FGVR_CLASSES[name]
    assert len(meta["classes"]) == n and meta["counts"] == {"train": n, "val": n}
    with pytest.raises(ReproError, match="the official"):
        index_fgvr(name, params["root"], tmp_path / "strict")  # a subset: counts are off
    assert read_meta(tmp_path / name)["format"] == "folder-index"


def test_cub_has_greyscale_images(fake):
    images = sorted((Path(fake["cub200"]["root"]) / "images").rglob("*.jpg"))
    modes = [Image.open(p).mode for p in images]
    assert len(images) == 400 and modes.count("L") == 8 and set(modes) == {"RGB", "L"}


def test_mit67_lists_have_windows_line_ends(fake):
    blob = (Path(fake["mit67"]["root"]) / "TrainImages.txt").read_bytes()
    assert blob.count(b"\r\n") == 67 and blob.count(b"\n") == 67
