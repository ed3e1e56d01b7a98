"""`hark eval`: score an exported model (ONNX + card) through the live engine, no TensorFlow.

Two kinds of test set:
- clips in the Speech Commands layout (testing_list.txt subset when present, else every clip):
  accuracy, per-class precision/recall/F1, confusion matrix. Window models decide once per clip
  (the window is the clip). Per-frame models decide per clip from the card's own smoother: the
  label of the strongest event the clip produces; with no event, `_unknown_` when its smoothed
  posterior reached threshold_on somewhere in the clip, else `_silence_` (see `clip_decision`).
  Clips are scored with the VAD off: a gate would zero the posteriors of quiet clips.
- recordings with DCASE truth (onset, offset, event_label): replayed through hark's one pipeline
  (hark.live.pipeline.run, a collector sink) with the card's VAD and smoothing, exactly as
  `hark replay` runs; event-based P/R/F1 (see
  models.metrics), false events per minute and label flips per minute of the smoothed output.
  Truth events whose label the model does not have are set aside (counted, not scored).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hark.live.engine import Engine, EngineOptions
from hark.live.events import Event, read_events_tsv
from hark.live.model import OnnxModel
from hark.live.smoothing import Smoother
from hark.live.sources import AudioError
from hark.live.vad import GateKind
from hark.live.workers import (
    SLOWEST_RATE,
    START_LIMIT_S,
    AudioFile,
    Workers,
    WorkerState,
)
from hark.models.metrics import (
    ClassificationReport,
    EventScores,
    classification_report,
    label_flips,
)

SILENCE = "_silence_"
UNKNOWN = "_unknown_"


# ---- clips ---------------------------------------------------------------------------------------
def clip_decision(
    model: OnnxModel, events: Sequence[Event], smoothed: np.ndarray
) -> str | None:
    """The label a per-frame model gives one clip: see the module docstring. None: no decision."""
    card = model.card
    if events:
        return max(events, key=lambda e: e.peak).label
    ignored = [lb for lb in card.ignore_labels if lb != SILENCE]
    best, best_v = None, -1.0
    for lb in ignored:
        v = float(smoothed[:, card.labels.index(lb)].max()) if len(smoothed) else 0.0
        if v >= card.smoothing.threshold_on and v > best_v:
            best, best_v = lb, v
    if best is not None:
        return best
    if SILENCE in card.labels:
        return SILENCE
    return card.ignore_labels[0] if card.ignore_labels else None


def _run(
    model: OnnxModel, audio: np.ndarray, vad: bool | None, n_decisions: int
) -> tuple[Engine, list[Event]]:
    """One clip through the pipeline: the engine (its recording and roll) and the events."""
    from hark.live.pipeline import run
    from hark.live.sinks import CollectSink
    from hark.live.sources import ArraySource

    engine = Engine([model], EngineOptions(vad=vad, record=True, history=max(1, n_decisions)))
    collect = CollectSink()
    result = run(ArraySource(audio, model.card.sample_rate, "clip"), engine, [collect],
                 signals=False, report=_quiet)
    if result.error is not None:
        raise ValueError(result.error)
    return engine, collect.events


def _quiet(line: str) -> None:
    """Evaluation scores what the engine heard; NaN warnings of `hark replay` are not its output."""


def classify_clip(model: OnnxModel, audio: np.ndarray) -> tuple[str | None, np.ndarray]:
    """(label, posteriors) for one clip at the model's rate, VAD off, fresh state."""
    card = model.card
    n = int(np.ceil(audio.size / card.sample_rate / card.decision_hop_s())) + 2
    engine, events = _run(model, audio, False, n)
    _, post = engine.recording(0)
    if not card.streaming:
        if not len(post):
            return None, post
        # one window per clip; several (a clip longer than the window): the most confident one
        row = post[int(np.argmax(post.max(axis=1)))]
        return card.labels[int(np.argmax(row))], post
    smoothed = _smoothed(engine, len(post))
    return clip_decision(model, events, smoothed), post


