"""models.tuning: the smoothing and VAD search finds settings whose answer is known."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hark.live.card import SmoothingSpec
from hark.live.events import Event
from hark.live.model import OnnxModel
from hark.models.tuning import Recorded, record, score, tune, tune_with_vad, with_vad
from tests import onnx_models

HOP = 0.01
RATE = 16000
WORDS = (("low", 1.0, 1.5), ("high", 2.5, 3.0), ("low", 4.0, 4.6), ("high", 5.5, 5.9))


@pytest.fixture(scope="module")
def bands(tmp_path_factory: pytest.TempPathFactory) -> OnnxModel:
    d = tmp_path_factory.mktemp("tuning")
    return OnnxModel.load(onnx_models.band_energy_model(d, (-5.0, -5.0)))


def slow_recogniser(duration_s: float, words: tuple[tuple[str, float, float], ...],
                    labels: tuple[str, ...], rise_s: float) -> Recorded:
    """Posteriors of a recogniser that needs `rise_s` to be sure: a linear climb from the word's
    onset to 0.95, held to the word's end, then a fall over 50 ms."""
    n = int(duration_s / HOP)
    t = np.arange(n) * HOP
    post = np.full((n, len(labels)), 0.02)
    for label, on, off in words:
        c = labels.index(label)
        climb = np.clip((t - on) / rise_s, 0.0, 1.0)
        fall = np.clip(1.0 - (t - off) / 0.05, 0.0, 1.0)
        inside = (t >= on) & (t < off + 0.05)
        post[inside, c] = np.maximum(post[inside, c], 0.02 + 0.93 * climb[inside] * fall[inside])
    ref = [Event(lb, on, off, peak=1.0, mean=1.0) for lb, on, off in words]
    return Recorded(t, post.astype(np.float32), duration_s, ref)


def test_tuner_back_dates_the_onsets_of_a_slow_recogniser(bands: OnnxModel) -> None:
    # the posterior passes 0.5 some 260 ms into each word: outside the 200 ms onset collar
    rec = slow_recogniser(7.0, WORDS, bands.card.labels, rise_s=0.5)
    start = SmoothingSpec(method="none", threshold_on=0.5, threshold_off=0.3, min_on_ms=40,
                          min_off_ms=50)
    before, _ = score(bands, start, [rec])
    assert before == 0.0
    spec, figures = tune(bands, [rec], start=start)
    assert spec.threshold_rise is not None and spec.threshold_rise <= spec.threshold_on
    assert figures["event_f1"] == 1.0
    # the lowest threshold_on of the grid alone (0.4, passed 204 ms in) cannot do it
    low, _ = score(bands, replace(start, threshold_on=0.4, threshold_off=0.2), [rec])
    assert low == 0.0


def _tones(words: tuple[tuple[str, float, float], ...], duration_s: float) -> np.ndarray:
    """Quiet tones (-53 dBFS) in a near-silent room: the band detector hears them (its thresholds
    sit halfway between the log floor, -13.8, and the tones, about -8.4), webrtcvad mostly not."""
    t = np.arange(int(duration_s * RATE)) / RATE
    audio = 2e-5 * np.random.default_rng(3).standard_normal(t.size)
    for label, on, off in words:
        f = 300.0 if label == "low" else 5000.0
        audio += 0.003 * np.sin(2 * np.pi * f * t) * ((t >= on) & (t < off))
    return audio.astype(np.float32)


def test_tune_with_vad_turns_the_gate_off_when_it_hides_the_events(
    bands: OnnxModel, tmp_path: Path
) -> None:
    """Gated, quiet tones lose events (webrtcvad takes little of them for speech); the search
    must prefer the gate off, one of its candidates."""
    gated = OnnxModel.load(onnx_models.band_energy_model(tmp_path, (-11.1, -11.1), vad=True))
    audio = _tones(WORDS, 7.0)
    refs = [Event(lb, on, off, peak=1.0, mean=1.0) for lb, on, off in WORDS]
    vad, spec, figures = tune_with_vad(gated, [(audio, refs)], [_tones((), 7.0)])
    assert not vad.enabled
    assert figures["event_f1"] == 1.0
    assert figures["false_per_min_negatives"] == 0.0
    assert spec.method == "median"
    # and the gate really does cost events: the least aggressive mode, same smoothing
    mode1 = with_vad(gated, replace(gated.card.vad, mode=1))
    gated_f1, _ = score(mode1, spec, [record(mode1, audio, refs)])
    assert gated_f1 < 0.9


