"""One utterance at a time from a stream: wait for speech, keep it until it has ended.

`hark enroll` records each take as "the next thing the user says": blocks of any size go in,
finished utterances come out. A 30 ms frame is speech when webrtcvad says so AND it is
`margin_db` louder than the noise floor (webrtcvad alone fires on steady fan or hum noise; level
alone on a door slam). An utterance opens after `start_frames` speech frames in a row (90 ms: a
click never opens one), carries `pre_roll_ms` of audio from before its first speech frame (word
onsets are quiet), and ends after `end_silence_ms` without speech, or at `max_s` (capped).
Utterances with less than `min_speech_ms` of speech are dropped as noise. Deterministic: the same
samples in any chunking give the same utterances (tests/live/test_utterance.py).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import webrtcvad

LEVEL_FLOOR_DB = -100.0  # what digital silence reads as on the meter
INT16_MAX = 32767
EXTEND_MARGIN_DB = 6.0  # a trimmed take keeps neighbouring frames this far above the floor...
EXTEND_GAP_MS = 150.0  # ...across quiet gaps up to this long (the closure before a plosive)


@dataclass(frozen=True)
class UtteranceOptions:
    """How an utterance is found (defaults: a word or short phrase said into a microphone)."""

    sample_rate: int = 16000
    frame_ms: int = 30  # webrtcvad takes 10, 20 or 30 ms frames
    vad_mode: int = 2  # 0..3, more aggressive at rejecting non-speech
    margin_db: float = 10.0  # a speech frame is this much above the noise floor
    floor_min_db: float = -70.0  # the floor of a digitally silent input (a null sink, a file)
    start_frames: int = 3  # speech frames in a row that open an utterance
    end_silence_ms: float = 400.0  # this long without speech ends it
    pre_roll_ms: float = 300.0  # audio kept from before the first speech frame
    max_s: float = 3.0  # an utterance never runs longer (the user kept talking)
    min_speech_ms: float = 150.0  # less speech than this is noise, not a take

    def validate(self) -> None:
        """Refuse values webrtcvad or the state machine would misread."""
        if self.sample_rate not in (8000, 16000, 32000, 48000):
            raise ValueError(f"webrtcvad takes 8/16/32/48 kHz, not {self.sample_rate}")
        if self.frame_ms not in (10, 20, 30):
            raise ValueError(f"frame_ms must be 10, 20 or 30, not {self.frame_ms}")
        if not 0 <= self.vad_mode <= 3:
            raise ValueError(f"vad_mode must be 0..3, not {self.vad_mode}")
        if self.start_frames < 1 or self.max_s <= 0 or self.end_silence_ms <= 0:
            raise ValueError("start_frames, max_s and end_silence_ms must be positive")

    @property
    def frame_samples(self) -> int:
        return self.sample_rate * self.frame_ms // 1000


@dataclass(frozen=True)
class Utterance:
    """A finished utterance: its audio (pre-roll to the end of the silence that closed it)."""

    audio: np.ndarray
    start_s: float  # stream time of audio[0]
    speech_s: float  # seconds of frames judged speech
    capped: bool  # ended by max_s, not by silence
    speech_start: int  # samples into audio: the first speech frame
    speech_end: int  # one past the last speech frame


def level_db(x: np.ndarray) -> float:
    """RMS level in dBFS (full scale 1.0); LEVEL_FLOOR_DB for silence."""
    if not x.size:
        return LEVEL_FLOOR_DB
    ms = float(np.mean(np.square(x, dtype=np.float64)))
    return max(LEVEL_FLOOR_DB, 10.0 * np.log10(ms)) if ms > 0 else LEVEL_FLOOR_DB


class UtteranceDetector:
    """push(block) -> utterances it finished; `level_db` and `in_speech` for a meter."""

    def __init__(self, options: UtteranceOptions | None = None,
                 floor_db: float | None = None) -> None:
        self.options = options or UtteranceOptions()
        self.options.validate()
        self._vad = webrtcvad.Vad(self.options.vad_mode)
        self._initial_floor = floor_db
        self.reset()

    def reset(self) -> None:
        """Forget everything: a new stream (the noise floor is learnt again)."""
        o = self.options
        self._pending = np.zeros(0, dtype=np.float32)
        self._frames_seen = 0
        self._floor: float | None = (None if self._initial_floor is None
                                     else max(self._initial_floor, o.floor_min_db))
        self._pre: deque[np.ndarray] = deque(maxlen=max(1, round(o.pre_roll_ms / o.frame_ms)))
        self._run = 0  # speech frames in a row while waiting
        self._frames: list[np.ndarray] = []  # the open utterance's frames
        self._start_frame = 0
        self._speech_frames = 0
        self._silence_run = 0
        self._first_speech = 0  # frame index in the open utterance of its first speech frame
        self._last_speech = 0  # ... and one past its last
        self.level_db = LEVEL_FLOOR_DB
        self.in_speech = False

    @property
    def floor_db(self) -> float:
        """The noise floor learnt so far (dBFS)."""
        return self.options.floor_min_db if self._floor is None else self._floor

    def push(self, block: np.ndarray) -> list[Utterance]:
        """Feed mono float32 samples; return the utterances they finish (oldest first)."""
        x = np.asarray(block, dtype=np.float32).reshape(-1)
        buf = np.concatenate((self._pending, x)) if self._pending.size else x
        n = self.options.frame_samples
        whole = buf.size // n * n
        self._pending = buf[whole:].copy()
        out = []
        for i in range(0, whole, n):
            done = self._frame(buf[i : i + n])
            if done is not None:
                out.append(done)
        return out

    def flush(self) -> list[Utterance]:
        """End of the stream: an open utterance ends here (if it has enough speech)."""
        done = self._finish(capped=False) if self._frames else None
        return [done] if done is not None else []

    def _is_speech(self, frame: np.ndarray, lvl: float) -> bool:
        o = self.options
        loud = lvl > max(self.floor_db, o.floor_min_db) + o.margin_db
        if not loud:
            return False
        pcm = (np.clip(frame, -1.0, 1.0) * INT16_MAX).astype("<i2").tobytes()
        return bool(self._vad.is_speech(pcm, o.sample_rate))

    def _track_floor(self, lvl: float) -> None:
        # down at once, up slowly (time constant ~20 frames = 0.6 s): speech never drags it up
        lvl = max(lvl, self.options.floor_min_db)
        if self._floor is None or lvl < self._floor:
            self._floor = lvl
        else:
            self._floor += 0.05 * (lvl - self._floor)

    def _frame(self, frame: np.ndarray) -> Utterance | None:
        o = self.options
        lvl = level_db(frame)
        self.level_db = lvl
        speech = self._is_speech(frame, lvl)
        index = self._frames_seen
        self._frames_seen += 1
        if not self._frames:  # waiting for speech
            if not speech:
                self._track_floor(lvl)
            self._pre.append(frame)
            self._run = self._run + 1 if speech else 0
            if self._run >= o.start_frames:
                self._frames = list(self._pre)
                self._start_frame = index + 1 - len(self._frames)
                self._speech_frames = self._run
                self._first_speech = len(self._frames) - self._run
                self._last_speech = len(self._frames)
                self._silence_run = 0
                self._pre.clear()
                self._run = 0
                self.in_speech = True
            return None
        self._frames.append(frame)
        if speech:
            self._speech_frames += 1
            self._silence_run = 0
            self._last_speech = len(self._frames)
        else:
            self._silence_run += 1
        if self._silence_run * o.frame_ms >= o.end_silence_ms:
            return self._finish(capped=False)
        if len(self._frames) * o.frame_ms >= o.max_s * 1000:
            return self._finish(capped=True)
        return None

    def _finish(self, capped: bool) -> Utterance | None:
        o = self.options
        audio = np.concatenate(self._frames)
        start_s = self._start_frame * o.frame_ms / 1000
        speech_s = self._speech_frames * o.frame_ms / 1000
        n = o.frame_samples
        first, last = self._first_speech * n, self._last_speech * n
        self._frames = []
        self.in_speech = False
        if speech_s * 1000 < o.min_speech_ms:
            return None
        return Utterance(audio, start_s, speech_s, capped, first, last)


def speech_span(audio: np.ndarray, options: UtteranceOptions | None = None,
                margin_ms: float = 50.0) -> tuple[int, int] | None:
    """(start, end) samples of a recording's speech; None when it holds none (noise only).

    From the first to the last speech frame of its utterances, widened by margin_ms each side.

    A take's word sits somewhere inside seconds of room noise; training places the word, not the
    room. The floor is the recording's own quietest frames (its 10th percentile), not learnt as it
    goes: a file may start with the word.
    """
    o = options or UtteranceOptions()
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    n = o.frame_samples
    levels = [level_db(x[i : i + n]) for i in range(0, x.size // n * n, n)]
    if not levels:
        return None
    floor = max(float(np.percentile(levels, 10)), o.floor_min_db)
    det = UtteranceDetector(o, floor_db=floor)
    tail = np.zeros(round(2 * o.end_silence_ms / 1000 * o.sample_rate), dtype=np.float32)
    found = det.push(np.concatenate((x, tail))) + det.flush()
    if not found:
        return None
    rate = o.sample_rate
    first = (round(found[0].start_s * rate) + found[0].speech_start) // n
    last = (round(found[-1].start_s * rate) + found[-1].speech_end) // n  # one past, in frames
    # webrtcvad calls fricatives and plosive bursts ('s' of stop, its 'p') non-speech: widen the
    # span over frames above the floor with at most EXTEND_GAP_MS of quiet between (a closure)
    loud = np.asarray(levels) > floor + EXTEND_MARGIN_DB
    gap = max(1, round(EXTEND_GAP_MS / o.frame_ms))
    while True:
        before = np.flatnonzero(loud[max(0, first - gap) : first])
        if not before.size:
            break
        first = max(0, first - gap) + int(before[0])
    while True:
        after = np.flatnonzero(loud[last : last + gap])
        if not after.size:
            break
        last += int(after[-1]) + 1
    pad = round(margin_ms / 1000 * rate)
    return max(0, first * n - pad), min(x.size, last * n + pad)
