"""Model files: Keras 3 vs legacy detection, loading with the right Keras, bad files."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hark.export.errors import ModelFileError
from hark.export.loading import describe_bytes, detect, load
from tests.export.conftest import LABELS3

pytestmark = [
    pytest.mark.tf,
    pytest.mark.filterwarnings("ignore:You are saving your model"),
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy"),
]


def test_detect_versions(saved: dict[str, Any], toolchain: Any) -> None:
    keras, tf_keras = toolchain
    assert detect(saved["lstm"].path) == ("keras-zip", keras.__version__)
    assert detect(saved["lstm_legacy"].path) == ("h5", tf_keras.__version__)
    assert detect(saved["lstm_k22"].path) == ("h5", "2.2.4")


@pytest.mark.parametrize("name,legacy", [("lstm", False), ("gru_legacy", True),
                                         ("lstm_k22", True), ("fusion", False)])
def test_loads_with_the_keras_that_wrote_it(saved: dict[str, Any], name: str,
                                            legacy: bool) -> None:
    loaded = load(saved[name].path)
    assert loaded.legacy is legacy
    assert loaded.keras.__name__ == ("tf_keras" if legacy else "keras")
    assert len(loaded.sha256) == 64


def test_keras3_h5_loads_with_keras3(toolchain: Any, tmp_path: Path) -> None:
    keras = toolchain[0]
    x = keras.Input((None, 40), name="frames")
    m = keras.Model(x, keras.layers.Dense(3, activation="softmax")(x))
    m.save(tmp_path / "k3.h5")
    container, version = detect(tmp_path / "k3.h5")
    assert container == "h5" and version.startswith("3.")
    assert not load(tmp_path / "k3.h5").legacy


def test_tf_keras_zip_is_legacy(toolchain: Any, tmp_path: Path) -> None:
    tf_keras = toolchain[1]
    x = tf_keras.Input((None, 40), name="frames")
    tf_keras.Model(x, tf_keras.layers.Dense(3, activation="softmax")(x)).save(tmp_path / "t.keras")
    assert detect(tmp_path / "t.keras")[1].startswith("2.")
    assert load(tmp_path / "t.keras").legacy


def test_keras22_file_exports(saved: dict[str, Any], tmp_path: Path) -> None:
    from hark.export.convert import convert

    r = convert(saved["lstm_k22"].path, list(LABELS3), frontend="logmel40", out_dir=tmp_path)
    assert r.max_abs_diff <= 1e-4
    assert r.card.provenance["source"]["written_by_keras"] == "2.2.4"
    assert r.card.provenance["source"]["loaded_with"].startswith("tf_keras")


def test_legacy_hard_sigmoid_is_keras2_maths(saved: dict[str, Any],
                                             keras_models: dict[str, Any]) -> None:
    """The legacy LSTM computes clip(0.2x+0.5): an x/6 version would differ well above 1e-4."""
    import onnxruntime as ort

    model = keras_models["lstm_legacy"]
    layer = model.get_layer("lstm_a")
    import tensorflow as tf

    f = layer.cell.recurrent_activation
    assert float(np.asarray(f(tf.constant(1.0)))) == pytest.approx(0.7)  # 0.2 * 1 + 0.5
    x = np.random.default_rng(3).standard_normal((1, 50, 40)).astype(np.float32)
    want = np.asarray(model(x, training=False))
    from hark.export.convert import convert

    out = saved["lstm_legacy"].path.parent / "hs"
    r = convert(saved["lstm_legacy"].path, list(LABELS3), frontend="logmel40", out_dir=out)
    sess = ort.InferenceSession(str(r.onnx_path), providers=["CPUExecutionProvider"])
    feeds = {"frames": x, **{s.input: np.zeros(s.shape, np.float32) for s in r.card.state}}
    got = sess.run(["posteriors"], feeds)[0]
    assert np.max(np.abs(got - want)) <= 1e-4


def test_weights_only_h5(toolchain: Any, tmp_path: Path) -> None:
    keras = toolchain[0]
    x = keras.Input((4,))
    m = keras.Model(x, keras.layers.Dense(2)(x))
    m.save_weights(tmp_path / "w.weights.h5")
    with pytest.raises(ModelFileError, match="weights-only"):
        detect(tmp_path / "w.weights.h5")


def test_zip_that_is_not_keras(tmp_path: Path) -> None:
    p = tmp_path / "m.keras"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(ModelFileError, match="not a Keras model"):
        detect(p)


def test_saved_model_directory(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ModelFileError, match="SavedModel"):
        detect(tmp_path)


def test_describe_bytes() -> None:
    assert describe_bytes(b"RIFF\x00\x00\x00\x00WAVE") == "a WAV/RIFF audio file"
    assert describe_bytes(b"fLaC\x00") == "a FLAC audio file"
    assert describe_bytes(b"hello") == "a text file"
    assert describe_bytes(b"") == "an empty file"
