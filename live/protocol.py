"""The `hark serve` wire protocol: the client's hello, and every message the server sends.

One WebSocket connection is one audio stream. Text frames carry JSON objects with a "type"; binary
frames carry PCM. The README's "Serving many streams" section is the user's copy of this module;
both say the same thing (tests/live/test_server.py holds the server to it).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hark.live.events import Event, OpenEvent, format_event_line

FORMATS: dict[str, str] = {"s16le": "<i2", "f32le": "<f4"}
MIN_RATE, MAX_RATE = 8000, 192000
# a hello is a flat object with one short list: these bounds leave room and keep parsing cheap
MAX_TEXT_BYTES = 64 * 1024
MAX_DEPTH = 32
_OPENS = np.zeros(256, np.int8)
_OPENS[[ord("["), ord("{")]] = 1
_CLOSES = np.zeros(256, np.int8)
_CLOSES[[ord("]"), ord("}")]] = 1
# close codes (RFC 6455): policy (token, limits, order of messages) / data the server cannot take
POLICY, BAD_DATA, GOING_AWAY = 1008, 1003, 1001


class ProtocolError(Exception):
    """What a client did wrong: sent to it as an error message, then the close `code`."""

    def __init__(self, message: str, code: int = BAD_DATA) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Hello:
    """The client's first message: how its audio is encoded and what it wants back."""

    sample_rate: int
    format: str
    models: tuple[str, ...] | None = None  # None: the server's default (every served model)
    scores: bool = False  # a scores message per model per processed block
    acks: bool = False  # an ack message with the stream time each time audio was processed
    token: str | None = None

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(FORMATS[self.format])


def _depth(data: bytes) -> int:
    """How deeply arrays and objects nest in JSON text; brackets inside strings do not count.

    Linear and vectorised (a regex over strings can go quadratic on crafted input): a quote is
    escaped when an odd run of backslashes precedes it; the unescaped ones toggle "in a string".
    UTF-8 never puts these ASCII bytes inside a multi-byte character.
    """
    b = np.frombuffer(data, np.uint8)
    if not b.size:
        return 0
    idx = np.arange(b.size)
    plain = b != ord("\\")
    last_plain = np.maximum.accumulate(np.where(plain, idx, -1))
    before = np.concatenate(([-1], last_plain[:-1]))  # last non-backslash before each byte
    quote = (b == ord('"')) & ((idx - 1 - before) % 2 == 0)
    outside = np.cumsum(quote) % 2 == 0
    step = np.where(outside, _OPENS[b].astype(np.int32) - _CLOSES[b], 0)
    return int(np.cumsum(step).max(initial=0))


def _obj(text: str | bytes) -> dict[str, Any]:
    """One text message as a JSON object, bounded before it is parsed.

    json.loads recurses once per nesting level: a few thousand levels raise RecursionError (a
    bug to the server: close 1011 and not a word said), so size and depth are checked first.
    """
    try:
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    except UnicodeError:
        raise ProtocolError("malformed JSON message") from None
    if len(data) > MAX_TEXT_BYTES:
        raise ProtocolError(f"a text message must be at most {MAX_TEXT_BYTES // 1024} KiB of "
                            f"JSON, not {len(data)} bytes")
    if _depth(data) > MAX_DEPTH:
        raise ProtocolError(f"a JSON message must not nest more than {MAX_DEPTH} levels deep")
    try:
        msg = json.loads(data)
    except (ValueError, RecursionError):
        raise ProtocolError("malformed JSON message") from None
    if not isinstance(msg, dict):
        raise ProtocolError("a text message must be a JSON object with a \"type\"")
    return msg


