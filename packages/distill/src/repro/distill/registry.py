"""The one list of KD methods, temperature policies and KD papers, readable without
importing torch.

A method is the module ``repro/distill/methods/<name>.py`` that names its class in a
module-level ``METHOD = <Class>``; a temperature policy is ``repro/distill/temperature/<name>.py``
with ``POLICY = <Class>``. The file name is the name used in configs, so adding a method is
one new module (and one config entry that uses it). A KD paper is the module
``repro/distill/papers/<section>.py`` with ``PAPER = <object>`` (torch-free: its tables,
figures and layout, and the paper contract of :mod:`repro.core.papers`); the file name is its
config section, and with ``-`` for ``_`` its name in ``papers`` and its entry point.

The Snakefile checks every configured variant at start-up, before any job, and must stay
fast: importing torch takes seconds. So the keyword arguments of each class's ``__init__`` are
read from the source with :mod:`ast` (``tests`` hold them equal to ``inspect.signature``), and
the classes themselves are imported only when a job builds them.
"""

from __future__ import annotations

import ast
import functools
import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_HERE = Path(__file__).parent
_KINDS = {
    "method": ("methods", "METHOD"),
    "policy": ("temperature", "POLICY"),
    "paper": ("papers", "PAPER"),
}


@functools.cache
def _modules(kind: str) -> dict[str, Path]:
    folder, marker = _KINDS[kind]
    found = {}
    for path in sorted((_HERE / folder).glob("*.py")):
        if path.stem.startswith("_"):
            continue
        if f"\n{marker} = " in path.read_text(encoding="utf-8"):
            found[path.stem] = path
    return found


def method_names() -> list[str]:
    """Registered KD methods (``ce`` trains a model alone)."""
    return list(_modules("method"))


