import subprocess

from repro.core.provenance import collect, config_hash, git_state, write_provenance


def test_config_hash_ignores_key_order_but_not_values():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_git_state_reports_commit_and_dirty_flag(tmp_path):
    def git(*args):
        return subprocess.run(
            ["git", "-C", str(tmp_path), *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q")
    (tmp_path / "f.txt").write_text("1")
    git("add", "f.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    head = git("rev-parse", "HEAD")
    assert git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "f.txt").write_text("2")
    assert git_state(tmp_path) == {"commit": head, "dirty": True}


def test_git_state_outside_git_is_none(tmp_path):
    assert git_state(tmp_path) == {"commit": None, "dirty": None}


def test_record_has_every_field(tmp_path):
    rec = write_provenance(tmp_path / "p.json", {"x": 1}, seed=3)
    assert (tmp_path / "p.json").is_file()
    assert rec["seed"] == 3 and rec["config"] == {"x": 1}
    assert rec["config_hash"] == config_hash({"x": 1})
    assert "repro-core" in rec["packages"] and "torch" in rec["packages"]
    assert {"hostname", "python"} <= set(rec["host"])
    assert set(collect({}, 0)["git"]) == {"commit", "dirty"}


def test_code_dir_selects_the_checkout(tmp_path):
    rec = write_provenance(tmp_path / "p.json", {}, code_dir=tmp_path)
    assert rec["git"] == {"commit": None, "dirty": None}


def test_lock_hash_and_command_line_are_recorded(tmp_path, monkeypatch):
    import hashlib
    import sys

    (tmp_path / "uv.lock").write_text("version = 1\n")
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.setattr(sys, "argv", ["/x/bin/repro-distill", "report", "--out", "o"])
    monkeypatch.delenv("REPRO_INVOCATION", raising=False)
    rec = collect({}, 0, code_dir=sub)
    assert rec["uv_lock_sha256"] == hashlib.sha256(b"version = 1\n").hexdigest()
    assert rec["command"] == ["repro-distill", "report", "--out", "o"]


def test_the_users_snakemake_command_is_recorded_not_the_jobs(monkeypatch):
    """Every job inherits REPRO_INVOCATION from the snakemake process the user started."""
    import json
    import sys

    user = {
        "command": ["snakemake", "--cores", "all", "--configfile", "config/paper.yaml"],
        "targets": ["results/paper/cskd/summary.csv"],
        "configfiles": ["config/paper.yaml"],
        "overrides": {"kd": {"seeds": [0, 1]}},
        "cwd": "/home/u/repro",
    }
    monkeypatch.setenv("REPRO_INVOCATION", json.dumps(user))
    monkeypatch.setattr(sys, "argv", ["/x/bin/repro-core", "provenance", "--out", "p.json"])
    rec = collect({}, 0)
    assert {k: rec[k] for k in user} == user
    assert rec["job_command"] == ["repro-core", "provenance", "--out", "p.json"]
