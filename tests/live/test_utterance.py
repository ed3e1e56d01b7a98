"""The utterance detector (live.utterance): one take per utterance, any chunking, no clicks.

Speech here is flite's kal16 voice (a training voice is fine: nothing is trained), inside pink
noise at a known level, so the truth is where the clips were put.
"""

from __future__ import annotations

import numpy as np
import pytest

from hark.live.utterance import (
    Utterance,
    UtteranceDetector,
    UtteranceOptions,
    level_db,
    speech_span,
)
from hark.models.data.augment import coloured_noise
from hark.models.data.tts import Prosody, Voice, synth_clip

RATE = 16000
KAL = Voice("flite", "kal16", "flite-kal16", "flite-kal")


@pytest.fixture(scope="module")
def words() -> dict[str, np.ndarray]:
    return {w: synth_clip(w, KAL, RATE, Prosody()) for w in ("stop", "lights on", "yes")}


def _sequence(clips: list[np.ndarray], gap_s: float, noise_db: float = -55.0,
              seed: int = 0) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Clips separated by gap_s of noise; returns the audio and where each clip is."""
    gap = np.zeros(int(gap_s * RATE), np.float32)
    parts, where, t = [gap], [], gap.size
    for c in clips:
        parts += [c, gap]
        where.append((t, t + c.size))
        t += c.size + gap.size
    x = np.concatenate(parts)
    x += np.float32(10 ** (noise_db / 20)) * coloured_noise(x.size, "pink",
                                                             np.random.default_rng(seed))
    return x, where


def _run(x: np.ndarray, block: int, opts: UtteranceOptions | None = None) -> list[Utterance]:
    det = UtteranceDetector(opts)
    out = []
    for i in range(0, x.size, block):
        out += det.push(x[i : i + block])
    return out + det.flush()


def test_one_utterance_per_word_in_any_chunking(words: dict[str, np.ndarray]) -> None:
    x, where = _sequence(list(words.values()), gap_s=1.0)
    runs = {b: _run(x, b) for b in (160, 480, 1111, 16000)}
    first = runs[160]
    assert len(first) == 3
    for b, got in runs.items():
        assert [(u.start_s, u.audio.size, u.speech_s) for u in got] == \
            [(u.start_s, u.audio.size, u.speech_s) for u in first], b
    for u, (a, b) in zip(first, where, strict=True):
        start = round(u.start_s * RATE)
        # the take holds the whole clip's speech (pre-roll before, the closing silence after)
        span = speech_span(x[a:b])
        assert span is not None
        assert start <= a + span[0] and start + u.audio.size >= a + span[1]
        assert not u.capped
        assert u.audio.size / RATE < (b - a) / RATE + 0.3 + 0.4 + 0.1


def test_a_click_is_not_a_take_and_noise_alone_gives_nothing() -> None:
    rng = np.random.default_rng(1)
    x = np.float32(10 ** (-50 / 20)) * coloured_noise(3 * RATE, "pink", rng)
    assert _run(x, 480) == []
    x[RATE : RATE + 160] += 0.5 * rng.standard_normal(160).astype(np.float32)  # 10 ms click
    assert _run(x, 480) == []
    assert speech_span(x) is None
    assert speech_span(np.zeros(RATE, np.float32)) is None


def test_a_long_utterance_is_capped(words: dict[str, np.ndarray]) -> None:
    x, _ = _sequence([words["lights on"]] * 4, gap_s=0.1)  # pauses too short to end it
    got = _run(x, 480, UtteranceOptions(max_s=2.0))
    assert got and got[0].capped and got[0].audio.size == round(2.0 * RATE / 480) * 480


def test_speech_span_keeps_the_fricative_webrtcvad_misses(words: dict[str, np.ndarray]) -> None:
    # 'stop' starts with an 's' webrtcvad calls non-speech: the span still starts before it
    clip = words["stop"]
    clean = speech_span(np.concatenate((np.zeros(8000, np.float32), clip)))
    assert clean is not None
    loud = np.flatnonzero(np.abs(clip) > 0.01)
    assert clean[0] <= 8000 + loud[0] and clean[1] >= 8000 + loud[-1] - 480


def test_level_db() -> None:
    assert level_db(np.zeros(100, np.float32)) == -100.0
    assert level_db(np.full(100, 0.5, np.float32)) == pytest.approx(-6.02, abs=0.01)
