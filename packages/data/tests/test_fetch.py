"""Fetching archives: verify before link/record, retries only where a retry can help, and the
start-up check listing every problem."""

import gzip
import hashlib
import io
import os
import tarfile
import zipfile

import pytest

from repro.core import ReproError
from repro.data import fetch as fetch_mod
from repro.data import zurich as zurich_mod
from repro.data.cifar import prepare_cifar100
from repro.data.cli import main
from repro.data.fetch import obtain_archive
from repro.data.registry import check, fetch
from repro.data.tinyimagenet import prepare_tinyimagenet, verify_tinyimagenet
from repro.data.zurich import prepare_zurich


def md5(path):
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


def left_behind(folder):
    """Everything in ``folder`` (hidden temporaries included)."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- the start-up check ------------------------------------------------------------------


def test_check_lists_every_problem_with_its_key_and_the_value_set(tmp_path):
    (tmp_path / "ilsvrc" / "train").mkdir(parents=True)  # but no val/
    cfg = {
        "cifar100": {"archive": str(tmp_path / "gone.tar.gz"), "url": "https://x/c.tar.gz"},
        "tinyimagenet": {"archive": None, "url": "https://x/t.zip", "download": False},
        "zurich": {"archive": None, "url": None},
        "imagenet": {"root": str(tmp_path / "ilsvrc")},
    }
    datasets = ["cifar100", "cifar100-lt10", "tinyimagenet", "zurich", "imagenet"]
    problems = check(cfg, datasets, tmp_path / "data")
    assert len(problems) == 4  # one per dataset: the long-tailed variant shares cifar100's
    cifar, tiny, zurich, imagenet = problems
    assert "data.cifar100.archive is set to " + str(tmp_path / "gone.tar.gz") in cifar
    assert "not there" in cifar and "https://x/c.tar.gz" in cifar
    assert "data.tinyimagenet.archive is unset and data.tinyimagenet.download is false" in tiny
    assert "zurich: no archive is set: data.zurich.archive and data.zurich.url are both unset" in (
        zurich
    )
    assert f"data.imagenet.root is set to {tmp_path / 'ilsvrc'}" in imagenet
    assert "which has no val/;" in imagenet
    assert all("\n" not in p for p in problems)


def test_check_says_when_the_imagenet_root_is_not_set_or_not_a_folder(tmp_path):
    (unset,) = check({"imagenet": {"root": None}}, ["imagenet"], tmp_path)
    assert "data.imagenet.root is not set" in unset
    (tmp_path / "file").write_text("x")
    (isfile,) = check({"imagenet": {"root": str(tmp_path / "file")}}, ["imagenet"], tmp_path)
    assert f"data.imagenet.root is set to {tmp_path / 'file'}, which is a file" in isfile
    (tmp_path / "ok" / "train").mkdir(parents=True)
    (tmp_path / "ok" / "val").mkdir()
    assert check({"imagenet": {"root": str(tmp_path / "ok")}}, ["imagenet"], tmp_path) == []


def test_check_accepts_what_can_be_obtained_or_is_prepared(tmp_path):
    assert check({"cifar100": {"url": "u", "hash": "md5:0"}}, ["cifar100-lt10"], tmp_path) == []
    (tmp_path / "archives").mkdir()
    (tmp_path / "archives" / "zurich.archive").write_bytes(b"verified earlier")
    assert check({"zurich": {}}, ["zurich"], tmp_path) == []
    (tmp_path / "tinyimagenet").mkdir()
    (tmp_path / "tinyimagenet" / "meta.json").write_text("{}")
    assert check({"tinyimagenet": {"download": False}}, ["tinyimagenet"], tmp_path) == []
    # a set path is checked even when an earlier archive was fetched
    (tmp_path / "archives" / "cifar100.archive").write_bytes(b"old")
    cfg = {"cifar100": {"archive": str(tmp_path / "moved.tar.gz")}}
    assert "moved.tar.gz" in check(cfg, ["cifar100"], tmp_path)[0]


def test_check_cli_prints_every_problem_on_its_own_line(tmp_path, capsys):
    params = '{"zurich": {}, "imagenet": {"root": null}}'
    assert main(["check", "zurich", "imagenet", "--params", params, "--root", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(line.startswith("error: ") for line in lines)
    assert "data.zurich.archive" in lines[0] and "data.imagenet.root" in lines[1]


# --- retries -----------------------------------------------------------------------------


def test_checksum_failure_is_not_retried(tmp_path, make_cifar, http_server):
    make_cifar(http_server.root / "c.tar.gz")
    dest = tmp_path / "archives" / "cifar100.archive"
    with pytest.raises(ReproError, match="fails its checksum") as err:
        obtain_archive(
            "cifar100", None, f"{http_server.url}/c.tar.gz", "md5:" + "0" * 32, dest,
            "data.cifar100.archive", backoff=0,
        )  # fmt: skip
    assert http_server.hits == ["/c.tar.gz"]  # one download, no retry
    assert "data.cifar100.hash" in str(err.value)
    assert left_behind(dest.parent) == []


def test_client_error_is_not_retried(tmp_path, http_server):
    with pytest.raises(ReproError, match="404") as err:
        obtain_archive(
            "cifar100", None, f"{http_server.url}/missing.tar.gz", None,
            tmp_path / "a" / "c.archive", "data.cifar100.archive", backoff=0,
        )  # fmt: skip
    assert http_server.hits == ["/missing.tar.gz"]
    assert "data.cifar100.url" in str(err.value)


def test_network_errors_are_retried_with_backoff(tmp_path, make_cifar, http_server, monkeypatch):
    make_cifar(http_server.root / "c.tar.gz")
    good = md5(http_server.root / "c.tar.gz")
    http_server.fail["/c.tar.gz"] = [503, 0]  # server error, then a dropped connection
    waits = []
    monkeypatch.setattr(fetch_mod.time, "sleep", waits.append)
    dest = tmp_path / "archives" / "cifar100.archive"
    obtain_archive("cifar100", None, f"{http_server.url}/c.tar.gz", good, dest, "k")
    assert http_server.hits == ["/c.tar.gz"] * 3 and waits == [2.0, 4.0]
    assert md5(dest) == good


def test_network_errors_give_up_after_the_attempts(tmp_path, http_server):
    http_server.fail["/c.tar.gz"] = [0, 0, 0, 0]
    with pytest.raises(ReproError, match="failed after 3 tries"):
        obtain_archive(
            "cifar100", None, f"{http_server.url}/c.tar.gz", None,
            tmp_path / "a" / "c.archive", "data.cifar100.archive", backoff=0,
        )  # fmt: skip
    assert len(http_server.hits) == 3
    assert left_behind(tmp_path / "a") == []


# --- verify before link/record -----------------------------------------------------------


def _truncated(src, dst, keep=0.5):
    blob = src.read_bytes()
    dst.write_bytes(blob[: int(len(blob) * keep)])


def _cifar_without_test(path):
    with gzip.GzipFile(path, "wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name in ("meta", "train"):
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))


def _bad_archives(tmp_path, make_cifar, make_tiny, make_zurich):
    """(dataset, params, user file, expected message) of archives that must be refused."""
    make_cifar(tmp_path / "good.tar.gz")
    make_tiny(tmp_path / "tiny.zip")
    make_zurich(tmp_path / "zurich.zip")
    _truncated(tmp_path / "good.tar.gz", tmp_path / "cut.tar.gz")
    _cifar_without_test(tmp_path / "notest.tar.gz")
    _truncated(tmp_path / "zurich.zip", tmp_path / "cut.zip", keep=0.9)
    (tmp_path / "text.zip").write_text("not a zip")
    return [
        ("cifar100", {}, tmp_path / "cut.tar.gz", "not a readable .tar.gz"),
        ("cifar100", {}, tmp_path / "notest.tar.gz", "no 'cifar-100-python/test' inside"),
        ("cifar100", {}, tmp_path / "zurich.zip", "not a readable .tar.gz"),
        ("tinyimagenet", {"check_counts": False}, tmp_path / "text.zip", "not a readable zip"),
        ("tinyimagenet", {}, tmp_path / "tiny.zip", "3 classes x 3 train images and 4 val"),
        ("tinyimagenet", {"check_counts": False}, tmp_path / "zurich.zip", "no 'tiny-imagenet"),
        ("zurich", {"check_counts": False}, tmp_path / "cut.zip", "not a readable zip"),
        ("zurich", {"check_counts": False}, tmp_path / "tiny.zip", "no 'train/canon/<i>.jpg'"),
        ("zurich", {}, tmp_path / "zurich.zip", "train/canon holds 3 images"),
    ]


def test_a_bad_user_archive_names_the_file_and_key_and_leaves_nothing(
    tmp_path, make_cifar, make_tiny, make_zurich, capsys
):
    for dataset, params, path, message in _bad_archives(
        tmp_path, make_cifar, make_tiny, make_zurich
    ):
        archives = tmp_path / "data" / "archives"
        dest = archives / f"{dataset}.archive"
        archives.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(b"stale archive of an earlier fetch")
        (archives / f"{dataset}.archive.sha256").write_text("sha256:stale\n")
        with pytest.raises(ReproError) as err:
            fetch(dataset, dest, {**params, "archive": str(path), "url": None, "hash": None})
        text = str(err.value)
        assert message in text, (dataset, path, text)
        assert f"{path} (config key 'data.{dataset}.archive')" in text
        assert "nothing was linked or recorded" in text
        assert left_behind(archives) == [], (dataset, path)
        assert path.is_file()  # the user's file is never removed
        assert "sha256:" not in capsys.readouterr().out  # nothing recommended for pinning
        # and the start-up check no longer accepts a fetched archive
        assert check({dataset: {"archive": None}}, [dataset], tmp_path / "data")


def test_a_bad_download_without_a_checksum_leaves_nothing(
    tmp_path, make_cifar, make_tiny, make_zurich, http_server, capsys
):
    for dataset, params, path, message in _bad_archives(
        tmp_path, make_cifar, make_tiny, make_zurich
    ):
        (http_server.root / path.name).write_bytes(path.read_bytes())
        url = f"{http_server.url}/{path.name}"
        dest = tmp_path / "data" / "archives" / f"{dataset}.archive"
        with pytest.raises(ReproError) as err:
            fetch(dataset, dest, {**params, "archive": None, "url": url, "hash": None})
        text = str(err.value)
        assert message in text and f"download from {url}" in text, text
        assert f"config key 'data.{dataset}.url'" in text
        assert left_behind(dest.parent) == [], (dataset, path)
        assert "sha256:" not in capsys.readouterr().out


def test_good_archives_are_linked_and_recorded_after_verification(
    tmp_path, make_cifar, make_tiny, make_zurich, capsys
):
    make_cifar(tmp_path / "c.tar.gz")
    make_tiny(tmp_path / "t.zip")
    make_zurich(tmp_path / "z.zip")
    for dataset, path, params in [
        ("cifar100", tmp_path / "c.tar.gz", {"hash": md5(tmp_path / "c.tar.gz")}),
        ("tinyimagenet", tmp_path / "t.zip", {"check_counts": False}),
        ("zurich", tmp_path / "z.zip", {"check_counts": False}),
    ]:
        dest = tmp_path / "archives" / f"{dataset}.archive"
        fetch(dataset, dest, {**params, "archive": str(path)})
        assert dest.is_symlink() and dest.resolve() == path.resolve()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert fetch_mod.sidecar(dest).read_text() == f"sha256:{digest}\n"
    out = capsys.readouterr().out  # pinning is suggested only where no hash was configured
    assert "data.tinyimagenet.hash" in out and "data.zurich.hash" in out
    assert "data.cifar100.hash" not in out


def test_official_tiny_imagenet_counts_are_read_from_the_listing(tmp_path, make_tiny):
    make_tiny(tmp_path / "t.zip", per_class=2)
    verify_tinyimagenet(tmp_path / "t.zip", check_counts=False)
    with zipfile.ZipFile(tmp_path / "t.zip", "a") as zf:  # a class with one image too many
        zf.writestr("tiny-imagenet-200/train/n01443537/images/n01443537_9.JPEG", b"x")
    with pytest.raises(ReproError, match=r"hold \[2, 3\] images per class"):
        verify_tinyimagenet(tmp_path / "t.zip", check_counts=False)


def _corrupt_member(path, suffix):
    """Flip one byte inside the data of the first member ending with ``suffix`` (stored, so
    the listing stays valid and only the member's CRC fails)."""
    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith(suffix))
    with open(path, "r+b") as fh:
        fh.seek(info.header_offset + 26)
        name_len, extra_len = (int.from_bytes(fh.read(2), "little") for _ in range(2))
        at = info.header_offset + 30 + name_len + extra_len + info.compress_size // 2
        fh.seek(at)
        byte = fh.read(1)
        fh.seek(at)
        fh.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.parametrize("dataset", ["zurich", "tinyimagenet"])
