"""Where an engine's output goes: the sinks `hark.live.pipeline.run` feeds.

A sink gets every Update (finished events, open events, scores) of every block, the start of each
source and the gaps a source reports. The line sinks write each event as one whole line with a
single os.write: a line is in the file entirely or not at all (a write that fails half-way is cut
back to the last whole line), and nothing is retried into a half line.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from hark.live.errors import HarkError
from hark.live.events import GAP_LABEL, Event, Update, format_event_line, format_header

if TYPE_CHECKING:
    from hark.live.engine import Engine

_STD_CLOSED: set[int] = set()  # standard fds found closed at start-up (see reserve_std_fds)


def reserve_std_fds() -> None:
    """Put /dev/null on any of fds 0-2 that is closed, and remember which were.

    Otherwise the next file hark opens (--out) would get fd 1 and receive stdout's lines too.
    The stdout sink of a closed stdout starts out failed, so the user hears about it.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            _STD_CLOSED.add(fd)
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if 2 in _STD_CLOSED:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


class SinkFailed(Exception):
    """A sink cannot go on; `quiet` when nothing needs saying (a reader that left, `| head`)."""

    def __init__(self, message: str, quiet: bool = False) -> None:
        super().__init__(message)
        self.quiet = quiet


class BaseSink:
    """No-op defaults for the Sink protocol: subclasses override what they need."""

    name = "sink"

    def open_source(self, name: str, index: int) -> None:
        """A new source starts (a fresh engine clock)."""

    def feed(self, update: Update, engine: Engine) -> None:
        """One block's Update (also the closing Update at the end of each source)."""

    def gap(self, at_s: float, lost_s: float) -> None:
        """The source lost `lost_s` seconds of input at stream time `at_s` (filled with silence)."""

    def close(self) -> None:
        """The run is over: flush and release."""


class LineSink(BaseSink):
    """Event lines (jsonl, csv, tsv) to a file descriptor, one whole line per os.write.

    with_file: a leading filename column (a "file" key in jsonl), for runs over several files.
    """

    def __init__(
        self, name: str, fd: int, fmt: str, *, with_file: bool = False, owns_fd: bool = False,
        closed: bool = False,
    ) -> None:
        self.name = name
        self.fd = fd
        self.fmt = fmt
        self.with_file = with_file
        self.owns_fd = owns_fd
        self.count = 0
        self._file: str | None = None
        self._regular = fd >= 0 and stat.S_ISREG(os.fstat(fd).st_mode)
        self._good = os.lseek(fd, 0, os.SEEK_CUR) if self._regular else 0
        self._closed_at_start = closed
        self._header = format_header(fmt, with_file)
        self._started = False

    def open_source(self, name: str, index: int) -> None:
        self._file = name if self.with_file else None
        self._start()

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        if self._closed_at_start:
            raise SinkFailed(f"{self.name} is closed")
        if self._header is not None:
            self._write(self._header + "\n")

    def feed(self, update: Update, engine: Engine) -> None:
        if update.finished:
            self.write_events(update.finished)

    def gap(self, at_s: float, lost_s: float) -> None:
        """A _gap_ marker line where the input lost audio (not counted as an event)."""
        self._start()
        marker = Event(GAP_LABEL, at_s, at_s + lost_s, 0.0, 0.0, "hark")
        self._write(format_event_line(marker, self.fmt, self._file) + "\n")

    def write_events(self, events: Sequence[Event]) -> None:
        """Write events, one line each (the header first, if not yet written)."""
        self._start()
        for ev in events:
            self._write(format_event_line(ev, self.fmt, self._file) + "\n")
            self.count += 1

    def _write(self, line: str) -> None:
        data = line.encode("utf-8")
        done = 0
        try:
            while done < len(data):
                n = os.write(self.fd, data[done:])
                if n <= 0:
                    raise OSError(errno.EIO, "short write")
                done += n
        except OSError as e:
            if done and self._regular:  # never leave half a line behind
                try:
                    os.ftruncate(self.fd, self._good)
                    os.lseek(self.fd, self._good, os.SEEK_SET)
                except OSError:
                    pass
            quiet = isinstance(e, BrokenPipeError) and not self._regular
            raise SinkFailed(f"{self.name}: {e.strerror or e}", quiet=quiet) from None
        self._good += done

    def close(self) -> None:
        if self.owns_fd:
            fd, self.fd = self.fd, -1
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.fsync(fd)
                os.close(fd)


class TextSink(LineSink):
    """Event lines to a text stream without a file descriptor (a StringIO, pytest's capture).

    One write and one flush per whole line.
    """

    def __init__(self, name: str, stream: TextIO, fmt: str, *, with_file: bool = False) -> None:
        self.stream = stream
        super().__init__(name, -1, fmt, with_file=with_file)

    def _write(self, line: str) -> None:
        try:
            self.stream.write(line)
            self.stream.flush()
        except (OSError, ValueError) as e:
            quiet = isinstance(e, BrokenPipeError)
            raise SinkFailed(f"{self.name}: {getattr(e, 'strerror', None) or e}",
                             quiet=quiet) from None


def stdout_sink(fmt: str, with_file: bool = False) -> LineSink:
    """Event lines to standard output; a stdout closed at start-up fails at once.

    The real stdout is written as fd 1 (one os.write per line); a replaced sys.stdout (a test's
    capture, an embedding program's stream) through its own write().
    """
    stream = sys.stdout
    if stream is not None:
        try:
            fd = stream.fileno()
        except (OSError, ValueError, AttributeError):
            fd = -1
        if fd != 1:
            return TextSink("stdout", stream, fmt, with_file=with_file)
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    return LineSink("stdout", 1, fmt, with_file=with_file, closed=1 in _STD_CLOSED)


def file_sink(path: Path, fmt: str, with_file: bool = False) -> LineSink:
    """Event lines to a new file at `path` (truncated if it exists); a HarkError if it cannot."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise HarkError(f"cannot write {path}: {e.strerror}") from None
    return LineSink(str(path), fd, fmt, with_file=with_file, owns_fd=True)


class CollectSink(BaseSink):
    """Keeps every finished event of the run in order (evaluation, tests, the Python API)."""

    name = "collector"

    def __init__(self) -> None:
        self.events: list[Event] = []

    def feed(self, update: Update, engine: Engine) -> None:
        self.events.extend(update.finished)


class MeterSink(BaseSink):
    """Counts blocks and the engine's compute time per stage: what a benchmark reads."""

    name = "meter"

    def __init__(self) -> None:
        self.blocks = 0
        self.compute_s = 0.0
        self.audio_s = 0.0

    def feed(self, update: Update, engine: Engine) -> None:
        self.blocks += 1
        self.compute_s += engine.last_times.total
        self.audio_s = update.time_s

    @property
    def real_time_factor(self) -> float:
        """Compute seconds per second of audio (below 1: faster than real time)."""
        return self.compute_s / self.audio_s if self.audio_s > 0 else 0.0
