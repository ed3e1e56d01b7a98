"""The speech gates: silero-vad against its documented behaviour, webrtcvad, sharing, the CLI."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hark.live.card import VadSpec
from hark.live.engine import Engine, EngineOptions
from hark.live.errors import HarkError
from hark.live.model import OnnxModel
from hark.live.silero import FRAME_SAMPLES, SileroGate, model_path
from hark.live.vad import VadOptions, WebrtcGate, make_gate
from tests import onnx_models

SILERO = VadOptions(kind="silero", threshold=0.5, hangover_ms=0.0)


@pytest.fixture(scope="module")
def speech(speech_wav: Path) -> np.ndarray:
    x, rate = sf.read(speech_wav, dtype="float32")
    assert rate == 16000
    return x


def _noise(seconds: float, rate: int, kind: str, seed: int = 0) -> np.ndarray:
    """White or pink (1/f power) noise at -26 dBFS rms, or near-digital silence."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    if kind == "silence":
        return (1e-4 * rng.standard_normal(n)).astype(np.float32)
    w = rng.standard_normal(n)
    if kind == "pink":
        f = np.fft.rfftfreq(n, 1 / rate)
        spec = np.fft.rfft(w) / np.sqrt(np.maximum(f, 20.0))
        w = np.fft.irfft(spec, n)
    return (0.05 * w / w.std()).astype(np.float32)


def test_the_silero_model_has_the_documented_inputs_and_outputs() -> None:
    import onnx

    m = onnx.load(str(model_path()))
    ins = {i.name: [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim]
           for i in m.graph.input}
    assert set(ins) == {"input", "state", "sr"}
    assert ins["state"][0] == 2 and ins["state"][2] == 128
    assert [o.name for o in m.graph.output] == ["output", "stateN"]


