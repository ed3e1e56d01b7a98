"""Speech gates: webrtcvad (2-3 us per 10-30 ms frame) or silero-vad (an ONNX call per 32 ms).

Both decide per VAD frame and keep their decisions by absolute sample position, with a hangover
that holds the gate open after speech. So a gate gives the same answer for any chunking of the
same audio (the engine's stream-equals-offline invariant covers gated models too).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from hark.live.card import SILERO_RATES, WEBRTC_RATES, VadSpec
from hark.live.errors import HarkError

VAD_RATES = WEBRTC_RATES
GateKind = Literal["webrtc", "silero"]


@dataclass(frozen=True)
class VadOptions:
    """What one gate runs; models whose options are equal share one gate.

    kind webrtc: mode 0 (permissive) .. 3 (aggressive) on frame_ms frames. kind silero: speech
    probability >= threshold opens, below threshold - 0.15 closes (silero's own hysteresis).
    hangover keeps the gate open after speech ends. Fields the kind does not use are normalised
    (from_spec), so two models that differ only in those still share a gate.
    """

    kind: GateKind = "webrtc"
    mode: int = 2
    frame_ms: int = 30
    threshold: float = 0.5
    hangover_ms: float = 300.0

    @classmethod
    def from_spec(cls, spec: VadSpec, kind: GateKind | None = None,
                  mode: int | None = None) -> VadOptions:
        """The card's gate, optionally with another kind or webrtcvad mode (CLI overrides)."""
        kind = kind or spec.kind
        if kind == "silero":
            return cls(kind="silero", mode=0, frame_ms=32, threshold=spec.threshold,
                       hangover_ms=spec.hangover_ms)
        frame_ms = spec.frame_ms if spec.frame_ms in (10, 20, 30) else 30
        return cls(kind="webrtc", mode=spec.mode if mode is None else mode, frame_ms=frame_ms,
                   threshold=0.5, hangover_ms=spec.hangover_ms)


class Gate:
    """Speech / no-speech per VAD frame, with hangover, queryable by sample position.

    Subclasses decide raw speech for whole frames (_speech); this class frames the samples and
    keeps the decisions.
    """

    frame_len: int

    def __init__(self, sample_rate: int, options: VadOptions, frame_len: int,
                 history_frames: int = 4096) -> None:
        self.options = options
        self.sample_rate = sample_rate
        self.frame_len = frame_len
        frame_ms = 1000.0 * frame_len / sample_rate
        self._hangover_frames = int(np.ceil(options.hangover_ms / frame_ms - 1e-9))
        # samples of the VAD frame still incomplete: _buf[:_n_pending] (always < frame_len)
        self._buf = np.zeros(frame_len, dtype=np.float32)
        self._n_pending = 0
        self._decisions: deque[bool] = deque(maxlen=history_frames)
        self._n_frames = 0  # VAD frames decided since reset
        self._since_speech = self._hangover_frames + 1
        self.raw_speech = False  # the last frame's own decision, before hangover (for display)
        self.frames_open = 0  # VAD frames decided open since reset (for the bench)

    def reset(self) -> None:
        """Forget every decision and the detector's own state: as on a fresh stream."""
        self._n_pending = 0
        self._decisions.clear()
        self._n_frames = 0
        self._since_speech = self._hangover_frames + 1
        self.raw_speech = False
        self.frames_open = 0
        self._reset_detector()

    def _reset_detector(self) -> None:
        """Subclasses with state of their own forget it here."""

    def _speech(self, frames: np.ndarray) -> list[bool]:
        """Raw speech decision for each row of (n, frame_len) float samples."""
        raise NotImplementedError

    def push(self, samples: np.ndarray) -> None:
        """Decide every VAD frame the new float samples complete."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        n0, end = self._n_pending, self._n_pending + x.size
        if end < self.frame_len:  # the usual 10 ms block into a 30 ms frame: just keep it
            self._buf[n0:end] = x
            self._n_pending = end
            return
        buf = np.concatenate((self._buf[:n0], x)) if n0 else x
        n = buf.size // self.frame_len
        if n:
            for speech in self._speech(buf[: n * self.frame_len].reshape(n, self.frame_len)):
                self.raw_speech = speech
                self._since_speech = 0 if speech else self._since_speech + 1
                is_open = self._since_speech <= self._hangover_frames
                self.frames_open += is_open
                self._decisions.append(is_open)
            self._n_frames += n
        rest = buf[n * self.frame_len :]
        self._buf[: rest.size] = rest
        self._n_pending = rest.size

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

    @property
    def frames_decided(self) -> int:
        return self._n_frames


class WebrtcGate(Gate):
    """webrtcvad on 16-bit PCM frames of 10, 20 or 30 ms at 8/16/32/48 kHz."""

    def __init__(self, sample_rate: int, options: VadOptions, history_frames: int = 4096) -> None:
        import webrtcvad

        if sample_rate not in WEBRTC_RATES:
            raise HarkError(f"the webrtc VAD cannot run at {sample_rate} Hz "
                            "(8/16/32/48 kHz only)")
        if options.frame_ms not in (10, 20, 30) or options.mode not in (0, 1, 2, 3):
            raise HarkError("VAD mode must be 0-3 and its frame 10, 20 or 30 ms")
        super().__init__(sample_rate, options, sample_rate * options.frame_ms // 1000,
                         history_frames)
        self._vad = webrtcvad.Vad(options.mode)

    def _speech(self, frames: np.ndarray) -> list[bool]:
        pcm = (np.clip(frames, -1.0, 1.0) * 32767.0).astype(np.int16)
        return [self._vad.is_speech(row.tobytes(), self.sample_rate) for row in pcm]


# kept for code that names the webrtcvad gate by its old name
VadGate = WebrtcGate


def make_gate(sample_rate: int, options: VadOptions) -> Gate:
    """The gate `options` asks for (silero is imported only when asked for)."""
    if options.kind == "silero":
        from hark.live.silero import SileroGate

        if sample_rate not in SILERO_RATES:
            raise HarkError(f"the silero VAD cannot run at {sample_rate} Hz (8/16 kHz only)")
        return SileroGate(sample_rate, options)
    return WebrtcGate(sample_rate, options)
