"""repro.core.params: typed job parameters with one-line errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from repro.core import ReproError
from repro.core.params import keys, loads, parse, to_dict


@dataclass
class Attack:
    method: Literal["fgsm", "pgd"] = "pgd"
    epsilon: float = 16.0
    steps: int = 10

    def check(self, where: str) -> None:
        if self.steps < 1:
            raise ReproError(f"{where}.steps: must be positive")


@dataclass
class Step:
    name: str
    attack: Attack = field(default_factory=Attack)
    layers: list[str] | None = None
    per_set: dict[str, Attack] = field(default_factory=dict)
    flag: bool = False
    maybe: Attack | None = None


def test_a_job_is_built_with_nested_dataclasses_and_defaults():
    step = parse(
        Step,
        {"name": "a", "attack": {"epsilon": 8}, "per_set": {"x": {"method": "fgsm"}}},
    )
    assert step.attack == Attack("pgd", 8.0, 10)
    assert isinstance(step.attack.epsilon, float)  # an integer is a number
    assert step.per_set == {"x": Attack("fgsm", 16.0, 10)}
    assert step.layers is None and step.flag is False
    assert to_dict(step)["attack"] == {"method": "pgd", "epsilon": 8.0, "steps": 10}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "a", "atack": {}}, "--params: unknown key 'atack'"),
        ({"name": 3}, "--params.name: must be a string, not int 3"),
        ({"name": "a", "attack": {"steps": "10"}}, "--params.attack.steps: must be an integer"),
        ({"name": "a", "attack": {"steps": True}}, "--params.attack.steps: must be an integer"),
        ({"name": "a", "attack": {"method": "cw"}}, "--params.attack.method: 'cw' is not one of"),
        ({"name": "a", "attack": {"steps": 0}}, "--params.attack.steps: must be positive"),
        ({"name": "a", "layers": "conv1"}, "--params.layers: must be a list or null"),
        ({"name": "a", "layers": ["conv1", 2]}, "--params.layers[1]: must be a string, not int 2"),
        ({"name": "a", "per_set": {"x": {"bad": 1}}}, "--params.per_set.x: unknown key 'bad'"),
        ({"name": "a", "maybe": {"steps": "x"}}, "--params.maybe.steps: must be an integer"),
        ({"name": "a", "maybe": 3}, "--params.maybe: must be a mapping or null, not int 3"),
        ({}, "--params.name: required"),
        ([], "--params: must be a mapping"),
    ],
)
def test_bad_params_stop_with_one_line_naming_the_key(data, message):
    with pytest.raises(ReproError) as err:
        parse(Step, data)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_json_text_and_its_errors():
    assert loads(Step, '{"name": "b"}').name == "b"
    with pytest.raises(ReproError, match=r"^--params: not valid JSON"):
        loads(Step, "{name: b}")


def test_the_key_tree_names_nested_fields():
    assert keys(Step) == {
        "name": None,
        "attack": {"method": None, "epsilon": None, "steps": None},
        "layers": None,
        "per_set": {"method": None, "epsilon": None, "steps": None},
        "flag": None,
        "maybe": {"method": None, "epsilon": None, "steps": None},
    }
