"""Tiny Keras models of every supported architecture, saved once per session, and their exports.

Each architecture is built twice: with Keras 3 (saved as .keras) and with tf_keras (saved as a
legacy .h5, the way Keras 2.x / tf.keras notebooks wrote them, including hard_sigmoid recurrent
activations and GRU reset_after=False). Every weight is randomised (biases included) so that a
gate-order or bias-layout mistake cannot hide behind zero biases.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

LABELS3 = ("yes", "no", "_silence_")


def _toolchain() -> tuple[Any, Any]:
    from hark.export.errors import ToolchainError
    from hark.export.loading import require_toolchain

    try:
        require_toolchain()  # imports TensorFlow quietly (before anything else loads it)
    except ToolchainError as e:
        pytest.skip(str(e))
    import keras
    import tf_keras

    return keras, tf_keras


def randomize(model: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        new = [rng.normal(0.0, 0.4, w.shape).astype(np.float32) for w in weights]
        if type(layer).__name__ == "BatchNormalization":
            new[-1] = np.abs(new[-1]) + 0.5  # moving variance
        layer.set_weights(new)


# ---- architectures (K is keras or tf_keras) ---------------------------------------------------
def cnn2d(K: Any) -> Any:
    x = K.Input((99, 81, 1), name="spec")
    h = K.layers.Conv2D(4, 3, activation="relu")(x)
    h = K.layers.BatchNormalization()(h)
    h = K.layers.MaxPooling2D(2)(h)
    h = K.layers.Conv2D(6, 3, activation="relu")(h)
    h = K.layers.GlobalAveragePooling2D()(h)
    h = K.layers.Dropout(0.2)(h)
    return K.Model(x, K.layers.Dense(3, activation="softmax")(h), name="cnn")


def lstm_frames(K: Any, legacy: bool) -> Any:
    kw = {"recurrent_activation": "hard_sigmoid"} if legacy else {}
    x = K.Input((None, 40), name="frames")
    h = K.layers.LSTM(8, return_sequences=True, name="lstm_a", **kw)(x)
    h = K.layers.LSTM(6, return_sequences=True, name="lstm_b", **kw)(h)
    y = K.layers.TimeDistributed(K.layers.Dense(3, activation="softmax"), name="head")(h)
    return K.Model(x, y, name="lstm")


def gru_frames(K: Any, legacy: bool) -> Any:
    kw = {"recurrent_activation": "hard_sigmoid", "reset_after": False} if legacy else {}
    x = K.Input((None, 40), name="frames")
    h = K.layers.Dense(12, activation="relu", name="proj")(x)
    h = K.layers.GRU(8, return_sequences=True, name="gru_a", **kw)(h)
    y = K.layers.TimeDistributed(K.layers.Dense(3, activation="softmax"), name="head")(h)
    return K.Model(x, y, name="gru")


def cnn1d_raw(K: Any) -> Any:
    x = K.Input((16000, 1), name="wave")
    h = K.layers.Conv1D(4, 64, strides=16, activation="relu")(x)
    h = K.layers.MaxPooling1D(4)(h)
    h = K.layers.Conv1D(6, 8, activation="relu")(h)
    h = K.layers.GlobalMaxPooling1D()(h)
    return K.Model(x, K.layers.Dense(3, activation="sigmoid")(h), name="raw")


def fusion(K: Any) -> Any:
    a = K.Input((99, 81, 1), name="spec")
    b = K.Input((98, 40), name="seq")
    h = K.layers.Conv2D(4, 3, activation="relu")(a)
    h = K.layers.MaxPooling2D(3)(h)
    h = K.layers.Flatten()(h)
    h = K.layers.Dense(8, activation="relu")(h)
    g = K.layers.LSTM(6, name="seq_lstm")(b)
    z = K.layers.Concatenate()([h, g])
    return K.Model([a, b], K.layers.Dense(3, activation="softmax", name="decide")(z), name="fusion")


def bidirectional_frames(K: Any) -> Any:
    x = K.Input((None, 40), name="frames")
    h = K.layers.Bidirectional(K.layers.LSTM(4, return_sequences=True), name="bi")(x)
    return K.Model(x, K.layers.Dense(3, activation="softmax")(h))


def conv_same_frames(K: Any) -> Any:
    x = K.Input((None, 40), name="frames")
    h = K.layers.Conv1D(8, 3, padding="same", name="smear")(x)
    h = K.layers.LSTM(4, return_sequences=True)(h)
    return K.Model(x, K.layers.Dense(3, activation="softmax")(h))


def wide_frames(K: Any) -> Any:
    x = K.Input((None, 64), name="frames")
    h = K.layers.LSTM(4, return_sequences=True)(x)
    return K.Model(x, K.layers.Dense(3, activation="softmax")(h))


@dataclass(frozen=True)
class Spec:
    """One saved model and how to export it."""

    path: Path
    frontend: Any
    kind: str  # window | frames | raw | fusion
    legacy: bool
    sample_rate: int | None = None


FUSION_FRONTEND = {"spec": "kaggle-specgram", "seq": "kind=logmel,window_ms=25,n_fft=256,n_mels=40"}


@pytest.fixture(scope="session")
def toolchain() -> tuple[Any, Any]:
    """(keras, tf_keras), TensorFlow imported quietly; skips when the [export] extra is missing."""
    return _toolchain()


@pytest.fixture(scope="session")
def saved(toolchain: tuple[Any, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Spec]:
    """Every test model, written once: name -> Spec."""
    keras, tf_keras = toolchain
    d = tmp_path_factory.mktemp("keras_models")
    out: dict[str, Spec] = {}

    def save(name: str, model: Any, legacy: bool, frontend: Any, kind: str, seed: int) -> None:
        randomize(model, seed)
        path = d / (f"{name}.h5" if legacy else f"{name}.keras")
        model.save(path)
        out[name] = Spec(path, frontend, kind, legacy)

    for legacy, K in ((False, keras), (True, tf_keras)):
        sfx = "_legacy" if legacy else ""
        save("cnn" + sfx, cnn2d(K), legacy, "kaggle-specgram", "window", 1)
        save("lstm" + sfx, lstm_frames(K, legacy), legacy, "logmel40", "frames", 2)
        save("gru" + sfx, gru_frames(K, legacy), legacy, "logmel40", "frames", 3)
        save("raw" + sfx, cnn1d_raw(K), legacy, "raw16k", "raw", 4)
        save("fusion" + sfx, fusion(K), legacy, FUSION_FRONTEND, "fusion", 5)
    save("bidir", bidirectional_frames(keras), False, "logmel40", "frames", 6)
    save("convsame", conv_same_frames(keras), False, "logmel40", "frames", 7)
    save("wide", wide_frames(keras), False, "logmel40", "frames", 8)

    # a Keras 2.2-era file: same content, the version attributes Keras 2.2.4 wrote
    import h5py

    k22 = d / "lstm_k22.h5"
    shutil.copy(out["lstm_legacy"].path, k22)
    with h5py.File(k22, "r+") as f:
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["backend"] = b"tensorflow"
    out["lstm_k22"] = Spec(k22, "logmel40", "frames", True)
    return out


ARCHITECTURES = [
    "cnn", "cnn_legacy", "lstm", "lstm_legacy", "gru", "gru_legacy",
    "raw", "raw_legacy", "fusion", "fusion_legacy",
]


@pytest.fixture(scope="session")
def exported(saved: dict[str, Spec], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every architecture exported once through export.convert: name -> ExportResult."""
    from hark.export.convert import convert
    from hark.live.card import Normalization

    out_dir = tmp_path_factory.mktemp("exported")
    rng = np.random.default_rng(11)
    # one frames model carries per-bin normalisation, so the engine test exercises it
    norm = Normalization(mean=tuple(rng.normal(-5, 1, 40)), std=tuple(rng.uniform(1, 3, 40)))
    results = {}
    for name in ARCHITECTURES:
        spec = saved[name]
        results[name] = convert(
            spec.path,
            list(LABELS3),
            frontend=spec.frontend,
            sample_rate=8000 if spec.kind == "fusion" else None,
            out_dir=out_dir,
            ignore_labels=["_silence_"],
            normalization=norm if name == "gru_legacy" else None,
        )
    return results


@pytest.fixture(scope="session")
def keras_models(saved: dict[str, Spec]) -> dict[str, Any]:
    """The saved models loaded as export loads them (the reference for parity)."""
    from hark.export.loading import load

    return {name: load(spec.path).model for name, spec in saved.items()
            if name in ARCHITECTURES}
