"""Split window CNNs at run time: the pair equals the whole window, for any chunking and gate."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from hark.live.card import CardError, load_card
from hark.live.engine import Engine, EngineOptions, offline_posteriors
from hark.live.events import Event
from hark.live.model import ModelError, OnnxModel, bundled_dir
from hark.live.runners import WindowRunner
from hark.live.streaming_window import ColumnRing
from tests import onnx_models


def split_window_model(onnx_path: Path, signal_s: float = 5.0) -> Path:
    """Add the streaming pair to an exported window model (it must split)."""
    from hark.export.streaming_split import split_model

    result = split_model(onnx_path, signal_s=signal_s)
    assert result.split.ok, result.split.reason
    return onnx_path


def whole(model: OnnxModel) -> OnnxModel:
    """The same model with the pair left out of its card: whole windows every stride."""
    return OnnxModel.load(model.path, card=dataclasses.replace(model.card, streaming_split=None))


@pytest.fixture(scope="module")
def split_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, OnnxModel]:
    d = tmp_path_factory.mktemp("split")
    return {
        "cnn": OnnxModel.load(split_window_model(onnx_models.conv_window_model(d))),
        "raw": OnnxModel.load(split_window_model(onnx_models.raw_window_model(d))),
    }


def _audio(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.05 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 440 * t) * (t % 1 < 0.4)
    return x.astype(np.float32)


def test_the_runner_uses_the_pair(split_models: dict[str, OnnxModel]) -> None:
    for model in split_models.values():
        sp = model.card.streaming_split
        assert sp is not None and sp.ok and sp.parity["max_abs_diff"] <= 1e-5
        assert WindowRunner(model).split is not None
        assert WindowRunner(model, split=False).split is None
        assert WindowRunner(whole(model)).split is None


@pytest.mark.parametrize("name", ["cnn", "raw"])
@settings(max_examples=10, deadline=None)
@given(cuts=st.lists(st.integers(1, 7000), min_size=1, max_size=25))
def test_any_chunking_equals_the_whole_window_model(
    split_models: dict[str, OnnxModel], name: str, cuts: list[int]
) -> None:
    model = split_models[name]
    audio = _audio(3.2, model.card.sample_rate)
    t_ref, ref = offline_posteriors(whole(model), audio)
    engine = Engine([model], EngineOptions(vad=False, record=True))
    i = 0
    for c in cuts:
        engine.feed(audio[i : i + c])
        i += c
    engine.feed(audio[i:])
    engine.close()
    times, post = engine.recording(0)
    np.testing.assert_allclose(times, t_ref, atol=1e-9)
    np.testing.assert_allclose(post, ref, atol=1e-5)
    runner = engine.streams[0].runner
    assert isinstance(runner, WindowRunner) and runner.split is not None


def test_bundled_commands_cnn_streams_and_its_events_equal_the_whole_window() -> None:
    """The bundled demo through the engine: events and posteriors with the pair == without."""
    model = OnnxModel.load("commands-cnn")
    sp = model.card.streaming_split
    assert sp is not None and sp.ok, "the bundled commands-cnn carries its streaming pair"
    assert sp.parity["max_abs_diff"] <= 1e-5 and sp.parity["decisions"] >= 250
    audio, rate = sf.read(bundled_dir() / "demo.wav", dtype="float32")
    got: list[Event] = []
    want: list[Event] = []
    recs = []
    for m, out in ((model, got), (whole(model), want)):
        engine = Engine([m], EngineOptions(record=True), sample_rate=rate)
        for i in range(0, len(audio), 1600):
            out.extend(engine.feed(audio[i : i + 1600]))
        out.extend(engine.close())
        recs.append(engine.recording(0))
    rec_got, rec_want = recs
    np.testing.assert_allclose(rec_got[0], rec_want[0], atol=1e-9)
    np.testing.assert_allclose(rec_got[1], rec_want[1], atol=1e-5)
    assert got == want and len(got) > 0
    total = sum(p.stat().st_size for p in bundled_dir().glob("commands-cnn*"))
    assert total <= 2 * 2**20


@settings(max_examples=80, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["add", "drop", "restart"]), st.integers(0, 9)),
                    max_size=40))
def test_column_ring_keeps_the_columns_it_is_given(ops: list[tuple[str, int]]) -> None:
    ring = ColumnRing((2,), 3)
    ref: dict[int, float] = {}  # column number -> its value
    base = end = 0
    for op, n in ops:
        if op == "add":
            cols = np.arange(end, end + n, dtype=np.float32)[:, None].repeat(2, axis=1)
            ring.append(cols)
            ref.update({c: float(c) for c in range(end, end + n)})
            end += n
        elif op == "drop":
            base = min(end, base + n)
            ring.drop_before(base)
            ref = {c: v for c, v in ref.items() if c >= base}
        else:
            base = end = end + n
            ring.restart(end)
            ref = {}
        assert (ring.base, ring.end) == (base, end)
        got = ring.take(base, end - base)
        assert got[:, 0].tolist() == [ref[c] for c in range(base, end)]


def _copy_bundled(tmp_path: Path) -> Path:
    for p in bundled_dir().glob("commands-cnn*"):
        shutil.copy(p, tmp_path / p.name)
    return tmp_path / "commands-cnn.onnx"


def test_a_changed_whole_model_file_is_refused(tmp_path: Path) -> None:
    path = _copy_bundled(tmp_path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CardError, match="not the file it was split from"):
        WindowRunner(OnnxModel.load(path))


def test_a_missing_graph_of_the_pair_is_one_clear_error(tmp_path: Path) -> None:
    path = _copy_bundled(tmp_path)
    (tmp_path / "commands-cnn.head.onnx").unlink()
    with pytest.raises(ModelError, match="commands-cnn.head.onnx, which is not in the model's"):
        WindowRunner(OnnxModel.load(path))


@pytest.mark.parametrize("field,value,match", [
    ("head", "../x.onnx", "must be a file name in the model's folder"),
    ("front", "/etc/passwd", "must be a file name"),
    ("time_stride", 3, "does not divide the decision stride"),
    ("columns", 45, "gives 44 columns"),
    ("input", "other", "not the model's one input"),
])
def test_card_refuses_a_pair_that_cannot_fit(tmp_path: Path, field: str, value: object,
                                             match: str) -> None:
    path = _copy_bundled(tmp_path)
    card = json.loads(path.with_suffix(".json").read_text())
    card["streaming_split"][field] = value
    path.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(CardError, match=match):
        load_card(path.with_suffix(".json"))


def test_a_model_that_cannot_be_split_says_why(tmp_path: Path) -> None:
    from hark.export.streaming_split import split_model

    result = split_model(onnx_models.fusion_model(tmp_path))
    assert not result.split.ok and "one input" in str(result.split.reason)
    card = load_card(tmp_path / "fusion.json")
    assert card.streaming_split is not None and not card.streaming_split.ok
    assert not (tmp_path / "fusion.front.onnx").exists()
    assert WindowRunner(OnnxModel.load(tmp_path / "fusion.onnx")).split is None
