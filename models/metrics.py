"""Scores: clip classification (accuracy, per-class P/R/F1, confusion) and event detection.

The event score is sed_eval's event-based metric (Mesaros et al. 2016), written here because the
tuner re-scores every smoothing candidate (sed_eval took 36x longer on 48 files, building
dcase_util containers per call) and held equal to sed_eval's EventBasedMetrics in
tests/models/test_metrics_sed_eval.py. An estimated event matches a reference event of the SAME
label when its onset is within `onset_collar_s` (200 ms) of the reference onset and its offset
within max(`offset_collar_s`, `offset_fraction` x reference length) of the reference offset. Each
event matches at most one other (a maximum bipartite matching per label, as sed_eval's "optimal"
matching); unmatched estimates are false positives, unmatched references false negatives; P, R and
F1 are micro-averaged over all events of all files. Collar comparisons are inclusive (<=), with a
1e-9 s tolerance so that an edge written in decimal seconds counts as on the edge.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

_EDGE_EPS_S = 1e-9


class EventLike(Protocol):
    """Anything with a label and onset/offset in seconds (live.events.Event, models.data Event)."""

    @property
    def label(self) -> str: ...

    @property
    def onset_s(self) -> float: ...

    @property
    def offset_s(self) -> float: ...


# ---- clip classification -----------------------------------------------------------------------
@dataclass(frozen=True)
class ClassScores:
    """Precision, recall, F1 and support (number of true clips) of one class."""

    precision: float
    recall: float
    f1: float
    support: int


def _prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


@dataclass(frozen=True)
class ClassificationReport:
    """Accuracy, per-class scores and the confusion matrix (rows: truth, columns: prediction)."""

    labels: tuple[str, ...]
    confusion: np.ndarray
    accuracy: float
    per_class: dict[str, ClassScores]

    @property
    def n(self) -> int:
        """Number of clips scored."""
        return int(self.confusion.sum())

    @property
    def macro_f1(self) -> float:
        """Unweighted mean F1 over the classes that occur (in truth or prediction)."""
        used = [s.f1 for lb, s in self.per_class.items() if s.support or self._predicted(lb)]
        return float(np.mean(used)) if used else 0.0

    def _predicted(self, label: str) -> int:
        return int(self.confusion[:, self.labels.index(label)].sum())

    def to_json(self) -> dict[str, Any]:
        """accuracy, n, macro_f1, per_class {label: {precision, recall, f1, support}}, confusion."""
        return {
            "accuracy": round(self.accuracy, 4),
            "n": self.n,
            "macro_f1": round(self.macro_f1, 4),
            "per_class": {
                lb: {
                    "precision": round(s.precision, 4),
                    "recall": round(s.recall, 4),
                    "f1": round(s.f1, 4),
                    "support": s.support,
                }
                for lb, s in self.per_class.items()
            },
            "labels": list(self.labels),
            "confusion": self.confusion.astype(int).tolist(),
        }

    def format(self) -> str:
        """Plain-text report: accuracy, a per-class table and the confusion matrix."""
        w = max(8, *(len(lb) for lb in self.labels))
        lines = [f"accuracy {self.accuracy:.4f} on {self.n} clips (macro F1 {self.macro_f1:.4f})",
                 "", f"{'class':<{w}}  precision  recall  f1      support"]
        for lb, s in self.per_class.items():
            lines.append(
                f"{lb:<{w}}  {s.precision:9.4f}  {s.recall:6.4f}  {s.f1:6.4f}  {s.support:7d}"
            )
        lines += ["", "confusion (rows: truth, columns: prediction)"]
        cw = max(5, *(len(str(int(v))) + 1 for v in self.confusion.flat))
        short = [lb[:cw] for lb in self.labels]
        lines.append(" " * w + "".join(f"{s:>{cw + 1}}" for s in short))
        for lb, row in zip(self.labels, self.confusion, strict=True):
            lines.append(f"{lb:<{w}}" + "".join(f"{int(v):>{cw + 1}}" for v in row))
        return "\n".join(lines)


def classification_report(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, labels: Sequence[str]
) -> ClassificationReport:
    """Score predicted class indices against true ones."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} differ in shape")
    n = len(labels)
    conf = np.zeros((n, n), dtype=np.int64)
    np.add.at(conf, (t, p), 1)
    per = {}
    for i, lb in enumerate(labels):
        tp = conf[i, i]
        pr, rc, f1 = _prf(tp, conf[:, i].sum() - tp, conf[i, :].sum() - tp)
        per[lb] = ClassScores(pr, rc, f1, int(conf[i, :].sum()))
    acc = float(np.trace(conf) / conf.sum()) if conf.sum() else 0.0
    return ClassificationReport(tuple(labels), conf, acc, per)


# ---- event detection ---------------------------------------------------------------------------
@dataclass(frozen=True)
class EventCollars:
    """sed_eval's event-based defaults: t_collar 200 ms, percentage_of_length 0.5."""

    onset_collar_s: float = 0.2
    offset_collar_s: float = 0.2
    offset_fraction: float = 0.5
    evaluate_offset: bool = True


def events_match(ref: EventLike, est: EventLike, collars: EventCollars = EventCollars()) -> bool:
    """sed_eval's onset and offset conditions for one pair (labels not compared here)."""
    if abs(ref.onset_s - est.onset_s) > collars.onset_collar_s + _EDGE_EPS_S:
        return False
    if not collars.evaluate_offset:
        return True
    length = ref.offset_s - ref.onset_s
    collar = max(collars.offset_collar_s, collars.offset_fraction * length)
    return abs(ref.offset_s - est.offset_s) <= collar + _EDGE_EPS_S


