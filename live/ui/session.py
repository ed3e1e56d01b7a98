"""A UI session: the screen's sink on hark's one pipeline (hark.live.pipeline.run).

`run()` is the audio loop (the app runs it in a textual thread worker): pipeline.run drains the
sources into the engine and hands every Update to the session (a sink: it keeps the events for
the screen and records latency) and to the --out file sink, under the pipeline's fault rules. The
UI thread calls `snapshot()` and the commands (`reset_models`, `adjust_threshold`, `save`); all of
them take the same lock the pipeline holds around each engine call, which is short (one
`Engine.feed`), so neither side waits long and the engine only ever sees one caller at a time.

Built from files at `realtime=False` a session runs as fast as it can and deterministically,
which is what tests use; `run_ui` builds it from the command line's choices.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from hark.live.engine import Engine, EngineOptions
from hark.live.errors import HarkError
from hark.live.events import Event, Update, open_writer
from hark.live.sinks import BaseSink, LineSink, file_sink
from hark.live.ui.state import FROZEN_LATENCY, LatencyMeter, ModelView, Snapshot

CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipping (float full scale is 1.0)
CLIP_HOLD_S = 2.0  # the clipping mark stays on this long (audio time) after the last clip
RECENT_EVENTS = 50  # finished events kept for the list on screen
FORMAT_SUFFIX = {"jsonl": ".jsonl", "csv": ".csv", "tsv": ".tsv"}


@dataclass(frozen=True)
class SessionSummary:
    """What the one-paragraph exit message says."""

    n_events: int
    audio_s: float
    sources: tuple[str, ...]
    models: tuple[str, ...]
    out: Path | None
    saved: tuple[Path, ...]
    error: str | None
    saved_events: int = 0  # events in the last file the 's' key wrote

    def text(self) -> str:
        """The paragraph printed to the terminal when the UI closes.

        It says where the events are: --out has them all; without it, the last 's' wrote the
        events up to then, and only those after it (if any) are in no file.
        """
        src = ", ".join(self.sources)
        parts = [
            f"hark: {self.n_events} event{'s' if self.n_events != 1 else ''} in "
            f"{self.audio_s:.1f} s of audio from {src} ({', '.join(self.models)})."
        ]
        if self.out is not None:
            parts.append(f"Events were written to {self.out} as they finished.")
        if self.saved:
            events = [p for p in self.saved if p.suffix != ".png"]
            rolls = [p for p in self.saved if p.suffix == ".png"]
            count = _plural(self.saved_events, "event")
            if len(events) == 1:
                said = f"Pressing s saved {count} to {events[0]}"
            else:
                said = (f"Pressing s saved the events to {', '.join(map(str, events))} (the "
                        f"last save: {count})")
            parts.append(f"{said} and the roll to {', '.join(map(str, rolls))}.")
        if self.out is None:
            later = self.n_events - self.saved_events
            if not self.saved:
                parts.append("Events were not written to a file (use --out FILE, or press s).")
            elif later > 0:
                parts.append(f"The {_plural(later, 'event')} after the last s were not written "
                             "to a file (use --out FILE).")
        if self.error:
            parts.append(f"Stopped on an error: {self.error}")
        return " ".join(parts)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class UISession:
    """Sources played one after the other through a fresh engine each, events to `out`.

    sources: objects with `blocks()`, `name`, `stats` and `close()` (live.sources FileSource /
    MicSource or a test double); kind "file" or "mic" only changes labels. paced: the source
    delivers at wall-clock speed (mic, real-time replay), which makes end-to-end latency
    meaningful. max_seconds stops after that much audio (hark mic --seconds).
    """

    def __init__(
        self,
        models: Sequence[Any],
        sources: Sequence[Any],
        *,
        kind: str = "file",
        paced: bool = False,
        engine_options: EngineOptions | None = None,
        out: Path | None = None,
        fmt: str = "jsonl",
        roll_seconds: float = 10.0,
        max_seconds: float | None = None,
        save_dir: Path | None = None,
        latency_window_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not sources:
            raise ValueError("a session needs at least one source")
        if roll_seconds <= 0:
            raise HarkError("--roll-seconds must be positive")
        self.models = list(models)
        self.sources = list(sources)
        self.kind = kind
        self.paced = paced
        self.fmt = fmt
        self.roll_seconds = float(roll_seconds)
        self.max_seconds = max_seconds
        self.out = out
        self.save_dir = save_dir
        self._clock = clock
        hops = [m.card.decision_hop_s() for m in self.models]
        # the roll shows about roll_seconds; twice that in history leaves room for wide terminals
        history = max(16, math.ceil(2 * self.roll_seconds / min(hops)))
        base = engine_options or EngineOptions()
        self._options = EngineOptions(
            vad=base.vad,
            vad_kind=base.vad_kind,
            vad_mode=base.vad_mode,
            reset_after_silence=base.reset_after_silence,
            record=base.record,
            history=history,
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._started = False
        self._thresholds: dict[tuple[int, str], tuple[float, float]] = {}
        self.engine = self._new_engine()
        self.meter = LatencyMeter(latency_window_s)
        self._writer: LineSink | None = file_sink(out, fmt) if out is not None else None
        self._arrival = 0.0
        self._cpu_mark = (time.thread_time(), clock())
        self._last_time_s = 0.0
        self._recent: deque[Event] = deque(maxlen=RECENT_EVENTS)
        self.events: list[Event] = []  # every finished event of the session, all sources
        self._audio_s_done = 0.0  # audio of the sources already finished
        self._source_index = 0
        self._version = 0
        self._clip_until = -1.0
        self._engine_cpu = 0.0
        self.resets = 0
        self.error: str | None = None
        self.saved: list[Path] = []
        self.saved_events = 0  # how many events the last save wrote

    # ---- construction ------------------------------------------------------------------------
    def _new_engine(self) -> Engine:
        rate = max(int(m.card.sample_rate) for m in self.models)
        engine = Engine(self.models, self._options, sample_rate=rate)
        for (i, label), (on, off) in self._thresholds.items():
            engine.streams[i].smoother.set_threshold(label, on, off)
        return engine

    # ---- the audio loop (worker thread) ------------------------------------------------------
    def run(self) -> None:
        """Drain every source into the engine until the end, stop() or max_seconds.

        Errors are kept in `error` (shown by the UI, reported on exit), never raised into the
        worker: the app decides how to end. Open events are closed and written in every case
        (the pipeline's rules: a source that fails still gets engine.close()).
        """
        from hark.live.pipeline import run

        self._started = True
        sinks: list[Any] = [_Screen(self)]
        if self._writer is not None:
            sinks.append(self._writer)
        problems: list[str] = []
        try:
            result = run(self.sources, self.engine, sinks, stop=self._stop, signals=False,
                         report=problems.append, lock=self._lock, max_seconds=self.max_seconds)
            if result.error is not None:
                self.error = result.error
            elif result.failed:
                self.error = result.failed[0].removeprefix("hark: error: ")
        except Exception as e:  # noqa: BLE001 - shown on screen and in the exit summary
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self._writer = None  # closed by the pipeline
            self._finished.set()

    # ---- the sink side (called by the pipeline on the worker thread) -------------------------
    def open_source(self, name: str, index: int) -> None:
        """A new source: the engine was reset; count the audio so far and keep the thresholds."""
        with self._lock:
            if index:
                self._audio_s_done += self._last_time_s
                self._last_time_s = 0.0
            for (i, label), (on, off) in self._thresholds.items():
                self.engine.streams[i].smoother.set_threshold(label, on, off)
            self._source_index = index
            self._version += 1

    def block_arrived(self, t: float) -> None:
        """When the block about to be fed came out of the source (for end-to-end latency)."""
        self._arrival = t

    def feed(self, update: Update, engine: Engine) -> None:
        """Record the block's latency and level, and keep its finished events for the screen."""
        now = self._clock()
        with self._lock:
            self._last_time_s = engine.time_s
            t = engine.last_times
            self.meter.add(now, t.vad, t.features, t.inference, t.smoothing, self._arrival,
                           engine.time_s, self.paced)
            if engine.peak >= CLIP_LEVEL:
                self._clip_until = engine.time_s + CLIP_HOLD_S
            self._version += 1
            for ev in update.finished:
                self.events.append(ev)
                self._recent.append(ev)
        if now - self._cpu_mark[1] >= 1.0:
            tt = time.thread_time()
            self._engine_cpu = (tt - self._cpu_mark[0]) / (now - self._cpu_mark[1])
            self._cpu_mark = (tt, now)

    def stop(self) -> None:
        """Ask run() to end after the current block (safe from any thread)."""
        self._stop.set()
        for source in self.sources:
            stop = getattr(source, "stop", None)
            if callable(stop):
                stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for run() to have ended; True if it has (or never started)."""
        if not self._started:
            return True
        return self._finished.wait(timeout)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def close(self) -> SessionSummary:
        """After run(): close the writer and the sources; return the exit summary."""
        if self._writer is not None:  # run() never ran
            self._writer.close()
            self._writer = None
        for source in self.sources:
            close = getattr(source, "close", None)
            if callable(close):
                close()
        return self.summary()

    def summary(self) -> SessionSummary:
        with self._lock:
            audio_s = self._audio_s_done + self.engine.time_s
            n = len(self.events)
        return SessionSummary(
            n_events=n,
            audio_s=audio_s,
            sources=tuple(str(getattr(s, "name", "input")) for s in self.sources),
            models=tuple(m.name for m in self.models),
            out=self.out,
            saved=tuple(self.saved),
            error=self.error,
            saved_events=self.saved_events,
        )

    # ---- commands from the UI thread ---------------------------------------------------------
    def reset_models(self) -> None:
        """Forget every model's recurrent state (the 'r' key); events and features carry on."""
        with self._lock:
            self.engine.reset_models()
            self.resets += 1
            self._version += 1

    def adjust_threshold(self, model: int, label: str, delta: float) -> tuple[float, float]:
        """Move a class's on threshold by delta (its off threshold keeps the same gap)."""
        with self._lock:
            smoother = self.engine.streams[model].smoother
            on, off = smoother.threshold(label)
            new_on = round(min(1.0, max(0.0, on + delta)), 2)
            new_off = round(min(new_on, max(0.0, off + (new_on - on))), 2)
            smoother.set_threshold(label, new_on, new_off)
            self._thresholds[(model, label)] = (new_on, new_off)
            self._version += 1
            return new_on, new_off

    def threshold(self, model: int, label: str) -> tuple[float, float]:
        with self._lock:
            return self.engine.streams[model].smoother.threshold(label)

    @property
    def n_events(self) -> int:
        with self._lock:
            return len(self.events)

    @property
    def version(self) -> int:
        """Grows whenever something on screen may have changed."""
        return self._version

    @property
    def sample_rate(self) -> int:
        return int(self.engine.sample_rate)

    # ---- snapshot ----------------------------------------------------------------------------
    def snapshot(self, frozen: bool = False) -> Snapshot:
        """Copy what the screen needs; frozen=True replaces timing numbers by fixed ones."""
        now = self._clock()
        with self._lock:
            engine = self.engine
            source = self.sources[self._source_index]
            views = tuple(self._model_view(i) for i in range(len(engine.streams)))
            gates = [s.gate for s in engine.streams if s.gate is not None]
            stats = getattr(source, "stats", None)
            snap = Snapshot(
                version=self._version,
                source_kind=self.kind,
                source_name=str(getattr(source, "name", "input")),
                source_index=self._source_index,
                source_count=len(self.sources),
                input_rate=getattr(source, "input_rate", None),
                sample_rate=engine.sample_rate,
                time_s=engine.time_s,
                duration_s=getattr(source, "duration_s", None),
                level_dbfs=float(engine.level_dbfs),
                peak=float(engine.peak),
                clipping=engine.time_s < self._clip_until,
                vad_open=any(g.is_open for g in gates) if gates else None,
                models=views,
                recent_events=tuple(self._recent),
                n_events=len(self.events),
                latency=FROZEN_LATENCY if frozen else self.meter.summary(now),
                dropped_blocks=int(getattr(stats, "dropped_blocks", 0) or 0),
                overflows=int(getattr(stats, "overflows", 0) or 0),
                engine_cpu=0.03 if frozen else self._engine_cpu,
                finished=self._finished.is_set(),
                error=self.error,
                files_written=tuple(str(p) for p in self.saved),
            )
        return snap

    def _model_view(self, i: int) -> ModelView:
        stream = self.engine.streams[i]
        sm = stream.smoother
        return ModelView(
            name=stream.card.name,
            labels=sm.labels,
            event_labels=sm.event_labels,
            hop_s=sm.hop_s,
            roll=sm.roll(),
            roll_active=sm.roll_active(),
            n_frames=sm.n_frames,
            last_time_s=sm.last_time_s,
            thresholds=tuple(sm.threshold(lb) for lb in sm.labels),
            active=sm.active,
            algorithmic_latency_s=stream.card.algorithmic_latency_s(),
            sample_rate=stream.card.sample_rate,
        )

    # ---- saving (the 's' key) ----------------------------------------------------------------
    def save(self, directory: Path | None = None, stamp: str | None = None) -> list[Path]:
        """Write every event so far and a PNG of the current roll; return the two paths."""
        from hark.live.ui.export_png import save_roll_png

        directory = Path(directory or self.save_dir or Path.cwd())
        directory.mkdir(parents=True, exist_ok=True)
        stamp = stamp or datetime.now().strftime("%Y%m%d-%H%M%S")
        events_path = _unique(directory / f"hark-events-{stamp}{FORMAT_SUFFIX[self.fmt]}")
        png_path = _unique(directory / f"hark-roll-{stamp}.png")
        with self._lock:
            events = list(self.events)
        with open_writer(events_path, self.fmt) as writer:
            for ev in events:
                writer.write(ev)
        save_roll_png(self.snapshot(frozen=True), png_path, self.roll_seconds)
        with self._lock:
            self.saved.extend([events_path, png_path])
            self.saved_events = len(events)
            self._version += 1
        return [events_path, png_path]


class _Screen(BaseSink):
    """The session as the pipeline's sink (the session's own close() ends the whole UI)."""

    name = "screen"

    def __init__(self, session: UISession) -> None:
        self.session = session

    def open_source(self, name: str, index: int) -> None:
        self.session.open_source(name, index)

    def block_arrived(self, t: float) -> None:
        self.session.block_arrived(t)

    def feed(self, update: Update, engine: Engine) -> None:
        self.session.feed(update, engine)


def _unique(path: Path) -> Path:
    """path, or path with -2, -3... before the suffix if it exists (two saves in a second)."""
    if not path.exists():
        return path
    k = 2
    while True:
        cand = path.with_name(f"{path.stem}-{k}{path.suffix}")
        if not cand.exists():
            return cand
        k += 1
