from collections.abc import Sequence

import numpy as np
import pytest

from hark.live.events import Event
from hark.models.data.events import frame_targets
from hark.models.data.speech_commands import SILENCE, UNKNOWN
from hark.models.data.streams import SpeechStreamOptions, make_speech_stream

SR = 16000


def _word(rng: np.random.Generator, freq: float) -> np.ndarray:
    """A 1 s clip holding a 0.2-0.6 s tone burst at a random offset (a stand-in for a word)."""
    clip = np.zeros(SR, dtype=np.float32)
    n = int(rng.integers(int(0.2 * SR), int(0.6 * SR)))
    start = int(rng.integers(0, SR - n))
    clip[start : start + n] = 0.5 * np.sin(2 * np.pi * freq * np.arange(n) / SR)
    return clip


@pytest.fixture
def pool() -> list[tuple[np.ndarray, str]]:
    rng = np.random.default_rng(0)
    words = [(_word(rng, 440.0), "yes") for _ in range(4)] + [
        (_word(rng, 660.0), "no") for _ in range(4)
    ]
    words += [(_word(rng, 300.0), UNKNOWN) for _ in range(2)]
    silence = (0.001 * rng.standard_normal(SR)).astype(np.float32)
    return [*words, (silence, SILENCE)]


def _inside_mask(stream_events: Sequence[Event], n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    for e in stream_events:
        mask[round(e.onset_s * SR) : round(e.offset_s * SR)] = True
    return mask


def test_events_match_the_placed_audio(pool: list[tuple[np.ndarray, str]]) -> None:
    opts = SpeechStreamOptions(duration_s=20.0, snr_db_range=None)
    stream = make_speech_stream(pool, np.random.default_rng(1), opts)
    assert stream.audio.shape == (20 * SR,) and stream.audio.dtype == np.float32
    assert len(stream.events) >= 8
    assert {e.label for e in stream.events} <= {"yes", "no", UNKNOWN}
    inside = _inside_mask(stream.events, stream.audio.size)
    p_in = np.mean(stream.audio[inside] ** 2)
    p_out = np.mean(stream.audio[~inside] ** 2)
    assert p_in > 1e4 * p_out  # > 40 dB
    for prev, nxt in zip(stream.events, stream.events[1:], strict=False):
        assert prev.offset_s <= nxt.onset_s  # speech events never overlap
    for event in stream.events:
        # the trimmed burst fills its event: loud at both ends (within one 10 ms trim hop)
        a, b = round(event.onset_s * SR), round(event.offset_s * SR)
        assert np.max(np.abs(stream.audio[a : a + 160])) > 0.2
        assert np.max(np.abs(stream.audio[b - 160 : b])) > 0.2
        assert 0.18 < event.offset_s - event.onset_s < 0.65


def test_noise_is_added_at_the_requested_snr(pool: list[tuple[np.ndarray, str]]) -> None:
    clean_opts = SpeechStreamOptions(duration_s=10.0, snr_db_range=None)
    noisy_opts = SpeechStreamOptions(duration_s=10.0, snr_db_range=(20.0, 20.0))
    clean = make_speech_stream(pool, np.random.default_rng(2), clean_opts)
    noisy = make_speech_stream(pool, np.random.default_rng(2), noisy_opts)
    assert clean.events == noisy.events
    inside = _inside_mask(clean.events, clean.audio.size)
    noise = noisy.audio.astype(np.float64) - clean.audio
    snr = 10 * np.log10(np.mean(clean.audio[inside].astype(np.float64) ** 2) / np.mean(noise**2))
    assert snr == pytest.approx(20.0, abs=0.5)


def test_streams_are_seeded(pool: list[tuple[np.ndarray, str]]) -> None:
    a = make_speech_stream(pool, np.random.default_rng(5))
    b = make_speech_stream(pool, np.random.default_rng(5))
    c = make_speech_stream(pool, np.random.default_rng(6))
    assert a.audio.tobytes() == b.audio.tobytes() and a.events == b.events
    assert a.audio.tobytes() != c.audio.tobytes()


def test_frame_targets_of_a_stream(pool: list[tuple[np.ndarray, str]]) -> None:
    stream = make_speech_stream(
        pool, np.random.default_rng(3), SpeechStreamOptions(duration_s=10.0)
    )
    n_frames = int((stream.duration_s - 0.025) / 0.01) + 1
    targets = frame_targets(stream.events, n_frames, 0.01, 0.025, ("yes", "no"), ignore={UNKNOWN})
    speech_s = sum(e.offset_s - e.onset_s for e in stream.events if e.label != UNKNOWN)
    assert np.sum(targets != 2) * 0.01 == pytest.approx(speech_s, abs=0.01 * len(stream.events))


def test_empty_pool_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        make_speech_stream([], np.random.default_rng(0))
