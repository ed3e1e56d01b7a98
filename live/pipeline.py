"""The one loop: source -> engine -> sinks, and its fault rules (used by mic, replay, UI, eval).

`run(sources, engine, sinks)` drains each source into the engine and hands every Update to every
sink. The rules live here and only here:
- every finished event reaches every sink that still works; a sink that fails (broken pipe, disk
  full, closed stdout) is reported in one line and dropped while the others go on, and the run
  ends with a non-zero exit code. A reader that leaves a pipe (`hark replay | head -1`) is not a
  failure: stdout is dropped without a word and --out still gets every event (exit 0);
- SIGINT, SIGTERM and SIGHUP stop the run after the current block (at once if it is waiting for
  audio); open events are closed and written, then everything is flushed;
- a source that fails mid-stream (a decode error, a device that vanished) ends the run the same
  way: the open events are closed and written before the error is reported;
- a source that lost input (a microphone starved of CPU) reports the gap; its silence keeps the
  stream clock counting, and the gap is reported with where it was.
When every sink has gone, there is nothing left to do and the run stops.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from hark.live.errors import HarkError
from hark.live.sinks import SinkFailed

if TYPE_CHECKING:
    from hark.live.corpus import FileOutcome
    from hark.live.engine import Engine
    from hark.live.events import Update

SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


class Sink(Protocol):
    """What run() hands its output to (see hark.live.sinks.BaseSink for no-op defaults)."""

    name: str

    def open_source(self, name: str, index: int) -> None: ...

    def feed(self, update: Update, engine: Engine) -> None: ...

    def gap(self, at_s: float, lost_s: float) -> None: ...

    def close(self) -> None: ...


class _Stop(Exception):
    """Raised by the signal handler while the loop waits for audio (a read may block forever)."""


@dataclass
class RunResult:
    """How a run ended: what the exit code and the closing stderr line say."""

    events: int = 0
    audio_s: float = 0.0
    signal: str | None = None  # "SIGINT", "SIGTERM", "SIGHUP"
    failed: list[str] = field(default_factory=list)  # one line per dropped sink
    error: str | None = None  # a source that failed mid-stream
    truncated: list[str] = field(default_factory=list)
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (stream time, seconds lost)

    @property
    def exit_code(self) -> int:
        """130/143/129 for a signal, 2 for bad input, 1 for a failed output, else 0."""
        if self.signal is not None:
            return SIGNAL_EXIT[getattr(signal, self.signal)]
        if self.error is not None or self.truncated:
            return 2
        return 1 if self.failed else 0


def _say(line: str) -> None:
    with suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)


class _Runner:
    def __init__(self, engine: Engine, sinks: Sequence[Sink], report: Callable[[str], None],
                 stop: threading.Event | None, lock: AbstractContextManager[Any]) -> None:
        self.engine = engine
        self.lock = lock
        self.timed = [s for s in sinks if callable(getattr(s, "block_arrived", None))]
        self.sinks = list(sinks)
        self.had_sinks = bool(self.sinks)
        self.report = report
        self.stop = stop or threading.Event()
        self.result = RunResult()
        self.waiting = False  # inside the source: a signal may interrupt it
        self.sources: Sequence[Any] = ()
        self.limit: int | None = None  # samples still allowed (max_seconds)

    def call(self, what: str, *args: Any) -> None:
        """Call one method on every live sink; drop (and report) any that fails."""
        for sink in list(self.sinks):
            try:
                getattr(sink, what)(*args)
            except Exception as e:  # noqa: BLE001 - any failing sink is dropped, never the run
                self.sinks.remove(sink)
                failed = isinstance(e, SinkFailed)
                msg = str(e) if failed else f"{sink.name}: {type(e).__name__}: {e}"
                if isinstance(e, SinkFailed) and e.quiet:
                    continue
                others = ", ".join(s.name for s in self.sinks if s.name != "collector")
                tail = f"; events still go to {others}" if others else ""
                line = f"hark: error: {msg}: output dropped{tail}"
                self.result.failed.append(line)
                self.report(line)

    def deliver(self, update: Update) -> None:
        self.result.events += len(update.finished)
        self.call("feed", update, self.engine)

    @property
    def pointless(self) -> bool:
        return self.had_sinks and not self.sinks

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.result.signal is None:
            self.result.signal = signal.Signals(signum).name
        self.stop.set()
        for src in self.sources:
            stop = getattr(src, "stop", None)
            if callable(stop):
                stop()
        if self.waiting:
            self.waiting = False
            raise _Stop()

    def run_source(self, index: int, source: Any) -> None:
        engine = self.engine
        if index:
            with self.lock:
                engine.reset()
        label = getattr(source, "label", None) or getattr(source, "name", "input")
        self.call("open_source", str(label), index)
        seen_gaps = 0
        blocks: Iterator[Any] = iter(source.blocks())
        try:
            while not self.stop.is_set() and not self.pointless:
                try:
                    self.waiting = True
                    block = next(blocks)
                except StopIteration:
                    break
                except _Stop:
                    break
                finally:
                    self.waiting = False
                if self.timed:
                    arrival = time.monotonic()
                    for sink in self.timed:
                        if sink in self.sinks:
                            sink.block_arrived(arrival)  # type: ignore[attr-defined]
                gaps = getattr(getattr(source, "stats", None), "gaps", None)
                if gaps is not None and len(gaps) > seen_gaps:
                    for at_s, lost_s in gaps[seen_gaps:]:
                        self.result.gaps.append((at_s, lost_s))
                        self.report(f"hark: warning: {getattr(source, 'name', 'input')}: "
                                    f"{lost_s:.2f} s of input lost at {at_s:.2f} s (stream "
                                    "time counts it as silence)")
                        self.call("gap", at_s, lost_s)
                    seen_gaps = len(gaps)
                if self.limit is not None:
                    block = block[: self.limit]
                    self.limit -= len(block)
                with self.lock:
                    update = engine.feed(block)
                self.deliver(update)
                if self.limit is not None and self.limit <= 0:
                    self.stop.set()
        except HarkError as e:
            self.result.error = str(e)
        finally:
            close_blocks = getattr(blocks, "close", None)
            if callable(close_blocks):
                close_blocks()
            with self.lock:
                closing = engine.close()
            self.deliver(closing)
            self.result.audio_s += engine.time_s
            stats = getattr(source, "stats", None)  # blocks() may have started a fresh one
            if stats is not None and getattr(stats, "truncated", False):
                self.result.truncated.append(
                    f"{getattr(source, 'name', 'input')} (ends at {engine.time_s:.2f} s)")
            bad = engine.nonfinite + int(getattr(stats, "nonfinite_samples", 0) or 0)
            if bad:
                self.report(f"hark: warning: {getattr(source, 'name', 'input')}: {bad} NaN/Inf "
                            "samples replaced by silence")


def signals_caught(handler: Callable[[int, FrameType | None], None]) -> Any:
    """SIGINT, SIGTERM and SIGHUP go to `handler` inside the block (main thread only)."""
    return _signals(handler, True)


@contextmanager
def _signals(handler: Callable[[int, FrameType | None], None], enabled: bool) -> Iterator[None]:
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in SIGNAL_EXIT}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run(
    sources: Any,
    engine: Engine,
    sinks: Sequence[Sink],
    *,
    stop: threading.Event | None = None,
    signals: bool = True,
    report: Callable[[str], None] = _say,
    lock: AbstractContextManager[Any] | None = None,
    max_seconds: float | None = None,
) -> RunResult:
    """Drain `sources` into `engine`, handing every Update to every sink (module docstring).

    sources: one source, or a list played one after the other with engine.reset() between.

    stop: set it (from any thread) to end the run after the current block. signals: catch SIGINT,
    SIGTERM and SIGHUP (main thread only). report: where the one-line messages go (stderr).
    lock: held around each engine call, for a sink that reads the engine from another thread
    (the UI). A sink with a `block_arrived(t)` method hears when each block came (monotonic).
    max_seconds: stop after that much audio (over all sources; the last block is cut to fit).
    Errors of the sources (HarkError) end the run and are in RunResult.error, not raised.
    """
    many = isinstance(sources, list | tuple)
    srcs: Sequence[Any] = list(sources) if many else [sources]
    runner = _Runner(engine, sinks, report, stop, lock or nullcontext())
    runner.sources = srcs
    if max_seconds is not None:
        runner.limit = round(max_seconds * engine.sample_rate)
    try:
        with _signals(runner.on_signal, signals):
            for index, source in enumerate(srcs):
                if runner.stop.is_set() or runner.pointless:
                    break
                runner.run_source(index, source)
                if runner.result.error is not None:
                    break
    finally:
        for src in srcs:
            close = getattr(src, "close", None)
            if callable(close):
                close()
        runner.call("close")
    return runner.result


def run_outcomes(
    outcomes: Iterable[FileOutcome],
    sinks: Sequence[Sink],
    *,
    stop: threading.Event | None = None,
    signals: bool = True,
    report: Callable[[str], None] = _say,
) -> RunResult:
    """Hand files replayed elsewhere (`hark.live.corpus`) to the sinks, under run()'s rules.

    outcomes: one per file, in input order (a worker pool's ordered map); each file's events go
    out as its turn comes. A source error ends the run after that file's events, as in run();
    a signal sets `stop` (the pool then stops waiting) and ends it after the last whole file.
    """
    from hark.live.events import Update
    from hark.live.workers import Stopped, WorkerError

    runner = _Runner(None, sinks, report, stop, nullcontext())  # type: ignore[arg-type]
    try:
        with _signals(runner.on_signal, signals):
            for index, out in enumerate(outcomes):
                runner.call("open_source", out.label, index)
                runner.deliver(Update(finished=tuple(out.events), time_s=out.audio_s))
                for line in out.notes:
                    report(line)
                runner.result.audio_s += out.audio_s
                runner.result.truncated.extend(out.truncated)
                if out.error is not None:
                    runner.result.error = out.error
                    break
                if runner.stop.is_set() or runner.pointless:
                    break
    except Stopped:
        pass
    except WorkerError as e:  # not the input's fault: exit 1, like a failed output
        line = f"hark: error: {e}; the {runner.result.events} events up to there were written"
        runner.result.failed.append(line)
        report(line)
    finally:
        runner.call("close")
    return runner.result
