"""Sound events, what one engine step reports, and their lines: jsonl / csv / DCASE tsv.

The one Event class of hark (engine output, truth annotations, training data) and the one DCASE
reader/writer (`read_events_tsv`, `write_events_tsv`). Every writer writes and flushes each event
as soon as it is given, as one whole line (DESIGN.md invariant 5: nothing is lost on Ctrl-C).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import ClassVar, TextIO

from hark.live.errors import HarkError

FORMATS = ("jsonl", "csv", "tsv")
# The label of a marker line an event writer puts where the input lost audio (a microphone
# starved of CPU): onset = stream time of the loss, offset = onset + the seconds lost (filled with
# silence, so the times of later events stay true). Model "hark"; peak and mean 0.
GAP_LABEL = "_gap_"
CSV_HEADER = ("onset", "offset", "event_label", "peak", "mean", "model")
TSV_HEADER = ("onset", "offset", "event_label")  # DCASE: exactly these three columns
_LABEL_COLUMNS = ("event_label", "label", "event", "class")  # accepted label headers, in order


class EventError(HarkError, ValueError):
    """An unknown event format, or an events file that cannot be read."""


@dataclass(frozen=True, slots=True)
class Event:
    """One finished sound event: what, when (seconds on the stream's clock) and how sure.

    peak / mean: the maximum and mean smoothed confidence over [onset_s, offset_s); truth events
    read from a file carry 1.0 for both.
    """

    label: str
    onset_s: float
    offset_s: float
    peak: float = 1.0
    mean: float = 1.0
    model: str = ""

    @property
    def duration_s(self) -> float:
        """Length of the event in seconds."""
        return self.offset_s - self.onset_s


@dataclass(frozen=True, slots=True)
class OpenEvent:
    """An event that has started and not ended yet: its onset and the class's current score."""

    label: str
    onset_s: float
    score: float
    model: str = ""


@dataclass(frozen=True)
class Update:
    """What one `Engine.feed` (or `close`) reports.

    finished: events that ended, in order; opened: events that started in this block (they also
    stay in `active` until they finish); scores: per model name, every class of the model, the
    highest smoothed score over the frames this block completed, or, when it completed none (the
    speech gate shut and holding frames, a window model between strides, a block shorter than a
    hop), the class's last smoothed value (0.0 before the model's first frame).
    Iterating an Update gives its finished events, so `events.extend(engine.feed(x))` keeps
    every event.
    """

    finished: tuple[Event, ...] = ()
    opened: tuple[OpenEvent, ...] = ()
    active: tuple[OpenEvent, ...] = ()
    scores: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    time_s: float = 0.0

    def __iter__(self) -> Iterator[Event]:
        return iter(self.finished)

    def __len__(self) -> int:
        return len(self.finished)

    def __bool__(self) -> bool:
        return bool(self.finished)


# ---- lines ---------------------------------------------------------------------------------------
def _ms(x: float) -> str:
    """Seconds (or a confidence) with 3 decimals: millisecond resolution in every format."""
    return f"{x:.3f}"


def _clean(label: str) -> str:
    """A label that cannot break a line-oriented file (tabs and newlines become spaces)."""
    if "\t" in label or "\n" in label or "\r" in label:
        return label.replace("\t", " ").replace("\r", " ").replace("\n", " ")
    return label


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise EventError(f"unknown event format {fmt!r} (expected one of {', '.join(FORMATS)})")


def format_header(fmt: str, with_file: bool = False) -> str | None:
    """The header line of a format (without newline); None for jsonl, which has none.

    with_file: a leading `filename` column, as DCASE lists events of several recordings.
    """
    _check_format(fmt)
    first = ("filename",) if with_file else ()
    if fmt == "csv":
        return ",".join(first + CSV_HEADER)
    if fmt == "tsv":
        return "\t".join(first + TSV_HEADER)
    return None


def format_event_line(event: Event, fmt: str, file: str | None = None) -> str:
    """One event as one line of `fmt` (without newline): what writers and stdout print.

    file: the recording the event belongs to (a leading column; a "file" key in jsonl).
    """
    if file is not None and fmt != "jsonl":
        sep = "," if fmt == "csv" else "\t"
        if fmt == "csv":
            buf = io.StringIO()
            csv.writer(buf, lineterminator="").writerow((file,))
            file = buf.getvalue()
        return f"{_clean(file)}{sep}{format_event_line(event, fmt)}"
    if fmt == "jsonl":
        record = {
            "label": event.label,
            "onset": round(event.onset_s, 3),
            "offset": round(event.offset_s, 3),
            "peak": round(event.peak, 3),
            "mean": round(event.mean, 3),
            "model": event.model,
        }
        if file is not None:
            record = {"file": file, **record}
        return json.dumps(record, ensure_ascii=False)
    if fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(
            (_ms(event.onset_s), _ms(event.offset_s), _clean(event.label), _ms(event.peak),
             _ms(event.mean), _clean(event.model))
        )
        return buf.getvalue()
    if fmt == "tsv":
        return f"{_ms(event.onset_s)}\t{_ms(event.offset_s)}\t{_clean(event.label)}"
    _check_format(fmt)
    raise AssertionError("unreachable")  # pragma: no cover


# ---- writers -------------------------------------------------------------------------------------
class EventWriter:
    """Writes finished events to a text stream, one line each, flushed at once.

    The header (csv, tsv) is written and flushed on construction, so even a run that finds nothing
    leaves a valid file. `close()` flushes; it closes the stream only if the writer opened it
    (`open_writer`), never a stream it was handed (stdout, a caller's file).
    """

    fmt: ClassVar[str] = ""

    def __init__(
        self, stream: TextIO, *, owns_stream: bool = False, with_file: bool = False
    ) -> None:
        self._stream = stream
        self._owns_stream = owns_stream
        self.with_file = with_file
        self.closed = False
        self.count = 0
        header = format_header(self.fmt, with_file)
        if header is not None:
            self._emit(header)

    def write(self, event: Event, file: str | None = None) -> None:
        """Write one event and flush, so that it survives a Ctrl-C right after."""
        if self.closed:
            raise ValueError("write to a closed EventWriter")
        if self.with_file and file is None:
            raise ValueError("this writer lists events with their file: give file=")
        self._emit(format_event_line(event, self.fmt, file if self.with_file else None))
        self.count += 1

    def close(self) -> None:
        """Flush; close the stream too if this writer opened it. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self._stream.flush()
        if self._owns_stream:
            self._stream.close()

    def _emit(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class JsonlWriter(EventWriter):
    """One JSON object per line: label, onset, offset, peak, mean, model (times in s, to the ms)."""

    fmt = "jsonl"


class CsvWriter(EventWriter):
    """Header onset,offset,event_label,peak,mean,model; times in seconds with 3 decimals."""

    fmt = "csv"


class TsvWriter(EventWriter):
    """DCASE style: header `onset<TAB>offset<TAB>event_label`, times in seconds with 3 decimals."""

    fmt = "tsv"


_WRITERS: dict[str, type[EventWriter]] = {"jsonl": JsonlWriter, "csv": CsvWriter, "tsv": TsvWriter}


def make_writer(fmt: str, stream: TextIO, with_file: bool = False) -> EventWriter:
    """A writer of `fmt` (jsonl | csv | tsv) on a stream the caller owns (and closes)."""
    _check_format(fmt)
    return _WRITERS[fmt](stream, with_file=with_file)


def open_writer(path: str | Path, fmt: str | None = None) -> EventWriter:
    """Open `path` for writing and return a writer that owns it; fmt defaults to the suffix."""
    p = Path(path)
    if fmt is None:
        fmt = p.suffix.lstrip(".").lower()
        if fmt not in FORMATS:
            raise EventError(
                f"cannot tell the event format of {p.name} (use .jsonl, .csv or .tsv, or a format)"
            )
    _check_format(fmt)
    try:
        stream = p.open("w", encoding="utf-8", newline="")  # newline="": same bytes on every OS
    except OSError as e:
        raise EventError(f"cannot write {p}: {e.strerror}") from None
    return _WRITERS[fmt](stream, owns_stream=True)


# ---- reading DCASE truth -------------------------------------------------------------------------
def _split(line: str) -> list[str]:
    """Tab-separated fields; a line without tabs (old DCASE 2016 style) splits on whitespace."""
    if "\t" in line:
        return [f.strip() for f in line.split("\t")]
    return line.split(None, 2)  # onset offset label-with-spaces


def _header_columns(fields: list[str], where: str) -> tuple[int, int, int]:
    names = [f.lower() for f in fields]
    label = next((names.index(n) for n in _LABEL_COLUMNS if n in names), None)
    if "offset" not in names or label is None:
        raise EventError(f"{where}: header {fields} needs onset, offset and event_label columns")
    return names.index("onset"), names.index("offset"), label


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _time(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise EventError(f"{where}: {what} {text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise EventError(f"{where}: {what} {text!r} must be a finite time >= 0")
    return value


def write_events_tsv(path: str | Path, events: Iterable[Event]) -> Path:
    """Write a DCASE truth file: `onset<TAB>offset<TAB>event_label` rows, milliseconds.

    Creates the parent folder. Labels are cleaned of tabs and newlines as in every other format.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        handle.write("\t".join(TSV_HEADER) + "\n")
        for event in events:
            handle.write(format_event_line(event, "tsv") + "\n")
    return out


def read_events_tsv(path: str | Path) -> list[Event]:
    """Read a DCASE events file: onset, offset, event_label (seconds), in file order.

    A first line naming an `onset` column is a header and maps the columns by name, so extra
    columns (filename, ...) are ignored; without a header the first three columns are taken.
    Blank lines, `#` comments and DCASE's rows for files without events (empty onset, offset
    and label) are skipped. Anything else malformed is an EventError naming the line.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise EventError(f"cannot read events file {p}: {e}") from None
    columns = (0, 1, 2)
    first = True
    events: list[Event] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{p}:{number}"
        fields = _split(line)
        if first:
            first = False
            if "onset" in (f.lower() for f in fields):
                columns = _header_columns(fields, where)
                continue
            if fields and not _is_number(fields[0]):  # a header, but not DCASE's
                raise EventError(
                    f"{where}: header {fields} needs onset, offset and event_label columns"
                )
        onset_t, offset_t, label = (fields[i] if i < len(fields) else "" for i in columns)
        if not (onset_t or offset_t or label):
            continue  # DCASE: a file with no events
        if not label:
            raise EventError(f"{where}: missing event label in {line!r}")
        if not onset_t or not offset_t:
            raise EventError(f"{where}: expected onset, offset and event_label in {line!r}")
        onset = _time(onset_t, "onset", where)
        offset = _time(offset_t, "offset", where)
        if offset < onset:
            raise EventError(f"{where}: offset {offset_t} is before onset {onset_t}")
        events.append(Event(label, onset, offset, peak=1.0, mean=1.0))
    return events