def _max_matching(adj: list[list[int]], n_right: int) -> list[tuple[int, int]]:
    """Maximum bipartite matching (augmenting paths): adj[i] lists the j that i may match."""
    match_right = [-1] * n_right

    def augment(i: int, seen: list[bool]) -> bool:
        for j in adj[i]:
            if not seen[j]:
                seen[j] = True
                if match_right[j] < 0 or augment(match_right[j], seen):
                    match_right[j] = i
                    return True
        return False

    for i in range(len(adj)):
        augment(i, [False] * n_right)
    return [(i, j) for j, i in enumerate(match_right) if i >= 0]


@dataclass
class EventCounts:
    """True positives, false positives, false negatives (for one class or all)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: EventCounts) -> None:
        """Accumulate another count (files, classes)."""
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn

    @property
    def precision(self) -> float:
        """Tp / (tp + fp); 0 with no estimates."""
        return _prf(self.tp, self.fp, self.fn)[0]

    @property
    def recall(self) -> float:
        """Tp / (tp + fn); 0 with no references."""
        return _prf(self.tp, self.fp, self.fn)[1]

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall (0 when both are 0).

        With no references and no estimates at all this is 0 as well; callers that score streams
        with nothing to find look at false positives instead.
        """
        return _prf(self.tp, self.fp, self.fn)[2]


@dataclass
class EventScores:
    """Event-based scores accumulated over files: overall and per class."""

    collars: EventCollars = field(default_factory=EventCollars)
    overall: EventCounts = field(default_factory=EventCounts)
    per_class: dict[str, EventCounts] = field(default_factory=dict)
    duration_s: float = 0.0
    n_files: int = 0

    def add_file(
        self,
        reference: Iterable[EventLike],
        estimated: Iterable[EventLike],
        duration_s: float = 0.0,
    ) -> EventCounts:
        """Score one file's estimated events against its reference; returns that file's counts."""
        refs = list(reference)
        ests = list(estimated)
        counts = EventCounts()
        for label in sorted({e.label for e in refs} | {e.label for e in ests}):
            r = [e for e in refs if e.label == label]
            s = [e for e in ests if e.label == label]
            adj = [[j for j, se in enumerate(s) if events_match(rf, se, self.collars)] for rf in r]
            tp = len(_max_matching(adj, len(s)))
            c = EventCounts(tp, len(s) - tp, len(r) - tp)
            self.per_class.setdefault(label, EventCounts()).add(c)
            counts.add(c)
        self.overall.add(counts)
        self.duration_s += duration_s
        self.n_files += 1
        return counts

    @property
    def false_per_minute(self) -> float:
        """False positive events per minute of scored audio (needs durations)."""
        return self.overall.fp / (self.duration_s / 60.0) if self.duration_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """event_f1, precision, recall, counts, false events/min, per-class F1."""
        o = self.overall
        return {
            "event_f1": round(o.f1, 4),
            "precision": round(o.precision, 4),
            "recall": round(o.recall, 4),
            "tp": o.tp,
            "fp": o.fp,
            "fn": o.fn,
            "false_events_per_minute": round(self.false_per_minute, 3),
            "files": self.n_files,
            "minutes": round(self.duration_s / 60.0, 3),
            "per_class": {
                lb: {"f1": round(c.f1, 4), "precision": round(c.precision, 4),
                     "recall": round(c.recall, 4), "tp": c.tp, "fp": c.fp, "fn": c.fn}
                for lb, c in sorted(self.per_class.items())
            },
            "collars": {
                "onset_s": self.collars.onset_collar_s,
                "offset_s": self.collars.offset_collar_s,
                "offset_fraction": self.collars.offset_fraction,
            },
        }


def event_scores(
    reference: Iterable[EventLike],
    estimated: Iterable[EventLike],
    collars: EventCollars = EventCollars(),
) -> EventScores:
    """Scores of one file (convenience for tests and single recordings)."""
    s = EventScores(collars)
    s.add_file(reference, estimated)
    return s


# ---- stability of the smoothed output ----------------------------------------------------------
def label_flips(
    smoothed: np.ndarray,
    multilabel: bool,
    threshold: float = 0.5,
    event_classes: Sequence[int] | None = None,
) -> int:
    """How often the frame-level decision read from smoothed posteriors (frames, classes) changes.

    Only `event_classes` (default: all) can be decided; background/ignored classes and frames
    where nothing reaches `threshold` (including VAD-gated frames, all zeros) decide "nothing".
    Multiclass: the decision is the event class with the highest smoothed posterior if it reaches
    the threshold; each change of decision counts once. Multilabel: each event class is on where
    smoothed >= threshold; every on/off switch of every class counts once. A clean roll flips
    twice per isolated event (on, off); jitter adds more.
    """
    x = np.asarray(smoothed, dtype=np.float64)
    if len(x) < 2:
        return 0
    cols = list(range(x.shape[1])) if event_classes is None else list(event_classes)
    if not cols:
        return 0
    x = x[:, cols]
    if multilabel:
        on = x >= threshold
        return int(np.count_nonzero(on[1:] != on[:-1]))
    top = np.where(x.max(axis=1) >= threshold, np.argmax(x, axis=1), -1)
    return int(np.count_nonzero(top[1:] != top[:-1]))