def test_silero_hears_espeak_speech_and_not_noise_or_silence(speech: np.ndarray) -> None:
    """Silero's documented behaviour: speech probability above 0.5 on speech, low on non-speech.
    The spoken phrase opens the gate for most of its voiced part; silence and stationary white
    or pink noise never open it (webrtcvad, in contrast, takes loud white noise for speech)."""
    gate = SileroGate(16000, SILERO)
    probs = gate.probabilities(speech[: speech.size // 512 * 512].reshape(-1, 512))
    voiced = probs[int(0.35 * 16000 / 512) : -int(0.35 * 16000 / 512)]
    assert probs.max() > 0.9
    assert (voiced > 0.5).mean() > 0.5
    assert probs[: int(0.25 * 16000 / 512)].max() < 0.2  # the 0.3 s of silence before it
    for kind in ("silence", "white", "pink"):
        g = SileroGate(16000, SILERO)
        g.push(_noise(5.0, 16000, kind))
        assert g.frames_decided == 5 * 16000 // 512
        assert g.frames_open == 0, kind
    webrtc = WebrtcGate(16000, VadOptions(mode=0, hangover_ms=0.0))
    webrtc.push(_noise(5.0, 16000, "white"))
    assert webrtc.frames_open > webrtc.frames_decided // 2


def test_silero_runs_at_8k_on_256_sample_frames(speech: np.ndarray) -> None:
    import soxr

    x8 = soxr.resample(speech, 16000, 8000).astype(np.float32)
    gate = SileroGate(8000, SILERO)
    assert gate.frame_len == FRAME_SAMPLES[8000] == 256
    gate.push(x8)
    assert gate.frames_decided == x8.size // 256
    assert 0 < gate.frames_open < gate.frames_decided
    with pytest.raises(HarkError, match="silero VAD cannot run at 44100"):
        make_gate(44100, SILERO)


def test_silero_state_is_carried_across_pushes_and_reset_forgets_it(speech: np.ndarray) -> None:
    whole = SileroGate(16000, SILERO)
    frames = speech[: speech.size // 512 * 512].reshape(-1, 512)
    p_whole = whole.probabilities(frames)
    pieces = SileroGate(16000, SILERO)
    p_pieces = np.concatenate([pieces.probabilities(frames[i : i + 7])
                               for i in range(0, len(frames), 7)])
    np.testing.assert_allclose(p_pieces, p_whole, atol=1e-6)
    # the state matters: the same frame after speech and from a fresh state differ
    fresh = SileroGate(16000, SILERO).probabilities(frames[len(frames) // 2 :][:1])
    assert abs(float(fresh[0]) - float(p_whole[len(frames) // 2])) > 1e-4
    whole.reset()
    np.testing.assert_allclose(whole.probabilities(frames), p_whole, atol=1e-6)


def test_silero_hysteresis_and_hangover(speech: np.ndarray) -> None:
    """Open from threshold up, held until below threshold - 0.15, then hangover_ms more."""
    x = np.concatenate([speech, np.zeros(16000, np.float32)])
    frames = x[: x.size // 512 * 512].reshape(-1, 512)
    probs = SileroGate(16000, SILERO).probabilities(frames)
    for hang_ms in (0.0, 320.0):
        gate = SileroGate(16000, replace(SILERO, hangover_ms=hang_ms))
        gate.push(x)
        got = np.array([gate.is_open_at((i + 1) * 512) for i in range(len(frames))])
        want, trig, since = [], False, 99
        for p in probs:
            trig = True if p >= 0.5 else (False if p < 0.35 else trig)
            since = 0 if trig else since + 1
            want.append(since <= round(hang_ms / 32))
        assert got.tolist() == want


def test_missing_silero_package_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> object:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(HarkError, match="pip install --no-deps silero-vad"):
        model_path()


def test_cli_vad_silero_without_the_package_is_one_line(tmp_path: Path) -> None:
    """A child whose import path hides the installed silero-vad: one line, exit 2."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import importlib.metadata as m\n"
        "_real = m.distribution\n"
        "def _d(name):\n"
        "    if name == 'silero-vad':\n"
        "        raise m.PackageNotFoundError(name)\n"
        "    return _real(name)\n"
        "m.distribution = _d\n"
    )
    wav = tmp_path / "x.wav"
    sf.write(wav, np.zeros(16000, np.float32), 16000)
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(hide), env.get("PYTHONPATH", "")])
    r = subprocess.run([sys.executable, "-m", "hark.cli", "replay", str(wav), "--vad", "silero"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hark: error:") and "silero-vad" in lines[0]


def test_models_asking_for_the_same_gate_share_it(tmp_path: Path, speech: np.ndarray) -> None:
    a = OnnxModel.load(onnx_models.lstm_frame_model(tmp_path, name="a", vad=True))
    b = OnnxModel.load(onnx_models.lstm_frame_model(tmp_path, name="b", seed=1, vad=True))
    c = OnnxModel.load(onnx_models.lstm_frame_model(tmp_path, name="c", seed=2, vad=True))
    silero = VadSpec(kind="silero", threshold=0.5)
    a2, b2 = (OnnxModel(m.path, replace(m.card, vad=silero), m.session, m.output)
              for m in (a, b))
    engine = Engine([a2, b2, c])
    gates = [s.gate for s in engine.streams]
    assert gates[0] is gates[1] and gates[0] is not gates[2]
    assert isinstance(gates[0], SileroGate) and isinstance(gates[2], WebrtcGate)
    # --vad silero (vad_kind) puts every model on one silero gate; --vad off on none
    forced = Engine([a, b, c], EngineOptions(vad_kind="silero"))
    assert len({id(s.gate) for s in forced.streams}) == 1
    assert isinstance(forced.streams[0].gate, SileroGate)
    off = Engine([a2, b2, c], EngineOptions(vad=False, vad_kind="silero"))
    assert all(s.gate is None for s in off.streams)
    forced.feed(speech)
    assert forced.streams[0].runner.calls > 0


def test_cli_parses_the_gate_kinds() -> None:
    import argparse

    from hark.live.cli import _config

    def cfg(v: str | None) -> object:
        ns = argparse.Namespace(vad=v, threads=1, roll_seconds=10.0, model=None,
                                format="jsonl", out=None)
        return _config(ns)

    assert cfg("silero").vad_kind == "silero"  # type: ignore[attr-defined]
    assert cfg("webrtc").vad_kind == "webrtc"  # type: ignore[attr-defined]
    assert cfg("on").vad is True and cfg("on").vad_kind is None  # type: ignore[attr-defined]
    assert cfg("off").vad is False  # type: ignore[attr-defined]
    assert cfg("3").vad_mode == 3  # type: ignore[attr-defined]
    with pytest.raises(HarkError, match="off, on, webrtc, silero or 0-3"):
        cfg("rnnoise")
