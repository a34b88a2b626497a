"""Bring your own teachers and methods (issue 22): the paper plan with mdistiller's released
CIFAR-100 teachers, and the README's "Bring your own method" recipe on the quick leaderboard,
written into a temporary copy of ``repro.distill`` (never the source tree)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys

import pytest
from snakerun import ROOT, snakemake

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


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("\n## Bring your own method\n", 1)[1].split("\n## ", 1)[0]


def block(section: str, lang: str) -> str:
    return re.search(rf"```{lang}\n(.*?)```", section, re.S)[1]


@pytest.fixture
def own_method(tmp_path, monkeypatch) -> str:
    """A temporary copy of ``repro.distill`` with the README's method file
    (``methods/my_kd.py``), first on ``PYTHONPATH`` (``repro`` is a namespace package, so the
    copy's ``repro.distill`` is imported, the other packages as installed)."""
    src = tmp_path / "src"
    shutil.copytree(
        ROOT / "packages" / "distill" / "src" / "repro" / "distill",
        src / "repro" / "distill",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    section = readme_section()
    (src / "repro" / "distill" / "methods" / "my_kd.py").write_text(block(section, "python"))
    monkeypatch.setenv("PYTHONPATH", str(src))
    return section


def test_the_readme_method_lands_on_the_quick_leaderboard(workdir, own_method, monkeypatch):
    assert not (ROOT / "packages/distill/src/repro/distill/methods/my_kd.py").exists()
    (workdir / "my_method.yaml").write_text(block(own_method, "yaml"))
    target = "results/quick/kd-leaderboard/summary.csv"
    run = ("-n", "-p", "--cores", "1", target, "--configfile", "config/quick.yaml")
    proc = snakemake(*run, "my_method.yaml", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    # the leaderboard lists the new variant beside the others, paired against KD
    (board,) = commands(proc.stdout, "repro-distill leaderboard")
    assert board["variants"] == ["kd", "energy_kd", "cskd_cswt", "r2kd_cutmix", "my_kd"]
    assert board["baseline"] == "kd"
    # its cells: one per leaderboard pair and seed, each in its row's lockstep job
    groups = commands(proc.stdout, "repro-distill train-group")
    rows = {(g["common"]["student"], g["common"]["train"]["seed"]) for g in groups}
    assert rows == {(s, k) for s in ("resnet20", "resnet8") for k in (0, 1, 2)}
    for group in groups:
        (mine,) = [c for c in group["cells"] if c["variant"] == "my_kd"]
        assert mine["method"] == "my_kd" and mine["args"] == {"l2_weight": 0.1}
        assert mine.get("recipe", group["common"].get("recipe")) == "digits_short"
        # (the resnet20 rows also hold the papers' table cells, recipe digits)
        assert {c["variant"] for c in group["cells"]} >= set(board["variants"])
    # the same rows as without it: the method joins them, no new teacher or training job
    plain = snakemake(*run, cwd=workdir)
    assert jobs_of(plain.stdout) == jobs_of(proc.stdout)
    # the registry is the method files: without the copy, my_kd is an unknown method
    monkeypatch.delenv("PYTHONPATH")
    proc = snakemake(*run, "my_method.yaml", cwd=workdir)
    assert proc.returncode != 0
    assert "kd.variants.my_kd.method: unknown method 'my_kd'" in proc.stderr


def test_the_readme_method_trains_a_step(own_method, tmp_path):
    """The README's method file builds through the registry and its losses are the ones it
    names (checked against the same formulas computed here)."""
    code = """
import json, torch, torch.nn.functional as F
from repro.distill.methods import build_method
from repro.distill.models import build_model
from repro.distill.registry import method_args
torch.manual_seed(0)
student, teacher = build_model("resnet8", 10, 3), build_model("resnet20", 10, 3).eval()
method = build_method("my_kd", student, teacher, l2_weight=0.5, temperature=2.0)
x, y = torch.randn(4, 3, 32, 32), torch.arange(4)
logits, losses = method.forward_train(x, y, 1)
with torch.no_grad():
    zt = teacher(x)[0]
zs = logits.detach()
kl = F.kl_div(F.log_softmax(zs / 2, 1), F.log_softmax(zt / 2, 1), log_target=True,
              reduction="batchmean") * 4
sum(losses.values()).backward()
print(json.dumps({
    "args": list(method_args("my_kd")), "names": sorted(losses),
    "ce": [losses["loss_ce"].item(), F.cross_entropy(zs, y).item()],
    "kd": [losses["loss_kd"].item(), kl.item()],
    "l2": [losses["loss_l2"].item(), 0.5 * F.mse_loss(zs, zt).item()],
    "grad": student.fc.weight.grad is not None,
}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["args"] == ["temperature", "l2_weight"] and out["grad"]
    assert out["names"] == ["loss_ce", "loss_kd", "loss_l2"]
    for name in ("ce", "kd", "l2"):
        assert out[name][0] == pytest.approx(out[name][1], rel=1e-5), name
