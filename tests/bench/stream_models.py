"""A stacked-LSTM frame model shaped like `hark export`'s output, batch axis dynamic or fixed.

Export declares frames (batch, T, bins) and states (1, batch, units) (export/onnx_edit.py); the
models in tests/onnx_models.py fix batch at 1. Both kinds are needed for the batched-streams tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hark.live.card import InputSpec, ModelCard, SmoothingSpec, StateSpec, VadSpec
from tests.onnx_models import LOGMEL


def _f32(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def lstm_stack_model(
    out_dir: Path,
    units: tuple[int, ...] = (48, 32),
    labels: tuple[str, ...] = ("a", "b", "c", "d"),
    dynamic_batch: bool = True,
    vad: bool = False,
    name: str = "lstmstack",
    seed: int = 5,
) -> Path:
    rng = np.random.default_rng(seed)
    b = "batch" if dynamic_batch else 1
    n_in, c = 40, len(labels)
    nodes = [helper.make_node("Transpose", ["frames"], ["x0"], perm=[1, 0, 2])]
    inits = [numpy_helper.from_array(np.array([1], dtype=np.int64), "ax1")]
    inputs = [helper.make_tensor_value_info("frames", TensorProto.FLOAT, [b, "T", n_in])]
    outputs = [helper.make_tensor_value_info("posteriors", TensorProto.FLOAT, [b, "T", c])]
    states = []
    prev, width = "x0", n_in
    for i, h in enumerate(units):
        nodes += [
            helper.make_node("LSTM", [prev, f"W{i}", f"R{i}", f"B{i}", "", f"h{i}_in", f"c{i}_in"],
                             [f"Y{i}", f"h{i}_out", f"c{i}_out"], hidden_size=h),
            helper.make_node("Squeeze", [f"Y{i}", "ax1"], [f"x{i + 1}"]),
        ]
        inits += [
            _f32(f"W{i}", rng.normal(0, 0.3, (1, 4 * h, width))),
            _f32(f"R{i}", rng.normal(0, 0.3, (1, 4 * h, h))),
            _f32(f"B{i}", rng.normal(0, 0.1, (1, 8 * h))),
        ]
        for k in ("h", "c"):
            inputs.append(helper.make_tensor_value_info(f"{k}{i}_in", TensorProto.FLOAT, [1, b, h]))
            outputs.append(
                helper.make_tensor_value_info(f"{k}{i}_out", TensorProto.FLOAT, [1, b, h])
            )
            states.append(StateSpec(f"{k}{i}_in", f"{k}{i}_out", (1, 1, h)))
        prev, width = f"x{i + 1}", h
    nodes += [
        helper.make_node("Transpose", [prev], ["ys"], perm=[1, 0, 2]),
        helper.make_node("MatMul", ["ys", "Wd"], ["l0"]),
        helper.make_node("Add", ["l0", "bd"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["posteriors"], axis=-1),
    ]
    inits += [_f32("Wd", rng.normal(0, 1.0, (width, c))), _f32("bd", rng.normal(0, 0.1, (c,)))]
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.onnx"
    onnx.save(model, str(path))
    card = ModelCard(
        name=name,
        labels=labels,
        sample_rate=16000,
        frontends={"main": LOGMEL},
        inputs=(InputSpec("frames", "frames", (None, None, n_in)),),
        state=tuple(states),
        smoothing=SmoothingSpec(method="median", median_frames=5, threshold_on=0.5,
                                threshold_off=0.35, min_on_ms=30.0, min_off_ms=50.0),
        vad=VadSpec(enabled=vad, reset_after_ms=200.0),
    )
    card.save(path.with_suffix(".json"))
    return path
