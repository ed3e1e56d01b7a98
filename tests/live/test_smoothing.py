"""Smoother: posteriors with known segments -> events; flicker held; debounce; modes; chunking."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import lfilter

from hark.live.card import SmoothingSpec
from hark.live.events import Event
from hark.live.smoothing import Smoother, SmoothingError

HOP = 0.01


def spec(**kw: object) -> SmoothingSpec:
    base: dict[str, object] = dict(method="none", threshold_on=0.5, threshold_off=0.35,
                                   min_on_ms=0.0, min_off_ms=0.0)
    base.update(kw)
    return SmoothingSpec(**base)  # type: ignore[arg-type]


def run(sm: Smoother, post: np.ndarray, chunks: Sequence[int] | None = None,
        t0: float = 0.0) -> list[Event]:
    """Feed `post` in the given chunk sizes (all at once by default), then close."""
    events: list[Event] = []
    i = 0
    for n in chunks or [len(post)]:
        events += sm.update(post[i : i + n], t0 + i * HOP)
        i += n
    assert i == len(post)
    return events + sm.close()


def pulses(n_frames: int, labels: Sequence[str], segments: Sequence[tuple[str, float, float]],
           level: float = 0.9, floor: float = 0.05) -> np.ndarray:
    """Clean square pulses: `level` inside [onset, offset), `floor` elsewhere."""
    post = np.full((n_frames, len(labels)), floor)
    t = np.arange(n_frames) * HOP
    for label, on, off in segments:
        post[(t >= on - 1e-9) & (t < off - 1e-9), labels.index(label)] = level
    return post


def flips(active_label: np.ndarray) -> int:
    return int(np.count_nonzero(active_label[1:] != active_label[:-1]))


# ---- known segments ----------------------------------------------------------------------------
SEGMENTS = [("dog", 0.5, 1.2), ("siren", 1.6, 2.5), ("speech", 3.0, 3.4), ("dog", 3.4, 4.0)]
LABELS = ["_silence_", "dog", "siren", "speech"]


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
@pytest.mark.parametrize("method,median_frames", [("none", 1), ("median", 5), ("median", 4)])
def test_square_pulses_with_noise_give_the_segments(task: str, method: str,
                                                    median_frames: int) -> None:
    rng = np.random.default_rng(0)
    post = pulses(500, LABELS, SEGMENTS)
    post += rng.normal(0.0, 0.05, post.shape)
    post = np.clip(post, 0.0, 1.0)
    sm = Smoother(LABELS, spec(method=method, median_frames=median_frames, min_on_ms=60,
                               min_off_ms=100), HOP, task=task, ignore_labels=["_silence_"],
                  model="m")
    events = run(sm, post)
    # raw frame times: a causal median delays a step by median_frames // 2 frames (documented
    # latency, not corrected); an even median delays the onset one frame less than the offset
    delay_on = ((median_frames - 1) // 2) * HOP if method == "median" else 0.0
    delay_off = (median_frames // 2) * HOP if method == "median" else 0.0
    assert [e.label for e in events] == [s[0] for s in SEGMENTS]
    for ev, (_, on, off) in zip(events, SEGMENTS, strict=True):
        assert abs(ev.onset_s - (on + delay_on)) <= HOP + 1e-9, (ev, on)
        assert abs(ev.offset_s - (off + delay_off)) <= HOP + 1e-9, (ev, off)
        assert ev.model == "m"
        assert 0.7 < ev.mean <= ev.peak <= 1.0


def test_onset_and_offset_are_raw_frame_times() -> None:
    labels = ["a"]
    post = pulses(100, labels, [("a", 0.2, 0.5)])
    sm = Smoother(labels, spec(), HOP, task="multilabel")
    (ev,) = run(sm, post, t0=10.0)
    assert ev.onset_s == pytest.approx(10.2) and ev.offset_s == pytest.approx(10.5)
    assert ev.duration_s == pytest.approx(0.3)
    assert ev.peak == pytest.approx(0.9) and ev.mean == pytest.approx(0.9)


# ---- flicker -------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(8))
def test_flickering_posterior_is_held_stable(seed: int) -> None:
    """0.55/0.45 alternation with noise around the threshold and random dropouts: one event.

    Right after a dropout the median of the alternation can sit just under threshold_on for a
    few frames, so bridging a 5-frame dropout takes a min gap of about 200 ms.
    """
    rng = np.random.default_rng(seed)
    n = 700
    alarm = 0.1 + rng.normal(0.0, 0.03, n)
    seg = slice(100, 500)  # 1.0 s .. 5.0 s
    alarm[seg] = np.where(np.arange(400) % 2 == 0, 0.55, 0.45) + rng.normal(0.0, 0.03, 400)
    start = 110
    while start < 480:  # dropouts of 1-5 frames, at least 20 frames apart
        length = int(rng.integers(1, 6))
        alarm[start : start + length] = 0.05
        start += length + int(rng.integers(20, 40))
    alarm = np.clip(alarm, 0.0, 1.0)
    post = np.stack([1.0 - alarm, alarm], axis=1)
    sm = Smoother(["_silence_", "alarm"], spec(method="median", median_frames=5, min_on_ms=60,
                                               min_off_ms=200),
                  HOP, ignore_labels=["_silence_"], history=n)
    events = run(sm, post)
    raw_flips = flips(np.argmax(post, axis=1) == 1)
    out_flips = flips(sm.roll_active()[1])
    assert raw_flips > 150
    assert out_flips == 2  # on once, off once
    assert len(events) == 1
    (ev,) = events
    assert ev.label == "alarm"
    # onset: the first smoothed frame >= 0.5 of a signal centred on 0.5 (can take a while)
    assert 1.0 <= ev.onset_s <= 1.25 and abs(ev.offset_s - 5.0) <= 3 * HOP


def test_without_debounce_the_flicker_shows() -> None:
    """The same kind of input with thresholds 0.5/0.5 and no min gap: many events (sanity)."""
    alarm = np.where(np.arange(200) % 4 < 2, 0.6, 0.4)
    post = np.stack([1.0 - alarm, alarm], axis=1)
    sm = Smoother(["_silence_", "alarm"], spec(threshold_off=0.5), HOP,
                  ignore_labels=["_silence_"])
    assert len(run(sm, post)) == 50


# ---- min duration / min gap ----------------------------------------------------------------------
def test_min_duration_drops_short_blips() -> None:
    labels = ["a"]
    post = pulses(200, labels, [("a", 0.2, 0.23), ("a", 1.0, 1.08)])  # 3 and 8 frames
    sm = Smoother(labels, spec(min_on_ms=60, min_off_ms=100), HOP, task="multilabel", history=200)
    events = run(sm, post)
    assert [(e.onset_s, e.offset_s) for e in events] == [(1.0, 1.08)]
    act = sm.roll_active()[0]
    assert not act[:100].any()  # the blip was shown while open, then erased
    assert act[100:108].all() and not act[108:].any()


def test_min_gap_bridges_short_dropouts() -> None:
    labels = ["a"]
    # gap of 5 frames (< 100 ms): one event; gap of 10 frames (= 100 ms): two events
    post = pulses(300, labels, [("a", 0.2, 0.5), ("a", 0.55, 0.9), ("a", 1.0, 1.3)])
    sm = Smoother(labels, spec(min_off_ms=100), HOP, task="multilabel", history=300)
    events = run(sm, post)
    assert [(e.onset_s, e.offset_s) for e in events] == [(0.2, 0.9), (1.0, 1.3)]
    # the bridged gap counts in the statistics: 5 frames at 0.05 among 70
    assert events[0].mean == pytest.approx((65 * 0.9 + 5 * 0.05) / 70)
    act = sm.roll_active()[0]
    assert act[20:90].all() and not act[90:100].any() and act[100:130].all()


def test_finished_event_is_returned_once_off_for_min_gap() -> None:
    labels = ["a"]
    post = pulses(100, labels, [("a", 0.1, 0.3)])
    sm = Smoother(labels, spec(min_off_ms=100), HOP, task="multilabel")
    returned_at = [i for i in range(100) if sm.update(post[i], i * HOP)]
    assert returned_at == [40]  # off at frame 30, final at frame 40 (100 ms later)
    assert sm.close() == []


def test_active_includes_a_pending_gap_and_matches_the_roll() -> None:
    labels = ["x", "a"]
    post = pulses(60, labels, [("a", 0.1, 0.3), ("a", 0.33, 0.4)])
    sm = Smoother(labels, spec(min_off_ms=100), HOP, task="multilabel", history=60)
    for i in range(60):
        sm.update(post[i], i * HOP)
        if i == 15:
            assert sm.active == {"a": (pytest.approx(0.1), pytest.approx(0.9))}
        if i == 31:  # in the gap: still open, showing the low confidence
            assert sm.active == {"a": (pytest.approx(0.1), pytest.approx(0.05))}
        assert ("a" in sm.active) == bool(sm.roll_active()[1, -1])
    assert sm.active == {}
    assert sm.last_time_s == pytest.approx(0.59) and sm.n_frames == 60


# ---- multiclass / multilabel / ignored -----------------------------------------------------------
def test_multiclass_is_exclusive_and_the_active_class_keeps_priority() -> None:
    labels = ["_silence_", "a", "b"]
    post = pulses(300, labels, [("a", 1.0, 2.0)], level=0.6)
    post[150:250, 2] = 0.9  # b rises above a while a is still above threshold_off
    sm = Smoother(labels, spec(min_off_ms=100), HOP, ignore_labels=["_silence_"], history=300)
    got: list[tuple[int, list[Event]]] = []
    for i in range(300):
        ev = sm.update(post[i], i * HOP)
        if ev:
            got.append((i, ev))
    got.append((300, sm.close()))
    # a ends at 2.0 and b takes over in the same frame: a is final at once, without min_off wait
    assert [(i, [(e.label, e.onset_s, e.offset_s) for e in evs]) for i, evs in got] == [
        (200, [("a", 1.0, 2.0)]),
        (260, [("b", 2.0, 2.5)]),
        (300, []),
    ]
    act = sm.roll_active()
    assert act.sum(axis=0).max() == 1


def test_multiclass_starts_with_the_highest_class() -> None:
    labels = ["a", "b", "c"]
    post = np.full((30, 3), 0.05)
    post[10:20] = [0.6, 0.8, 0.7]
    sm = Smoother(labels, spec(), HOP)
    assert [e.label for e in run(sm, post)] == ["b"]


def test_multilabel_events_overlap() -> None:
    labels = ["_silence_", "a", "b"]
    post = pulses(300, labels, [("a", 1.0, 2.0)], level=0.6)
    post[150:250, 2] = 0.9
    sm = Smoother(labels, spec(), HOP, task="multilabel", ignore_labels=["_silence_"])
    events = run(sm, post)
    assert sorted((e.label, e.onset_s, e.offset_s) for e in events) == [
        ("a", 1.0, 2.0), ("b", 1.5, 2.5)]
    assert sm.roll_active().sum(axis=0).max() == 2


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_ignored_labels_never_become_events_but_stay_in_the_roll(task: str) -> None:
    labels = ["_silence_", "_unknown_", "yes"]
    post = pulses(100, labels, [("_silence_", 0.0, 0.5), ("_unknown_", 0.5, 0.7),
                                ("yes", 0.7, 0.9)])
    sm = Smoother(labels, spec(), HOP, task=task, ignore_labels=["_silence_", "_unknown_"],
                  history=100)
    events = run(sm, post)
    assert [(e.label, e.onset_s, e.offset_s) for e in events] == [("yes", 0.7, 0.9)]
    roll = sm.roll()
    assert roll[0, :50].min() == pytest.approx(0.9) and roll[1, 50:70].min() == pytest.approx(0.9)
    assert not sm.roll_active()[:2].any()


# ---- close / reset -------------------------------------------------------------------------------
def test_close_emits_the_open_event() -> None:
    labels = ["a"]
    post = pulses(50, labels, [("a", 0.2, 1.0)])
    sm = Smoother(labels, spec(min_on_ms=60), HOP, task="multilabel")
    assert sm.update(post, 0.0) == []
    assert list(sm.active) == ["a"]
    (ev,) = sm.close()
    assert (ev.onset_s, ev.offset_s) == (0.2, 0.5)  # last frame 0.49 + hop
    assert sm.active == {} and sm.close() == []
    sm2 = Smoother(labels, spec(min_on_ms=60), HOP, task="multilabel")
    sm2.update(post, 0.0)
    assert [(e.onset_s, e.offset_s) for e in sm2.close(t_end_s=0.525)] == [(0.2, 0.525)]


def test_close_flushes_a_pending_event_and_drops_a_short_open_one() -> None:
    labels = ["a", "b"]
    post = pulses(50, labels, [("a", 0.1, 0.4), ("b", 0.47, 0.5)])
    sm = Smoother(labels, spec(min_on_ms=60, min_off_ms=200), HOP, task="multilabel", history=50)
    assert sm.update(post, 0.0) == []
    events = sm.close()
    assert [(e.label, e.onset_s, e.offset_s) for e in events] == [("a", 0.1, 0.4)]
    act = sm.roll_active()
    assert act[0, 10:40].all() and not act[0, 40:].any() and not act[1].any()


def test_reset_forgets_the_stream_and_reset_filters_only_the_filters() -> None:
    labels = ["a"]
    sm = Smoother(labels, spec(method="median", median_frames=5, min_off_ms=100), HOP,
                  task="multilabel")
    sm.set_threshold("a", 0.8, 0.2)
    sm.update(np.full((20, 1), 0.9), 0.0)
    assert [(e.onset_s, e.offset_s) for e in sm.reset()] == [(0.0, 0.2)]
    assert sm.n_frames == 0 and sm.last_time_s is None and not sm.roll().any()
    assert sm.threshold("a") == (0.8, 0.2)  # run-time thresholds survive a reset
    sm.update(np.full((3, 1), 0.9), 5.0)  # a new stream may start at any time
    assert sm.reset(close_events=False) == []
    # reset_filters: the median forgets the high frames; the open event and the clock carry on
    sm.update(np.full((5, 1), 0.9), 0.0)
    sm.reset_filters()
    sm.update(np.array([[0.1]]), 0.05)
    assert sm.roll()[0, -1] == pytest.approx(0.1)
    assert sm.active == {"a": (0.0, pytest.approx(0.1))}


def test_median_and_ema_are_causal() -> None:
    x = np.array([[0.0], [1.0], [1.0], [0.0], [0.0], [0.0]])
    med = Smoother(["a"], spec(method="median", median_frames=3), HOP, history=6)
    med.update(x, 0.0)
    # trailing windows: [0] [0,1] [0,1,1] [1,1,0] [1,0,0] [0,0,0]
    np.testing.assert_allclose(med.roll()[0], [0.0, 0.5, 1.0, 1.0, 0.0, 0.0])
    ema = Smoother(["a"], spec(method="ema", ema_alpha=0.5), HOP, history=6)
    ema.update(x, 0.0)
    np.testing.assert_allclose(ema.roll()[0], [0.0, 0.5, 0.75, 0.375, 0.1875, 0.09375])


def test_roll_is_oldest_to_newest_with_zeros_for_unseen_frames() -> None:
    sm = Smoother(["a", "b"], spec(), HOP, task="multilabel", history=4)
    assert sm.roll().shape == (2, 4) and not sm.roll().any()
    sm.update(np.array([[0.1, 0.2], [0.3, 0.4]]), 0.0)
    np.testing.assert_allclose(sm.roll(), [[0, 0, 0.1, 0.3], [0, 0, 0.2, 0.4]])
    sm.update(np.array([[0.5, 0.6], [0.7, 0.8], [0.9, 1.0]]), 0.02)
    np.testing.assert_allclose(sm.roll(), [[0.3, 0.5, 0.7, 0.9], [0.4, 0.6, 0.8, 1.0]])
    np.testing.assert_array_equal(sm.roll_active(), [[False, True, True, True]] * 2)


def test_set_threshold_applies_from_the_next_frame() -> None:
    labels = ["a", "b"]
    post = np.full((40, 2), 0.6)
    sm = Smoother(labels, spec(), HOP, task="multilabel",
                  thresholds={"b": (0.7, 0.3)})
    assert sm.threshold("a") == (0.5, 0.35) and sm.threshold("b") == (0.7, 0.3)
    sm.update(post[:10], 0.0)
    assert list(sm.active) == ["a"]
    sm.set_threshold("b", 0.55, 0.3)
    sm.set_threshold("a", 0.9, 0.65)  # a is on and now below its off threshold
    events = sm.update(post[10:11], 0.1)
    assert list(sm.active) == ["b"]
    events += sm.close()
    assert [(e.label, e.onset_s, e.offset_s) for e in events] == [("a", 0.0, 0.1),
                                                                  ("b", 0.1, 0.11)]
    with pytest.raises(SmoothingError):
        sm.set_threshold("a", 0.3, 0.4)
    with pytest.raises(SmoothingError):
        sm.set_threshold("nope", 0.5, 0.4)


def test_time_gap_ends_open_events_and_going_back_is_an_error() -> None:
    sm = Smoother(["a"], spec(min_off_ms=100), HOP, task="multilabel")
    sm.update(np.full((10, 1), 0.9), 0.0)
    # 2 s without frames (e.g. a source that skipped): the event ended where the last frame did
    events = sm.update(np.full((5, 1), 0.9), 2.1)
    assert [(e.onset_s, e.offset_s) for e in events] == [(0.0, 0.1)]
    assert sm.active == {"a": (2.1, pytest.approx(0.9))}
    with pytest.raises(SmoothingError, match="back in time"):
        sm.update(np.full((1, 1), 0.9), 1.0)


def test_bad_configuration_and_input_are_clear_errors() -> None:
    with pytest.raises(SmoothingError, match="ignore_labels"):
        Smoother(["a"], spec(), HOP, ignore_labels=["b"])
    with pytest.raises(SmoothingError, match="task"):
        Smoother(["a"], spec(), HOP, task="multi")
    with pytest.raises(SmoothingError, match="thresholds"):
        Smoother(["a"], spec(threshold_on=0.3, threshold_off=0.4), HOP)
    with pytest.raises(SmoothingError, match="frames, 2"):
        Smoother(["a", "b"], spec(), HOP).update(np.zeros((3, 3)), 0.0)
    assert Smoother(["a"], spec(), HOP).update(np.zeros((0, 1)), 0.0) == []


# ---- onset back-dating ---------------------------------------------------------------------------
def ramp(n_frames: int, labels: Sequence[str], label: str, start_s: float, top_s: float,
         end_s: float, floor: float = 0.02) -> np.ndarray:
    """One class climbing linearly from `floor` at start_s to 0.9 at top_s, held until end_s."""
    post = np.full((n_frames, len(labels)), floor)
    t = np.arange(n_frames) * HOP
    c = labels.index(label)
    rising = (t >= start_s) & (t < top_s)
    post[rising, c] = floor + (0.9 - floor) * (t[rising] - start_s) / (top_s - start_s)
    post[(t >= top_s) & (t < end_s), c] = 0.9
    return post


def test_threshold_rise_back_dates_the_onset_to_where_the_posterior_rose() -> None:
    labels = ["_silence_", "yes", "no"]
    post = ramp(200, labels, "yes", 0.50, 0.70, 1.20)  # 0.1 is passed at 0.52, 0.5 at 0.61
    plain = run(Smoother(labels, spec(), HOP, ignore_labels=["_silence_"]), post)
    rise = Smoother(labels, spec(threshold_rise=0.1), HOP, ignore_labels=["_silence_"])
    dated = rise.update(post[:65], 0.0)
    assert dated == [] and rise.active["yes"][0] == pytest.approx(0.52)  # open: already dated
    dated += run(rise, post[65:], t0=0.65)
    assert [(e.label, e.offset_s) for e in dated] == [(e.label, e.offset_s) for e in plain]
    assert plain[0].onset_s == pytest.approx(0.61) and dated[0].onset_s == pytest.approx(0.52)
    # the roll shows the back-dated frames as part of the event
    act = rise.roll_active()[labels.index("yes"), -200:]  # history 500: the last 200 are ours
    assert act[52:120].all() and not act[:52].any() and not act[120:].any()


def test_threshold_rise_does_not_save_a_blip_from_min_on() -> None:
    labels = ["_silence_", "yes"]
    post = ramp(200, labels, "yes", 0.50, 0.70, 0.72)  # on (>= 0.5) for 0.61-0.72 only
    sp = spec(threshold_rise=0.1, min_on_ms=150.0)
    assert run(Smoother(labels, sp, HOP, ignore_labels=["_silence_"]), post) == []
    longer = ramp(200, labels, "yes", 0.50, 0.70, 0.80)  # 0.61-0.80: kept, dated from 0.52
    events = run(Smoother(labels, sp, HOP, ignore_labels=["_silence_"]), longer)
    assert [(round(e.onset_s, 2), round(e.offset_s, 2)) for e in events] == [(0.52, 0.8)]


def test_threshold_rise_never_reaches_into_the_previous_event() -> None:
    labels = ["_silence_", "yes", "no"]
    post = pulses(250, labels, [("yes", 0.3, 1.0)])
    t = np.arange(250) * HOP
    post[(t >= 0.8) & (t < 1.2), labels.index("no")] = 0.2  # rises during "yes", on after it
    post[(t >= 1.2) & (t < 1.8), labels.index("no")] = 0.9
    for task, expected_no_onset in (("multiclass", 1.0), ("multilabel", 0.8)):
        sm = Smoother(labels, spec(threshold_rise=0.1), HOP, task=task,
                      ignore_labels=["_silence_"])
        events = run(sm, post)
        assert [(e.label, round(e.onset_s, 2), round(e.offset_s, 2)) for e in events] == [
            ("yes", 0.3, 1.0), ("no", expected_no_onset, 1.8)], task
    # the class's own previous event is a floor too (multilabel: classes are independent)
    post = pulses(250, labels, [("yes", 0.3, 1.0), ("yes", 1.3, 1.8)])
    post[(t >= 1.0) & (t < 1.3), labels.index("yes")] = 0.2  # below off, above rise
    sm = Smoother(labels, spec(threshold_rise=0.1), HOP, task="multilabel",
                  ignore_labels=["_silence_"])
    assert [(round(e.onset_s, 2), round(e.offset_s, 2)) for e in run(sm, post)] == [
        (0.3, 1.0), (1.0, 1.8)]


def test_threshold_rise_follows_set_threshold_and_is_validated() -> None:
    labels = ["_silence_", "yes"]
    post = ramp(200, labels, "yes", 0.50, 0.70, 1.20)
    sm = Smoother(labels, spec(threshold_rise=0.3), HOP, ignore_labels=["_silence_"])
    sm.set_threshold("yes", 0.2, 0.1)  # rise is capped at the class's threshold_on
    assert run(sm, post)[0].onset_s == pytest.approx(0.55)
    with pytest.raises(SmoothingError, match="threshold_rise"):
        Smoother(labels, spec(threshold_rise=0.6), HOP)


def test_offset_advance_moves_offsets_earlier_but_not_cut_events() -> None:
    labels = ["_silence_", "yes", "no"]
    post = pulses(300, labels, [("yes", 0.3, 1.0), ("no", 1.5, 1.58), ("yes", 2.5, 3.0)])
    sm = Smoother(labels, spec(offset_advance_ms=100.0, min_on_ms=50.0), HOP,
                  ignore_labels=["_silence_"])
    events = run(sm, post[:280])  # the second "yes" is still on at the end: cut, not moved
    assert [(e.label, round(e.onset_s, 2), round(e.offset_s, 2)) for e in events] == [
        ("yes", 0.3, 0.9), ("no", 1.5, 1.51), ("yes", 2.5, 2.8)]
    act = sm.roll_active()[:, -280:]
    assert act[1, 30:90].all() and not act[1, 90:250].any() and act[2, 150] and not act[2, 151]
    with pytest.raises(SmoothingError, match="offset_advance_ms"):
        Smoother(labels, spec(offset_advance_ms=-1.0), HOP)


# ---- chunking invariance -------------------------------------------------------------------------
def _random_posteriors(seed: int, n: int, c: int) -> np.ndarray:
    """Wandering posteriors (AR(1) through a sigmoid): ~15-25 events per class set in 3 s."""
    rng = np.random.default_rng(seed)
    z = lfilter([1.0], [1.0, -0.9], rng.normal(0.0, 0.7, (n, c)), axis=0)
    return 1.0 / (1.0 + np.exp(-z + 0.3))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    cuts=st.lists(st.integers(1, 40), min_size=1, max_size=30),
    method=st.sampled_from(["none", "median", "ema"]),
    median_frames=st.integers(1, 7),
    task=st.sampled_from(["multiclass", "multilabel"]),
    min_on_ms=st.sampled_from([0.0, 30.0, 60.0]),
    min_off_ms=st.sampled_from([0.0, 50.0, 100.0]),
    threshold_rise=st.sampled_from([None, 0.1, 0.3]),
    offset_advance_ms=st.sampled_from([0.0, 30.0]),
)
def test_any_split_gives_the_same_result(seed: int, cuts: list[int], method: str,
                                         median_frames: int, task: str, min_on_ms: float,
                                         min_off_ms: float, threshold_rise: float | None,
                                         offset_advance_ms: float) -> None:
    labels = ["_silence_", "a", "b", "c"]
    n = 300
    post = _random_posteriors(seed, n, len(labels)).astype(np.float32)
    sp = spec(method=method, median_frames=median_frames, ema_alpha=0.4, min_on_ms=min_on_ms,
              min_off_ms=min_off_ms, threshold_rise=threshold_rise,
              offset_advance_ms=offset_advance_ms)
    chunks = []
    left = n
    for k in cuts:
        if left == 0:
            break
        chunks.append(min(k, left))
        left -= chunks[-1]
    if left:
        chunks.append(left)

    def make() -> Smoother:
        return Smoother(labels, sp, HOP, task=task, ignore_labels=["_silence_"], history=128)

    whole, split, single = make(), make(), make()
    t0 = 12.345
    ev_whole = [whole.update(post, t0)]
    ev_split = []
    i = 0
    for k in chunks:
        ev_split.append(split.update(post[i : i + k], t0 + i * HOP))
        i += k
    ev_single = [single.update(post[j], t0 + j * HOP) for j in range(n)]
    flat = [e for evs in ev_whole for e in evs]
    assert [e for evs in ev_split for e in evs] == flat
    assert [e for evs in ev_single for e in evs] == flat
    for other in (split, single):
        assert other.active == whole.active
        np.testing.assert_array_equal(other.roll(), whole.roll())
        np.testing.assert_array_equal(other.roll_active(), whole.roll_active())
        assert other.last_time_s == whole.last_time_s
    closing = whole.close()
    assert split.close() == closing and single.close() == closing
    # the finished roll matches the events exactly (within the history window)
    everything = flat + closing
    assert len(everything) >= 3  # the case exercises events, not just silence
    expected = np.zeros((len(labels), n), dtype=bool)
    for e in everything:
        c = labels.index(e.label)
        first = round((e.onset_s - t0) / HOP)
        stop = round((e.offset_s - t0) / HOP)
        expected[c, first:stop] = True
    np.testing.assert_array_equal(whole.roll_active(), expected[:, -128:])
    if task == "multiclass":
        assert expected.sum(axis=0).max() <= 1


# ---- cost ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["median", "ema"])
def test_per_update_cost_is_reported(method: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Not a pass/fail on time: prints the cost of one single-row update for 10 classes."""
    labels = ["_silence_"] + [f"c{i}" for i in range(9)]
    post = (_random_posteriors(1, 5000, 10) * 0.9).astype(np.float32)
    sp = SmoothingSpec(method=method)  # type: ignore[arg-type]
    sm = Smoother(labels, sp, HOP, ignore_labels=["_silence_"])
    rows = [post[i : i + 1] for i in range(len(post))]
    start = time.perf_counter()
    for i, row in enumerate(rows):
        sm.update(row, i * HOP)
    per_call_us = (time.perf_counter() - start) / len(rows) * 1e6
    with capsys.disabled():
        print(f"\n[smoothing] {method}: {per_call_us:.1f} us per single-row update (10 classes)")
