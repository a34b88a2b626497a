"""``repro-data fake``: every package's fake inputs in the official formats, and the config
fragment that points a paper run at them.

Plug-in protocol: a package ships ``repro.<pkg>.fake`` with ``write_fakes(out: Path) -> dict``,
which writes its files under ``out`` (a folder reserved for it) and returns a nested config
overlay (the keys of ``config/paper.yaml``, absolute paths), registered in its pyproject::

    [project.entry-points."repro.fake"]
    <pkg> = "repro.<pkg>.fake:write_fakes"

:func:`write_inputs` calls every registered writer, sorted by name, with ``DIR/<name>``,
deep-merges the overlays (two plug-ins setting one key to different values is an error naming
both) and writes ``DIR/inputs.yaml`` atomically.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from repro.core import ReproError
from repro.core.atomic import write_text

GROUP = "repro.fake"
#: Marks a folder written by ``repro-data fake`` (only such a folder is ever overwritten).
MARKER = ".repro-fake"

Writer = Callable[[Path], dict]


def plugins() -> list[tuple[str, Writer]]:
    """The registered writers, sorted by name."""
    found = sorted(entry_points(group=GROUP), key=lambda ep: ep.name)
    return [(ep.name, ep.load()) for ep in found]


def merge(
    merged: dict[str, Any], overlay: dict[str, Any], name: str, owners: dict[tuple, str],
    path: tuple[str, ...] = (),
) -> None:  # fmt: skip
    """Deep-merge plug-in ``name``'s ``overlay`` into ``merged``; ``owners`` records which
    plug-in set each key. A key set twice to different values is an error naming both."""
    for key, value in overlay.items():
        where = (*path, str(key))
        if key not in merged:
            merged[key] = _copy(value)
            _own(value, name, owners, where)
        elif isinstance(merged[key], dict) and isinstance(value, dict):
            merge(merged[key], value, name, owners, where)
        elif merged[key] != value:
            other = next(o for p, o in owners.items() if _overlaps(p, where))
            raise ReproError(
                f"fake: plug-ins '{other}' and '{name}' both set {'.'.join(where)} "
                f"({merged[key]!r} and {value!r})"
            )


def _overlaps(a: tuple, b: tuple) -> bool:
    """Whether one key path lies inside the other."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _copy(value: Any) -> Any:
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, dict) else value


def _own(value: Any, name: str, owners: dict[tuple, str], where: tuple[str, ...]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _own(v, name, owners, (*where, str(k)))
    else:
        owners[where] = name


def _size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _keys(overlay: dict[str, Any], depth: int = 2, path: str = "") -> list[str]:
    keys = []
    for k, v in overlay.items():
        key = f"{path}{k}"
        keys += _keys(v, depth - 1, f"{key}.") if isinstance(v, dict) and depth > 1 else [key]
    return keys


def header(out: Path, names: list[str]) -> str:
    """The comment at the top of ``inputs.yaml``: what it is and how to use it."""
    return (
        f"# Fake inputs in the official file formats, written by `repro-data fake --out {out}`\n"
        f"# (plug-ins: {', '.join(names) or 'none'}). Use it on top of the paper and smoke "
        "configs:\n"
        f"#   snakemake --configfile config/paper.yaml config/smoke.yaml {out / 'inputs.yaml'}\n"
    )


def write_inputs(
    out: str | Path,
    writers: list[tuple[str, Writer]] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every plug-in into ``out/<name>`` and write ``out/inputs.yaml``; returns the merged
    overlay. ``out`` must be new, empty or an earlier output of this command."""
    import yaml

    out = Path(out).resolve()
    if out.is_file() or (out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file()):
        raise ReproError(
            f"fake: {out} exists and was not written by 'repro-data fake'; give a new folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by repro-data fake\n")
    writers = plugins() if writers is None else writers
    merged: dict[str, Any] = {}
    owners: dict[tuple, str] = {}
    for name, write in writers:
        folder = out / name
        shutil.rmtree(folder, ignore_errors=True)
        start = time.perf_counter()
        try:
            overlay = write(folder)
        except ReproError as exc:
            raise ReproError(f"fake: plug-in '{name}': {exc}") from exc
        seconds = time.perf_counter() - start
        if not isinstance(overlay, dict):
            what = type(overlay).__name__
            raise ReproError(f"fake: plug-in '{name}' returned a {what}, not a config dict")
        merge(merged, overlay, name, owners)
        n, size = _size(folder) if folder.is_dir() else (0, 0)
        log(
            f"{name}: {n} files, {size / 1e6:.1f} MB in {folder} ({seconds:.1f} s); "
            f"sets {', '.join(_keys(overlay)) or 'nothing'}"
        )
    text = header(out, [n for n, _ in writers]) + yaml.safe_dump(merged, sort_keys=False)
    write_text(out / "inputs.yaml", text)
    log(f"wrote {out / 'inputs.yaml'}")
    return merged