def _smoothed(engine: Engine, n_frames: int) -> np.ndarray:
    """The smoothed posteriors (frames, classes) the engine's smoother saw, oldest first."""
    roll = engine.streams[0].smoother.roll()  # (C, history), newest last
    return roll[:, roll.shape[1] - n_frames :].T if n_frames else roll[:, :0].T


@dataclass
class ClipEvaluation:
    """Scores of one model on one Speech Commands test set."""

    report: ClassificationReport
    n_undecided: int
    split: str
    root: Path
    per_source: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The report's JSON plus where it was measured."""
        d = self.report.to_json()
        d.update(data=str(self.root), split=self.split, undecided=self.n_undecided)
        if len(self.per_source) > 1:
            d["per_source"] = self.per_source
        return d

    def format_sources(self) -> str:
        """One line per source, when the set mixes several (a multi-engine tree)."""
        if len(self.per_source) < 2:
            return ""
        return "\n".join(f"  {src:<10} accuracy {v['accuracy']:.4f}  (n={int(v['n'])})"
                         for src, v in self.per_source.items())


def clip_source(speaker: str, label: str) -> str:
    """Which synthesizer (or recording) a clip came from: its speaker key's first part.

    Tree speakers are ENGINE-VOICE (espeak-en-us, flite-awb, kokoro-af_heart*0.5+...); silence
    clips, cut from noise, are their own source; speakers without an engine part (Speech
    Commands' hashed ids) are all one source, "other". Why: a tree that mixes engines must still
    report each engine on its own, or a held-out engine's figure hides inside the average.
    """
    from hark.models.data.speech_commands import SILENCE

    if label == SILENCE:
        return SILENCE
    return speaker.split("-", 1)[0] if "-" in speaker else "other"  # e.g. Speech Commands ids


CLIP_BATCH = 64  # clips per unit of work: one clip is too little work to send on its own


@dataclass(frozen=True)
class ClipBatch:
    """Decoded clips for a worker (the driver's loader cuts silence clips from noise, seeded)."""

    first: int
    clips: tuple[np.ndarray, ...]
    sample_rate: int

    @property
    def path(self) -> str:
        """What messages call it."""
        return f"clips {self.first}..{self.first + len(self.clips) - 1}"

    @property
    def limit_s(self) -> float:
        """How long a worker may take before it counts as hung."""
        seconds = sum(c.size for c in self.clips) / self.sample_rate
        return START_LIMIT_S + SLOWEST_RATE * seconds

    def shipped(self) -> ClipBatch:
        """The samples travel as they are."""
        return self


def clip_task(state: WorkerState, item: ClipBatch, *, slot: int) -> list[str | None]:
    """The decision for each clip of a batch (classify_clip)."""
    model = state.models[slot]
    return [classify_clip(model, clip)[0] for clip in item.clips]


