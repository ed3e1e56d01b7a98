"""Weights-only files (model.save_weights) exported with --architecture FILE.py:FUNC.

The builder file below is what a notebook's `def make_model()` looks like; the test builds the
model through it, randomises and saves only the weights, then exports the weights file. The
exported graph is compared with the model the weights came from (not only with the model hark
built), so weights that were not loaded cannot pass.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from hark.cli import main
from tests.export.conftest import LABELS3, randomize
from tests.export.test_cli import _fails

pytestmark = [
    pytest.mark.tf,
    pytest.mark.filterwarnings("ignore:You are saving your model"),
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy"),
    pytest.mark.filterwarnings("ignore:Skipping variable loading"),
]

BUILDER = '''\
import keras
import tf_keras


def make_model():
    """A small CNN on the Kaggle log-specgram (99 frames x 81 bins), uncompiled."""
    x = keras.Input((99, 81, 1), name="spec")
    h = keras.layers.Conv2D(3, 5, strides=3, activation="relu")(x)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(x, keras.layers.Dense(3, activation="softmax")(h))


def make_gru():
    """A tf.keras-era per-frame GRU (hard_sigmoid, reset_after=False) on 40 log-mels."""
    x = tf_keras.Input((None, 40), name="frames")
    h = tf_keras.layers.GRU(6, return_sequences=True, recurrent_activation="hard_sigmoid",
                            reset_after=False)(x)
    return tf_keras.Model(x, tf_keras.layers.Dense(3, activation="softmax")(h))


def make_gru_keras3():
    """make_gru with Keras 3, whose hard_sigmoid is not Keras 2's."""
    x = keras.Input((None, 40), name="frames")
    h = keras.layers.GRU(6, return_sequences=True, recurrent_activation="hard_sigmoid",
                         reset_after=False)(x)
    return keras.Model(x, keras.layers.Dense(3, activation="softmax")(h))


def wider():
    """The same CNN with 4 filters: the weights do not fit."""
    x = keras.Input((99, 81, 1), name="spec")
    h = keras.layers.Conv2D(4, 5, strides=3, activation="relu")(x)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(x, keras.layers.Dense(3, activation="softmax")(h))


def smaller():
    """The CNN without its BatchNormalization: the file holds more than the model."""
    x = keras.Input((99, 81, 1), name="spec")
    h = keras.layers.Conv2D(3, 5, strides=3, activation="relu")(x)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(x, keras.layers.Dense(3, activation="softmax")(h))


def broken():
    raise RuntimeError("needs a GPU")


def not_a_model():
    return 42
