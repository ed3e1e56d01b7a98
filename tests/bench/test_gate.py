"""bench.gate: the gate's compute saving on a quiet room is measured, and is real."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hark.bench import gate
from hark.live.model import OnnxModel
from hark.live.vad import VadOptions, make_gate
from tests import onnx_models


def test_quiet_room_is_mostly_not_speech() -> None:
    audio, how = gate.quiet_room(20.0, 16000)
    assert "espeak-ng" in how and "20%" in how
    g = make_gate(16000, VadOptions(kind="silero", hangover_ms=0.0))
    g.push(audio)
    assert 0.05 < g.frames_open / g.frames_decided < 0.35
    assert np.abs(audio).max() <= 1.0


def test_gated_runs_fewer_model_calls_and_the_table_says_so(tmp_path: Path) -> None:
    model = OnnxModel.load(onnx_models.lstm_frame_model(tmp_path, vad=True))
    res = gate.measure(model, seconds=20.0)
    runs = res["runs"]
    assert runs["off"]["model_calls"] >= 1990  # every 10 ms hop
    for kind in ("webrtc", "silero"):
        r = runs[kind]
        # open on about a fifth of the stream (+ hangover): the model is called 3-6x less
        assert 3.0 < r["calls_ratio"] < 8.0, (kind, r)
        assert r["inference_ratio"] > 1.5
    text = "\n".join(gate.format_lines(res))
    assert "fewer model calls" in text and "silero" in text
