import hashlib

import numpy as np
import pytest
from PIL import Image

from repro.core import ReproError
from repro.data.arrays import load_split, read_meta
from repro.data.cifar import prepare_cifar100
from repro.data.fetch import obtain_archive
from repro.data.tinyimagenet import prepare_tinyimagenet


def md5(path):
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


def test_cifar100_decodes_official_layout(tmp_path, make_cifar, make_tiny):
    truth = make_cifar(tmp_path / "c.tar.gz")
    meta = prepare_cifar100(tmp_path / "out", tmp_path / "c.tar.gz")
    for split in ("train", "test"):
        images, labels = load_split(tmp_path / "out", split, verify=True)
        assert np.array_equal(images, truth[split][0])  # R, G, B planes put back in place
        assert np.array_equal(labels, truth[split][1])
    assert meta["classes"][:2] == ["class00", "class01"] and len(meta["classes"]) == 100


def test_cifar100_lt_subsets_train_only(tmp_path, make_cifar, make_tiny):
    make_cifar(tmp_path / "c.tar.gz", n_train=400)
    prepare_cifar100(tmp_path / "lt", tmp_path / "c.tar.gz", imbalance=100)
    assert read_meta(tmp_path / "lt")["splits"]["test"]["n"] == 10
    assert read_meta(tmp_path / "lt")["splits"]["train"]["n"] < 400


def test_wrong_archive_is_named(tmp_path, make_cifar, make_tiny):
    (tmp_path / "x.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(ReproError, match=r"x\.tar\.gz: not a readable \.tar\.gz"):
        prepare_cifar100(tmp_path / "out", tmp_path / "x.tar.gz")
    assert not (tmp_path / "out").exists()


def test_tinyimagenet_reads_official_structure(tmp_path, make_cifar, make_tiny):
    colors, val_labels = make_tiny(tmp_path / "t.zip")
    meta = prepare_tinyimagenet(tmp_path / "out", tmp_path / "t.zip")
    x, y = load_split(tmp_path / "out", "train")
    assert x.shape == (9, 64, 64, 3) and np.bincount(y).tolist() == [3, 3, 3]
    grey_train = []
    for img, label in zip(x, y, strict=True):
        colour = np.array(colors[sorted(colors)[label]])
        if np.ptp(img.astype(int), axis=-1).max() == 0:  # a greyscale JPEG, decoded to RGB
            grey_train.append(int(label))
            colour = np.full(
                3, Image.new("RGB", (1, 1), tuple(colour)).convert("L").getpixel((0, 0))
            )
        assert np.abs(img.astype(int) - colour).max() <= 3  # JPEG-stable flat colour
    assert grey_train == [1]  # the last image of class 1 is greyscale, as some in the real zip
    xt, yt = load_split(tmp_path / "out", "test")
    assert yt.tolist() == val_labels and xt.shape == (4, 64, 64, 3)
    assert np.ptp(xt[0].astype(int), axis=-1).max() == 0  # greyscale val_0 became RGB
    assert meta["classes"] == ["name0", "name1", "name2"]


def test_user_archive_with_bad_checksum_is_refused(tmp_path, make_cifar, make_tiny):
    make_cifar(tmp_path / "c.tar.gz")
    dest = tmp_path / "archives" / "cifar100.archive"
    with pytest.raises(ReproError, match="fails its checksum"):
        obtain_archive(
            "cifar100",
            tmp_path / "c.tar.gz",
            "http://x",
            "md5:" + "0" * 32,
            dest,
            "data.cifar100.archive",
        )
    assert not dest.exists()
    obtain_archive(
        "cifar100",
        tmp_path / "c.tar.gz",
        "http://x",
        md5(tmp_path / "c.tar.gz"),
        dest,
        "data.cifar100.archive",
    )
    assert dest.is_symlink() and dest.resolve() == (tmp_path / "c.tar.gz").resolve()


def test_download_is_checksum_verified_and_leaves_nothing_when_corrupted(
    tmp_path, make_cifar, make_tiny, http_dir
):
    served, url = http_dir
    make_cifar(served / "cifar-100-python.tar.gz")
    good = md5(served / "cifar-100-python.tar.gz")
    dest = tmp_path / "archives" / "cifar100.archive"
    with (served / "cifar-100-python.tar.gz").open("r+b") as fh:  # corrupt one byte
        fh.seek(100)
        byte = fh.read(1)
        fh.seek(100)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ReproError, match="fails its checksum"):
        obtain_archive("cifar100", None, f"{url}/cifar-100-python.tar.gz", good, dest, "k")
    assert list(dest.parent.iterdir()) == []  # no partial or corrupted file left behind
    make_cifar(served / "cifar-100-python.tar.gz")
    obtain_archive("cifar100", None, f"{url}/cifar-100-python.tar.gz", good, dest, "k")
    assert md5(dest) == good


def test_unreachable_download_says_where_and_which_key(tmp_path, make_cifar, make_tiny):
    with pytest.raises(ReproError) as err:
        obtain_archive(
            "tinyimagenet",
            None,
            "http://127.0.0.1:9/t.zip",
            "md5:00",
            tmp_path / "t",
            "data.tinyimagenet.archive",
            backoff=0,
        )
    assert "http://127.0.0.1:9/t.zip" in str(err.value) and "after 3 tries" in str(err.value)
    assert "data.tinyimagenet.archive" in str(err.value)
