"""False accepts per hour on long negative audio, a DET curve and a threshold for an FA budget.

Why: a keyword spotter is judged by how often it fires on speech that holds none of its words
(openWakeWord targets < 0.5 per hour) against how many true words it misses. Every event the
engine reports on negative audio is a false accept. For the curve, the model is replayed once with
its card's on-threshold lowered to `sweep_floor`; each event's peak smoothed confidence is its
score, and at a threshold t the events with peak >= t are the ones reported. (At a higher
threshold the engine's events would be a little shorter, never more numerous: the peak decides
whether an event exists at all.) Misses come from positive streams with truth: a reference event
is found at t when an estimated event of its label with peak >= t matches it (sed_eval collars).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hark.live.events import Event
from hark.live.model import OnnxModel
from hark.live.vad import GateKind
from hark.live.workers import AudioFile, Workers, WorkerState

DEFAULT_FLOOR = 0.2
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def negative_files(paths: Sequence[str | Path]) -> list[Path]:
    """Audio files named or found (recursively, sorted) in the given folders."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    if not out:
        raise ValueError("no negative audio found")
    return out


def with_threshold(model: OnnxModel, threshold_on: float) -> OnnxModel:
    """The same model with its card's on-threshold moved (off / rise thresholds kept below it)."""
    sm = model.card.smoothing
    new = dataclasses.replace(
        sm,
        threshold_on=threshold_on,
        threshold_off=min(sm.threshold_off, threshold_on),
        threshold_rise=None if sm.threshold_rise is None else min(sm.threshold_rise, threshold_on),
    )
    card = dataclasses.replace(model.card, smoothing=new)
    return OnnxModel.load(model.path, card=card)


@dataclass
class FalseAccepts:
    """Events reported on negative audio (each one a false accept) and how much audio that was."""

    events: list[tuple[str, Event]] = field(default_factory=list)  # (file, event)
    seconds: float = 0.0
    files: int = 0
    threshold_on: float = 0.0  # the card's threshold the events were reported at

    @property
    def hours(self) -> float:
        """Audio scored, in hours."""
        return self.seconds / 3600.0

    def per_hour(self, threshold: float = 0.0) -> float:
        """False accepts per hour counting events whose peak reaches `threshold`."""
        n = sum(e.peak >= threshold for _, e in self.events)
        return n / self.hours if self.hours > 0 else 0.0

    def to_json(self, threshold: float = 0.0) -> dict[str, Any]:
        """Figures at one threshold: count, hours, per hour, per label."""
        kept = [e for _, e in self.events if e.peak >= threshold]
        labels: dict[str, int] = {}
        for e in kept:
            labels[e.label] = labels.get(e.label, 0) + 1
        return {"false_accepts": len(kept), "hours": round(self.hours, 4),
                "false_accepts_per_hour": round(self.per_hour(threshold), 3),
                "files": self.files,
                "threshold_on": round(max(threshold, self.threshold_on), 4),
                "per_label": dict(sorted(labels.items()))}


def false_accepts(
    model: OnnxModel, files: Sequence[Path], vad: bool | None = None,
    workers: Workers | None = None, vad_kind: GateKind | None = None,
) -> FalseAccepts:
    """Replay each negative file through the engine (as `hark replay`) and keep every event.

    workers: where the files are replayed (hark.live.workers; default this process).
    """
    import functools

    from hark.models.evaluation import audio_files

    pool = workers or Workers([model])
    task = functools.partial(_negative_task, slot=pool.slot(model), vad=vad, vad_kind=vad_kind)
    fa = FalseAccepts(threshold_on=model.card.smoothing.threshold_on)
    for f, (events, seconds) in zip(files, pool.map(task, audio_files(files)), strict=True):
        fa.events.extend((str(f), e) for e in events)
        fa.seconds += seconds
        fa.files += 1
    return fa


