"""Prompted takes (live.takes): one utterance per prompt, re-take, skip, quit, no-speech errors."""

from __future__ import annotations

import numpy as np
import pytest

from hark.live.takes import NoSpeechError, Prompt, TakeSession, record
from hark.models.data.augment import coloured_noise
from hark.models.data.tts import Prosody, Voice, synth_clip

RATE = 16000
KAL = Voice("flite", "kal16", "flite-kal16", "flite-kal")


def _blocks(x: np.ndarray, n: int = 480) -> list[np.ndarray]:
    return [x[i : i + n] for i in range(0, x.size, n)]


def _takes(words: list[str], gap_s: float = 0.9) -> np.ndarray:
    gap = np.zeros(int(gap_s * RATE), np.float32)
    parts = [gap]
    for w in words:
        parts += [synth_clip(w, KAL, RATE, Prosody()), gap]
    x = np.concatenate(parts)
    return x + np.float32(0.002) * coloured_noise(x.size, "pink", np.random.default_rng(0))


def test_session_commands() -> None:
    s = TakeSession(["a", "b"], 2)
    assert s.prompt == Prompt("a", 1, 2, 1, 2)
    assert s.retake() is None  # nothing to re-take yet
    s.accept(np.ones(10, np.float32))
    assert s.prompt == Prompt("a", 2, 2, 1, 2)
    s.accept(np.full(10, 2.0, np.float32))
    assert s.prompt == Prompt("b", 1, 2, 2, 2)
    last = s.retake()  # back into the first word: its second take is said again
    assert last is not None and last.word == "a" and last.take == 2
    assert s.prompt == Prompt("a", 2, 2, 1, 2)
    s.accept(np.full(10, 3.0, np.float32))
    assert s.skip_word() == "b"
    assert s.done and s.skipped == ["b"]
    assert [float(t.audio[0]) for t in s.takes()] == [1.0, 3.0]
    s2 = TakeSession(["a"], 1)
    s2.quit()
    assert s2.done and s2.prompt is None and s2.quit_requested


def test_record_gives_each_prompt_its_utterance() -> None:
    x = _takes(["yes", "yes", "no", "no", "stop"])  # one utterance more than asked for
    s = TakeSession(["yes", "no"], 2)
    prompts: list[Prompt] = []
    kept: list[tuple[str, int]] = []
    record(s, _blocks(x), RATE, on_prompt=prompts.append,
           on_take=lambda p, sec: kept.append((p.word, p.take)))
    assert kept == [("yes", 1), ("yes", 2), ("no", 1), ("no", 2)]
    assert [p.text() for p in prompts][:2] == ["say 'yes' (take 1/2, word 1/2)",
                                               "say 'yes' (take 2/2, word 1/2)"]
    assert s.done
    # each take is its own utterance: about as long as the word plus pre-roll and closing silence
    for t in s.takes():
        assert 0.5 < t.audio.size / RATE < 2.0


def test_no_speech_is_an_error_after_wait_s() -> None:
    noise = np.float32(0.003) * coloured_noise(4 * RATE, "pink", np.random.default_rng(2))
    s = TakeSession(["yes"], 1)
    with pytest.raises(NoSpeechError, match="no speech heard for 'yes' in 2 s"):
        record(s, _blocks(noise), RATE, wait_s=2.0)
    with pytest.raises(NoSpeechError, match="input ended before take 1/1"):
        record(TakeSession(["yes"], 1), _blocks(noise), RATE)


def test_stop_ends_recording_without_error() -> None:
    import threading

    stop = threading.Event()
    stop.set()
    s = TakeSession(["yes"], 1)
    record(s, _blocks(np.zeros(RATE, np.float32)), RATE, stop=stop)
    assert not s.takes()