def test_a_corrupt_member_found_while_preparing_names_the_user_file_and_unlinks(
    tmp_path, make_tiny, make_zurich, dataset
):
    user = tmp_path / "user.zip"
    if dataset == "zurich":
        make_zurich(user)
    else:
        make_tiny(user)
    dest = tmp_path / "archives" / f"{dataset}.archive"
    fetch(dataset, dest, {"archive": str(user), "check_counts": False})
    _corrupt_member(user, ".jpg" if dataset == "zurich" else ".JPEG")
    with pytest.raises(ReproError) as err:
        if dataset == "zurich":
            prepare_zurich(tmp_path / "out", dest, check_counts=False)
        else:
            prepare_tinyimagenet(tmp_path / "out", dest)
    assert f"{user} (config key 'data.{dataset}.archive')" in str(err.value)
    assert left_behind(tmp_path / "archives") == [] and user.is_file()
    assert not (tmp_path / "out").exists()


def test_a_corrupt_cifar_archive_at_prepare_names_the_user_file(tmp_path, make_cifar):
    user = tmp_path / "c.tar.gz"
    make_cifar(user)
    dest = tmp_path / "archives" / "cifar100.archive"
    fetch("cifar100", dest, {"archive": str(user)})
    _truncated(user, user, keep=0.7)  # e.g. replaced by a partial copy after the fetch
    with pytest.raises(ReproError) as err:
        prepare_cifar100(tmp_path / "out", dest)
    assert f"{user} (config key 'data.cifar100.archive')" in str(err.value)
    assert left_behind(tmp_path / "archives") == []


