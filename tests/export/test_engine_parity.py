"""Exported models run by the live engine give Keras's answers on the same audio's features."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.tf

ROOT = Path(__file__).resolve().parents[2]
ENGINE_READY = (ROOT / "live" / "engine.py").is_file() and (ROOT / "live" / "model.py").is_file()


def _audio(rate: int, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    chirp = 0.3 * np.sin(2 * np.pi * (200 + 900 * t) * t)
    return (chirp + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.skipif(not ENGINE_READY, reason="live.engine / live.model not written yet")
@pytest.mark.parametrize("name", ["lstm", "gru_legacy"])
@pytest.mark.parametrize("chunk", [None, 437])
def test_frames_model_through_engine(exported: dict[str, Any], keras_models: dict[str, Any],
                                     name: str, chunk: int | None) -> None:
    from hark.live.engine import offline_posteriors
    from hark.live.features import compute_features
    from hark.live.model import OnnxModel

    r = exported[name]
    model = OnnxModel.load(r.onnx_path)
    card = model.card
    audio = _audio(card.sample_rate, 1.2, 7)
    _, post = offline_posteriors(model, audio, chunk=chunk)
    feats = compute_features(audio, card.frontends["main"], card.sample_rate,
                             card.normalization.get("main"))
    want = np.asarray(keras_models[name](feats[None], training=False))[0]
    assert post.shape == want.shape
    assert np.max(np.abs(post - want)) <= 1e-4


@pytest.mark.skipif(not ENGINE_READY, reason="live.engine / live.model not written yet")
def test_window_model_through_engine(exported: dict[str, Any],
                                     keras_models: dict[str, Any]) -> None:
    from hark.live.engine import offline_posteriors
    from hark.live.features import compute_features
    from hark.live.model import OnnxModel

    r = exported["cnn"]
    model = OnnxModel.load(r.onnx_path)
    card = model.card
    audio = _audio(card.sample_rate, 1.5, 8)
    _, post = offline_posteriors(model, audio)
    feats = compute_features(audio, card.frontends["main"], card.sample_rate)
    hop = 10  # stride 0.1 s / hop 10 ms
    windows = np.stack([feats[k * hop : k * hop + 99] for k in range(len(post))])
    want = np.asarray(keras_models["cnn"](windows[..., None], training=False))
    assert len(post) == 6  # decisions at 1.0, 1.1, ..., 1.5 s
    assert np.max(np.abs(post - want)) <= 1e-4
