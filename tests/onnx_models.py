"""Tiny ONNX models built with onnx.helper, each saved with its card, for engine tests.

No TensorFlow: these stand in for exported Keras models with the same input/output conventions
(batch-first frames, (1, frames, bins, 1) windows, (1, samples) raw windows, LSTM state as I/O).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hark.live.card import (
    FrontendSpec,
    InputSpec,
    ModelCard,
    SmoothingSpec,
    StateSpec,
    VadSpec,
)

LOGMEL = FrontendSpec(kind="logmel", window_ms=25, hop_ms=10, n_fft=512, n_mels=40)
SPECGRAM8K = FrontendSpec(kind="specgram", window_ms=20, hop_ms=10)
RAW = FrontendSpec(kind="raw")


def _init(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def _save(graph: onnx.GraphProto, card: ModelCard, out_dir: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{card.name}.onnx"
    onnx.save(model, str(path))
    card.save(path.with_suffix(".json"))
    return path


def lstm_frame_model(
    out_dir: Path,
    labels: tuple[str, ...] = ("a", "b", "c"),
    hidden: int = 8,
    seed: int = 0,
    name: str = "lstm",
    vad: bool = False,
) -> Path:
    """Per-frame LSTM over 40 log-mel bins, state exposed as h_in/c_in -> h_out/c_out."""
    rng = np.random.default_rng(seed)
    n_in, c = 40, len(labels)
    nodes = [
        helper.make_node("Transpose", ["frames"], ["x_tbf"], perm=[1, 0, 2]),
        helper.make_node(
            "LSTM",
            ["x_tbf", "W", "R", "B", "", "h_in", "c_in"],
            ["Y", "h_out", "c_out"],
            hidden_size=hidden,
        ),
        helper.make_node("Squeeze", ["Y", "ax1"], ["Y3"]),
        helper.make_node("Transpose", ["Y3"], ["Ys"], perm=[1, 0, 2]),
        helper.make_node("MatMul", ["Ys", "Wd"], ["logits0"]),
        helper.make_node("Add", ["logits0", "bd"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["posteriors"], axis=-1),
    ]
    inits = [
        _init("W", rng.normal(0, 0.3, (1, 4 * hidden, n_in))),
        _init("R", rng.normal(0, 0.3, (1, 4 * hidden, hidden))),
        _init("B", rng.normal(0, 0.1, (1, 8 * hidden))),
        _init("Wd", rng.normal(0, 1.0, (hidden, c))),
        _init("bd", rng.normal(0, 0.1, (c,))),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "ax1"),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [
            helper.make_tensor_value_info("frames", TensorProto.FLOAT, [1, "T", n_in]),
            helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [1, 1, hidden]),
            helper.make_tensor_value_info("c_in", TensorProto.FLOAT, [1, 1, hidden]),
        ],
        [
            helper.make_tensor_value_info("posteriors", TensorProto.FLOAT, [1, "T", c]),
            helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, 1, hidden]),
            helper.make_tensor_value_info("c_out", TensorProto.FLOAT, [1, 1, hidden]),
        ],
        inits,
    )
    card = ModelCard(
        name=name,
        labels=labels,
        sample_rate=16000,
        frontends={"main": LOGMEL},
        inputs=(InputSpec("frames", "frames", (1, None, n_in)),),
        state=(
            StateSpec("h_in", "h_out", (1, 1, hidden)),
            StateSpec("c_in", "c_out", (1, 1, hidden)),
        ),
        vad=VadSpec(enabled=vad),
    )
    return _save(graph, card, out_dir)


def _conv_branch(
    prefix: str, inp: str, rng: np.random.Generator, filters: int
) -> tuple[list, list]:
    nodes = [
        helper.make_node("Transpose", [inp], [f"{prefix}_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", [f"{prefix}_nchw", f"{prefix}_k", f"{prefix}_kb"],
                         [f"{prefix}_conv"], kernel_shape=[3, 3]),
        helper.make_node("Relu", [f"{prefix}_conv"], [f"{prefix}_relu"]),
        helper.make_node("GlobalAveragePool", [f"{prefix}_relu"], [f"{prefix}_gap"]),
        helper.make_node("Flatten", [f"{prefix}_gap"], [f"{prefix}_out"]),
    ]
    inits = [
        _init(f"{prefix}_k", rng.normal(0, 0.3, (filters, 1, 3, 3))),
        _init(f"{prefix}_kb", rng.normal(0, 0.1, (filters,))),
    ]
    return nodes, inits


def _head(inp: str, width: int, c: int, rng: np.random.Generator) -> tuple[list, list]:
    nodes = [
        helper.make_node("MatMul", [inp, "Wh"], ["h0"]),
        helper.make_node("Add", ["h0", "bh"], ["hl"]),
        helper.make_node("Softmax", ["hl"], ["posteriors"], axis=-1),
    ]
    return nodes, [_init("Wh", rng.normal(0, 1.0, (width, c))), _init("bh", np.zeros(c))]


def conv_window_model(
    out_dir: Path,
    labels: tuple[str, ...] = ("x", "y", "z", "w"),
    seed: int = 1,
    name: str = "cnn",
    stride_s: float = 0.1,
) -> Path:
    """A Conv2D window model on the Kaggle 8 kHz log-spectrogram: (1, 99, 81, 1) per 1 s."""
    rng = np.random.default_rng(seed)
    nodes, inits = _conv_branch("s", "spec", rng, 4)
    hn, hi = _head("s_out", 4, len(labels), rng)
    graph = helper.make_graph(
        nodes + hn,
        name,
        [helper.make_tensor_value_info("spec", TensorProto.FLOAT, [1, 99, 81, 1])],
        [helper.make_tensor_value_info("posteriors", TensorProto.FLOAT, [1, len(labels)])],
        inits + hi,
    )
    card = ModelCard(
        name=name,
        labels=labels,
        sample_rate=8000,
        frontends={"main": SPECGRAM8K},
        inputs=(InputSpec("spec", "window", (1, 99, 81, 1)),),
        window_s=1.0,
        stride_s=stride_s,
        vad=VadSpec(enabled=False),
    )
    return _save(graph, card, out_dir)


def fusion_model(out_dir: Path, labels: tuple[str, ...] = ("p", "q", "r"), seed: int = 2) -> Path:
    """Two inputs on one 1 s window at 16 kHz: a 40-mel CNN branch + a frame-mean branch."""
    rng = np.random.default_rng(seed)
    c = len(labels)
    cn, ci = _conv_branch("s", "melwin", rng, 4)
    nodes = cn + [
        helper.make_node("ReduceMean", ["seq"], ["seq_mean"], axes=[1], keepdims=0),
        helper.make_node("MatMul", ["seq_mean", "Ws"], ["seq_feat"]),
        helper.make_node("Concat", ["s_out", "seq_feat"], ["fused"], axis=-1),
    ]
    hn, hi = _head("fused", 8, c, rng)
    inits = ci + hi + [
        _init("Ws", rng.normal(0, 0.3, (13, 4))),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "ax1"),
    ]
    n_frames = 98  # (16000 - 400) // 160 + 1
    graph = helper.make_graph(
        nodes + hn,
        "fusion",
        [
            helper.make_tensor_value_info("melwin", TensorProto.FLOAT, [1, n_frames, 40, 1]),
            helper.make_tensor_value_info("seq", TensorProto.FLOAT, [1, n_frames, 13]),
        ],
        [helper.make_tensor_value_info("posteriors", TensorProto.FLOAT, [1, c])],
        inits,
    )
    card = ModelCard(
        name="fusion",
        labels=labels,
        sample_rate=16000,
        frontends={
            "mel": LOGMEL,
            "mfcc": FrontendSpec(kind="mfcc", window_ms=25, hop_ms=10, n_fft=512, n_mels=40),
        },
        inputs=(
            InputSpec("melwin", "window", (1, n_frames, 40, 1), frontend="mel"),
            InputSpec("seq", "window", (1, n_frames, 13), frontend="mfcc"),
        ),
        window_s=1.0,
        stride_s=0.25,
        vad=VadSpec(enabled=False),
    )
    return _save(graph, card, out_dir)


def raw_window_model(out_dir: Path, labels: tuple[str, ...] = ("u", "v"), seed: int = 3) -> Path:
    """A 1-D conv on a raw 16 kHz waveform window of 0.5 s: (1, 8000)."""
    rng = np.random.default_rng(seed)
    n = 8000
    nodes = [
        helper.make_node("Reshape", ["wave", "shape3"], ["w3"]),
        helper.make_node("Conv", ["w3", "k", "kb"], ["conv"], kernel_shape=[5], strides=[4]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["feat"]),
    ]
    hn, hi = _head("feat", 4, len(labels), rng)
    inits = [
        numpy_helper.from_array(np.array([1, 1, n], dtype=np.int64), "shape3"),
        _init("k", rng.normal(0, 0.5, (4, 1, 5))),
        _init("kb", rng.normal(0, 0.1, (4,))),
    ] + hi
    graph = helper.make_graph(
        nodes + hn,
        "raw",
        [helper.make_tensor_value_info("wave", TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info("posteriors", TensorProto.FLOAT, [1, len(labels)])],
        inits,
    )
    card = ModelCard(
        name="raw",
        labels=labels,
        sample_rate=16000,
        frontends={"main": RAW},
        inputs=(InputSpec("wave", "raw", (1, n)),),
        window_s=0.5,
        stride_s=0.05,
        vad=VadSpec(enabled=False),
    )
    return _save(graph, card, out_dir)


def band_detector_nodes(output: str) -> tuple[np.ndarray, list[onnx.NodeProto]]:
    """The band detector's band selector and nodes: frames -> d (log band power - thr) -> output.

    Inputs the graph must provide: "frames", initialisers "sel" (the returned matrix), "thr",
    "gain". Other test graphs build on "d" (e.g. one that turns it into NaN).
    """
    sel = np.zeros((40, 2), dtype=np.float32)
    sel[0:10, 0] = 1 / 10
    sel[30:40, 1] = 1 / 10
    nodes = [
        helper.make_node("Exp", ["frames"], ["power"]),
        helper.make_node("MatMul", ["power", "sel"], ["band_power"]),
        helper.make_node("Log", ["band_power"], ["band"]),
        helper.make_node("Sub", ["band", "thr"], ["d"]),
        helper.make_node("Mul", ["d", "gain"], ["z"]),
        helper.make_node("Sigmoid", ["z"], [output]),
    ]
    return sel, nodes


def band_energy_model(
    out_dir: Path,
    threshold: float | tuple[float, float],
    name: str = "bands",
    smoothing: SmoothingSpec | None = None,
    vad: bool = False,
) -> Path:
    """A deterministic multilabel 'detector': low = mel bins 0-9 loud, high = bins 30-39 loud.

    posterior = sigmoid(gain * (log of the band's mean mel power - threshold)): the detection
    rule is known exactly, so events on a synthetic signal have a known right answer.
    """
    sel, nodes = band_detector_nodes("posteriors")
    thr = np.broadcast_to(np.asarray(threshold, dtype=np.float32), (2,))
    inits = [_init("sel", sel), _init("thr", thr), _init("gain", np.array([4.0]))]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("frames", TensorProto.FLOAT, [1, "T", 40])],
        [helper.make_tensor_value_info("posteriors", TensorProto.FLOAT, [1, "T", 2])],
        inits,
    )
    card = ModelCard(
        name=name,
        labels=("low", "high"),
        task="multilabel",
        sample_rate=16000,
        frontends={"main": LOGMEL},
        inputs=(InputSpec("frames", "frames", (1, None, 40)),),
        smoothing=smoothing
        or SmoothingSpec(method="none", threshold_on=0.5, threshold_off=0.5,
                         min_on_ms=0.0, min_off_ms=0.0),
        vad=VadSpec(enabled=vad),
    )
    return _save(graph, card, out_dir)


def with_card(path: Path, **changes: object) -> ModelCard:
    """The card beside `path` with some fields replaced (for mismatch tests)."""
    from hark.live.card import load_card

    return replace(load_card(path.with_suffix(".json")), **changes)  # type: ignore[arg-type]
