"""A job's parameters as a typed dataclass: the one parser every package's CLI uses.

A rule passes a job's params as ``--params JSON``; the CLI turns them into the step's
dataclass with :func:`parse` (or :func:`loads` for the JSON text). Unknown keys and values of
the wrong type stop with one line naming the key (``where.key``) before any work; a dataclass
may add its own checks in a ``check(self, where)`` method, called after it is built. Nested
dataclass fields (also inside ``X | None``, ``list[X]`` and ``dict[str, X]``) are built
recursively from their annotations. Torch-free, so planners may import it.

Written here because the maintained alternatives (pydantic, cattrs, dacite) would add a
dependency to every package for one function of about a hundred lines; jsonschema already
checks the config, and this checks one job's params against the dataclass the code reads.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from repro.core import ReproError
from repro.core.config import check_keys

T = TypeVar("T")

_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


def loads(cls: type[T], text: str | None, where: str = "--params") -> T:
    """Build ``cls`` from a JSON object in ``text`` (empty or None: all defaults)."""
    if not text:
        return parse(cls, {}, where)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ReproError(f"{where}: not valid JSON ({err.msg} at character {err.pos})") from None
    return parse(cls, data, where)


def parse(cls: type[T], data: Mapping[str, Any] | None, where: str = "--params") -> T:
    """Build dataclass ``cls`` from ``data``: unknown keys and wrong types raise one line."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ReproError(f"{where}: must be a mapping of keys to values, not {_kind(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    check_keys(data, fields, where)
    hints = get_type_hints(cls)
    kwargs = {name: _value(hints[name], data[name], f"{where}.{name}") for name in data}
    missing = [n for n, f in fields.items() if n not in data and _required(f)]
    if missing:
        raise ReproError(f"{where}.{missing[0]}: required (no default)")
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if callable(check):
        check(where)
    return obj


def keys(cls: type) -> dict[str, Any]:
    """The key tree of a params dataclass: ``{field: subtree or None}``, a nested dataclass
    (also inside ``| None``, ``list`` or ``dict`` values) as its own tree. Tests hold each
    config section's schema to the dataclasses the code reads with it."""
    hints = get_type_hints(cls)
    tree: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        sub = _dataclass_in(hints[f.name])
        tree[f.name] = keys(sub) if sub else None
    return tree


def to_dict(obj: Any) -> dict[str, Any]:
    """A params dataclass back as plain JSON-ready data (``parse``'s inverse)."""
    return dataclasses.asdict(obj)


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _dataclass_in(tp: Any) -> type | None:
    """The dataclass a field's annotation holds (directly or as ``X | None``/list/dict value)."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return tp
    for arg in get_args(tp):
        sub = _dataclass_in(arg)
        if sub:
            return sub
    return None


def _value(tp: Any, value: Any, where: str) -> Any:
    """``value`` checked against annotation ``tp`` (nested dataclasses built)."""
    if tp is Any or tp is object:
        return value
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _value(option, value, where)
            except ReproError as err:
                errors.append(err)
        if len(errors) == 1 and _accepts(_not_none(options), value):
            raise errors[0]  # the one option fits the value's kind: its own error is clearer
        allowed = " or ".join(_describe(o) for o in options)
        raise ReproError(f"{where}: must be {allowed}, not {_kind(value)}")
    if origin is Literal:
        if value not in get_args(tp):
            allowed = ", ".join(repr(a) for a in get_args(tp))
            raise ReproError(f"{where}: {value!r} is not one of {allowed}")
        return value
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ReproError(f"{where}: must be a list, not {_kind(value)}")
        (item,) = get_args(tp)[:1] or (Any,)
        return [_value(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ReproError(f"{where}: must be a mapping, not {_kind(value)}")
        args = get_args(tp)
        item = args[1] if len(args) == 2 else Any
        return {k: _value(item, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return parse(tp, value, where)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ReproError(f"{where}: must be a number, not {_kind(value)}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ReproError(f"{where}: must be an integer, not {_kind(value)}")
        return value
    if tp in (bool, str):
        if not isinstance(value, tp):
            raise ReproError(f"{where}: must be {_NAMES[tp]}, not {_kind(value)}")
        return value
    return value  # other annotations (e.g. a Path or a class) are not checked


def _not_none(options: tuple[Any, ...]) -> Any:
    return next(o for o in options if o is not type(None))


def _accepts(tp: Any, value: Any) -> bool:
    """Whether ``value`` is of the kind ``tp`` takes (a mapping for a dataclass or dict, a
    list for a list), so an error inside it is about its content."""
    if dataclasses.is_dataclass(tp) or get_origin(tp) in (dict, Mapping) or tp is dict:
        return isinstance(value, Mapping)
    if get_origin(tp) in (list, tuple) or tp in (list, tuple):
        return isinstance(value, list | tuple)
    return False


def _describe(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if tp in _NAMES:
        return _NAMES[tp]
    origin = get_origin(tp)
    if origin in (list, tuple) or tp in (list, tuple):
        return "a list"
    if origin in (dict, Mapping) or tp is dict or dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp))
