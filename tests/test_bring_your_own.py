"""Bring your own teachers (issue 22): the paper plan with mdistiller's released CIFAR-100
teachers."""

from __future__ import annotations

import json
import re
import shlex

from snakerun import snakemake

TEACHERS = ("resnet56", "resnet110", "resnet32x4", "ResNet50", "wrn_40_2", "vgg13")


def jobs_of(stdout: str) -> dict[str, int]:
    """A dry run's job counts by rule (its "Job stats" table)."""
    block = stdout.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


def commands(stdout: str, tool: str) -> list[dict]:
    """The ``--params`` of every ``<tool>`` command a dry run (``-p``) prints."""
    found = []
    for line in stdout.splitlines():
        if line.startswith("Shell command:") and tool in line:
            words = shlex.split(line.split(":", 1)[1].split(">", 1)[0])
            found.append(json.loads(words[words.index("--params") + 1]))
    return found


def alone_jobs(stdout: str) -> set[str]:
    """The wildcards lines of a dry run's ``train_vanilla`` jobs."""
    jobs = stdout.split("\nrule ")
    return {
        re.search(r"wildcards: (.*)", job)[1] for job in jobs if job.startswith("train_vanilla:")
    }


def test_the_paper_plan_with_mdistillers_teachers_scores_them_instead_of_training(
    workdir, tmp_path
):
    """``kd.mdistiller_teachers.cifar100``: the 5 CIFAR-100 teachers of the paper's tables are
    the released files (scored, distilled from), not ``train_vanilla`` jobs; the numbers of
    the README's GPU-hour estimate."""
    folder = tmp_path / "cifar_teachers"
    for teacher in TEACHERS:  # a dry run reads none of them; the pre-flight sees they are there
        (folder / f"{teacher}_vanilla").mkdir(parents=True)
        (folder / f"{teacher}_vanilla" / "ckpt_epoch_240.pth").touch()
    paper = ("-n", "-p", "--cores", "1", "--configfile", "config/paper.yaml")
    base = snakemake(*paper, cwd=workdir)
    own = snakemake(
        *paper, "--config", f"kd={{mdistiller_teachers: {{cifar100: {folder}}}}}", cwd=workdir
    )
    assert base.returncode == 0 and own.returncode == 0, own.stderr
    before, after = jobs_of(base.stdout), jobs_of(own.stdout)
    assert before["train_vanilla"] - after["train_vanilla"] == 5
    assert after["evaluate_pretrained_teacher"] - before["evaluate_pretrained_teacher"] == 5
    removed = alone_jobs(base.stdout) - alone_jobs(own.stdout)
    assert removed == {
        f"dataset=cifar100, model={t}, seed=0"
        for t in ("resnet110", "resnet32x4", "wrn_40_2", "vgg13", "ResNet50")
    }
    assert not alone_jobs(own.stdout) - alone_jobs(base.stdout)
    # every CIFAR-100 KD group distils from the released file, named with its config key
    groups = [p["common"] for p in commands(own.stdout, "repro-distill train-group")]
    cifar = [g for g in groups if g["dataset"] == "cifar100"]
    assert len(cifar) == 10 * 5  # 10 pairs x 5 seeds
    for group in cifar:
        assert group["teacher_weights"] == (
            f"{folder}/{group['teacher']}_vanilla/ckpt_epoch_240.pth"
        )
        assert group["teacher_weights_key"] == "kd.mdistiller_teachers.cifar100"
    assert all("teacher_weights" not in g for g in groups if g["dataset"] == "cifar100-lt100")
    assert "mdistiller_teachers" not in own.stderr  # the files are there: no pre-flight line
