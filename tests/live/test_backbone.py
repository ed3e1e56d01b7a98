"""The speech-embedding backbone frontend: streams = offline = openWakeWord's TFLite; pinned."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hark.live.backbone import (
    BACKBONE_DIR,
    EmbeddingFrontend,
    backbone_info,
    check_ref,
    files_sha256,
    n_embeddings,
    window_seconds,
)
from hark.live.card import (
    EMBEDDING_HOP,
    EMBEDDING_WINDOW,
    BackboneRef,
    CardError,
    FrontendSpec,
)
from hark.live.features import compute_features, make_frontend, n_frames_for

SPEC = FrontendSpec(kind="embedding")
RATE = 16000


def speechy(seconds: float, seed: int) -> np.ndarray:
    """Noise bursts and harmonics with pauses: loud and quiet chunks (the clamp matters)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    f0 = 120 + 60 * np.sin(2 * np.pi * 0.7 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / RATE) / k for k in range(1, 6))
    env = (np.sin(2 * np.pi * 1.3 * t) > 0.2).astype(float)
    x = 0.3 * env * voiced + rng.standard_normal(n) * np.where(env > 0, 0.02, 0.0005)
    return x.astype(np.float32)


OFFLINE = compute_features(speechy(6.0, 0), SPEC, RATE)


def test_offline_shape_and_framing() -> None:
    n = int(6.0 * RATE)
    assert OFFLINE.shape == (n_embeddings(n), 96) == (n_frames_for(n, SPEC, RATE), 96)
    assert (n - EMBEDDING_WINDOW) // EMBEDDING_HOP + 1 == len(OFFLINE)
    assert SPEC.hop_samples(RATE) == 1280 and SPEC.window_samples(RATE) == 13152
    assert np.isfinite(OFFLINE).all() and OFFLINE.std() > 1.0
    assert isinstance(make_frontend(SPEC, RATE), EmbeddingFrontend)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 9000), min_size=1, max_size=40))
def test_any_chunking_equals_offline(cuts: list[int]) -> None:
    x = speechy(6.0, 0)
    fe = EmbeddingFrontend(SPEC, RATE)
    parts, i = [], 0
    for c in cuts:
        parts.append(fe.push(x[i : i + c]))
        i += c
    parts.append(fe.push(x[i:]))
    got = np.concatenate(parts)
    assert got.shape == OFFLINE.shape
    assert np.abs(got - OFFLINE).max() <= 1e-5
    assert fe.frames_out == len(OFFLINE)


def test_live_blocks_and_reset() -> None:
    x = speechy(6.0, 0)
    fe = EmbeddingFrontend(SPEC, RATE)
    first = np.concatenate([fe.push(x[i : i + 160]) for i in range(0, 3 * RATE, 160)])
    fe.reset()
    again = np.concatenate([fe.push(x[i : i + 480]) for i in range(0, x.size, 480)])
    assert np.abs(again - OFFLINE).max() <= 1e-5
    assert np.abs(first - OFFLINE[: len(first)]).max() <= 1e-5


def test_causal_an_embedding_never_sees_the_future() -> None:
    x = speechy(3.0, 1)
    y = x.copy()
    cut = EMBEDDING_WINDOW + 5 * EMBEDDING_HOP  # embeddings 0..5 end at or before it
    y[cut:] = np.random.default_rng(9).standard_normal(y.size - cut).astype(np.float32)
    a, b = compute_features(x, SPEC, RATE), compute_features(y, SPEC, RATE)
    assert np.array_equal(a[:6], b[:6])
    assert not np.allclose(a[6:], b[6:])


def test_long_input_is_bounded_per_call() -> None:
    """Minutes pushed at once go through bounded graph calls and equal short pushes."""
    x = np.tile(speechy(6.0, 2), 12)  # 72 s
    whole = EmbeddingFrontend(SPEC, RATE).push(x)
    fe = EmbeddingFrontend(SPEC, RATE)
    parts = [fe.push(x[i : i + 16000]) for i in range(0, x.size, 16000)]
    assert np.abs(np.concatenate(parts) - whole).max() <= 1e-5


def test_equals_openwakewords_own_tflite_streaming() -> None:
    """The ONNX graphs + hark's chunk clamp give openWakeWord's TFLite embeddings."""
    pytest.importorskip("pyopen_wakeword")
    from hark.models.backbone import OWW_PRIMED_SAMPLES, tflite_embeddings, wheel_models

    x = np.round(speechy(4.0, 3) * 32767) / 32768  # on the int16 grid openWakeWord reads
    x = x.astype(np.float32)
    ref = tflite_embeddings(wheel_models(), x)
    ours = compute_features(np.concatenate((np.zeros(OWW_PRIMED_SAMPLES, np.float32), x)),
                            SPEC, RATE)
    n = min(len(ref), len(ours))
    assert n >= len(ours) - 1 > 100
    assert np.abs(ref[:n] - ours[:n]).max() <= 2e-4 * np.abs(ref[:n]).max()


def test_shipped_files_are_pinned() -> None:
    info = backbone_info()
    meta = json.loads((BACKBONE_DIR / "speech_embedding" / "backbone.json").read_text())
    assert info.sha256 == meta["sha256"] == files_sha256(BACKBONE_DIR / "speech_embedding")
    assert meta["licence"] == "Apache-2.0" and "openWakeWord" in meta["attribution"]
    assert "Apache License" in (BACKBONE_DIR / "speech_embedding" / "NOTICE").read_text()
    assert meta["parity"]["max_abs_diff_vs_tflite"] < 1e-3
    assert check_ref(info.ref()) == info
    with pytest.raises(CardError, match="re-train or re-enrol"):
        check_ref(dataclasses.replace(info.ref(), sha256="0" * 64))


