import pytest
import yaml

from repro.core import ReproError
from repro.core.config import load_schema, validate_config

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "seed": {"type": "integer", "default": 0},
        "data": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {"fraction": {"type": "number", "default": 0.25}},
        },
        "paper": {"$ref": "paper.schema.yaml"},
    },
}
PAPER = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"epochs": {"type": "integer", "minimum": 1}},
}


@pytest.fixture
def schema(tmp_path):
    (tmp_path / "config.schema.yaml").write_text(yaml.safe_dump(SCHEMA))
    (tmp_path / "paper.schema.yaml").write_text(yaml.safe_dump(PAPER))
    return tmp_path / "config.schema.yaml"


def test_defaults_are_filled_at_every_level(schema):
    cfg = validate_config({}, schema)
    assert cfg == {"seed": 0, "data": {"fraction": 0.25}}


def test_misspelt_key_is_named_in_one_line(schema):
    with pytest.raises(ReproError) as err:
        validate_config({"data": {"fractoin": 0.5}}, schema, source="my.yaml")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("my.yaml: unknown key 'data.fractoin'")
    assert "fraction" in msg  # tells the allowed spelling


def test_wrong_type_is_named(schema):
    with pytest.raises(ReproError, match=r"^c: seed: 'x' is not of type 'integer'$"):
        validate_config({"seed": "x"}, schema, source="c")


def test_sibling_schema_files_are_inlined(schema):
    inlined = load_schema(schema)["properties"]["paper"]
    assert {k: v for k, v in inlined.items() if k != "$id"} == PAPER
    with pytest.raises(ReproError, match=r"paper\.epochs: 0 is less than the minimum of 1"):
        validate_config({"paper": {"epochs": 0}}, schema)


def test_inlined_file_resolves_its_own_defs(tmp_path):
    sub = {
        "type": "object",
        "$defs": {"n": {"type": "integer"}},
        "properties": {"a": {"$ref": "#/$defs/n"}},
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sub))
    (tmp_path / "c.yaml").write_text(
        yaml.safe_dump({"type": "object", "properties": {"p": {"$ref": "s.yaml"}}})
    )
    validate_config({"p": {"a": 1}}, tmp_path / "c.yaml")
    with pytest.raises(ReproError, match=r"p\.a: 'x' is not of type 'integer'"):
        validate_config({"p": {"a": "x"}}, tmp_path / "c.yaml")


def test_defaults_inside_inlined_files_are_filled(tmp_path):
    sub = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"teacher_seed": {"type": "integer", "default": 0}},
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sub))
    (tmp_path / "c.yaml").write_text(
        yaml.safe_dump({"type": "object", "properties": {"p": {"$ref": "s.yaml"}}})
    )
    assert validate_config({"p": {}}, tmp_path / "c.yaml") == {"p": {"teacher_seed": 0}}


def test_check_keys_names_the_first_unknown_key_and_the_allowed_ones():
    from repro.core.config import check_keys

    check_keys({"a": 1}, ["a", "b"], "sec")  # known keys pass
    with pytest.raises(ReproError) as err:
        check_keys({"zz": 1, "c": 2, "a": 3}, ["a", "b"], "sec", noun="setting")
    assert str(err.value) == "sec: unknown setting 'c' (allowed: a, b)"


def test_overrides_get_yaml_types_and_merge_deeply():
    from repro.core.config import deep_update, typed_overrides

    # what Snakemake's --config parser hands over for: seed=1 'kd={seeds: [0, 1], x: {y: null}}'
    raw = {"seed": 1, "kd": {"seeds": ["0", "1"], "x": {"y": "null", "z": "0.5"}, "n": "abc"}}
    assert typed_overrides(raw) == {
        "seed": 1,
        "kd": {"seeds": [0, 1], "x": {"y": None, "z": 0.5}, "n": "abc"},
    }
    config = {"kd": {"seeds": [0], "teacher_seed": 0, "x": {"w": 1}}, "seed": 0}
    deep_update(config, typed_overrides(raw))
    assert config == {
        "kd": {"seeds": [0, 1], "teacher_seed": 0, "x": {"w": 1, "y": None, "z": 0.5}, "n": "abc"},
        "seed": 1,
    }


def test_a_yaml_syntax_error_names_the_file_line_and_column(tmp_path):
    from repro.core.config import read_yaml

    bad = tmp_path / "mine.yaml"
    bad.write_text("run: quick\nkd:\n  seeds: [0, 1\npapers: [cskd]\n")
    with pytest.raises(ReproError) as err:
        read_yaml(bad)
    message = str(err.value)
    assert message.startswith(f"{bad}: line 4, column 7: not valid YAML: ")
    assert "from line 3, column 10" in message and "\n" not in message