@functools.cache
def model_names() -> list[str]:
    """The model zoo's names (the keys of ``repro.distill.models.MODELS``), read from its
    source so that start-up checks need not import torch."""
    tree = ast.parse((_HERE / "models" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "MODELS":
            return [k.value for k in node.value.keys]  # type: ignore[union-attr]
    raise RuntimeError("repro/distill/models/__init__.py: no MODELS = {...}")


def policy_names() -> list[str]:
    """Registered temperature policies."""
    return list(_modules("policy"))


def paper_names() -> list[str]:
    """Registered KD papers, by their name in the config's ``papers`` (e.g. ``energy-kd``)."""
    return [stem.replace("_", "-") for stem in _modules("paper")]


def paper_section(name: str) -> str:
    """A KD paper's config section, the stem of its module (``energy-kd`` -> ``energy_kd``)."""
    return name.replace("-", "_")


def paper(name: str) -> Any:
    """The paper object (``PAPER``) of a registered KD paper; torch-free to import."""
    if name not in paper_names():
        raise KeyError(f"unknown KD paper {name!r}; valid: {', '.join(paper_names())}")
    return _load("paper", paper_section(name))


def _init(kind: str, name: str) -> ast.FunctionDef:
    """The ``__init__`` of the class a module names in ``METHOD = `` / ``POLICY = `` (source)."""
    path = _modules(kind)[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    marker = _KINDS[kind][1]
    cls_name = next(
        node.value.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == marker for t in node.targets)
        and isinstance(node.value, ast.Name)
    )
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name)
    return next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")


@functools.cache
def _keyword_args(kind: str, name: str) -> tuple[str, ...]:
    return tuple(a.arg for a in _init(kind, name).args.kwonlyargs)


@functools.cache
def _keyword_defaults(kind: str, name: str) -> dict[str, Any]:
    """The literal defaults of a class's keyword-only ``__init__`` arguments (from the source;
    a default that is not a literal, e.g. a module constant, is left out)."""
    args = _init(kind, name).args
    out = {}
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if default is not None:
            try:
                out[arg.arg] = ast.literal_eval(default)
            except ValueError:
                continue
    return out


def energy_band_problem(r_low: Any, r_high: Any) -> str | None:
    """Why the energy policy's rates are wrong (one line, naming ``r_low`` / ``r_high``), or
    None. The low band is the r_low fraction of lowest teacher energies, the high band the
    r_high fraction of highest: each rate is in [0, 1), and r_low + r_high >= 1 makes the bands
    overlap (tau_high <= tau_low: a sample would be both low and high energy)."""
    for key, rate in (("r_low", r_low), ("r_high", r_high)):
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
            return f"{key} must be a number in [0, 1), got {rate!r}"
    if r_low + r_high >= 1:
        return (
            f"r_low + r_high = {r_low} + {r_high} = {r_low + r_high:g} >= 1: the low- and "
            "high-energy bands overlap; their sum must be < 1"
        )
    return None


def _policy_value_problems(policy: str, args: Mapping[str, Any], key: str) -> list[str]:
    """Problems with the values of a policy's arguments (its defaults filled in), each one
    line naming the keys."""
    if policy != "energy":
        return []
    full = {**_keyword_defaults("policy", policy), **args}
    problem = energy_band_problem(full.get("r_low"), full.get("r_high"))
    return [f"{key}.r_low / r_high: {problem}"] if problem else []


def method_args(name: str) -> tuple[str, ...]:
    """The keyword arguments (hyper-parameters) a method accepts."""
    return _keyword_args("method", name)


def policy_args(name: str) -> tuple[str, ...]:
    """The keyword arguments a temperature policy accepts."""
    return _keyword_args("policy", name)


def _load(kind: str, name: str) -> Any:
    folder, marker = _KINDS[kind]
    module = importlib.import_module(f"repro.distill.{folder}.{name}")
    return getattr(module, marker)


def method_class(name: str) -> type:
    """The Distiller class of a method (imports torch)."""
    if name not in _modules("method"):
        raise KeyError(f"unknown method {name!r}; valid methods: {', '.join(method_names())}")
    return _load("method", name)


def policy_class(name: str) -> type:
    """The TemperaturePolicy class of a policy (imports torch)."""
    if name not in _modules("policy"):
        raise KeyError(f"unknown temperature policy {name!r}; valid: {', '.join(policy_names())}")
    return _load("policy", name)


def check_method(
    method: Any,
    args: Mapping[str, Any],
    where: str,
    inherited_temperature: Mapping[str, Any] | None = None,
) -> list[str]:
    """One-line problems with a configured method and its arguments (empty when fine).

    ``where`` is the config key of the variant (e.g. ``kd.variants.energy_kd``). A
    ``temperature`` given as a mapping is a policy: ``{policy: <name>, <its arguments>}``; the
    values of its arguments are checked too (the energy policy's bands), with
    ``inherited_temperature`` (the variant's, for a dataset or pair override) under them.
    """
    if method not in _modules("method"):
        names = ", ".join(method_names())
        return [f"{where}.method: unknown method '{method}' (registered: {names})"]
    allowed = method_args(method)
    problems = [
        f"{where}.args.{key}: '{method}' takes no argument '{key}' (it takes: "
        f"{', '.join(allowed) or 'none'})"
        for key in args
        if key not in allowed
    ]
    temperature = args.get("temperature")
    if isinstance(temperature, Mapping) and "temperature" in allowed:
        key = f"{where}.args.temperature"
        policy = temperature.get("policy")
        if policy not in _modules("policy"):
            problems.append(
                f"{key}.policy: unknown temperature policy '{policy}' (registered: "
                f"{', '.join(policy_names())})"
            )
        else:
            accepted = policy_args(policy)
            unknown = [k for k in temperature if k != "policy" and k not in accepted]
            problems += [
                f"{key}.{k}: policy '{policy}' takes no argument '{k}' (it takes: "
                f"{', '.join(accepted)})"
                for k in unknown
            ]
            if not unknown:
                values = {**(inherited_temperature or {}), **temperature}
                values.pop("policy", None)
                problems += _policy_value_problems(policy, values, key)
    return problems
