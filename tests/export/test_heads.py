"""Logits heads and custom objects: the export stops and names the flag, then honours it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hark.export.errors import ExportError, ModelFileError
from tests.export.conftest import randomize

pytestmark = [pytest.mark.tf]

CUSTOM = '''\
import tf_keras


def capped(x):
    return tf_keras.activations.relu(x, max_value=2.0)


custom_objects = {"capped": capped}
'''


def _capped(x: Any) -> Any:
    import tf_keras

    return tf_keras.activations.relu(x, max_value=2.0)


def _as_keras24(path: Path) -> None:
    """Write the activation as Keras 2.4 did (its name), not as tf_keras 2.21 does (a dict)."""
    import json

    import h5py

    with h5py.File(path, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        for layer in cfg["config"]["layers"]:
            if isinstance(layer["config"].get("activation"), dict):
                layer["config"]["activation"] = "capped"
        f.attrs["model_config"] = json.dumps(cfg)


@pytest.fixture(scope="module")
def logits_model(toolchain: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A legacy .h5 with a custom activation and a linear (logits) head of 3 classes."""
    tf_keras = toolchain[1]
    tf_keras.utils.get_custom_objects()["capped"] = _capped
    try:
        x = tf_keras.Input((99, 81, 1), name="spec")
        h = tf_keras.layers.Conv2D(3, 5, strides=4, activation="capped")(x)
        h = tf_keras.layers.Flatten()(h)
        model = tf_keras.Model(x, tf_keras.layers.Dense(3, name="logits")(h))
        randomize(model, 21)
        d = tmp_path_factory.mktemp("heads")
        model.save(d / "logits.h5")
    finally:
        del tf_keras.utils.get_custom_objects()["capped"]
    _as_keras24(d / "logits.h5")
    (d / "objects.py").write_text(CUSTOM)
    return d / "logits.h5"


def test_unknown_activation_keeps_its_cause(logits_model: Path) -> None:
    from hark.export.loading import load

    with pytest.raises(ModelFileError) as e:
        load(logits_model)
    msg = str(e.value)
    assert "Unknown activation function: 'capped'" in msg
    assert "--custom-objects" in msg and "\n" not in msg


def test_custom_objects_file_and_dict(logits_model: Path) -> None:
    from hark.export.loading import load

    a = load(logits_model, logits_model.parent / "objects.py").model
    b = load(logits_model, {"capped": _capped}).model
    x = np.random.default_rng(0).standard_normal((1, 99, 81, 1)).astype(np.float32)
    assert np.allclose(a(x).numpy(), b(x).numpy())


def test_custom_objects_file_errors(tmp_path: Path) -> None:
    from hark.export.loading import read_custom_objects

    (tmp_path / "none.py").write_text("x = 1\n")
    with pytest.raises(ModelFileError, match="defines no dict named custom_objects"):
        read_custom_objects(tmp_path / "none.py")
    (tmp_path / "bad.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ModelFileError, match="bad.py raised RuntimeError: boom"):
        read_custom_objects(tmp_path / "bad.py")
    with pytest.raises(ModelFileError, match="not found"):
        read_custom_objects(tmp_path / "missing.py")


def test_logits_without_flag_names_it(logits_model: Path, tmp_path: Path) -> None:
    from hark.export.convert import convert

    with pytest.raises(ExportError, match="is linear.*--output-activation softmax"):
        convert(logits_model, ["a", "b", "c"], frontend="kaggle-specgram", out_dir=tmp_path,
                custom_objects=logits_model.parent / "objects.py")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("head,task", [("softmax", "multiclass"), ("sigmoid", "multilabel")])
def test_head_is_in_the_graph_and_parity_after_it(logits_model: Path, tmp_path: Path,
                                                  head: str, task: str) -> None:
    import onnxruntime as ort

    from hark.export.convert import convert
    from hark.export.loading import load

    res = convert(logits_model, ["a", "b", "c"], frontend="kaggle-specgram", out_dir=tmp_path,
                  custom_objects=logits_model.parent / "objects.py", output_activation=head)
    assert res.card.task == task and res.card.provenance["output_head"] == head
    assert res.max_abs_diff <= 1e-5
    sess = ort.InferenceSession(str(res.onnx_path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((4, 99, 81, 1)).astype(np.float32) * 3
    got = sess.run(["posteriors"], {sess.get_inputs()[0].name: x})[0]
    logits = load(logits_model, {"capped": _capped}).model(x).numpy().astype(np.float64)
    if head == "softmax":
        want = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        assert np.allclose(got.sum(-1), 1.0, atol=1e-5)
    else:
        want = 1 / (1 + np.exp(-logits))
    assert np.max(np.abs(got - want)) <= 1e-5


def test_head_flag_errors(logits_model: Path, tmp_path: Path, saved: dict[str, Any]) -> None:
    from hark.export.convert import convert

    with pytest.raises(ExportError, match="already ends in softmax: drop --output-activation"):
        convert(saved["cnn"].path, ["a", "b", "c"], frontend="kaggle-specgram",
                out_dir=tmp_path, output_activation="sigmoid")
    with pytest.raises(ExportError, match="give --task"):
        convert(logits_model, ["a", "b", "c"], frontend="kaggle-specgram", out_dir=tmp_path,
                custom_objects={"capped": _capped}, output_activation="none")
    res = convert(logits_model, ["a", "b", "c"], frontend="kaggle-specgram", out_dir=tmp_path,
                  custom_objects={"capped": _capped}, output_activation="none",
                  task="multiclass")
    assert res.card.provenance["output_head"] is None
    assert any("logits" in w for w in res.warnings)


def test_cli_flags(logits_model: Path, tmp_path: Path,
                   capsys: pytest.CaptureFixture[str]) -> None:
    from hark.cli import main

    base = ["export", str(logits_model), "--labels", "a,b,c", "--preset", "kaggle-specgram",
            "--out", str(tmp_path)]
    assert main(base) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Unknown activation function: 'capped'" in err[0]
    assert main([*base, "--custom-objects", str(logits_model.parent / "objects.py")]) == 2
    assert "--output-activation softmax" in capsys.readouterr().err
    assert main([*base, "--custom-objects", str(logits_model.parent / "objects.py"),
                 "--output-activation", "softmax"]) == 0
    out = capsys.readouterr().out
    assert "head     softmax appended to the logits" in out
    assert "frames_bins" in out and "160/80 samples" in out