def test_spec_is_the_backbones_own() -> None:
    with pytest.raises(CardError, match="16000 Hz only"):
        SPEC.validate(8000)
    with pytest.raises(CardError, match="n_mels cannot be set"):
        FrontendSpec(kind="embedding", n_mels=64).validate(RATE)


def test_window_seconds_gives_that_many_embeddings() -> None:
    for n in (1, 8, 16):
        assert n_embeddings(int(round(window_seconds(n) * RATE))) == n
    assert BackboneRef("speech_embedding", "x").name == "speech_embedding"


def test_bank_of_streams_equals_one_frontend_per_stream() -> None:
    from hark.live.backbone import EmbeddingBank

    signals = [speechy(3.0, s) for s in range(5)]
    bank = EmbeddingBank(len(signals))
    got: list[list[np.ndarray]] = [[] for _ in signals]
    rng = np.random.default_rng(4)
    pos = [0] * len(signals)
    while any(p < 3 * RATE for p in pos):
        blocks = []
        for i in range(len(signals)):
            n = int(rng.integers(0, 2000))  # ragged blocks, some streams silent in a round
            blocks.append(signals[i][pos[i] : pos[i] + n])
            pos[i] += n
        for i, e in enumerate(bank.push(blocks)):
            got[i].append(e)
    for i, x in enumerate(signals):
        ref = compute_features(x, SPEC, RATE)
        out = np.concatenate(got[i])
        assert out.shape == ref.shape and np.abs(out - ref).max() <= 1e-5
    assert bank.calls < sum(len(compute_features(x, SPEC, RATE)) for x in signals)
    with pytest.raises(ValueError, match="2 blocks for 5 streams"):
        bank.push(signals[:2])


def embedding_frame_model(out_dir: Path, hidden: int = 8, seed: int = 3) -> Path:
    """A per-embedding LSTM (dynamic batch axis) on the backbone: a frame model, a step / 80 ms."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from hark.live.card import InputSpec, ModelCard, StateSpec, VadSpec

    rng = np.random.default_rng(seed)
    labels = ("a", "b", "c")

    def init(name: str, a: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)

    nodes = [
        helper.make_node("Transpose", ["frames"], ["x"], perm=[1, 0, 2]),
        helper.make_node("LSTM", ["x", "W", "R", "B", "", "h_in", "c_in"],
                         ["Y", "h_out", "c_out"], hidden_size=hidden),
        helper.make_node("Squeeze", ["Y", "ax1"], ["Y3"]),
        helper.make_node("Transpose", ["Y3"], ["Ys"], perm=[1, 0, 2]),
        helper.make_node("MatMul", ["Ys", "Wd"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["posteriors"], axis=-1),
    ]
    inits = [init("W", rng.normal(0, 0.05, (1, 4 * hidden, 96))),
             init("R", rng.normal(0, 0.3, (1, 4 * hidden, hidden))),
             init("B", rng.normal(0, 0.1, (1, 8 * hidden))),
             init("Wd", rng.normal(0, 2.0, (hidden, 3))),
             numpy_helper.from_array(np.array([1], dtype=np.int64), "ax1")]
    graph = helper.make_graph(nodes, "embstep", [
        helper.make_tensor_value_info("frames", TensorProto.FLOAT, ["B", "T", 96]),
        helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [1, "B", hidden]),
        helper.make_tensor_value_info("c_in", TensorProto.FLOAT, [1, "B", hidden])], [
        helper.make_tensor_value_info("posteriors", TensorProto.FLOAT, ["B", "T", 3]),
        helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, "B", hidden]),
        helper.make_tensor_value_info("c_out", TensorProto.FLOAT, [1, "B", hidden])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = out_dir / "embstep.onnx"
    onnx.save(model, str(path))
    card = ModelCard(name="embstep", labels=labels, sample_rate=RATE,
                     frontends={"main": SPEC},
                     inputs=(InputSpec("frames", "frames", (None, None, 96)),),
                     state=(StateSpec("h_in", "h_out", (1, 1, hidden)),
                            StateSpec("c_in", "c_out", (1, 1, hidden))),
                     vad=VadSpec(enabled=False), backbone=backbone_info().ref())
    card.save(path.with_suffix(".json"))
    return path


@pytest.mark.parametrize("vad", [False, True])
def test_a_frame_model_on_the_backbone_runs_batched_as_single_engines(
        tmp_path: Path, vad: bool) -> None:
    """The batched engine (hark serve's) builds each stream's backbone frontend too."""
    from hark.live.batched import BatchedEngine, check_batch
    from hark.live.engine import Engine, EngineOptions
    from hark.live.model import OnnxModel

    model = OnnxModel.load(embedding_frame_model(tmp_path))
    assert model.card.decision_hop_s() == 0.08 and check_batch(model).ok
    x = np.stack([speechy(3.0, 20 + i) for i in range(3)])
    options = EngineOptions(vad=vad, record=True)
    engines = [Engine([model], options) for _ in range(3)]
    bank = BatchedEngine(model, options)
    ids = [bank.add_stream() for _ in range(3)]
    for h in range(0, x.shape[1], 160):
        for i, e in enumerate(engines):
            e.feed(x[i, h : h + 160])
        bank.feed_all({sid: x[i, h : h + 160] for i, sid in enumerate(ids)})
    for i, sid in enumerate(ids):
        _, want = engines[i].recording(0)
        assert len(want) == n_embeddings(x.shape[1]) > 20
        np.testing.assert_allclose(bank.recording(sid), want, atol=1e-5, rtol=0)
    assert bank.calls < sum(e.streams[0].runner.calls for e in engines)