def test_zurich_meta_reuses_the_recorded_sha256(tmp_path, make_zurich, monkeypatch):
    make_zurich(tmp_path / "z.zip")
    digest = hashlib.sha256((tmp_path / "z.zip").read_bytes()).hexdigest()
    dest = tmp_path / "archives" / "zurich.archive"
    fetch("zurich", dest, {"archive": str(tmp_path / "z.zip"), "check_counts": False})
    real = zurich_mod.sha256_file

    def no_second_read(path):
        raise AssertionError("the archive was hashed a second time")

    monkeypatch.setattr(zurich_mod, "sha256_file", no_second_read)
    assert prepare_zurich(tmp_path / "a", dest, check_counts=False)["archive_sha256"] == digest
    stamp = fetch_mod.sidecar(dest).stat().st_mtime
    os.utime(tmp_path / "z.zip", (stamp + 10, stamp + 10))  # the file changed after the record
    monkeypatch.setattr(zurich_mod, "sha256_file", real)
    assert prepare_zurich(tmp_path / "b", dest, check_counts=False)["archive_sha256"] == digest


def test_a_missing_user_file_is_named_and_a_stale_archive_removed(tmp_path):
    dest = tmp_path / "archives" / "zurich.archive"
    dest.parent.mkdir()
    dest.write_bytes(b"earlier archive")
    fetch_mod.sidecar(dest).write_text("sha256:earlier\n")
    with pytest.raises(ReproError) as err:
        fetch("zurich", dest, {"archive": str(tmp_path / "gone.zip")})
    assert f"{tmp_path / 'gone.zip'} (config key 'data.zurich.archive') does not exist" in str(
        err.value
    )
    assert left_behind(dest.parent) == []