def test_choose_gate_keeps_the_gate_on_when_it_costs_nothing(tmp_path: Path) -> None:
    """Loud harmonic tones in a quiet room: webrtcvad opens on them, so the gated detector finds
    every event as the ungated one does and the rule keeps the gate on; silero-vad, trained on
    speech, does not take tones for speech, so its candidate loses events, and the record says
    so. The chosen setting and the reason land in the choice's JSON."""
    from hark.models.tuning import GATE_F1_ALLOWANCE, choose_gate

    gated = OnnxModel.load(onnx_models.band_energy_model(tmp_path, (-11.1, -11.1), vad=True))
    t = np.arange(7 * RATE) / RATE
    audio = 2e-5 * np.random.default_rng(3).standard_normal(t.size)
    for label, on, off in WORDS:
        f = 300.0 if label == "low" else 3000.0
        tone = sum(np.sin(2 * np.pi * f * h * t) / h for h in (1, 2, 3))
        audio += 0.2 * tone * ((t >= on) & (t < off))
    refs = [Event(lb, on, off, peak=1.0, mean=1.0) for lb, on, off in WORDS]
    candidates = ({"enabled": False}, {"kind": "webrtc", "mode": 1, "pre_roll_ms": 300.0},
                  {"kind": "silero", "threshold": 0.5, "pre_roll_ms": 300.0})
    choice = choose_gate(gated, [(audio.astype(np.float32), refs)], [], candidates=candidates)
    assert choice.vad.enabled and choice.vad.kind == "webrtc" and choice.vad.pre_roll_ms == 300
    assert choice.figures["event_f1"] == 1.0
    rows = {r["vad"].split(",")[0]: r for r in choice.candidates}
    assert rows["off"]["event_f1"] == 1.0
    assert rows["silero threshold 0.5"]["event_f1"] < 1.0 - GATE_F1_ALLOWANCE
    record_json = choice.to_json()
    assert record_json["chosen"].startswith("webrtc mode 1") and "stays on" in record_json["why"]


def test_decision_latency_is_where_the_smoothed_posterior_reaches_threshold_on(
    bands: OnnxModel,
) -> None:
    from hark.models.tuning import decision_latencies, smooth

    rec = slow_recogniser(7.0, WORDS, bands.card.labels, rise_s=0.3)
    spec = SmoothingSpec(method="none", threshold_on=0.5, threshold_off=0.3)
    _, smoothed = smooth(bands, rec, spec)
    np.testing.assert_allclose(smoothed, rec.posteriors, atol=1e-7)  # method none: as recorded
    lat = decision_latencies(rec.times, smoothed, bands.card.labels, rec.reference, 0.5,
                             ready_s=0.0125)
    assert [lb for lb, _ in lat] == [w[0] for w in WORDS]
    # the climb reaches 0.5 after (0.5 - 0.02) / 0.93 * 0.3 s = 155 ms; decisions every 10 ms,
    # each ready 12.5 ms after its stamp
    for _, d in lat:
        assert d is not None and 0.155 <= d <= 0.155 + 0.01 + 0.0125 + 1e-9
    # a word whose label never gets there is a miss, not a latency
    never = decision_latencies(rec.times, smoothed, bands.card.labels, rec.reference, 0.99)
    assert all(d is None for _, d in never)


def test_the_latency_term_picks_the_earlier_of_two_equally_accurate_settings(
    bands: OnnxModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Back-dated onsets make threshold_on 0.9 as accurate as 0.5 on a slow recogniser, but the
    posterior reaches 0.9 some 120 ms later: without the latency term the tuner has no reason to
    leave 0.9; with it, it moves to an earlier threshold and keeps every word."""
    from hark.models import tuning

    rec = slow_recogniser(7.0, WORDS, bands.card.labels, rise_s=0.3)
    start = SmoothingSpec(method="median", median_frames=1, threshold_on=0.9,
                          threshold_off=0.3, min_on_ms=40, min_off_ms=50, threshold_rise=0.05)
    _, at_start = score(bands, start, [rec])
    assert at_start["event_f1"] == 1.0 and at_start["decision_latency_p50_s"] > 0.25
    monkeypatch.setattr(tuning, "LATENCY_PENALTY_PER_S", 0.0)
    untimed, _ = tune(bands, [rec], start=start)
    assert untimed.threshold_on == 0.9
    monkeypatch.undo()
    timed, figures = tune(bands, [rec], start=start)
    assert timed.threshold_on < 0.9
    assert figures["event_f1"] == 1.0
    assert figures["decision_latency_p50_s"] < at_start["decision_latency_p50_s"] - 0.05