def evaluate_clips(model: OnnxModel, root: str | Path, seed: int = 0,
                   workers: Workers | None = None) -> ClipEvaluation:
    """Score a model on a Speech Commands folder (its test list, or every clip if it has none).

    workers: where the clips are classified, in batches (hark.live.workers; default here).
    """
    import functools
    import itertools

    from hark.models.data.speech_commands import TESTING_LIST, load_speech_commands

    card = model.card
    if card.task != "multiclass":
        raise ValueError(f"{card.name} is a {card.task} model: clip accuracy needs multiclass")
    base = Path(root)
    clip_s = float(card.window_s) if not card.streaming and card.window_s else 1.0
    sc = load_speech_commands(base, card.sample_rate, clip_s, seed=seed)
    if (base / TESTING_LIST).is_file():
        split, clips = "test", sc.splits["test"]
    else:  # no test list: every clip (the loader's hash split is only for training)
        split, clips = "all", [c for s in ("train", "validation", "test") for c in sc.splits[s]]
    if not clips:
        raise ValueError(f"no clips to score in {base}")
    labels = list(sc.labels) + [lb for lb in card.labels if lb not in sc.labels]
    index = {lb: i for i, lb in enumerate(labels)}
    none_label = "(none)"
    y_true, y_pred, undecided = [], [], 0
    hits: dict[str, list[int]] = {}
    pool = workers or Workers([model])
    batches = (ClipBatch(i, tuple(sc.load(c) for c in clips[i:i + CLIP_BATCH]), card.sample_rate)
               for i in range(0, len(clips), CLIP_BATCH))
    task = functools.partial(clip_task, slot=pool.slot(model))
    decisions = itertools.chain.from_iterable(pool.map(task, batches))
    for clip, pred in zip(clips, decisions, strict=True):
        if pred is None:
            undecided += 1
            if none_label not in index:
                index[none_label] = len(labels)
                labels.append(none_label)
            pred = none_label
        y_true.append(index[clip.label])
        y_pred.append(index[pred])
        hits.setdefault(clip_source(clip.speaker, clip.label), []).append(int(pred == clip.label))
    report = classification_report(y_true, y_pred, labels)
    per_source = {src: {"accuracy": round(float(np.mean(h)), 4), "n": len(h)}
                  for src, h in sorted(hits.items())}
    return ClipEvaluation(report, undecided, split, base, per_source)


# ---- recordings with truth -----------------------------------------------------------------------
@dataclass
class FileResult:
    """One recording's events and scores."""

    audio: Path
    reference: list[Event]
    estimated: list[Event]
    duration_s: float
    flips: int
    tp: int
    fp: int
    fn: int


@dataclass
class StreamEvaluation:
    """Event-based scores over a set of recordings (micro-averaged, as sed_eval does)."""

    scores: EventScores
    files: list[FileResult] = field(default_factory=list)
    flips: int = 0
    set_aside: dict[str, int] = field(default_factory=dict)

    @property
    def flips_per_minute(self) -> float:
        """Decision changes of the smoothed output per minute of audio."""
        minutes = self.scores.duration_s / 60.0
        return self.flips / minutes if minutes > 0 else 0.0

    @property
    def events_per_minute(self) -> float:
        """Estimated events per minute of audio."""
        minutes = self.scores.duration_s / 60.0
        n = sum(len(f.estimated) for f in self.files)
        return n / minutes if minutes > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """event_f1, precision, recall, flips_per_minute, false events/min, per class, files."""
        d = self.scores.to_json()
        d["flips_per_minute"] = round(self.flips_per_minute, 3)
        d["events_per_minute"] = round(self.events_per_minute, 3)
        d["reference_events"] = sum(len(f.reference) for f in self.files)
        d["estimated_events"] = sum(len(f.estimated) for f in self.files)
        if self.set_aside:
            d["reference_set_aside"] = dict(sorted(self.set_aside.items()))
        d["per_file"] = [
            {"audio": str(f.audio), "tp": f.tp, "fp": f.fp, "fn": f.fn,
             "seconds": round(f.duration_s, 3), "flips": f.flips}
            for f in self.files
        ]
        return d


def replay_events(
    model: OnnxModel, audio_path: str | Path | AudioFile, vad: bool | None = None,
    vad_kind: GateKind | None = None,
) -> tuple[list[Event], np.ndarray, float]:
    """Replay a file through the engine as `hark replay` does: (events, smoothed, seconds).

    audio_path: a path, or an AudioFile (hark.live.workers) that may carry the file's bytes.
    """
    from hark.live.pipeline import run
    from hark.live.sinks import CollectSink
    from hark.live.sources import FileSource

    card = model.card
    if isinstance(audio_path, AudioFile):
        src = audio_path.source(card.sample_rate)
    else:
        src = FileSource(audio_path, card.sample_rate)
    dur = src.duration_s or 0.0
    n = int(np.ceil(dur / card.decision_hop_s())) + 16
    engine = Engine([model], EngineOptions(vad=vad, vad_kind=vad_kind, record=True,
                                           history=max(n, 16)))
    collect = CollectSink()
    result = run(src, engine, [collect], signals=False, report=_quiet)
    if result.error is not None:
        raise AudioError(result.error)
    _, post = engine.recording(0)
    smoothed = _smoothed(engine, min(len(post), n))
    return collect.events, smoothed, engine.time_s


