"""mypy on hark with the package map: the README's type-check command.

live/, export/, models/ and bench/ are hark.live, hark.export, hark.models and hark.bench through
setuptools' package-dir in pyproject.toml, not through links. mypy names a file by its folders and
cannot follow the editable install's import hook, so plain `mypy` calls live/engine.py
`live.engine` and finds no `hark.live` (an error: [[tool.mypy.overrides]] keeps hark.* imports
from being ignored). This runs mypy as `mypy ARGS` does, with the same options and [tool.mypy]
config, on ARGS plus every folder of the map, each file under its package's name:
live/engine.py is checked as hark.live.engine, the module the imports name.

    .venv/bin/python scripts/typecheck.py benchmarks tests

Its incremental cache is .mypy_cache/mapped (unless --cache-dir says otherwise): a plain `mypy`
run sees another module graph (no hark.live at all) and would leave it stale errors.
"""

from __future__ import annotations

import os
import sys
import time
import tomllib
from pathlib import Path

from mypy import defaults, util
from mypy.fscache import FileSystemCache
from mypy.main import process_options, run_build
from mypy.modulefinder import BuildSource

ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = os.path.join(defaults.CACHE_DIR, "mapped")


def package_map(pyproject: Path = ROOT / "pyproject.toml") -> dict[Path, str]:
    """Folder -> the package it installs as, from pyproject's [tool.setuptools] package-dir."""
    conf = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    dirs: dict[str, str] = conf["tool"]["setuptools"]["package-dir"]
    return {(pyproject.parent / folder).resolve(): package for package, folder in dirs.items()}


def module_name(path: Path, packages: dict[Path, str]) -> str | None:
    """The module a file is under the map (None outside every mapped folder)."""
    path = path.resolve()
    inside = [folder for folder in packages if path.is_relative_to(folder)]
    if not inside:
        return None
    folder = max(inside, key=lambda f: len(f.parts))  # the innermost mapped folder
    parts = list(path.relative_to(folder).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join([packages[folder], *parts])


def remap(sources: list[BuildSource], packages: dict[Path, str]) -> list[BuildSource]:
    """The sources, once each, every file under a mapped folder named as its package's module."""
    out: list[BuildSource] = []
    seen: set[Path] = set()
    for s in sources:
        path = Path(s.path).resolve() if s.path else None
        if path is not None:
            if path in seen:
                continue
            seen.add(path)
        name = module_name(path, packages) if path is not None else None
        out.append(s if name is None else BuildSource(s.path, name, s.text, s.base_dir))
    return out


def main(args: list[str]) -> int:
    """Check `args` and the mapped folders; mypy's exit code (0 clean, 1 errors, 2 a blocker)."""
    t0 = time.time()
    packages = package_map()
    folders = [os.path.relpath(f) for f in packages]
    fscache = FileSystemCache()
    sources, options = process_options([*args, *folders], fscache=fscache)
    sources = remap(sources, packages)
    if options.cache_dir == defaults.CACHE_DIR:
        options.cache_dir = CACHE_DIR
    _, messages, blockers = run_build(sources, options, fscache, t0, sys.stdout, sys.stderr)
    formatter = util.FancyFormatter(sys.stdout, sys.stderr, options.hide_error_codes)
    n_errors, n_notes, n_files = util.count_stats(messages)
    if n_errors:
        print(formatter.format_error(n_errors, n_files, len(sources), blockers=blockers,
                                     use_color=options.color_output))
    else:
        print(formatter.format_success(len(sources), options.color_output))
    if messages and n_notes < len(messages):
        return 2 if blockers else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
