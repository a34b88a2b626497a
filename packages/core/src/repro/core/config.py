"""Config validation against the workflow's JSON schema, with one-line errors.

Kept free of heavy imports: the Snakefile calls it at start-up.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from repro.core import ReproError


def check_keys(
    params: Mapping[str, Any], allowed: Iterable[str], where: str, noun: str = "key"
) -> None:
    """Raise a one-line ReproError naming the first key of ``params`` not in ``allowed``
    (for config sections read straight into a dataclass)."""
    allowed = set(allowed)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ReproError(
            f"{where}: unknown {noun} '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})"
        )


def typed_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``snakemake --config`` values with YAML types: Snakemake parses a nested value such as
    ``kd={seeds: [0, 1]}`` with YAML's BaseLoader, which leaves every scalar a string; each
    such string is parsed again as YAML (``'0'`` -> 0, ``'true'`` -> True, ``'null'`` -> None)."""
    import yaml

    def typed(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: typed(v) for k, v in value.items()}
        if isinstance(value, list):
            return [typed(v) for v in value]
        if isinstance(value, str):
            try:
                return yaml.safe_load(value) if value else value
            except yaml.YAMLError:
                return value
        return value

    return {k: typed(v) for k, v in overrides.items()}


def deep_update(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``over`` into ``base`` in place, recursing into mappings (as Snakemake merges
    config files and ``--config``)."""
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """A YAML file's content; a syntax error is one line naming the file, line and column."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        try:
            return yaml.safe_load(fh)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"{path}: line {mark.line + 1}, column {mark.column + 1}" if mark else f"{path}"
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            context, start = getattr(err, "context", None), getattr(err, "context_mark", None)
            if context and start:
                problem += f" ({context} from line {start.line + 1}, column {start.column + 1})"
            raise ReproError(f"{where}: not valid YAML: {problem}") from None


def load_run_config(
    files: Iterable[str | os.PathLike[str]],
    overrides: Mapping[str, Any],
    schema_path: str | os.PathLike[str] | dict[str, Any],
) -> dict[str, Any]:
    """The run's effective config, as the Snakefile sees it: the config files merged in
    order, then the ``--config`` overrides (:func:`typed_overrides`), validated with defaults."""

    config: dict[str, Any] = {}
    for path in files:
        deep_update(config, read_yaml(path) or {})
    deep_update(config, typed_overrides(overrides))
    source = " + ".join(str(f) for f in files)
    return validate_config(config, schema_path, source)


def load_schema(
    path: str | os.PathLike[str],
    sections: Mapping[str, str | os.PathLike[str]] | None = None,
    papers: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Read a JSON schema written as YAML or JSON, inlining ``$ref``s to sibling files.

    A property written ``{$ref: data.schema.yaml}`` is replaced by that file's schema (a
    relative name is beside ``path``), so each section keeps its schema in a file of its own.
    ``sections`` (section -> schema file, absolute: a paper's is package data) adds such
    properties, and ``papers`` the allowed names of the top-level ``papers`` list: both come
    from the paper registry (``repro.core.papers``).
    """
    import yaml

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    schema = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    props = schema.setdefault("properties", {})
    for section, ref in (sections or {}).items():
        props[section] = {"$ref": os.fspath(ref)}
    if papers is not None:
        items = props["papers"].setdefault("items", {})
        items["enum"] = list(dict.fromkeys([*items.get("enum", []), *papers]))
    for name, sub in props.items():
        ref = sub.get("$ref", "") if isinstance(sub, dict) else ""
        if ref.endswith((".yaml", ".json")):
            sub_path = path.parent / ref
            # An $id makes the inlined file its own resource, so its "#/$defs/..." resolve; its
            # $schema is dropped, else the validator switches dialect and skips our defaults.
            sub = {k: v for k, v in load_schema(sub_path).items() if k != "$schema"}
            schema["properties"][name] = {"$id": sub_path.resolve().as_uri(), **sub}
    return schema


def _key(path: Any) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def validate_config(
    config: dict[str, Any],
    schema_path: str | os.PathLike[str] | dict[str, Any],
    source: str = "config",
) -> dict[str, Any]:
    """Validate ``config`` and fill schema defaults in place; raise ReproError on the first error.

    The message names the offending key, e.g.
    ``config/quick.yaml: data.digits.test_fraction: 'a' is not of type 'number'``.
    """
    import jsonschema

    schema = schema_path if isinstance(schema_path, dict) else load_schema(schema_path)
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = _with_defaults(validator_cls)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.path), list(e.path)))
    if errors:
        err = errors[0]
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            where = _key([*err.path, extra[0]]) if extra else _key(err.path)
            raise ReproError(
                f"{source}: unknown key '{where}' (allowed: "
                f"{', '.join(sorted(err.schema.get('properties', {})))})"
            )
        raise ReproError(f"{source}: {_key(err.path)}: {err.message}")
    return config


def _with_defaults(validator_cls: Any) -> Any:
    """Extend a validator class so that ``default`` values are filled into the instance."""
    import jsonschema

    validate_props = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator: Any, properties: Any, instance: Any, schema: Any) -> Any:
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub:
                    instance.setdefault(name, sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_cls, {"properties": set_defaults})
