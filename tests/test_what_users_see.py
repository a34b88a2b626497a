"""What a user sees (issue 21): after `snakemake -n` the problems again at the end, grouped by
the papers they block, and no warnings for datasets the chosen papers do not need; the
user's own command in provenance.json."""

from __future__ import annotations

import json
import shutil

from snakerun import ROOT, job_counts, snakemake


def test_a_cskd_dry_run_ends_with_its_recap_and_skips_unneeded_datasets(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    proc = snakemake(
        "-n", "--configfile", "config/paper.yaml", "--config", "papers=[cskd]", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.splitlines()
    stops = [line for line in err if line.startswith("warning: a real run would stop here")]
    # CSKD's tables use CIFAR-100 and Tiny-ImageNet, both fetched with checksums: nothing
    # stops it; the fine-grained sets and ImageNet that `datasets:` lists are only skipped
    assert stops == []
    skipped = [line for line in err if line.startswith("warning: skipped")]
    for name in ("cub200", "dogs", "imagenet", "mit67", "stanford40"):
        assert sum(f"data.{name}.root is not set" in line for line in skipped) == 1, skipped
    # the recap is the last thing printed (at exit, after the job list and "This was a
    # dry-run", which Snakemake writes to stdout)
    assert "This was a dry-run" in proc.stdout
    tail = err[-7:]
    assert tail[0] == "pre-flight: 0 problem(s) a real run would stop on, by the papers they block:"
    assert "skipped, not needed by the chosen papers (5;" in tail[1]


def test_provenance_records_the_users_snakemake_command(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    target = "results/quick/provenance.json"
    proc = snakemake("--cores", "1", target, "--config", "seed=3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / target).read_text())
    assert record["command"][0] == "snakemake"
    assert record["command"][-3:] == [target, "--config", "seed=3"]
    assert record["targets"] == [target]
    assert record["configfiles"] == ["config/quick.yaml"] and record["overrides"] == {"seed": 3}
    assert record["job_command"][:2] == ["repro-core", "provenance"]


def test_a_misspelt_target_stops_before_any_job_naming_the_valid_models(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    target = "results/quick/kd/digits/digits/dkd/wrn_16_2-resnet21/seed0/result.json"
    proc = snakemake("-n", target, cwd=tmp_path)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr
    assert errors[0].startswith(f"error: {target}: unknown model 'resnet21' (models: ")
    assert "resnet20" in errors[0]


def test_adding_a_seed_and_removing_it_again_retrains_nothing(tmp_path):
    """kd.seeds [0] -> [0, 1] -> [0]: the second change plans no training job (the lockstep
    group whose cells changed got a marker of its own; the first is still up to date), only
    what summarises the seeds: the scorecards."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    targets = ["results/quick/energy-kd/summary.csv", "results/quick/kd-leaderboard/summary.csv"]
    two = ["--config", "kd={seeds: [0, 1]}"]

    def planned(*extra):
        proc = snakemake("-n", *targets, *extra, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        if "Nothing to be done" in proc.stdout + proc.stderr:
            return {}
        return job_counts(proc.stdout)

    def run_as_if(*extra):
        """Create the planned jobs' outputs and record them as Snakemake would (--touch)."""
        proc = snakemake("--detailed-summary", *targets, *extra, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        for line in proc.stdout.splitlines()[1:]:
            path = tmp_path / line.split("\t")[0]
            if "\t" in line and not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("")
        assert snakemake("--touch", "--cores", "1", *targets, *extra, cwd=tmp_path).returncode == 0

    run_as_if()
    assert planned() == {}
    added = planned(*two)
    assert added["train_kd_group"] == 1 and added["report_energy_kd"] == 1
    run_as_if(*two)
    assert planned(*two) == {}
    back = planned()
    assert back == {"report_energy_kd": 1, "report_kd_leaderboard": 1, "total": 2}, back