def parse_hello(text: str | bytes) -> Hello:
    """Check the first message; a ProtocolError says what is wrong in the client's terms."""
    msg = _obj(text)
    kind = msg.get("type")
    if kind != "hello":
        raise ProtocolError(f"the first message must be a hello, not {kind!r}", POLICY)
    rate = msg.get("sample_rate")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) \
            or rate != int(rate) or not MIN_RATE <= rate <= MAX_RATE:
        raise ProtocolError(f"sample_rate must be an integer in {MIN_RATE}..{MAX_RATE} Hz, "
                            f"not {rate!r}")
    fmt = msg.get("format")
    if fmt not in FORMATS:
        raise ProtocolError(f"unknown sample format {fmt!r} (expected s16le or f32le)")
    channels = msg.get("channels", 1)
    if channels != 1 or isinstance(channels, bool):
        raise ProtocolError(f"channels must be 1 (mono), not {channels!r}")
    models = msg.get("models")
    if models is not None:
        if not isinstance(models, list) or not models \
                or not all(isinstance(m, str) and m for m in models):
            raise ProtocolError("models must be a non-empty list of model names")
        if len(set(models)) != len(models):
            raise ProtocolError("the same model is asked for twice")
    for flag in ("scores", "acks"):
        if not isinstance(msg.get(flag, False), bool):
            raise ProtocolError(f"{flag} must be true or false")
    token = msg.get("token")
    if token is not None and not isinstance(token, str):
        raise ProtocolError("token must be a string", POLICY)
    return Hello(int(rate), str(fmt), tuple(models) if models is not None else None,
                 bool(msg.get("scores", False)), bool(msg.get("acks", False)), token)


def parse_control(text: str | bytes) -> str:
    """A text message after the hello: only {"type": "end"} is known."""
    kind = _obj(text).get("type")
    if kind != "end":
        raise ProtocolError(f"unknown message type {kind!r} (after the hello only binary audio "
                            "and {\"type\": \"end\"} are expected)", POLICY)
    return "end"


def decode_pcm(data: bytes, hello: Hello) -> np.ndarray:
    """A binary message as mono float32 samples (full scale 1.0); NaN/Inf become 0."""
    size = hello.dtype.itemsize
    if len(data) % size:
        raise ProtocolError(f"a binary message of {len(data)} bytes is not whole {hello.format} "
                            f"samples ({size} bytes each)")
    x = np.frombuffer(data, dtype=hello.dtype)
    if hello.format == "s16le":
        return x.astype(np.float32) * np.float32(1.0 / 32768.0)
    y = x.astype(np.float32)
    if not np.isfinite(y).all():
        y[~np.isfinite(y)] = 0.0
    return y


# ---- server -> client --------------------------------------------------------------------------
def dumps(msg: dict[str, Any]) -> str:
    return json.dumps(msg, ensure_ascii=False, separators=(",", ":"))


def event_message(event: Event, offset_s: float = 0.0) -> dict[str, Any]:
    """A finished event: the fields of a `hark replay --format jsonl` line, plus confidence (=peak).

    offset_s: where the engine's clock started on the stream's clock (after dropped audio).
    """
    if offset_s:
        event = Event(event.label, event.onset_s + offset_s, event.offset_s + offset_s,
                      event.peak, event.mean, event.model)
    record = json.loads(format_event_line(event, "jsonl"))
    return {"type": "event", **record, "confidence": record["peak"]}


def event_from_message(msg: dict[str, Any]) -> Event:
    """The Event an event message describes (what `hark client` prints through the sinks)."""
    return Event(str(msg["label"]), float(msg["onset"]), float(msg["offset"]),
                 float(msg.get("peak", msg.get("confidence", 1.0))),
                 float(msg.get("mean", msg.get("confidence", 1.0))), str(msg.get("model", "")))


def open_message(event: OpenEvent, offset_s: float = 0.0) -> dict[str, Any]:
    return {"type": "open", "model": event.model, "label": event.label,
            "onset": round(event.onset_s + offset_s, 3)}


def scores_message(t_s: float, model: str, scores: dict[str, float]) -> dict[str, Any]:
    return {"type": "scores", "t": round(t_s, 3), "model": model,
            "scores": {k: round(float(v), 3) for k, v in scores.items()}}


def error_message(text: str) -> dict[str, Any]:
    return {"type": "error", "message": text}
