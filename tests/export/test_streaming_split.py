"""`hark export` splits window CNNs into a streaming front/head pair, proved in the card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hark.live.card import load_card
from hark.live.engine import Engine, EngineOptions
from hark.live.model import OnnxModel, bundled_dir
from hark.live.runners import WindowRunner
from tests.export.conftest import LABELS3, randomize

pytestmark = [
    pytest.mark.tf,
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy"),
    pytest.mark.filterwarnings("ignore:You are saving your model"),
]


def _posteriors(model: OnnxModel, audio: np.ndarray, split: bool) -> np.ndarray:
    engine = Engine([model], EngineOptions(vad=False, record=True))
    stream = engine.streams[0]
    if not split:
        stream.runner = WindowRunner(model, split=False)
    for i in range(0, len(audio), 1234):
        engine.feed(audio[i : i + 1234])
    engine.close()
    assert isinstance(stream.runner, WindowRunner) and (stream.runner.split is not None) == split
    return engine.recording(0)[1]


@pytest.mark.parametrize("name", ["cnn", "cnn_legacy", "raw", "raw_legacy"])
def test_window_cnns_get_the_pair_at_export(exported: dict[str, Any], name: str) -> None:
    r = exported[name]
    sp = r.streaming_split
    assert sp is not None and sp.ok, sp
    assert sp.parity["passed"] and sp.parity["max_abs_diff"] <= 1e-5
    assert sp.parity["signal_s"] >= 30 and sp.parity["decisions"] >= 250
    folder = r.onnx_path.parent
    assert (folder / sp.front).is_file() and (folder / sp.head).is_file()
    assert load_card(r.card_path).streaming_split == sp
    model = OnnxModel.load(r.onnx_path)
    audio = np.random.default_rng(3).normal(0, 0.1, 3 * model.card.sample_rate)
    audio = audio.astype(np.float32)
    np.testing.assert_allclose(_posteriors(model, audio, True), _posteriors(model, audio, False),
                               atol=1e-5)


@pytest.mark.parametrize("name", ["fusion", "lstm"])
def test_other_models_are_exported_as_today(exported: dict[str, Any], name: str) -> None:
    r = exported[name]
    if r.card.streaming:
        assert r.streaming_split is None and r.card.streaming_split is None
        return
    assert r.streaming_split is not None and not r.streaming_split.ok
    assert "one input" in str(r.streaming_split.reason)
    assert not list(r.onnx_path.parent.glob(f"{r.onnx_path.stem}.front.onnx"))


def _export(keras_model: Any, tmp_path: Path, preset: str, name: str, **kw: Any) -> Any:
    from hark.export.convert import convert

    randomize(keras_model, 5)
    path = tmp_path / f"{name}.keras"
    keras_model.save(path)
    return convert(path, list(LABELS3), frontend=preset, out_dir=tmp_path / "out", **kw)


def test_the_cnn_architecture_splits_before_the_pool_whose_stride_does_not_divide(
    toolchain: Any, tmp_path: Path
) -> None:
    """build_cnn (the bundled commands-cnn's): after pool2 the stride is 4, which does not
    divide the 10-frame decision stride, so the cut is the last tensor at stride 2."""
    from hark.models.architectures import CnnConfig, build

    built = build("cnn", CnnConfig(filters=(4, 4, 8), dense_units=16), len(LABELS3))
    r = _export(built.model, tmp_path, "kaggle-specgram", "cnn_arch")
    sp = r.streaming_split
    assert sp is not None and sp.ok, sp
    assert (sp.time_stride, sp.receptive_field, sp.columns) == (2, 12, 44)
    assert sp.parity["max_abs_diff"] <= 1e-5


def test_the_wave1d_architecture_says_why_it_cannot_stream(toolchain: Any,
                                                            tmp_path: Path) -> None:
    """wave1d standardises each window (LayerNormalization over time) and pads its convs:
    no column is independent of the window, so it keeps running whole windows."""
    from hark.models.architectures import Wave1dConfig, build

    cfg = Wave1dConfig(channels=(4, 4), pools=(4, 4), dense_units=8)
    r = _export(build("wave1d", cfg, len(LABELS3)).model, tmp_path, "raw16k", "wave")
    sp = r.streaming_split
    assert sp is not None and not sp.ok
    assert "time stops at" in str(sp.reason)
    assert WindowRunner(OnnxModel.load(r.onnx_path)).split is None


def test_a_valid_padded_raw_cnn_with_a_strided_stem_splits(toolchain: Any,
                                                            tmp_path: Path) -> None:
    keras, _ = toolchain
    x = keras.Input((16000, 1), name="wave")
    h = keras.layers.Conv1D(4, 16, strides=8, activation="relu")(x)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.MaxPooling1D(4)(h)
    h = keras.layers.Conv1D(8, 5, activation="relu")(h)
    h = keras.layers.MaxPooling1D(5)(h)
    h = keras.layers.Flatten()(h)
    y = keras.layers.Dense(3, activation="softmax")(h)
    r = _export(keras.Model(x, y), tmp_path, "raw16k", "raw_stem")
    sp = r.streaming_split
    assert sp is not None and sp.ok, sp
    assert sp.time_stride == 160 and 1600 % sp.time_stride == 0  # 8 * 4 * 5: divides 100 ms
    assert sp.parity["max_abs_diff"] <= 1e-5


def test_cli_no_streaming_split_and_split_only(saved: dict[str, Any], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from hark.cli import main
    from hark.export.streaming_split import main as split_main

    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS3) + "\n")
    out = tmp_path / "out"
    argv = ["export", str(saved["cnn"].path), "--labels", str(labels), "--preset",
            "kaggle-specgram", "--out", str(out), "--no-streaming-split", "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["streaming_split"] is None
    assert load_card(out / "cnn.json").streaming_split is None
    assert not (out / "cnn.front.onnx").exists()
    # the pair added to the already exported folder
    assert split_main([str(out / "cnn.onnx"), "--signal-s", "5"]) == 0
    assert "cnn.front.onnx" in capsys.readouterr().out
    card = load_card(out / "cnn.json")
    assert card.streaming_split is not None and card.streaming_split.ok
    assert WindowRunner(OnnxModel.load(out / "cnn.onnx")).split is not None


def test_split_only_on_a_bad_path_is_one_line(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    from hark.export.streaming_split import main as split_main

    assert split_main([str(tmp_path / "nothing.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hark: error: ")


def test_the_pair_shares_the_bundled_weights_instead_of_copying_them(tmp_path: Path) -> None:
    import onnx

    for p in bundled_dir().glob("commands-cnn*"):
        shutil.copy(p, tmp_path / p.name)
    head = onnx.load(str(tmp_path / "commands-cnn.head.onnx"), load_external_data=False)
    external = [t for t in head.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert external and all(
        {e.key: e.value for e in t.external_data}["location"] == "commands-cnn.onnx"
        for t in external)
    assert (tmp_path / "commands-cnn.head.onnx").stat().st_size < 20_000
