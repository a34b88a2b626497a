"""Repository-level checks: ruff, env files that mirror each package's requirements."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from snakerun import ROOT

PACKAGES = sorted(p.name for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())


def ruff(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("ruff")
    exe = exe if exe.exists() else shutil.which("ruff")
    return subprocess.run([str(exe), *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_check_is_clean():
    proc = ruff("check", ".")
    assert proc.returncode == 0, proc.stdout


def test_ruff_format_is_clean():
    proc = ruff("format", "--check", ".")
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("package", PACKAGES)
def test_env_file_lists_what_the_package_needs(package):
    project = tomllib.loads((ROOT / "packages" / package / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "envs" / f"{package}.yaml").read_text())
    assert env["name"] == f"repro-{package}-{project['version']}"  # version bump -> new env hash
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    third_party = [d for d in project["dependencies"] if not d.startswith("repro-")]
    assert sorted(pip) == sorted(third_party)
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert re.match(r"python=3\.(1[1-9])", python)
    deploy = (ROOT / "envs" / f"{package}.post-deploy.sh").read_text()
    installed = set(re.findall(r"packages/(\w+)", deploy))
    local = {
        d.removeprefix("repro-").split()[0]
        for d in project["dependencies"]
        if d.startswith("repro-")
    }
    assert installed == local | {package}


def test_every_rule_file_uses_existing_env_files():
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            assert (smk.parent / env).resolve().is_file(), f"{smk.name}: {env}"


def _rule_blocks():
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        starts = [m for m in re.finditer(r"^(?:rule|checkpoint) (\w+):", text, re.M)]
        for i, m in enumerate(starts):
            end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
            yield smk.name, m[1], text[m.start() : end]


@pytest.mark.parametrize(
    ("smk", "rule", "block"),
    list(_rule_blocks()),
    ids=lambda v: v if isinstance(v, str) and "\n" not in v else "",
)
def test_every_rule_declares_threads_resources_log_benchmark_env(smk, rule, block):
    # a paper's plan gives mem_mb and runtime through step_resources (repro.core.papers)
    from_plan = ("mem_mb=", "runtime=") if "**step_resources(" in block else ()
    for directive in (
        "threads:",
        "resources:",
        "mem_mb=",
        "runtime=",
        "log:",
        "benchmark:",
        "conda:",
        "shell:",
    ):
        assert directive in block or directive in from_plan, f"{smk}: rule {rule} lacks {directive}"
    assert "run:" not in block, f"{smk}: rule {rule} has inline Python"


def _imported_modules(src: Path) -> set[str]:
    import ast

    names = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("package", PACKAGES)
def test_every_imported_third_party_module_is_a_declared_dependency(package):
    from importlib.metadata import packages_distributions

    project = tomllib.loads((ROOT / "packages" / package / "pyproject.toml").read_text())["project"]
    declared = {_normalise(re.split(r"[<>=!~ \[;]", d)[0]) for d in project["dependencies"]}
    owners = packages_distributions()
    src = ROOT / "packages" / package / "src"
    missing = []
    for module in sorted(_imported_modules(src)):
        if module in sys.stdlib_module_names or module in ("repro", "__future__"):
            continue
        dists = {_normalise(d) for d in owners.get(module, [module])}
        if not dists & declared:
            missing.append(f"{module} ({', '.join(sorted(dists))})")
    assert not missing, f"packages/{package} imports undeclared: {', '.join(missing)}"


def test_no_test_support_ships_inside_a_package():
    for src in (ROOT / "packages").glob("*/src/repro/*"):
        for path in src.rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "import pytest" not in text, path
        assert not (src / "reference.py").exists(), f"{src}/reference.py is test support"


def branching_lines(text: str) -> list[str]:
    """Lines of Python that branch or loop (if/elif/else/for/while/try/except, conditional
    expressions, comprehensions), outside comments, strings and docstrings."""
    text = re.sub(r'"""(?:.|\n)*?"""', '""', text)  # docstrings (and other long strings)
    lines = []
    for line in text.splitlines():
        code = re.sub(r'"[^"]*"|\'[^\']*\'', '""', line).split("#", 1)[0]
        if re.search(r"\b(if|elif|else|for|while|try|except)\b", code):
            lines.append(line.strip())
    return lines


def test_branching_lines_are_counted_in_code_not_in_words():
    text = 'x = [a for a in b]  # for\ny = "if so"\n"""for each\nif any"""\nz = 1 if c else 2\n'
    assert branching_lines(text) == ["x = [a for a in b]  # for", "z = 1 if c else 2"]


def test_rule_files_are_wiring_with_at_most_40_branching_lines():
    """Logic lives in the packages' plans (unit-tested without Snakemake), not in rules."""
    found = {
        path.name: branching_lines(path.read_text(encoding="utf-8"))
        for path in sorted((ROOT / "workflow" / "rules").glob("*.smk"))
    }
    total = sum(len(lines) for lines in found.values())
    assert total <= 40, {name: lines for name, lines in found.items() if lines}


def test_each_paper_ships_its_schemas_reported_numbers_and_captions():
    """A paper's own files are package data of the package that registers it (the registry,
    repro.core.papers): its sections' schemas (a section several packages' papers read: in
    one of those packages), its published numbers and every caption its rules name; only the
    shared schemas and the report's description stay in workflow/, nothing in config/."""
    from importlib.resources import files

    from repro.core.papers import caption, package_of, registry, reported_file

    papers = registry()
    home = {name: Path(str(files(package_of(name)))) for name in papers}
    readers: dict[str, set[Path]] = {}
    for name, plan in papers.items():
        for section in plan.SCHEMAS:
            readers.setdefault(section, set()).add(home[name])
    for name, plan in papers.items():
        assert home[name].is_relative_to(ROOT / "packages"), (name, home[name])
        for section, schema in plan.SCHEMAS.items():
            schema = Path(schema)
            # named after its section (the KD papers share one: their tables' lists)
            own = (f"{section}.schema.yaml", "kd_paper.schema.yaml")
            assert schema.is_file() and schema.name in own, (name, section, schema)
            assert any(schema.is_relative_to(pkg / "schemas") for pkg in readers[section]), (
                name, section, schema,
            )  # fmt: skip
            if readers[section] == {home[name]}:
                assert schema.parent == home[name] / "schemas", (name, section, schema)
        assert reported_file(name).parent == home[name] / "reported", name
    named = 0
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text(encoding="utf-8")
        calls = re.findall(r'caption=caption\("([\w-]+)", "([\w.]+)"\)', text)
        assert len(calls) == text.count("caption="), f"{smk.name}: a caption not from a package"
        for owner, file in calls:
            assert Path(caption(owner, file)).parent == home[owner] / "captions", (smk.name, file)
        named += len(calls)
    assert named >= 11  # burst-sr 3, fmri-adv 5, mhsan 3 (the KD papers' come from their plan)
    assert sorted(p.name for p in (ROOT / "workflow" / "schemas").iterdir()) == [
        "config.schema.yaml", "data.schema.yaml",
    ]  # fmt: skip
    assert [p.name for p in (ROOT / "workflow" / "report").iterdir()] == ["workflow.rst"]
    assert not (ROOT / "config" / "reported").exists()
