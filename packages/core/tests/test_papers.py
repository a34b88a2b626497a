"""repro.core.papers: a paper's files (schemas, published numbers, captions) are package data,
found through the installed package; a missing one is one line naming the package and file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from repro.core import ReproError
from repro.core.config import load_schema
from repro.core.papers import caption, package_file, schema_file, schema_sections


@pytest.fixture
def demo(tmp_path, monkeypatch):
    """An importable package ``demo_repro.paper`` shipping a schema and a caption."""
    pkg = tmp_path / "demo_repro" / "paper"
    (pkg / "schemas").mkdir(parents=True)
    (pkg / "captions").mkdir()
    (tmp_path / "demo_repro" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "schemas" / "demo.schema.yaml").write_text(
        "type: object\nproperties: {epochs: {type: integer, default: 3}}\n"
        "additionalProperties: false\n"
    )
    (pkg / "captions" / "demo_summary.rst").write_text("The scorecard.\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield pkg
    for name in [m for m in sys.modules if m.split(".")[0] == "demo_repro"]:
        del sys.modules[name]  # the next test's package is another folder's


def test_a_package_file_is_an_absolute_path_inside_the_package(demo):
    assert package_file("demo_repro.paper", "captions/demo_summary.rst") == (
        demo / "captions" / "demo_summary.rst"
    )
    assert caption("demo_repro.paper", "demo_summary.rst") == str(
        demo / "captions" / "demo_summary.rst"
    )
    assert schema_file("demo_repro.paper", "demo").is_absolute()


def test_a_missing_file_package_or_paper_is_one_line(demo):
    with pytest.raises(ReproError, match=r"^package demo_repro.paper ships no captions/x.rst"):
        caption("demo_repro.paper", "x.rst")
    with pytest.raises(ReproError, match=r"^captions/x.rst: no installed package demo_nope"):
        package_file("demo_nope", "captions/x.rst")
    with pytest.raises(ReproError, match=r"^no paper 'no-such-paper' registered"):
        caption("no-such-paper", "x.rst")


def test_a_paper_section_schema_in_a_package_is_inlined_into_the_config_schema(demo, tmp_path):
    """SCHEMAS name absolute files; load_schema inlines them like a sibling's $ref."""
    (tmp_path / "config.schema.yaml").write_text("type: object\nproperties: {papers: {}}\n")
    plans = {
        "demo": type("Plan", (), {"SCHEMAS": {"demo": schema_file("demo_repro.paper", "demo")}})
    }
    sections = schema_sections(plans)
    schema = load_schema(tmp_path / "config.schema.yaml", sections=sections, papers=["demo"])
    demo_schema = schema["properties"]["demo"]
    assert demo_schema["properties"]["epochs"]["default"] == 3
    assert demo_schema["$id"] == Path(demo / "schemas" / "demo.schema.yaml").as_uri()
    assert schema["properties"]["papers"]["items"]["enum"] == ["demo"]