'''


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("builder_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def weights(toolchain: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """builder.py and the weights files of its models, with the models they came from."""
    d = tmp_path_factory.mktemp("weights_only")
    builder = d / "builder.py"
    builder.write_text(BUILDER)
    mod = _module(builder)
    cnn = mod.make_model()
    randomize(cnn, 41)
    cnn.save_weights(d / "cnn.weights.h5")  # Keras 3's own weights format
    gru = mod.make_gru()
    randomize(gru, 42)
    gru.save_weights(str(d / "gru.h5"))  # tf.keras's HDF5 weights (attrs keras_version 2.x)
    labels = d / "labels.txt"
    labels.write_text("\n".join(LABELS3) + "\n")
    return {"dir": d, "builder": builder, "cnn": cnn, "gru": gru, "labels": labels}


def _against_source(onnx_path: Path, model: Any, x: np.ndarray) -> float:
    """max |exported graph - the model the weights were saved from| on x."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {sess.get_inputs()[0].name: x}
    for extra in sess.get_inputs()[1:]:  # recurrent state inputs start at zero
        feeds[extra.name] = np.zeros([d if isinstance(d, int) else 1 for d in extra.shape],
                                     np.float32)
    got = sess.run(["posteriors"], feeds)[0]
    return float(np.max(np.abs(got - np.asarray(model(x, training=False)))))


def test_keras3_weights_export_with_parity(weights: dict[str, Any], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["export", str(weights["dir"] / "cnn.weights.h5"), "--labels",
               str(weights["labels"]), "--preset", "kaggle-specgram", "--architecture",
               f"{weights['builder']}:make_model", "--name", "cnn", "--out", str(tmp_path),
               "--no-streaming-split"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "built by builder.py:make_model" in out
    card = json.loads((tmp_path / "cnn.json").read_text())
    src = card["provenance"]["source"]
    assert src["container"] == "h5-weights" and src["architecture"]["builder"] == (
        "builder.py:make_model")
    assert len(src["architecture"]["sha256"]) == 64
    assert card["provenance"]["parity"]["passed"]
    x = np.random.default_rng(3).standard_normal((2, 99, 81, 1)).astype(np.float32)
    assert _against_source(tmp_path / "cnn.onnx", weights["cnn"], x) <= 1e-4


def test_legacy_weights_into_a_tf_keras_builder(weights: dict[str, Any], tmp_path: Path) -> None:
    from hark.export.convert import convert

    res = convert(weights["dir"] / "gru.h5", list(LABELS3), frontend="logmel40",
                  out_dir=tmp_path, architecture=f"{weights['builder']}:make_gru")
    assert res.card.provenance["source"]["loaded_with"].startswith("tf_keras")
    assert res.card.state and "GRU" in res.op_types  # streaming state, native node
    assert res.parity["streaming"] and res.max_abs_diff <= 1e-4
    x = np.random.default_rng(4).standard_normal((1, 50, 40)).astype(np.float32)
    assert _against_source(res.onnx_path, weights["gru"], x) <= 1e-4


@pytest.mark.parametrize("func,needles", [
    ("nope", ("has no function 'nope'",)),
    ("broken", ("broken() raised RuntimeError: needs a GPU",)),
    ("not_a_model", ("returned int, not a Keras model",)),
    ("wider", ("cnn.weights.h5 does not fit the model builder.py:wider() returns",)),
    # Keras 3 loads this one silently (the extra arrays are skipped): hark's own count catches it
    ("smaller", ("cnn.weights.h5 does not fit the model builder.py:smaller() returns",
                 "the file holds 8 weight arrays, the model 4")),
])
def test_builder_errors_are_one_line(weights: dict[str, Any], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str], func: str,
                                     needles: tuple[str, ...]) -> None:
    _fails(capsys, ["export", str(weights["dir"] / "cnn.weights.h5"), "--labels",
                    str(weights["labels"]), "--preset", "kaggle-specgram", "--architecture",
                    f"{weights['builder']}:{func}", "--out", str(tmp_path)], *needles)
    assert not list(tmp_path.iterdir())


def test_missing_builder_file_and_missing_flag(weights: dict[str, Any], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    base = ["export", str(weights["dir"] / "cnn.weights.h5"), "--labels", str(weights["labels"]),
            "--preset", "kaggle-specgram", "--out", str(tmp_path)]
    _fails(capsys, [*base, "--architecture", str(tmp_path / "gone.py:make_model")],
           "gone.py not found")
    _fails(capsys, [*base, "--architecture", "builder.py"], "expected FILE.py:FUNC")
    _fails(capsys, base, "weights-only file", "--architecture FILE.py:FUNC")


def test_a_layer_missing_from_the_file_is_an_error(weights: dict[str, Any],
                                                   toolchain: Any) -> None:
    """A layer whose name is not in the file is not left with the weights it was built with."""
    from hark.export.errors import ModelFileError
    from hark.export.loading import load

    keras = toolchain[0]

    def with_extra_layer() -> Any:
        m = _module(weights["builder"]).make_model()
        h = keras.layers.Dense(3, activation="softmax", name="extra_head")(m.output)
        return keras.Model(m.input, h)

    with pytest.raises(ModelFileError, match="does not fit the model.*'extra_head'"):
        load(weights["dir"] / "cnn.weights.h5", architecture=with_extra_layer)


def test_keras2_weights_in_a_keras3_hard_sigmoid_model_are_flagged(
        weights: dict[str, Any]) -> None:
    from hark.export.loading import load

    loaded = load(weights["dir"] / "gru.h5",
                  architecture=f"{weights['builder']}:make_gru_keras3")
    assert loaded.keras.__name__ == "keras"
    assert any("hard_sigmoid" in n and "tf_keras" in n for n in loaded.notes), loaded.notes
    assert not load(weights["dir"] / "gru.h5",
                    architecture=f"{weights['builder']}:make_gru").notes
