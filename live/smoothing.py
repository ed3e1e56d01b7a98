"""Per-frame posteriors -> a stable event roll: smoothing, hysteresis, min duration, min gap.

Per frame and class (DESIGN.md "smoother"):
1. smoothing: causal median over the trailing `median_frames` rows, or EMA (`ema_alpha`), or none.
   Both delay a step change (a median by median_frames // 2 frames); times are NOT corrected for
   that: events carry raw frame times and the card's `algorithmic_latency_s` documents the delay.
2. hysteresis: an inactive class turns on at the first frame with smoothed >= threshold_on (the
   onset); an active one turns off at the first frame with smoothed < threshold_off (the offset).
   With threshold_rise set, the onset is back-dated to the first frame of the run in which the
   class has stayed >= threshold_rise (never before the end of the previous event: the class's
   own, or any class's when multiclass). A recogniser is only sure of a word some 100 ms into it,
   but its posterior starts to climb near the word's start: the event is still emitted when it is
   confirmed, it just says when the sound began.
   Likewise offset_advance_ms moves offsets earlier by whole hops (never to or before the onset):
   a model trained to hold a label for some ms past a word's end (a label tail) would otherwise
   report every word that much too long. Events cut by close() or a stream gap are not moved.
3. debounce ("patience"), both from the card's SmoothingSpec:
   - min_off_ms bridges dropouts: a class that turns on again less than min_off_ms after it
     turned off continues the same event. So an event is only final (and returned) once it has
     stayed off for min_off_ms, when another class takes over (multiclass), or on close().
   - min_on_ms drops blips: a finished event on for less than min_on_ms (from the frame that
     reached threshold_on, whatever its back-dated onset) is never returned.
Multiclass: at most one event-class is open at a time; the open class keeps priority while it stays
>= threshold_off, and when none is on the highest class >= threshold_on starts (ties: first label).
Multilabel: classes are independent. Ignored labels (_silence_, ...) never become events but their
smoothed posteriors are kept in the roll like any other.

Everything is computed frame by frame from the frame's own index, so any split of the same rows
into `update` calls gives identical events, roll and state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hark.live.card import TASKS, ModelCard, SmoothingSpec
from hark.live.errors import HarkError
from hark.live.events import Event

_EPS_S = 1e-6  # tolerance when comparing durations built from float hops (far below any hop)


class SmoothingError(HarkError, ValueError):
    """A smoother configuration or input that cannot work (thresholds, labels, shapes, times)."""


@dataclass(slots=True)
class _Open:
    """One open event of one class; while the class is off (off_s set) it may still resume."""

    onset_s: float
    onset_frame: int
    confirm_s: float  # when threshold_on was reached (= onset_s unless back-dated)
    peak: float
    total: float
    count: int
    off_s: float | None = None  # time of the first frame below threshold_off, while pending
    off_frame: int = 0
    gap_peak: float = 0.0  # statistics of the frames since off_s: they join the event if it resumes
    gap_total: float = 0.0
    gap_count: int = 0
    cut: bool = False  # ended by a gap in the stream, not by its posterior


def _check_thresholds(on: float, off: float) -> None:
    if not (0.0 <= off <= on <= 1.0):
        raise SmoothingError(f"thresholds need 0 <= off <= on <= 1 (got on={on}, off={off})")


class Smoother:
    """Turns per-frame posteriors of one model into events and keeps the recent roll for the UI.

    `update` is the hot path (one row per 10 ms hop): per row it does a small sort (median) or one
    vector update (EMA), one vector comparison, two ring-buffer row writes, and Python work only
    for classes that are open or change state.
    """

    def __init__(
        self,
        labels: Sequence[str],
        spec: SmoothingSpec,
        hop_s: float,
        task: str = "multiclass",
        ignore_labels: Sequence[str] = (),
        history: int = 500,
        model: str = "",
        thresholds: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        """thresholds: optional per-label (on, off) overriding the spec's (not in the card yet)."""
        self.labels = tuple(labels)
        if not self.labels or len(set(self.labels)) != len(self.labels):
            raise SmoothingError("labels must be a non-empty list of distinct names")
        if task not in TASKS:
            raise SmoothingError(f"unknown task {task!r} (expected multiclass or multilabel)")
        unknown = set(ignore_labels) - set(self.labels)
        if unknown:
            raise SmoothingError(f"ignore_labels {sorted(unknown)} are not among the labels")
        if not (hop_s > 0 and math.isfinite(hop_s)):
            raise SmoothingError(f"hop_s must be > 0 (got {hop_s})")
        if history < 1:
            raise SmoothingError(f"history must be >= 1 frame (got {history})")
        if spec.method not in ("median", "ema", "none"):
            raise SmoothingError(f"unknown smoothing method {spec.method!r}")
        if spec.method == "median" and spec.median_frames < 1:
            raise SmoothingError(f"median_frames must be >= 1 (got {spec.median_frames})")
        if spec.method == "ema" and not (0.0 < spec.ema_alpha <= 1.0):
            raise SmoothingError(f"ema_alpha must be in (0, 1] (got {spec.ema_alpha})")
        if spec.min_on_ms < 0 or spec.min_off_ms < 0:
            raise SmoothingError("min_on_ms and min_off_ms must be >= 0")
        _check_thresholds(spec.threshold_on, spec.threshold_off)
        rise = spec.threshold_rise
        if rise is not None and not (0.0 <= rise <= spec.threshold_on):
            raise SmoothingError(f"threshold_rise must be in [0, threshold_on] (got {rise})")

        self.spec = spec
        self.hop_s = float(hop_s)
        self.task = task
        self.multiclass = task == "multiclass"
        self.ignore_labels = tuple(lb for lb in self.labels if lb in set(ignore_labels))
        self.event_labels = tuple(lb for lb in self.labels if lb not in set(ignore_labels))
        self.model = model
        self.history = int(history)
        self._index = {lb: i for i, lb in enumerate(self.labels)}
        n = len(self.labels)
        self._n = n
        self._is_event = [lb not in self.ignore_labels for lb in self.labels]
        self._min_on_s = spec.min_on_ms / 1000.0
        self._min_off_s = spec.min_off_ms / 1000.0
        if spec.offset_advance_ms < 0:
            raise SmoothingError("offset_advance_ms must be >= 0")
        self._advance = int(round(spec.offset_advance_ms / 1000.0 / self.hop_s))  # in frames

        # thresholds: Python lists for scalar reads in the loop; `_start_at` is the vector the
        # onset test compares against: threshold_on for classes that may start, +inf otherwise
        # (ignored labels, classes already on), so one comparison finds every onset candidate.
        self._on = [float(spec.threshold_on)] * n
        self._off = [float(spec.threshold_off)] * n
        self._start_at = np.where(self._is_event, spec.threshold_on, np.inf).astype(np.float64)

        # onset back-dating: per class, the first frame (index, time) of the current run at or
        # above its rise threshold (-1: not in a run), and the end of its previous event (floor)
        self._rise_on = rise is not None
        self._rise_frac = float(rise) if rise is not None else 0.0
        self._rise = np.where(self._is_event, self._rise_frac, np.inf).astype(np.float64)
        self._rise_g = np.full(n, -1, dtype=np.int64)
        self._rise_t = np.zeros(n, dtype=np.float64)
        # which classes were at or above their rise threshold on the previous frame: a run
        # starts where a class is above now and was not then (after a gap, none was)
        self._above = np.zeros(n, dtype=bool)
        self._floor_g = np.full(n, -1, dtype=np.int64)
        self._floor_t = np.zeros(n, dtype=np.float64)

        # filters
        self._method = spec.method
        self._m = int(spec.median_frames) if spec.method == "median" else 1
        self._ring = np.zeros((self._m, n), dtype=np.float64)
        self._alpha = float(spec.ema_alpha)
        self._ema: np.ndarray | None = None
        self._mpos = 0
        self._mfill = 0

        # roll: ring buffers of (history, C); row (n_frames - 1) % history is the newest frame
        self._roll = np.zeros((self.history, n), dtype=np.float64)
        self._ract = np.zeros((self.history, n), dtype=bool)
        self._open_mask = np.zeros(n, dtype=bool)

        self._open: dict[int, _Open] = {}
        self._n_on = 0  # open classes that are currently on (not in a gap)
        self._n_frames = 0
        self._seg_t0: float | None = None  # time base of the current run of contiguous frames
        self._seg_k = 0  # frames in that run so far
        self._last_t: float | None = None
        self._out: list[Event] = []
        for label, (on, off) in (thresholds or {}).items():
            self.set_threshold(label, on, off)

    @classmethod
    def from_card(cls, card: ModelCard, history: int = 500) -> Smoother:
        """The smoother a model card asks for (labels, task, ignore_labels, smoothing, hop)."""
        return cls(
            card.labels,
            card.smoothing,
            card.decision_hop_s(),
            task=card.task,
            ignore_labels=card.ignore_labels,
            history=history,
            model=card.name,
        )

    # ---- hot path --------------------------------------------------------------------------------
    def update(self, posteriors: np.ndarray, t0_s: float) -> list[Event]:
        """Consume rows (n, C) (or one row (C,)); row i is the frame at t0_s + i * hop_s.

        Returns the events that became final during these rows, in the order they did. A t0_s
        that continues the previous rows (within half a hop) keeps one time base, so frame times
        do not depend on how rows were split; a later t0_s is a gap in the stream: open events
        turn off where the last frame ended. An earlier t0_s is an error (reset() first).
        Values are not checked (hot path): a NaN compares below every threshold.
        """
        x = np.asarray(posteriors)
        if x.dtype.kind != "f":  # float32 rows are compared and stored as they are (exact)
            x = x.astype(np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self._n:
            raise SmoothingError(
                f"posteriors must be (frames, {self._n}) for {self._n} labels, got {x.shape}"
            )
        n = x.shape[0]
        if n == 0:
            return []
        base, k, hop = self._seg_t0, self._seg_k, self.hop_s
        if base is None or abs(t0_s - (base + k * hop)) > 0.5 * hop:  # else: continues the run
            self._align(float(t0_s))
            base, k = self._seg_t0, self._seg_k
        assert base is not None
        out = self._out = []
        if n == 1:  # the live hop
            self._step(self._smooth(x[0]), base + k * hop)
        else:
            for i in range(n):
                self._step(self._smooth(x[i]), base + (k + i) * hop)
        self._seg_k = k + n
        self._last_t = base + (k + n - 1) * hop
        return out

    def _smooth(self, row: np.ndarray) -> np.ndarray:
        """Smoothed posteriors of one frame (causal: this frame and the ones before)."""
        if self._method == "median":
            m = self._m
            if m == 1:
                return row
            ring = self._ring
            ring[self._mpos] = row
            self._mpos = (self._mpos + 1) % m
            if self._mfill < m:
                self._mfill += 1
            k = self._mfill  # a shorter window until m frames have been seen (start, reset)
            srt = ring.copy() if k == m else ring[:k].copy()
            srt.sort(axis=0)  # in place on a copy: ~25% less than np.sort for a few rows
            if k & 1:
                return srt[k >> 1]
            return (srt[(k >> 1) - 1] + srt[k >> 1]) * 0.5
        if self._method == "ema":
            if self._ema is None:  # start at the first value, not at 0: no fake fade-in
                self._ema = row.astype(np.float64)
            else:
                self._ema += self._alpha * (row - self._ema)
            return self._ema
        return row

    def _step(self, s: np.ndarray, t: float) -> None:
        """Hysteresis and debounce for one smoothed frame at time t (frame index n_frames)."""
        g = self._n_frames
        if self._rise_on:
            above = s >= self._rise
            fresh = above > self._above  # above now, not on the previous frame
            self._above = above
            if np.count_nonzero(fresh):  # ~4x cheaper than .any() on a 12-element row
                self._rise_g[fresh] = g
                self._rise_t[fresh] = t
        if self._open:
            vals = s.tolist()
            for c, ev in list(self._open.items()):
                v = vals[c]
                if ev.off_s is None:
                    if v >= self._off[c]:
                        ev.total += v
                        ev.count += 1
                        if v > ev.peak:
                            ev.peak = v
                        continue
                    ev.off_s, ev.off_frame = t, g  # turns off: pending, may resume within min_off
                    ev.gap_peak, ev.gap_total, ev.gap_count = v, v, 1
                    self._n_on -= 1
                    self._start_at[c] = self._on[c]  # open classes are never ignored labels
                    if t - ev.off_s >= self._min_off_s - _EPS_S:
                        self._finish(c, ev.off_s, g)
                elif t - ev.off_s >= self._min_off_s - _EPS_S:
                    self._finish(c, ev.off_s, g)  # off for min_off: final
                else:
                    ev.gap_total += v
                    ev.gap_count += 1
                    if v > ev.gap_peak:
                        ev.gap_peak = v
        if not (self.multiclass and self._n_on):
            hits = s >= self._start_at
            if np.count_nonzero(hits):
                if self.multiclass:
                    cand = np.flatnonzero(hits)
                    vals_c = s[cand]
                    j = int(np.argmax(vals_c))  # the highest; ties go to the first label
                    self._start(int(cand[j]), float(vals_c[j]), t, g)
                else:
                    for c in np.flatnonzero(hits).tolist():
                        self._start(c, float(s[c]), t, g)
        pos = g % self.history
        self._roll[pos] = s
        self._ract[pos] = self._open_mask
        self._n_frames = g + 1

    def _start(self, c: int, v: float, t: float, g: int) -> None:
        """Class c reaches threshold_on at frame g: resume its pending event or open a new one."""
        ev = self._open.get(c)
        if ev is not None:  # back within min_off: the same event, the gap becomes part of it
            ev.total += ev.gap_total
            ev.count += ev.gap_count
            ev.peak = max(ev.peak, ev.gap_peak)
            ev.off_s = None
        else:
            if self.multiclass:  # another class takes over: a pending event is final now
                for other in list(self._open):
                    pending = self._open[other]
                    assert pending.off_s is not None
                    self._finish(other, pending.off_s, g)
            onset_s, onset_g = t, g
            if self._rise_on and self._above[c] and 0 <= self._rise_g[c] < g:
                onset_s, onset_g = float(self._rise_t[c]), int(self._rise_g[c])
                if onset_g < self._floor_g[c]:
                    onset_s, onset_g = float(self._floor_t[c]), int(self._floor_g[c])
                # the roll shows the back-dated part as active (erased again if dropped)
                first = max(onset_g, g - self.history + 1)
                if first < g:
                    self._ract[np.arange(first, g) % self.history, c] = True
            self._open[c] = _Open(onset_s=onset_s, onset_frame=onset_g, confirm_s=t, peak=v,
                                  total=v, count=1)
            self._open_mask[c] = True
        self._n_on += 1
        self._start_at[c] = np.inf

    def _finish(self, c: int, offset_s: float, g: int) -> None:
        """Close class c's event at offset_s, decided at frame g; emit it unless too short."""
        ev = self._open.pop(c)
        self._open_mask[c] = False
        if ev.off_s is None:  # still on (close, or a gap in the stream)
            self._n_on -= 1
            self._start_at[c] = self._on[c]
            end_frame = g
        else:
            end_frame = ev.off_frame
        offset_s = max(offset_s, ev.onset_s)
        # min_on judges the confirmed part only: back-dating says when, it does not keep blips
        keep = offset_s - ev.confirm_s >= self._min_on_s - _EPS_S
        if keep and self._advance and ev.off_s is not None and not ev.cut:
            back = min(self._advance, end_frame - ev.onset_frame - 1)
            if back > 0:
                end_frame -= back
                offset_s -= back * self.hop_s
        if keep and self._rise_on:  # later onsets are not back-dated into this event
            floor = slice(None) if self.multiclass else c
            self._floor_g[floor] = end_frame
            self._floor_t[floor] = offset_s
        # the roll showed the open event (and its gap) tentatively; erase what did not happen
        self._erase(c, ev.onset_frame if not keep else end_frame, g)
        if keep:
            self._out.append(
                Event(
                    self.labels[c],
                    round(ev.onset_s, 6),
                    round(offset_s, 6),
                    peak=ev.peak,
                    mean=ev.total / ev.count,
                    model=self.model,
                )
            )

    def _erase(self, c: int, first: int, stop: int) -> None:
        """Mark frames [first, stop) of class c inactive in the roll (those still in it)."""
        first = max(first, self._n_frames - self.history)
        stop = min(stop, self._n_frames)
        if first < stop:
            self._ract[np.arange(first, stop) % self.history, c] = False

    def _align(self, t0_s: float) -> None:
        """Continue the time base, or start a new one after a gap in the stream."""
        if self._seg_t0 is None:
            self._seg_t0, self._seg_k = t0_s, 0
            return
        expected = self._seg_t0 + self._seg_k * self.hop_s
        if abs(t0_s - expected) <= 0.5 * self.hop_s:
            return
        if t0_s < expected:
            raise SmoothingError(
                f"posteriors at {t0_s:.3f} s go back in time (next frame was due at "
                f"{expected:.3f} s); call reset() for a new stream"
            )
        # a gap: classes that are on turn off where the last frame ended; pending ones keep
        # their off time, so min_off is measured in stream time across the gap
        for c, ev in self._open.items():
            if ev.off_s is None:
                ev.off_s, ev.off_frame, ev.cut = expected, self._n_frames, True
                ev.gap_peak, ev.gap_total, ev.gap_count = 0.0, 0.0, 0
                self._n_on -= 1
                self._start_at[c] = self._on[c]
        self._rise_g[:] = -1  # a rise run does not span a gap
        self._above[:] = False
        self._seg_t0, self._seg_k = t0_s, 0

    # ---- end of stream, reset --------------------------------------------------------------------
    def close(self, t_end_s: float | None = None) -> list[Event]:
        """End every open event and return those long enough (the Ctrl-C / end-of-file path).

        An event that is on ends at t_end_s (default: the last frame's time + hop); one in a gap
        ends where it turned off. Filters, roll and clock are kept (the UI may still show them);
        a later update starts new events. Use reset() for a new stream.
        """
        self._out = []
        if self._open:
            last = self.last_time_s
            assert last is not None
            end = last + self.hop_s if t_end_s is None else float(t_end_s)
            for c in sorted(self._open, key=lambda c: (self._open[c].onset_frame, c)):
                ev = self._open[c]
                self._finish(c, end if ev.off_s is None else ev.off_s, self._n_frames)
        out, self._out = self._out, []
        return out

    def reset(self, close_events: bool = True) -> list[Event]:
        """Forget the stream: events, filters, roll and clock (run-time thresholds are kept).

        close_events=True returns the open events closed as by close(); False discards them
        (e.g. a stream that was abandoned). For a reset of the smoothing filters alone (the engine
        restarting a model's recurrent state mid-stream) use reset_filters().
        """
        out = self.close() if close_events else []
        self._open.clear()
        self._open_mask[:] = False
        self._n_on = 0
        self._start_at[:] = [self._on[c] if self._is_event[c] else np.inf for c in range(self._n)]
        self.reset_filters()
        self._roll[:] = 0.0
        self._ract[:] = False
        self._n_frames = 0
        self._seg_t0, self._seg_k, self._last_t = None, 0, None
        self._rise_g[:] = -1
        self._above[:] = False
        self._floor_g[:] = -1
        return out

    def reset_filters(self) -> None:
        """Forget the median window / EMA state only; events, roll and clock carry on.

        The next frame is smoothed as if it were the first (a median over the frames seen since,
        an EMA starting at that frame), so posteriors from before a model reset do not leak in.
        """
        self._ring[:] = 0.0
        self._mpos = 0
        self._mfill = 0
        self._ema = None

    # ---- run-time control and read access for the UI ---------------------------------------------
    def set_threshold(self, label: str, on: float, off: float) -> None:
        """Change one class's hysteresis thresholds from the next frame on (the UI's +/- keys)."""
        c = self._class(label)
        on, off = float(on), float(off)
        _check_thresholds(on, off)
        self._on[c], self._off[c] = on, off
        if self._is_event[c]:
            self._rise[c] = min(self._rise_frac, on)
        if self._is_event[c] and not (c in self._open and self._open[c].off_s is None):
            self._start_at[c] = on

    def threshold(self, label: str) -> tuple[float, float]:
        """(threshold_on, threshold_off) in force for `label`."""
        c = self._class(label)
        return self._on[c], self._off[c]

    def _class(self, label: str) -> int:
        try:
            return self._index[label]
        except KeyError:
            raise SmoothingError(f"unknown label {label!r}") from None

    @property
    def active(self) -> dict[str, tuple[float, float]]:
        """Open events: label -> (onset_s, current smoothed confidence).

        Includes an event whose class dipped below threshold_off less than min_off_ms ago (it may
        still resume), so the display does not flicker on dropouts the events will bridge.
        """
        if not self._open:
            return {}
        newest = self._roll[(self._n_frames - 1) % self.history]
        return {self.labels[c]: (ev.onset_s, float(newest[c])) for c, ev in self._open.items()}

    def newest_row(self) -> np.ndarray:
        """(C,) the newest smoothed frame: a view into the roll, valid until the next update."""
        return self._roll[(self._n_frames - 1) % self.history]

    def recent_max(self, n: int) -> np.ndarray:
        """(C,) the highest smoothed score of each class over the newest n frames (n >= 1)."""
        if n == 1 or self._n_frames <= 1:  # the live hop: the newest row (a copy)
            return self._roll[(self._n_frames - 1) % self.history].copy()
        n = max(1, min(int(n), self.history, self._n_frames))
        end = (self._n_frames - 1) % self.history + 1
        if n <= end:
            return self._roll[end - n : end].max(axis=0)
        older = self._roll[self.history - (n - end) :].max(axis=0)
        return np.maximum(self._roll[:end].max(axis=0), older)

    def roll(self) -> np.ndarray:
        """Recent smoothed posteriors (C, history), oldest -> newest; frames not yet seen are 0."""
        p = self._n_frames % self.history
        return np.concatenate((self._roll[p:], self._roll[:p])).T.copy()

    def roll_active(self) -> np.ndarray:
        """(C, history) bool: class in an event at that frame, oldest -> newest.

        Open events (and their pending gaps) are shown as they happen; when an event ends, its
        trailing gap is erased, and all of it if it was shorter than min_on_ms. So the finished
        part of the roll matches the returned events exactly.
        """
        p = self._n_frames % self.history
        return np.concatenate((self._ract[p:], self._ract[:p])).T.copy()

    @property
    def last_time_s(self) -> float | None:
        """Time of the newest frame seen, None before the first one."""
        return self._last_t

    @property
    def n_frames(self) -> int:
        """Frames seen since construction or reset()."""
        return self._n_frames
