"""Zurich RAW-to-RGB: extraction from the official zip layout and trust-on-first-use hashes."""

import hashlib

import pytest

from repro.core import ReproError
from repro.data.fetch import obtain_archive
from repro.data.zurich import prepare_zurich


def test_canon_images_are_extracted_byte_for_byte(tmp_path, make_zurich):
    jpegs = make_zurich(tmp_path / "z.zip")
    meta = prepare_zurich(tmp_path / "zurich", tmp_path / "z.zip", check_counts=False)
    for split, blobs in jpegs.items():
        for i, blob in enumerate(blobs):
            assert (tmp_path / "zurich" / split / "canon" / f"{i}.jpg").read_bytes() == blob
    assert meta["counts"] == {"train": 3, "test": 2}
    assert meta["archive_sha256"] == hashlib.sha256((tmp_path / "z.zip").read_bytes()).hexdigest()
    assert not list((tmp_path / "zurich").rglob("*.png"))  # the phone RAW is not extracted
    assert (tmp_path / "zurich" / "meta.json").is_file()


def test_any_top_folder_name_is_accepted(tmp_path, make_zurich):
    make_zurich(tmp_path / "z.zip", top="ZurichRAWtoRGB")
    prepare_zurich(tmp_path / "zurich", tmp_path / "z.zip", check_counts=False)
    assert (tmp_path / "zurich" / "test" / "canon" / "1.jpg").is_file()


def test_official_counts_are_required_by_default(tmp_path, make_zurich):
    make_zurich(tmp_path / "z.zip")
    with pytest.raises(ReproError, match=r"train/canon holds 3 images, expected ids 0\.\.46838"):
        prepare_zurich(tmp_path / "zurich", tmp_path / "z.zip")
    assert not (tmp_path / "zurich").exists() and not (tmp_path / ".zurich.tmp").exists()


def test_a_missing_id_is_named(tmp_path, make_zurich):
    make_zurich(tmp_path / "z.zip", n_train=4, skip=1)
    with pytest.raises(ReproError, match=r"expected ids 0\.\.2 \(first off: 1\)"):
        prepare_zurich(tmp_path / "zurich", tmp_path / "z.zip", check_counts=False)


def test_not_a_zurich_zip_is_refused(tmp_path, make_tiny):
    make_tiny(tmp_path / "t.zip")
    with pytest.raises(ReproError, match="no 'train/canon/<i>.jpg' inside"):
        prepare_zurich(tmp_path / "zurich", tmp_path / "t.zip", check_counts=False)


def test_first_fetch_records_the_sha256_and_a_pinned_one_is_verified(tmp_path, make_zurich, capsys):
    make_zurich(tmp_path / "z.zip")
    digest = hashlib.sha256((tmp_path / "z.zip").read_bytes()).hexdigest()
    dest = tmp_path / "archives" / "zurich.archive"
    obtain_archive("zurich", tmp_path / "z.zip", None, None, dest, "data.zurich.archive")
    assert (tmp_path / "archives" / "zurich.archive.sha256").read_text() == f"sha256:{digest}\n"
    assert "data.zurich.hash" in capsys.readouterr().out
    obtain_archive("zurich", tmp_path / "z.zip", None, f"sha256:{digest}", dest, "k")  # pinned: ok
    with pytest.raises(ReproError, match="fails its checksum"):
        obtain_archive("zurich", tmp_path / "z.zip", None, "sha256:" + "0" * 64, dest, "k")


def test_download_without_a_checksum_records_one(tmp_path, make_zurich, http_dir):
    root, url = http_dir
    make_zurich(root / "Zurich-RAW-to-DSLR-Dataset.zip")
    digest = hashlib.sha256((root / "Zurich-RAW-to-DSLR-Dataset.zip").read_bytes()).hexdigest()
    dest = tmp_path / "archives" / "zurich.archive"
    got = obtain_archive("zurich", None, f"{url}/Zurich-RAW-to-DSLR-Dataset.zip", None, dest, "k")
    assert got.read_bytes() == (root / "Zurich-RAW-to-DSLR-Dataset.zip").read_bytes()
    assert (tmp_path / "archives" / "zurich.archive.sha256").read_text() == f"sha256:{digest}\n"
