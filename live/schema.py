"""The card's JSON schema: pydantic validates the card dataclasses themselves, strictly.

The dataclasses in live.card are the schema: a field added there is validated here with no
further code. Strict types (`"10"` is not a number, `"false"` is not a boolean, a string is not a
list of labels), no NaN or infinity anywhere a float is expected, and no unknown fields: a typo is
reported with the nearest real name. pydantic is imported on the first card read, not at import.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from functools import lru_cache
from typing import Any

from hark.live.card import SCHEMA_VERSION, CardError, ModelCard

# pydantic's ConfigDict is a TypedDict: a plain dict set on each dataclass is the same thing
_STRICT = {"strict": True, "extra": "forbid", "allow_inf_nan": False}


def _dataclasses_in(tp: Any, seen: set[type]) -> None:
    """Every dataclass reachable from `tp` through its fields (dicts, tuples, unions)."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if tp in seen:
            return
        seen.add(tp)
        for hint in typing.get_type_hints(tp).values():
            _dataclasses_in(hint, seen)
        return
    for arg in typing.get_args(tp):
        _dataclasses_in(arg, seen)


@lru_cache(maxsize=1)
def _adapter() -> Any:
    from pydantic import TypeAdapter

    classes: set[type] = set()
    _dataclasses_in(ModelCard, classes)
    for cls in classes:
        cls.__pydantic_config__ = _STRICT  # type: ignore[attr-defined]
    return TypeAdapter(ModelCard)


def parse_card(text: str) -> ModelCard:
    """A ModelCard from the card's JSON text; CardError names the field path of the first fault."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise CardError(f"not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise CardError("not a JSON object")
    schema = raw.get("schema")
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        raise CardError(f"card schema {schema} is not supported (expected {SCHEMA_VERSION})")
    from pydantic import ValidationError

    try:
        card = _adapter().validate_json(text)
    except ValidationError as e:
        errors, seen = [], set()
        for err in e.errors(include_url=False):
            err["loc"] = field_path(tuple(err["loc"]))
            if err["loc"] not in seen:  # a union reports once per member: one fault
                seen.add(err["loc"])
                errors.append(err)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise CardError(describe(errors[0]) + more) from None
    assert isinstance(card, ModelCard)
    return card


def describe(error: Any) -> str:
    """One line for one pydantic error: 'field.path: what is wrong (got ...)'."""
    loc = tuple(error["loc"])
    kind = error["type"]
    where = _dotted(loc)
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        parent, name = loc[:-1], str(loc[-1])
        known = _field_names(parent)
        near = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else (
            f" (known: {', '.join(known)})" if known else "")
        place = f" in {_dotted(parent)}" if parent else ""
        return f"unknown field {name!r}{place}{hint}"
    if kind in ("missing", "missing_argument"):
        return f"{where}: required field missing"
    msg = str(error["msg"])
    msg = msg[0].lower() + msg[1:] if msg else kind
    return f"{where}: {msg} (got {_short(error.get('input'))})"


def field_path(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The card's field path of a pydantic loc, without its union-member tags ('int', ...)."""
    out: list[Any] = []
    tp: Any = ModelCard
    skip = False
    for part in loc:
        if skip:
            skip = False
            continue
        out.append(part)
        tp = _step(tp, part) if tp is not None else None
        inner = _unwrap(tp)
        if isinstance(inner, types.UnionType) or typing.get_origin(inner) is typing.Union:
            skip = True  # pydantic names the member next; the member is a leaf here
            tp = None
    return tuple(out)


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "card"


def _field_names(loc: tuple[Any, ...]) -> list[str]:
    """The field names of the dataclass at `loc` inside a card (for 'did you mean')."""
    tp: Any = ModelCard
    for part in loc:
        tp = _step(tp, part)
        if tp is None:
            return []
    tp = _unwrap(tp)
    if dataclasses.is_dataclass(tp):
        return [f.name for f in dataclasses.fields(tp)]
    return []


def _unwrap(tp: Any) -> Any:
    """X from X | None."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _step(tp: Any, part: Any) -> Any:
    tp = _unwrap(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return typing.get_type_hints(tp).get(str(part))
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is dict and len(args) == 2:
        return args[1]
    if origin is tuple and args:
        return args[0] if len(args) == 2 and args[1] is Ellipsis else (
            args[part] if isinstance(part, int) and part < len(args) else None)
    return None
