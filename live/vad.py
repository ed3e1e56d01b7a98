"""Voice-activity gate on webrtcvad: cheap (2-3 us per frame) and decides per 10/20/30 ms frame.

Decisions are tied to absolute sample positions, so the gate gives the same answer for any
chunking of the same audio (the engine's stream-equals-offline invariant covers gated models too).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from hark.live.card import VadSpec
from hark.live.errors import HarkError

VAD_RATES = (8000, 16000, 32000, 48000)


@dataclass(frozen=True)
class VadOptions:
    """mode 0 (permissive) .. 3 (aggressive); hangover keeps the gate open after speech ends."""

    mode: int = 2
    frame_ms: int = 30
    hangover_ms: float = 300.0

    @classmethod
    def from_spec(cls, spec: VadSpec) -> VadOptions:
        return cls(mode=spec.mode, frame_ms=spec.frame_ms, hangover_ms=spec.hangover_ms)


class VadGate:
    """Speech / no-speech per VAD frame, with hangover, queryable by sample position."""

    def __init__(self, sample_rate: int, options: VadOptions, history_frames: int = 4096) -> None:
        import webrtcvad

        if sample_rate not in VAD_RATES:
            raise HarkError(f"the VAD cannot run at {sample_rate} Hz (8/16/32/48 kHz only)")
        if options.frame_ms not in (10, 20, 30) or options.mode not in (0, 1, 2, 3):
            raise HarkError("VAD mode must be 0-3 and its frame 10, 20 or 30 ms")
        self.options = options
        self.sample_rate = sample_rate
        self.frame_len = sample_rate * options.frame_ms // 1000
        self._hangover_frames = int(np.ceil(options.hangover_ms / options.frame_ms))
        self._vad = webrtcvad.Vad(options.mode)
        self._pending = np.zeros(0, dtype=np.int16)
        self._decisions: deque[bool] = deque(maxlen=history_frames)
        self._n_frames = 0  # VAD frames decided since reset
        self._since_speech = self._hangover_frames + 1
        self.raw_speech = False  # the last frame's own decision, before hangover (for display)

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.int16)
        self._decisions.clear()
        self._n_frames = 0
        self._since_speech = self._hangover_frames + 1

    def push(self, samples: np.ndarray) -> None:
        """Decide every VAD frame the new float samples complete."""
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
        buf = np.concatenate((self._pending, pcm)) if self._pending.size else pcm
        n = buf.size // self.frame_len
        for k in range(n):
            frame = buf[k * self.frame_len : (k + 1) * self.frame_len]
            speech = self._vad.is_speech(frame.tobytes(), self.sample_rate)
            self.raw_speech = speech
            self._since_speech = 0 if speech else self._since_speech + 1
            self._decisions.append(self._since_speech <= self._hangover_frames)
        self._n_frames += n
        self._pending = buf[n * self.frame_len :].copy()

    def is_open_at(self, sample_pos: int) -> bool:
        """Gate state for audio that ends at sample_pos: the last VAD frame complete by then."""
        idx = sample_pos // self.frame_len - 1
        if idx < 0:
            return False
        back = self._n_frames - 1 - idx
        if back < 0:
            raise ValueError("VAD queried ahead of the samples pushed")
        if back >= len(self._decisions):
            return False
        return self._decisions[-1 - back]

    @property
    def is_open(self) -> bool:
        return bool(self._decisions) and self._decisions[-1]
