"""Hand a trained Keras model to the exporter: NAME.onnx + NAME.json (card) with parity measured.

The project's exporter (`export.convert.convert`) does the work when it is installed; the
fallback below (tf2onnx directly, state exposed through a Keras twin with initial-state inputs
and return-state outputs) exists so training works before it and is removed once it lands.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hark.live.card import (
    FrontendSpec,
    InputSpec,
    ModelCard,
    Normalization,
    SmoothingSpec,
    StateSpec,
    VadSpec,
)
from hark.models.architectures import BuiltModel, streaming_twin

PARITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ExportRequest:
    """Everything the card needs besides the graph."""

    name: str
    labels: tuple[str, ...]
    sample_rate: int
    frontend: FrontendSpec
    normalization: Normalization | None = None
    ignore_labels: tuple[str, ...] = ()
    smoothing: SmoothingSpec = field(default_factory=SmoothingSpec)
    vad: VadSpec = field(default_factory=VadSpec)
    window_s: float | None = None
    stride_s: float | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)


def _convert_available() -> Any | None:
    try:
        from hark.export.convert import convert
    except ImportError:
        return None
    return convert


def export_model(built: BuiltModel, req: ExportRequest, out_dir: str | Path) -> Path:
    """Write OUT/NAME.keras, OUT/NAME.onnx and OUT/NAME.json; returns the .onnx path.

    Parity between Keras and onnxruntime is measured and must hold (the card records it).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras_path = out / f"{req.name}.keras"
    built.model.save(keras_path)
    convert = _convert_available()
    if convert is not None:
        return _via_export(convert, keras_path, built, req, out)
    return _fallback(built, req, out)


def _via_export(
    convert: Any, keras_path: Path, built: BuiltModel, req: ExportRequest, out: Path
) -> Path:
    """Let export.convert load the saved Keras file, verify parity and write NAME.onnx/.json."""
    result = convert(
        keras_path,
        list(req.labels),
        frontend=req.frontend,
        sample_rate=req.sample_rate,
        name=req.name,
        out_dir=out,
        window_s=req.window_s,
        stride_s=req.stride_s,
        normalization=req.normalization,
        task=built.task,
        ignore_labels=req.ignore_labels,
        smoothing=req.smoothing,
        vad=req.vad,
    )
    path = Path(result.onnx_path)
    _merge_card(path, req)
    return path


def _merge_card(onnx_path: Path, req: ExportRequest) -> None:
    """Add our provenance/evaluation to the card the exporter wrote (its fields win)."""
    from hark.live.card import load_card

    card_path = onnx_path.with_suffix(".json")
    card = load_card(card_path)
    prov = {**req.provenance, **card.provenance}
    ev = {**card.evaluation, **req.evaluation}
    replace(card, provenance=prov, evaluation=ev).save(card_path)


# ---- fallback: tf2onnx directly ------------------------------------------------------------------
def _fallback(built: BuiltModel, req: ExportRequest, out: Path) -> Path:
    import onnx
    import onnxruntime as ort
    import tf2onnx

    t0 = time.perf_counter()
    model = built.model
    states: list[tuple[str, str, int]] = []
    if built.per_frame:
        twin, states = streaming_twin(model, built.config, len(req.labels))
        proto, _ = tf2onnx.convert.from_keras(twin, opset=17)
        # outputs come back with generated names: rename by position (posteriors, states...)
        names = ["posteriors"] + [o for _, o, _ in states]
        _rename_outputs(proto, names)
    else:
        proto, _ = tf2onnx.convert.from_keras(model, opset=17)
    proto.producer_name = "hark-train"
    onnx_path = out / f"{req.name}.onnx"
    onnx.save(proto, str(onnx_path))
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    parity = _parity(built, sess, states, len(req.labels))
    if parity > PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX and Keras disagree by {parity:.2e} (> {PARITY_TOLERANCE})")
    inputs = _input_specs(built, sess, req)
    card = ModelCard(
        name=req.name,
        labels=req.labels,
        sample_rate=req.sample_rate,
        frontends={"main": req.frontend},
        inputs=inputs,
        task=built.task,
        output="posteriors" if built.per_frame else sess.get_outputs()[0].name,
        state=tuple(StateSpec(i, o, (1, u)) for i, o, u in states),
        window_s=req.window_s,
        stride_s=req.stride_s,
        normalization={"main": req.normalization} if req.normalization else {},
        ignore_labels=req.ignore_labels,
        smoothing=req.smoothing,
        vad=req.vad,
        provenance={
            **req.provenance,
            "exporter": "models.exporting fallback (tf2onnx.convert.from_keras)",
            "parity_max_abs": float(parity),
            "export_s": round(time.perf_counter() - t0, 2),
            **_versions(),
        },
        evaluation=dict(req.evaluation),
    )
    card.validate()
    card.save(onnx_path.with_suffix(".json"))
    return onnx_path


def _rename_outputs(proto: Any, names: list[str]) -> None:
    graph = proto.graph
    for out, new in zip(graph.output, names, strict=True):
        old = out.name
        if old == new:
            continue
        for node in graph.node:
            for k, o in enumerate(node.output):
                if o == old:
                    node.output[k] = new
            for k, i in enumerate(node.input):
                if i == old:
                    node.input[k] = new
        out.name = new


def _input_specs(built: BuiltModel, sess: Any, req: ExportRequest) -> tuple[InputSpec, ...]:
    specs = []
    state_names = {f"{k}{i}_in" for i in range(8) for k in ("h", "c")}
    for i in sess.get_inputs():
        if i.name in state_names:
            continue
        dims = tuple(d if isinstance(d, int) else None for d in i.shape)
        shape = (1, *dims[1:])
        if built.per_frame:
            role = "frames"
            shape = (1, None, *dims[2:])
        elif req.frontend.kind == "raw":
            role = "raw"
        else:
            role = "window"
        specs.append(InputSpec(i.name, role, shape))
    return tuple(specs)


def _parity(built: BuiltModel, sess: Any, states: list[tuple[str, str, int]], n: int) -> float:
    """Max |ONNX - Keras| on seeded random inputs; per-frame models fed in uneven pieces."""
    rng = np.random.default_rng(0)
    model = built.model
    if built.per_frame:
        x = rng.standard_normal((1, 150, model.inputs[0].shape[-1])).astype(np.float32)
        ref = np.asarray(model(x, training=False))[0]
        feeds = {i: np.zeros((1, u), np.float32) for i, _, u in states}
        got, start = [], 0
        for size in (1, 7, 42, 100):
            chunk = x[:, start : start + size]
            if not chunk.shape[1]:
                break
            res = sess.run(None, {"frames": chunk, **feeds})
            got.append(res[0][0])
            feeds = {i: res[1 + k] for k, (i, _, _) in enumerate(states)}
            start += size
        return float(np.abs(np.concatenate(got) - ref[: start]).max())
    feeds = {}
    for i in sess.get_inputs():
        shape = [2 if not isinstance(d, int) else d for d in i.shape]
        feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
    keras_in = [feeds[name] for name in built.input_names]
    ref = np.asarray(model(keras_in if len(keras_in) > 1 else keras_in[0], training=False))
    return float(np.abs(sess.run(None, feeds)[0] - ref).max())


def _versions() -> dict[str, str]:
    import keras
    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tf2onnx": tf2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