def _negative_task(state: WorkerState, item: AudioFile, *, slot: int, vad: bool | None,
                   vad_kind: GateKind | None = None) -> tuple[list[Event], float]:
    from hark.models.evaluation import replay_events

    events, _, seconds = replay_events(state.models[slot], item, vad, vad_kind)
    return events, seconds


def _positive_task(state: WorkerState, item: AudioFile, *, slot: int, vad: bool | None,
                   vad_kind: GateKind | None = None) -> list[Event]:
    from hark.models.evaluation import replay_events

    return replay_events(state.models[slot], item, vad, vad_kind)[0]


@dataclass
class Positives:
    """For each reference event of positive streams, the best peak of a matching estimate (or 0)."""

    found_peaks: list[float] = field(default_factory=list)

    def miss_rate(self, threshold: float) -> float:
        """Share of reference events with no matching estimate reaching `threshold`."""
        if not self.found_peaks:
            return float("nan")
        return float(np.mean(np.asarray(self.found_peaks) < threshold))


def positives(
    model: OnnxModel, pairs: Sequence[tuple[Path, Path]], vad: bool | None = None,
    workers: Workers | None = None, vad_kind: GateKind | None = None,
) -> Positives:
    """Match estimates to truth per file and label (sed_eval's collars) and keep best peaks."""
    import functools

    from hark.live.events import read_events_tsv
    from hark.models.evaluation import audio_files
    from hark.models.metrics import EventCollars, events_match

    known = set(model.card.event_labels)
    collars = EventCollars()
    out = Positives()
    pool = workers or Workers([model])
    task = functools.partial(_positive_task, slot=pool.slot(model), vad=vad, vad_kind=vad_kind)
    per_file = pool.map(task, audio_files([a for a, _ in pairs]))
    for (_, tsv), est in zip(pairs, per_file, strict=True):
        ref = [e for e in read_events_tsv(tsv) if e.label in known]
        for r in ref:
            peaks = [s.peak for s in est if s.label == r.label and events_match(r, s, collars)]
            out.found_peaks.append(max(peaks, default=0.0))
    return out


@dataclass(frozen=True)
class DetPoint:
    """One operating point: threshold, false accepts per hour, miss rate."""

    threshold: float
    fa_per_hour: float
    miss_rate: float


def det_curve(
    fa: FalseAccepts, pos: Positives | None, floor: float, steps: int = 81
) -> list[DetPoint]:
    """Points from `floor` to 1 on an even grid of thresholds (plus every event peak)."""
    grid = set(np.round(np.linspace(floor, 1.0, steps), 4).tolist())
    grid |= {round(e.peak, 4) for _, e in fa.events if e.peak >= floor}
    return [
        DetPoint(t, fa.per_hour(t), pos.miss_rate(t) if pos else float("nan"))
        for t in sorted(grid)
    ]


def pick_threshold(points: Sequence[DetPoint], target_fa_per_hour: float) -> DetPoint:
    """The lowest threshold whose false accepts per hour are within the budget (fewest misses)."""
    ok = [p for p in points if p.fa_per_hour <= target_fa_per_hour]
    if not ok:
        raise ValueError(f"no threshold reaches {target_fa_per_hour} false accepts per hour")
    return min(ok, key=lambda p: p.threshold)


def write_det(points: Sequence[DetPoint], json_path: Path, png_path: Path | None,
              title: str) -> None:
    """DET as JSON (threshold, fa_per_hour, miss_rate) and, optionally, a PNG plot."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"threshold": p.threshold, "fa_per_hour": round(p.fa_per_hour, 4),
             "miss_rate": None if np.isnan(p.miss_rate) else round(p.miss_rate, 4)}
            for p in points]
    json_path.write_text(json.dumps({"title": title, "points": rows}, indent=1) + "\n")
    if png_path is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    xs = [p.fa_per_hour for p in points]
    ys = [p.miss_rate for p in points]
    ax.plot(xs, ys, marker=".")
    ax.set_xscale("symlog", linthresh=0.5)
    ax.set_xlabel("false accepts per hour")
    ax.set_ylabel("miss rate")
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
