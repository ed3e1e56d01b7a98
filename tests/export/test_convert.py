"""Every architecture, Keras 3 and legacy: parity, native recurrent ops, streaming, the card."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.export.conftest import ARCHITECTURES, LABELS3

pytestmark = [
    pytest.mark.tf,
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy"),
]

TOL = 1e-4


def _node_attrs(onnx_path: Any, op: str) -> list[dict[str, Any]]:
    import onnx
    from onnx import helper

    model = onnx.load(str(onnx_path))
    return [
        {a.name: helper.get_attribute_value(a) for a in n.attribute}
        for n in model.graph.node
        if n.op_type == op
    ]


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_parity_within_tolerance(exported: dict[str, Any], name: str) -> None:
    r = exported[name]
    par = r.card.provenance["parity"]
    assert par["passed"] and par["tolerance"] == TOL
    assert par["max_abs_diff"] <= TOL
    assert all(c["max_abs_diff"] <= TOL for c in par["cases"] + par["streaming"])
    batches = {c["batch"] for c in par["cases"]}
    assert batches == {1, 2}
    if r.card.streaming:
        assert {c["frames"] for c in par["cases"]} == {1, 10, 500}
        assert [s["frames_per_call"] for s in par["streaming"]] == [1, 7]
    assert r.onnx_path.is_file() and r.card_path.is_file()


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_card_loads_and_matches_graph(exported: dict[str, Any], name: str) -> None:
    import onnxruntime as ort

    from hark.live.card import load_card

    r = exported[name]
    card = load_card(r.card_path)
    assert card == r.card
    assert card.labels == LABELS3 and card.ignore_labels == ("_silence_",)
    sess = ort.InferenceSession(str(r.onnx_path), providers=["CPUExecutionProvider"])

    def shape(s: Any) -> tuple[Any, ...]:
        return tuple(d if isinstance(d, int) else None for d in s)

    out = card.check_against_model(
        {i.name: shape(i.shape) for i in sess.get_inputs()},
        {o.name: shape(o.shape) for o in sess.get_outputs()},
    )
    assert out == "posteriors"
    prov = card.provenance
    source = Path(prov["source"]["path"])
    assert prov["source"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    for tool in ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime"):
        assert prov["tools"][tool]
    assert prov["onnx"]["op_types"] == list(r.op_types)
    assert prov["source"]["loaded_with"].startswith("tf_keras" if "legacy" in name else "keras ")


@pytest.mark.parametrize("name", ["lstm", "lstm_legacy", "gru", "gru_legacy", "fusion",
                                  "fusion_legacy"])
def test_recurrent_layers_are_native_nodes(exported: dict[str, Any], name: str) -> None:
    r = exported[name]
    ops = set(r.op_types)
    assert not ops & {"Loop", "Scan"}, ops
    want = "GRU" if name.startswith("gru") else "LSTM"
    assert want in ops
    nodes = _node_attrs(r.onnx_path, want)
    assert len(nodes) == (2 if name.startswith("lstm") else 1)
    if name == "lstm_legacy":  # Keras 2 hard_sigmoid: clip(0.2 x + 0.5)
        for n in nodes:
            assert n["activations"][0] == b"HardSigmoid"
            assert n["activation_alpha"] == pytest.approx([0.2])
            assert n["activation_beta"] == pytest.approx([0.5])
    if name == "gru_legacy":
        assert nodes[0]["linear_before_reset"] == 0
        assert nodes[0]["activation_alpha"] == pytest.approx([0.2])
    if name == "gru":
        assert nodes[0]["linear_before_reset"] == 1


@pytest.mark.parametrize("name", ["lstm", "lstm_legacy", "gru", "gru_legacy"])
def test_frame_models_come_out_tidy(exported: dict[str, Any], name: str) -> None:
    """No Tensordot shape arithmetic and no cancelling Transpose pairs left (export/tidy.py)."""
    import onnx

    from hark.export.tidy import REWRITE_NOTE, tidy_graph

    r = exported[name]
    assert not {"Shape", "Gather", "Concat"} & set(r.op_types), r.op_types
    assert not tidy_graph(onnx.load(str(r.onnx_path))).changed
    notes = [w for w in r.card.provenance["rewrites"] if w.startswith(REWRITE_NOTE)]
    assert len(notes) == 1 and notes[0].endswith("outputs identical"), notes


@pytest.mark.parametrize("name", ["lstm", "lstm_legacy", "gru", "gru_legacy"])
def test_frames_models_expose_state(exported: dict[str, Any], name: str) -> None:
    card = exported[name].card
    assert card.streaming and card.window_s is None
    (inp,) = card.inputs
    assert inp.role == "frames" and inp.shape == (None, None, 40)
    if name.startswith("lstm"):  # stacked: one pair per (layer, h/c)
        assert [(s.input, s.output, s.shape) for s in card.state] == [
            ("lstm_a/h_in", "lstm_a/h_out", (1, 1, 8)),
            ("lstm_a/c_in", "lstm_a/c_out", (1, 1, 8)),
            ("lstm_b/h_in", "lstm_b/h_out", (1, 1, 6)),
            ("lstm_b/c_in", "lstm_b/c_out", (1, 1, 6)),
        ]
    else:
        assert [(s.input, s.shape) for s in card.state] == [("gru_a/h_in", (1, 1, 8))]
    assert any("TimeDistributed" in r for r in exported[name].rewrites)


@pytest.mark.parametrize("name", ["lstm", "lstm_legacy", "gru", "gru_legacy"])
@pytest.mark.parametrize("chunk", [1, 7])
def test_streaming_equals_full_sequence(
    exported: dict[str, Any], keras_models: dict[str, Any], name: str, chunk: int
) -> None:
    """Independent of export.parity: feed chunks, carry the card's state, compare to Keras."""
    import onnxruntime as ort

    r = exported[name]
    card = r.card
    sess = ort.InferenceSession(str(r.onnx_path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(42).standard_normal((1, 120, 40)).astype(np.float32)
    want = np.asarray(keras_models[name](x, training=False))
    state = {s.input: np.zeros(s.shape, np.float32) for s in card.state}
    outs = []
    for i in range(0, x.shape[1], chunk):
        res = sess.run([card.output] + [s.output for s in card.state],
                       {card.inputs[0].name: x[:, i : i + chunk], **state})
        outs.append(res[0])
        state = {s.input: v for s, v in zip(card.state, res[1:], strict=True)}
    got = np.concatenate(outs, axis=1)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= TOL


@pytest.mark.parametrize("name", ["cnn", "cnn_legacy"])
def test_window_model_card(exported: dict[str, Any], name: str) -> None:
    card = exported[name].card
    assert not card.streaming and not card.state
    assert (card.window_s, card.stride_s, card.sample_rate) == (1.0, 0.1, 8000)
    (inp,) = card.inputs
    assert (inp.role, inp.shape) == ("window", (None, 99, 81, 1))
    assert card.frontends["main"].kind == "specgram" and card.task == "multiclass"


@pytest.mark.parametrize("name", ["raw", "raw_legacy"])
def test_raw_model_card(exported: dict[str, Any], name: str) -> None:
    card = exported[name].card
    (inp,) = card.inputs
    assert (inp.role, inp.shape) == ("raw", (None, 16000, 1))
    assert card.frontends["main"].kind == "raw" and card.sample_rate == 16000
    assert card.task == "multilabel"  # sigmoid output
    assert (card.window_s, card.stride_s) == (1.0, 0.1)


@pytest.mark.parametrize("name", ["fusion", "fusion_legacy"])
def test_fusion_model_has_two_inputs_and_frontends(exported: dict[str, Any], name: str) -> None:
    r = exported[name]
    card = r.card
    assert r.input_names == {"spec": "spec", "seq": "seq"}
    roles = {i.name: (i.role, i.shape, i.frontend) for i in card.inputs}
    assert roles["spec"][:2] == ("window", (None, 99, 81, 1))
    assert roles["seq"][:2] == ("window", (None, 98, 40))
    assert card.frontends[roles["spec"][2]].kind == "specgram"
    assert card.frontends[roles["seq"][2]].kind == "logmel"
    assert card.sample_rate == 8000 and card.window_s == 1.0
    assert card.expected_frames(card.inputs[0]) in (98, 99)


def _more_layers(K: Any) -> list[tuple[str, Any, str]]:
    """Window models with every recurrent flavour, a Keras Sequential, a nested model."""
    x = K.Input((98, 40), name="seq")
    h = K.layers.Bidirectional(K.layers.GRU(4, reset_after=False, return_sequences=True))(x)
    h = K.layers.LSTM(5, go_backwards=True, return_sequences=True)(h)
    h = K.layers.SimpleRNN(3)(h)
    rnn = K.Model(x, K.layers.Dense(3, activation="softmax")(h))
    seq = K.Sequential([K.Input((None, 40)), K.layers.GRU(4, return_sequences=True),
                        K.layers.Dense(3, activation="softmax")])
    branch = K.Sequential([K.Input((99, 81, 1)), K.layers.Conv2D(2, 3),
                           K.layers.GlobalMaxPooling2D()], name="branch")
    x = K.Input((99, 81, 1), name="spec")
    nested = K.Model(x, K.layers.Dense(3, activation="softmax")(branch(x)))
    return [("rnn_kinds", rnn, "logmel40"), ("sequential", seq, "logmel40"),
            ("nested", nested, "kaggle-specgram")]


@pytest.mark.parametrize("flavour", ["keras", "tf_keras"])
@pytest.mark.filterwarnings("ignore:You are saving your model")
def test_more_layer_kinds(toolchain: Any, tmp_path: Any, flavour: str) -> None:
    from hark.export.convert import convert
    from tests.export.conftest import randomize

    K = toolchain[0] if flavour == "keras" else toolchain[1]
    for name, model, frontend in _more_layers(K):
        randomize(model, 21)
        path = tmp_path / (f"{name}.keras" if flavour == "keras" else f"{name}.h5")
        model.save(path)
        r = convert(path, list(LABELS3), frontend=frontend, out_dir=tmp_path)
        assert r.max_abs_diff <= TOL, (name, r.parity)
        assert not {"Loop", "Scan"} & set(r.op_types), (name, r.op_types)
        if name == "rnn_kinds":
            assert {"GRU", "LSTM", "RNN"} <= set(r.op_types)
            (gru,) = _node_attrs(r.onnx_path, "GRU")
            assert gru["direction"] == b"bidirectional" and gru["linear_before_reset"] == 0
        if name == "sequential":
            assert r.card.streaming and len(r.card.state) == 1
