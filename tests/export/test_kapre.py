"""kapre stand-in layers: equal to tf.signal.stft / librosa, and a kapre model exports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = [pytest.mark.tf]


def _kapre_model(K: Any, objects: dict[str, Any], pad_end: bool) -> Any:
    x = K.Input((4000, 1), name="wave")
    h = objects["STFT"](n_fft=512, win_length=400, hop_length=160, pad_end=pad_end, name="stft")(x)
    h = objects["Magnitude"](name="mag")(h)
    h = objects["ApplyFilterbank"](type="mel", filterbank_kwargs={
        "sample_rate": 16000, "n_freq": 257, "n_mels": 40, "f_min": 0.0, "f_max": None,
        "htk": False, "norm": "slaney"}, name="fb")(h)
    h = objects["MagnitudeToDecibel"](amin=1e-5, dynamic_range=80.0, name="db")(h)
    return K.Model(x, h)


@pytest.mark.parametrize("pad_end", [True, False])
def test_layers_equal_tf_signal_and_librosa(toolchain: Any, pad_end: bool) -> None:
    import librosa
    import tensorflow as tf

    from hark.export.kapre_layers import kapre_objects

    tf_keras = toolchain[1]
    objects = kapre_objects(tf_keras)
    model = _kapre_model(tf_keras, objects, pad_end)
    rng = np.random.default_rng(3)
    audio = (rng.standard_normal((2, 4000, 1)) * 0.1).astype(np.float32)
    stft = tf_keras.Model(model.input, model.get_layer("mag").output)(audio).numpy()[..., 0]
    ref = np.abs(tf.signal.stft(audio[..., 0], 400, 160, 512, pad_end=pad_end).numpy())
    assert stft.shape == ref.shape
    assert np.max(np.abs(stft - ref)) <= 1e-4 * np.max(ref)
    db = model(audio).numpy()[..., 0]
    mel = ref @ librosa.filters.mel(sr=16000, n_fft=512, n_mels=40).T
    want = 10 * np.log10(np.maximum(mel, 1e-5))
    want = np.maximum(want, want.max(axis=(1, 2), keepdims=True) - 80.0)
    assert np.max(np.abs(db - want)) <= 1e-3  # dB


def test_kapre_model_exports_raw_input(toolchain: Any, tmp_path: Path) -> None:
    from hark.export.convert import convert
    from hark.export.kapre_layers import kapre_objects

    tf_keras = toolchain[1]
    objects = kapre_objects(tf_keras)
    base = _kapre_model(tf_keras, objects, True)
    h = tf_keras.layers.Flatten()(base.output)
    model = tf_keras.Model(base.input, tf_keras.layers.Dense(2, activation="softmax")(h))
    path = tmp_path / "kapre.h5"
    model.save(path)  # the config names STFT, Magnitude, ... as kapre 0.3 files do
    res = convert(path, ["a", "b"], frontend="raw16k", out_dir=tmp_path, window_s=0.25,
                  stride_s=0.05)
    assert res.max_abs_diff <= 1e-4
    assert res.card.inputs[0].role == "raw"
    assert any("STFT" in s for s in res.card.provenance["frontend_in_graph"])
    assert "Conv" in res.op_types


def test_stft_read_by_another_layer_is_named(toolchain: Any, tmp_path: Path) -> None:
    from hark.export.analysis import frontend_layers
    from hark.export.errors import LayerError
    from hark.export.kapre_layers import kapre_objects

    tf_keras = toolchain[1]
    objects = kapre_objects(tf_keras)
    x = tf_keras.Input((4000, 1))
    s = objects["STFT"](n_fft=256, name="stft")(x)
    y = tf_keras.layers.Lambda(lambda t: t * 2.0, name="twice")(s)
    with pytest.raises(LayerError, match="'twice'.*STFT 'stft'.*Magnitude only"):
        frontend_layers(tf_keras.Model(x, y))
