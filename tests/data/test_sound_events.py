from pathlib import Path

import numpy as np
import pytest

from hark.live.events import read_events_tsv
from hark.models.data.sound_events import (
    EVENT_CLASSES,
    EventStreamOptions,
    generate_event_set,
    make_event_stream,
    synth_event,
)

SR = 16000
SIGNAL_CLASSES = ("clap", "whistle", "beep", "knock")


def _spectrum(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.fft.rfftfreq(x.size, 1 / SR), np.abs(np.fft.rfft(x)) ** 2


@pytest.mark.parametrize("seed", range(4))
def test_each_signal_class_has_its_character(seed: int) -> None:
    rng = np.random.default_rng(seed)
    clips = {label: synth_event(label, rng, SR) for label in SIGNAL_CLASSES}
    for label, clip in clips.items():
        assert clip.dtype == np.float32 and np.isfinite(clip).all(), label
        assert np.max(np.abs(clip)) == pytest.approx(1.0), label
    freqs, power = _spectrum(clips["whistle"])
    assert 900 < freqs[np.argmax(power)] < 3300
    freqs, power = _spectrum(clips["beep"])
    assert 650 < freqs[np.argmax(power)] < 1550
    freqs, power = _spectrum(clips["knock"])
    assert np.sum(freqs * power) / np.sum(power) < 600
    freqs, power = _spectrum(clips["clap"])
    assert np.sum(freqs * power) / np.sum(power) > 1000
    # several claps/knocks/beeps: the envelope has more than one burst
    for label in ("clap", "knock", "beep"):
        frames = np.abs(clips[label][: clips[label].size // 160 * 160]).reshape(-1, 160).max(axis=1)
        loud = frames > 0.3
        assert np.sum(loud[1:] & ~loud[:-1]) + loud[0] >= 2, label


def test_instances_differ_between_draws() -> None:
    rng = np.random.default_rng(0)
    for label in SIGNAL_CLASSES:
        a, b = synth_event(label, rng, SR), synth_event(label, rng, SR)
        assert a.size != b.size or not np.array_equal(a, b), label


def test_speech_event(espeak: None) -> None:
    clip = synth_event("speech", np.random.default_rng(0), SR)
    assert 0.1 * SR < clip.size < 3 * SR


def test_unknown_class_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown event class"):
        synth_event("siren", np.random.default_rng(0))


def test_stream_holds_every_class_with_true_extents(espeak: None) -> None:
    opts = EventStreamOptions(duration_s=12.0, n_events_range=(5, 5), snr_db_range=(20.0, 20.0))
    stream = make_event_stream(np.random.default_rng(3), opts)
    assert sorted(e.label for e in stream.events) == sorted(EVENT_CLASSES)
    inside = np.zeros(stream.audio.size, dtype=bool)
    for event in stream.events:
        assert 0.0 <= event.onset_s < event.offset_s <= stream.duration_s
        inside[round(event.onset_s * SR) : round(event.offset_s * SR)] = True
    p_in = np.mean(stream.audio[inside].astype(np.float64) ** 2)
    p_out = np.mean(stream.audio[~inside].astype(np.float64) ** 2)
    assert 10 * np.log10(p_in / p_out) > 12.0


def test_overlap_can_be_forbidden() -> None:
    opts = EventStreamOptions(classes=SIGNAL_CLASSES, n_events_range=(6, 6), allow_overlap=False)
    for seed in range(3):
        events = make_event_stream(np.random.default_rng(seed), opts).events
        for prev, nxt in zip(events, events[1:], strict=False):
            assert prev.offset_s <= nxt.onset_s


def test_overlap_happens_when_allowed() -> None:
    opts = EventStreamOptions(duration_s=4.0, classes=SIGNAL_CLASSES, n_events_range=(8, 8))
    events = make_event_stream(np.random.default_rng(0), opts).events
    assert any(prev.offset_s > nxt.onset_s for prev, nxt in zip(events, events[1:], strict=False))


def test_streams_are_seeded() -> None:
    opts = EventStreamOptions(classes=SIGNAL_CLASSES)
    a = make_event_stream(np.random.default_rng(1), opts)
    b = make_event_stream(np.random.default_rng(1), opts)
    c = make_event_stream(np.random.default_rng(2), opts)
    assert a.audio.tobytes() == b.audio.tobytes() and a.events == b.events
    assert a.audio.tobytes() != c.audio.tobytes()
    assert np.max(np.abs(a.audio)) <= 0.99 + 1e-6


def test_event_set_is_written_as_wav_and_dcase_tsv(tmp_path: Path) -> None:
    opts = EventStreamOptions(duration_s=3.0, classes=SIGNAL_CLASSES, n_events_range=(2, 3))
    paths = generate_event_set(tmp_path / "a", 2, seed=4, options=opts)
    again = generate_event_set(tmp_path / "b", 2, seed=4, options=opts)
    assert [p.name for p in paths] == ["stream_0000.wav", "stream_0001.wav"]
    for p, q in zip(paths, again, strict=True):
        assert p.read_bytes() == q.read_bytes()
        assert p.with_suffix(".tsv").read_bytes() == q.with_suffix(".tsv").read_bytes()
        events = read_events_tsv(p.with_suffix(".tsv"))
        assert 2 <= len(events) <= 3
