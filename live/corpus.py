"""`hark replay FILE... --jobs N / --ray`: one file's replay as a unit of work for a worker.

A worker replays its file with hark's one loop (`pipeline.run` into a collector, the engine it
keeps for every file it is given, reset in between as the serial run resets it) and sends back
what the sinks would have received; `pipeline.run_outcomes` hands those to the real sinks in input
order, under the same fault rules. The events, lines and files written equal the serial run's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hark.live.errors import HarkError
from hark.live.events import Event
from hark.live.workers import AudioFile, WorkerState


@dataclass
class FileOutcome:
    """What replaying one file produced: the sinks' input and the run's verdict on it."""

    label: str  # the path as given: what a multi-file listing names
    events: list[Event] = field(default_factory=list)  # finished events in order (closing last)
    audio_s: float = 0.0
    error: str | None = None  # the source failed (its events up to there are kept)
    truncated: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # warning lines the serial run prints


def replay_task(state: WorkerState, item: AudioFile, *, cfg: Any, raw: Any = None) -> FileOutcome:
    """Replay one file through this worker's engine (built once, reset for every file)."""
    from hark.live.cli import make_engine
    from hark.live.pipeline import run
    from hark.live.sinks import CollectSink

    engine = state.keep("engine", lambda: make_engine(state.models, cfg))
    engine.reset()
    try:
        source = item.source(engine.sample_rate, raw=raw)
    except HarkError as e:  # changed since the driver opened it
        return FileOutcome(str(item.path), error=str(e))
    collect = CollectSink()
    out = FileOutcome(source.label)
    result = run(source, engine, [collect], signals=False, report=out.notes.append)
    out.events = collect.events
    out.audio_s = result.audio_s
    out.error = result.error
    out.truncated = result.truncated
    return out
