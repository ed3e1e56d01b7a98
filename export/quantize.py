"""`--quantize int8`: onnxruntime dynamic quantization, its size, speed and accuracy measured.

Weights become int8; activations are quantised on each call. Compared with the float model.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from hark.export.errors import ExportError
from hark.export.parity import session

QUANT_MODES = ("int8",)


def quantize_int8(
    float_model: onnx.ModelProto, out_path: Path, feeds: Mapping[str, np.ndarray], output: str
) -> tuple[list[str], dict[str, float]]:
    """Write the int8 model to out_path; return (notes, its per-call latency).

    With Conv layers two variants are tried, every supported op quantised and Conv left in
    float, and the faster one is kept: onnxruntime's ConvInteger is often several times slower
    than its float Conv on CPUs.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    ops_present = {n.op_type for n in float_model.graph.node}
    variants: list[tuple[str, list[str] | None]] = [("all ops", None)]
    if "Conv" in ops_present:
        variants.append(("Conv in float", ["MatMul", "LSTM", "Gather", "Attention"]))
    notes: list[str] = []
    if "GRU" in ops_present or "RNN" in ops_present:
        notes.append("GRU/RNN weights stay float: onnxruntime has no quantized GRU/RNN")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs advice on the root logger
    tried: list[tuple[float, str, Path, dict[str, float]]] = []
    errors: list[str] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "float.onnx"
            onnx.save(float_model, src)
            for i, (label, ops) in enumerate(variants):
                dst = Path(tmp) / f"int8_{i}.onnx"
                try:
                    quantize_dynamic(src, dst, op_types_to_quantize=ops,
                                     weight_type=QuantType.QInt8)
                    lat = speed(dst.read_bytes(), feeds, output)
                except Exception as e:  # onnxruntime raises its own types
                    errors.append((str(e).strip().splitlines() or [type(e).__name__])[0][:300])
                    continue
                tried.append((lat["median_us"], label, dst, lat))
            if not tried:
                raise ExportError(f"int8 quantization failed: {errors[0]}")
            tried.sort(key=lambda t: t[0])
            best = tried[0]
            out_path.write_bytes(best[2].read_bytes())
    finally:
        root.setLevel(level)
    if len(variants) > 1:
        others = ", ".join(f"{label}: {us:.0f} us" for us, label, _, _ in tried[1:])
        notes.append(f"kept {best[1]} ({best[0]:.0f} us per call; {others or 'other failed'})")
    return notes, best[3]


def latency_us(run: Callable[[], Any], runs: int = 200, warmup: int = 20) -> dict[str, float]:
    """Median and 90th percentile of one call, in microseconds."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1e6)
    times.sort()
    return {
        "median_us": round(statistics.median(times), 1),
        "p90_us": round(times[int(0.9 * (len(times) - 1))], 1),
    }


def call_feeds(
    input_shapes: Mapping[str, tuple[int | None, ...]],
    roles: Mapping[str, str],
    states: Mapping[str, tuple[int, ...]],
) -> dict[str, np.ndarray]:
    """What the engine feeds per call: one frame + state for frame models, one window else."""
    rng = np.random.default_rng(1)
    feeds = {}
    for name, shape in input_shapes.items():
        if name in states:
            feeds[name] = np.zeros(states[name], np.float32)
            continue
        dims = [1] + [d if isinstance(d, int) else 1 for d in shape[1:]]
        if roles.get(name) == "raw":
            feeds[name] = rng.uniform(-0.5, 0.5, dims).astype(np.float32)
        else:
            feeds[name] = rng.standard_normal(dims).astype(np.float32)
    return feeds


def speed(onnx_bytes: bytes, feeds: Mapping[str, np.ndarray], output: str) -> dict[str, float]:
    sess: ort.InferenceSession = session(onnx_bytes, threads=1)
    return latency_us(lambda: sess.run([output], dict(feeds)))