def audio_files(paths: Sequence[str | Path]) -> list[AudioFile]:
    """Work items for a worker pool: each path with its length from the header, if it has one."""
    import soundfile as sf

    out = []
    for p in map(Path, paths):
        try:
            dur: float | None = float(sf.info(str(p)).duration)
        except Exception:  # noqa: BLE001 - unreadable: the worker reports it, in its turn
            dur = None
        out.append(AudioFile(p, dur))
    return out


def stream_task(
    state: WorkerState, item: AudioFile, *, slot: int, vad: bool | None,
    vad_kind: GateKind | None,
) -> tuple[list[Event], int, float]:
    """One recording in a worker: (estimated events, label flips, seconds)."""
    model = state.models[slot]
    est, smoothed, dur = replay_events(model, item, vad, vad_kind)
    return est, flips_of(model, smoothed), dur


def flips_of(model: OnnxModel, smoothed: np.ndarray) -> int:
    """label_flips with the card's event classes and on-threshold."""
    card = model.card
    event_idx = [card.labels.index(lb) for lb in card.event_labels]
    return label_flips(smoothed, card.task == "multilabel", card.smoothing.threshold_on, event_idx)


def evaluate_streams(
    model: OnnxModel,
    pairs: Sequence[tuple[str | Path, str | Path]],
    vad: bool | None = None,
    vad_kind: GateKind | None = None,
    workers: Workers | None = None,
) -> StreamEvaluation:
    """Score a model on (audio, truth tsv) pairs.

    workers: where the recordings are replayed (hark.live.workers; default this process); the
    per-file results are merged here in input order, so the figures do not depend on it.
    """
    import functools

    result = StreamEvaluation(EventScores())
    known = set(model.card.event_labels)
    pool = workers or Workers([model])
    task = functools.partial(stream_task, slot=pool.slot(model), vad=vad, vad_kind=vad_kind)
    per_file = pool.map(task, audio_files([a for a, _ in pairs]))
    for (audio, tsv), (est, flips, dur) in zip(pairs, per_file, strict=True):
        truth = read_events_tsv(tsv)
        ref = [e for e in truth if e.label in known]
        for e in truth:
            if e.label not in known:
                result.set_aside[e.label] = result.set_aside.get(e.label, 0) + 1
        counts = result.scores.add_file(ref, est, dur)
        result.flips += flips
        result.files.append(
            FileResult(Path(audio), ref, est, dur, flips, counts.tp, counts.fp, counts.fn)
        )
    return result


def stream_pairs(audio: Sequence[str | Path], annotations: Sequence[str | Path] | None) -> list[
    tuple[Path, Path]
]:
    """Match audio files with truth files.

    Explicit lists (same order), X.wav -> X.tsv beside it, or a folder of such pairs.
    """
    files: list[Path] = []
    for a in audio:
        p = Path(a)
        if p.is_dir():
            files.extend(w for w in sorted(p.glob("*.wav")) if w.with_suffix(".tsv").is_file())
        else:
            files.append(p)
    if annotations:
        ann = [Path(a) for a in annotations]
        if len(ann) != len(files):
            raise ValueError(f"{len(files)} audio files but {len(ann)} annotation files")
        return list(zip(files, ann, strict=True))
    pairs = []
    for f in files:
        tsv = f.with_suffix(".tsv")
        if not tsv.is_file():
            raise ValueError(
                f"no annotations for {f} (give --annotations or put {tsv.name} beside it)"
            )
        pairs.append((f, tsv))
    return pairs


def smoother_for(model: OnnxModel, history: int) -> Smoother:
    """A fresh smoother as the card asks (for tuning and tests)."""
    return Smoother.from_card(model.card, history=history)
