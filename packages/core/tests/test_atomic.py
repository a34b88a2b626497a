import hashlib
import json

import pytest

from repro.core.atomic import atomic_open, sha256_file, write_json, write_text


def test_failed_write_keeps_old_content_and_leaves_no_temp(tmp_path):
    target = tmp_path / "result.csv"
    write_text(target, "old\n")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("half of the new")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["result.csv"]


def test_write_creates_parents_and_replaces(tmp_path):
    target = tmp_path / "a" / "b" / "x.json"
    write_json(target, {"b": 1, "a": [1, 2]})
    write_json(target, {"c": 3})
    assert json.loads(target.read_text()) == {"c": 3}
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_sha256_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 5000
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f", chunk=1000) == hashlib.sha256(data).hexdigest()
