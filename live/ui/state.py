"""What the UI shows, as immutable snapshots, and the latency meter that feeds the numbers.

The audio worker owns the engine; the UI thread never touches it. Instead it asks the session for
a `Snapshot` (copied under a lock, at most 20 times a second) and draws only from that, so a slow
redraw can never hold up audio and a half-updated engine is never drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hark.live.events import Event

STAGES = ("vad", "features", "inference", "smoothing", "e2e")


@dataclass(frozen=True)
class ModelView:
    """One model's part of the display: its roll (oldest -> newest frame) and its state."""

    name: str
    labels: tuple[str, ...]
    event_labels: tuple[str, ...]
    hop_s: float
    roll: np.ndarray  # (C, history) smoothed posteriors
    roll_active: np.ndarray  # (C, history) bool: in an event
    n_frames: int  # frames seen by the smoother (frames of the roll older than that are unseen)
    last_time_s: float | None  # stream time of the newest frame
    thresholds: tuple[tuple[float, float], ...]  # (on, off) per label
    active: dict[str, tuple[float, float]]  # open events: label -> (onset_s, confidence)
    algorithmic_latency_s: float
    sample_rate: int


@dataclass(frozen=True)
class LatencySummary:
    """p50 / p99 in milliseconds per stage over the meter's window; n = blocks measured."""

    p50_ms: dict[str, float]
    p99_ms: dict[str, float]
    n: int
    window_s: float


FROZEN_LATENCY = LatencySummary(
    p50_ms={"vad": 0.02, "features": 0.05, "inference": 0.10, "smoothing": 0.03, "e2e": 1.2},
    p99_ms={"vad": 0.04, "features": 0.09, "inference": 0.25, "smoothing": 0.06, "e2e": 2.5},
    n=100,
    window_s=5.0,
)
"""Fixed numbers for deterministic screenshots (snapshot tests): no timing jitter on screen."""


@dataclass(frozen=True)
class Snapshot:
    """Everything the screen shows at one instant, copied out of the live objects."""

    version: int  # grows with every block fed: unchanged version = nothing to redraw
    source_kind: str  # "mic" | "file"
    source_name: str
    source_index: int  # which file of several (0-based)
    source_count: int
    input_rate: int | None
    sample_rate: int
    time_s: float  # audio consumed from the current source
    duration_s: float | None  # length of the current file, None for a microphone
    level_dbfs: float
    peak: float
    clipping: bool  # a sample reached full scale in the last couple of seconds
    vad_open: bool | None  # None: no model uses the speech gate
    models: tuple[ModelView, ...]
    recent_events: tuple[Event, ...]  # newest last
    n_events: int
    latency: LatencySummary
    dropped_blocks: int
    overflows: int
    engine_cpu: float  # share of one core used by the audio worker thread (0..1)
    finished: bool
    error: str | None = None
    files_written: tuple[str, ...] = field(default=())


class LatencyMeter:
    """Per-block stage times and end-to-end delay over the last `window_s` of wall time.

    A preallocated ring (no growing lists). End to end is estimated for the newest sample of each
    block: queueing delay + compute. For a paced source (microphone, real-time replay) the audio
    clock and the wall clock run together, so `arrival - audio_end` is constant up to the delay a
    block waited in the queue; the smallest such offset in the window is taken as zero delay. An
    unpaced source (fast replay) has no meaningful delay: its end to end is the compute time.
    """

    def __init__(self, window_s: float = 5.0, capacity: int = 4096) -> None:
        self.window_s = float(window_s)
        self._cap = int(capacity)
        # columns: wall time, vad, features, inference, smoothing, e2e, clock offset
        self._rows = np.zeros((self._cap, 7), dtype=np.float64)
        self._n = 0

    def add(
        self,
        done_s: float,
        vad_s: float,
        features_s: float,
        inference_s: float,
        smoothing_s: float,
        arrival_s: float,
        audio_end_s: float,
        paced: bool,
    ) -> None:
        """Record one fed block: stage seconds, when it arrived and when its processing ended."""
        offset = arrival_s - audio_end_s
        if paced:
            live = self._live_rows(done_s)
            best = min(offset, float(live[:, 6].min())) if len(live) else offset
            e2e = done_s - audio_end_s - best
        else:
            e2e = done_s - arrival_s
        row = self._rows[self._n % self._cap]
        row[:] = (done_s, vad_s, features_s, inference_s, smoothing_s, e2e, offset)
        self._n += 1

    def _live_rows(self, now_s: float) -> np.ndarray:
        rows = self._rows[: min(self._n, self._cap)]
        return rows[rows[:, 0] >= now_s - self.window_s]

    def reset(self) -> None:
        self._n = 0

    def summary(self, now_s: float) -> LatencySummary:
        """p50 / p99 (ms) of every stage over the blocks of the last window_s seconds."""
        live = self._live_rows(now_s)
        if not len(live):
            zero = {s: 0.0 for s in STAGES}
            return LatencySummary(zero, dict(zero), 0, self.window_s)
        p = np.percentile(live[:, 1:6], [50.0, 99.0], axis=0) * 1000.0
        return LatencySummary(
            {s: float(p[0, i]) for i, s in enumerate(STAGES)},
            {s: float(p[1, i]) for i, s in enumerate(STAGES)},
            len(live),
            self.window_s,
        )
