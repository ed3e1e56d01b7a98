"""CLI options generated from options dataclasses: field name, type, default and help, once.

`add_fields(parser, Options, ["epochs", ("learning_rate", "--lr"), ...])` adds one option per
field: the flag is the field name with dashes (or the one given), the type comes from the
annotation (Optional unwrapped, Literal -> choices, bool -> a --flag / --no-flag switch), the
default from the dataclass, and the help from the field's metadata["help"], else the comment
written beside or above the field in the dataclass. `values(args, mapping)` reads them back as
field -> value. With `overrides=True` every default is None, so only what the user gave is
returned (export: card fields the user overrides).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

FieldSpec = str | tuple[str, str]


class FieldMap(dict[str, str]):
    """{argparse dest: field name}, and which dests are on/off switches."""

    def __init__(self) -> None:
        super().__init__()
        self.switches: set[str] = set()


@cache
def _comments(cls: type) -> dict[str, str]:
    """Field -> the comment on its line, or on the comment lines just above it."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    above: list[str] = []
    for line in lines:
        text = line.strip()
        if text.startswith("#"):
            above.append(text.lstrip("# ").strip())
            continue
        m = re.match(r"(\w+)\s*:[^#]*?(?:#\s*(.*))?$", text)
        if m and not text.startswith(("def ", "class ", "@")):
            note = m.group(2) or " ".join(above)
            if note:
                out[m.group(1)] = note.strip()
        above = []
    return out


def _unwrap(hint: Any) -> Any:
    """X | None -> X."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def add_fields(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    fields: Sequence[FieldSpec],
    *,
    prefix: str = "",
    overrides: bool = False,
    extra_help: Mapping[str, str] | None = None,
    choices: Mapping[str, Sequence[Any]] | None = None,
) -> FieldMap:
    """Add an option per field (name, or (name, flag)); return {argparse dest: field name}."""
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    notes = _comments(cls)
    mapping = FieldMap()
    for spec in fields:
        name, flag = spec if isinstance(spec, tuple) else (spec, "")
        f = known[name]  # a KeyError here is a typo in hark's own code
        flag = flag or "--" + prefix + name.replace("_", "-")
        hint = _unwrap(hints[name])
        default = None
        if f.default is not dataclasses.MISSING:
            default = f.default
        help_text = f.metadata.get("help") or (extra_help or {}).get(name) or notes.get(name, "")
        kwargs: dict[str, Any] = {}
        if hint is bool:
            if overrides:
                kwargs.update(choices=("on", "off"), default=None)
                mapping.switches.add(flag.removeprefix("--").replace("-", "_"))
            elif default is True:
                flag = flag if flag.startswith("--no-") else "--no-" + flag.removeprefix("--")
                kwargs.update(action="store_false")
            else:
                kwargs.update(action="store_true")
        else:
            if choices and name in choices:
                kwargs.update(choices=tuple(choices[name]), type=hint)
            elif typing.get_origin(hint) is typing.Literal:
                literals = typing.get_args(hint)
                kwargs.update(choices=literals, type=type(literals[0]))
            elif hint in (int, float, str) or isinstance(hint, type) and hint.__name__ == "Path":
                kwargs.update(type=hint)
            else:
                raise TypeError(f"{cls.__name__}.{name}: no CLI type for {hint!r}")
            kwargs.update(default=None if overrides else default)
            if not overrides and default is not None and "default" not in help_text:
                help_text = f"{help_text} (default {default})".strip()
        dest = flag.removeprefix("--").removeprefix("no-").replace("-", "_") \
            if hint is bool and not overrides else flag.removeprefix("--").replace("-", "_")
        kwargs.update(dest=dest, help=help_text or None)
        parser.add_argument(flag, **kwargs)
        mapping[dest] = name
    return mapping


def values(args: argparse.Namespace, mapping: FieldMap) -> dict[str, Any]:
    """{field: value} of the options in `mapping` that have a value (None: not given)."""
    out: dict[str, Any] = {}
    for dest, name in mapping.items():
        v = getattr(args, dest)
        if v is None:
            continue
        out[name] = (v == "on") if dest in mapping.switches else v
    return out
