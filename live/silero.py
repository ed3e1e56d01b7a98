"""The silero-vad gate: silero's bundled ONNX model run with hark's own onnxruntime session.

The silero-vad wheel declares torch as a hard requirement, but its ONNX file needs none: install
it with `pip install --no-deps silero-vad` (scripts/setup.sh does). Its Python package imports
torch on import, so the file is found through the installed distribution's file list
(importlib.metadata), never by importing `silero_vad`.

The model, as silero's own OnnxWrapper feeds it: one call per 512 samples at 16 kHz (256 at
8 kHz), each prefixed by the last 64 (32) samples of the previous frame, input (1, 576) float32,
`state` (2, 1, 128) carried from call to call, `sr` int64; output the speech probability (1, 1).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

from hark.live.errors import HarkError
from hark.live.vad import Gate, VadOptions

DISTRIBUTION = "silero-vad"
MODEL_FILE = "silero_vad/data/silero_vad.onnx"  # the 8 + 16 kHz model (opset 16)
INSTALL_HINT = "install it with: pip install --no-deps silero-vad (see README)"
FRAME_SAMPLES = {16000: 512, 8000: 256}
CONTEXT_SAMPLES = {16000: 64, 8000: 32}
NEG_OFFSET = 0.15  # silero's get_speech_timestamps: neg_threshold = threshold - 0.15


def model_path() -> Path:
    """The installed silero_vad.onnx, or one clear HarkError."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise HarkError(f"--vad silero needs the silero-vad package: {INSTALL_HINT}") from None
    path = Path(str(dist.locate_file(MODEL_FILE)))
    if not path.is_file():
        raise HarkError(f"silero-vad {dist.version} has no {MODEL_FILE}: {INSTALL_HINT}")
    return path


_SESSIONS: dict[str, object] = {}


def session() -> object:
    """One onnxruntime session per process (read-only graph; state lives in each gate)."""
    if "vad" not in _SESSIONS:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        path = model_path()
        try:
            _SESSIONS["vad"] = ort.InferenceSession(
                str(path), sess_options=so, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime's own exception types
            raise HarkError(f"cannot load the silero VAD model {path}: {e}") from e
    return _SESSIONS["vad"]


class SileroGate(Gate):
    """Silero speech probability per 32 ms frame, its state and context carried across calls."""

    def __init__(self, sample_rate: int, options: VadOptions, history_frames: int = 4096) -> None:
        if sample_rate not in FRAME_SAMPLES:
            raise HarkError(f"the silero VAD cannot run at {sample_rate} Hz (8/16 kHz only)")
        super().__init__(sample_rate, options, FRAME_SAMPLES[sample_rate], history_frames)
        self._session = session()
        self._sr = np.array(sample_rate, dtype=np.int64)
        self._context_len = CONTEXT_SAMPLES[sample_rate]
        self._on = options.threshold
        self._off = max(options.threshold - NEG_OFFSET, 0.01)
        self.last_probability = 0.0
        self._reset_detector()

    def _reset_detector(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(self._context_len, dtype=np.float32)
        self._triggered = False

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """Silero's speech probability for each (n, frame_len) row, state carried."""
        out = np.zeros(len(frames), dtype=np.float32)
        x = np.empty((1, self._context_len + self.frame_len), dtype=np.float32)
        for i, row in enumerate(frames):
            x[0, : self._context_len] = self._context
            x[0, self._context_len :] = row
            prob, self._state = self._session.run(  # type: ignore[attr-defined]
                None, {"input": x, "state": self._state, "sr": self._sr}
            )
            self._context = x[0, -self._context_len :].copy()
            out[i] = float(np.asarray(prob).reshape(-1)[0])
        return out

    def _speech(self, frames: np.ndarray) -> list[bool]:
        decisions = []
        for p in self.probabilities(frames).tolist():
            self.last_probability = p
            if p >= self._on:
                self._triggered = True
            elif p < self._off:
                self._triggered = False
            decisions.append(self._triggered)
        return decisions
