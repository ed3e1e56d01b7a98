"""The event metric (sed_eval's event-based definition) and the clip scores on hand-made lists."""

from __future__ import annotations

import numpy as np
import pytest

from hark.live.events import Event
from hark.models.metrics import (
    EventCollars,
    classification_report,
    event_scores,
    events_match,
    label_flips,
)


def ev(label: str, on: float, off: float) -> Event:
    return Event(label, on, off, 1.0, 1.0)


def test_exact_match_is_perfect() -> None:
    ref = [ev("yes", 1.0, 1.5), ev("no", 3.0, 3.4), ev("yes", 5.0, 5.6)]
    s = event_scores(ref, list(ref))
    assert (s.overall.tp, s.overall.fp, s.overall.fn) == (3, 0, 0)
    assert s.overall.f1 == 1.0 and s.overall.precision == 1.0 and s.overall.recall == 1.0


@pytest.mark.parametrize(
    ("est_onset", "matches"),
    [(1.2, True), (0.8, True), (1.2001, False), (0.7999, False)],
)
def test_onset_collar_is_200ms_inclusive(est_onset: float, matches: bool) -> None:
    ref = ev("yes", 1.0, 1.3)
    assert events_match(ref, ev("yes", est_onset, 1.3)) is matches


def test_offset_collar_is_max_of_200ms_and_half_the_length() -> None:
    short = ev("go", 1.0, 1.2)  # 0.2 s long: the collar is 200 ms
    assert events_match(short, ev("go", 1.0, 1.4))
    assert not events_match(short, ev("go", 1.0, 1.41))
    long = ev("whistle", 1.0, 3.0)  # 2 s long: the collar is 1 s
    assert events_match(long, ev("whistle", 1.0, 4.0))
    assert events_match(long, ev("whistle", 1.1, 2.0))
    assert not events_match(long, ev("whistle", 1.0, 4.05))
    assert events_match(long, ev("whistle", 1.0, 9.0), EventCollars(evaluate_offset=False))


def test_label_must_match() -> None:
    s = event_scores([ev("yes", 1.0, 1.5)], [ev("no", 1.0, 1.5)])
    assert (s.overall.tp, s.overall.fp, s.overall.fn) == (0, 1, 1)
    assert s.overall.f1 == 0.0
    assert s.per_class["yes"].fn == 1 and s.per_class["no"].fp == 1


def test_each_event_matches_once() -> None:
    # two estimates inside one reference's collars: one hit, one false positive
    s = event_scores([ev("clap", 2.0, 2.5)], [ev("clap", 2.0, 2.5), ev("clap", 2.1, 2.6)])
    assert (s.overall.tp, s.overall.fp, s.overall.fn) == (1, 1, 0)
    assert s.overall.precision == 0.5 and s.overall.recall == 1.0
    assert s.overall.f1 == pytest.approx(2 / 3)


def test_matching_is_optimal_not_greedy() -> None:
    # est A fits both refs, est B only the first: a greedy pass that gives A to the first ref
    # loses B; the maximum matching pairs A with the second ref and B with the first.
    refs = [ev("knock", 1.0, 1.5), ev("knock", 1.3, 1.8)]
    ests = [ev("knock", 1.15, 1.6), ev("knock", 0.85, 1.35)]
    s = event_scores(refs, ests)
    assert (s.overall.tp, s.overall.fp, s.overall.fn) == (2, 0, 0)


def test_scores_accumulate_over_files_and_count_false_events_per_minute() -> None:
    from hark.models.metrics import EventScores

    s = EventScores()
    s.add_file([ev("yes", 1, 1.5)], [ev("yes", 1, 1.5), ev("no", 10, 10.3)], duration_s=30)
    s.add_file([ev("no", 2, 2.4)], [], duration_s=30)
    assert (s.overall.tp, s.overall.fp, s.overall.fn) == (1, 1, 1)
    assert s.false_per_minute == pytest.approx(1.0)
    d = s.to_json()
    assert d["event_f1"] == 0.5 and d["files"] == 2 and d["minutes"] == 1.0


def test_classification_report_known_numbers() -> None:
    labels = ("a", "b", "c")
    rep = classification_report([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], labels)
    assert rep.accuracy == pytest.approx(4 / 6)
    np.testing.assert_array_equal(rep.confusion, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    assert rep.per_class["b"].precision == pytest.approx(2 / 3)
    assert rep.per_class["b"].recall == 1.0
    assert rep.per_class["c"].precision == 1.0 and rep.per_class["c"].recall == 0.5
    text = rep.format()
    assert "accuracy 0.6667 on 6 clips" in text and "confusion" in text
    assert rep.to_json()["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_label_flips_counts_decision_changes() -> None:
    # multiclass: columns (bg, yes, no); bg is not an event class
    x = np.array([[1, 0, 0], [0.2, 0.8, 0], [0.1, 0.9, 0], [0.6, 0.4, 0], [0, 0.3, 0.7]], float)
    assert label_flips(x, multilabel=False, threshold=0.5, event_classes=[1, 2]) == 3
    # gated frames (all zeros) decide nothing
    z = np.zeros((4, 3))
    assert label_flips(z, multilabel=False, event_classes=[1, 2]) == 0
    # multilabel: every on/off of every class
    m = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], float)
    assert label_flips(m, multilabel=True) == 4
