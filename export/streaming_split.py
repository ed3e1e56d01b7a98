"""Split an exported window CNN where time stops being a free axis: a front and a head graph.

The front (NAME.front.onnx) takes any number of input frames and returns the time columns they
complete, time first; the head (NAME.head.onnx) takes one window's columns and returns the
posteriors. At run time (hark.live.streaming_window) each column is computed once, so a decision
costs the front on one stride of new frames (plus the receptive field's overlap) and the head.

Works on the ONNX graph, so on any exported model (the bundled ones have no Keras file). From the
window input along its time axis, every tensor gets a time map (column c covers input frames
[c*S, c*S + R)) through Conv / MaxPool / AveragePool without padding on time, batch norm,
elementwise ops with constants, Transpose, Reshape, Squeeze and Unsqueeze; the cut is the deepest
tensor with a time map that alone feeds the rest of the graph and whose stride S divides the
decision stride (so every window starts on a column). Both graphs read their larger weights as
byte ranges of NAME.onnx (ONNX external data): nothing is stored twice. Parity is measured through
the runtime's own window runner over a long signal and written into the card; above 1e-5 the
pair is not kept and the card says why.

    python -m hark.export.streaming_split MODEL.onnx [--signal-s 30] [--tolerance 1e-5]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hark.export.errors import ExportError
from hark.live.card import ModelCard, StreamingSplit, load_card

TOLERANCE = 1e-5
MIN_SHARED_BYTES = 1024  # weights at least this big are read from NAME.onnx, not copied
COLUMNS = "columns"

UNARY = {
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "Selu", "HardSigmoid", "Softplus", "Softsign",
    "Clip", "Identity", "Abs", "Neg", "Exp", "Log", "Sqrt", "Erf", "Dropout", "Cast", "Gelu",
    "HardSwish", "Mish", "ThresholdedRelu", "Celu", "Floor", "Ceil", "Round", "Reciprocal",
}
BINARY = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "PRelu"}
WINDOWED = {"Conv", "MaxPool", "AveragePool"}


@dataclass(frozen=True)
class TimeMap:
    """Where time is in a tensor and what input frames its column c covers: [c*S, c*S + R)."""

    axis: int
    stride: int = 1
    field: int = 1


@dataclass
class SplitPlan:
    """Where to cut: the tensor, its time map, and which nodes go to the front."""

    cut: str
    time: TimeMap
    front: list[int]  # node indices, topological order
    # front Reshape node -> (time axis of its input, of its output)
    reshapes: dict[int, tuple[int, int]] = field(default_factory=dict)
    columns: int = 0
    cut_shape: tuple[int, ...] = ()


class NoSplit(Exception):
    """The model cannot be split; the message says why (it goes into the card)."""


def _attr(node: Any, name: str, default: Any = None) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _static_shapes(model: Any) -> dict[str, tuple[int | None, ...]]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes: dict[str, tuple[int | None, ...]] = {}
    g = inferred.graph
    for vi in [*g.input, *g.value_info, *g.output]:
        t = vi.type.tensor_type
        if t.HasField("shape"):
            shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                    for d in t.shape.dim)
    for init in g.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def _constants(model: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    out = {}
    for init in model.graph.initializer:
        if init.data_location != 1 and np.prod(init.dims) <= 64:  # small inline ones: shapes
            out[init.name] = numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            value = _attr(node, "value")
            if value is not None:
                out[node.output[0]] = numpy_helper.to_array(value)
    return out


def _windowed(node: Any, tm: TimeMap, shapes: dict[str, tuple[int | None, ...]]) -> TimeMap:
    """Conv / pooling along time: valid (no padding on time), so columns stay whole."""
    if tm.axis < 2:
        raise NoSplit(f"{node.op_type} {node.name!r} runs over the time axis as a channel")
    i = tm.axis - 2
    if node.op_type == "Conv":
        w = shapes.get(node.input[1])
        kt = w[tm.axis] if w else None
        if kt is None:
            raise NoSplit(f"Conv {node.name!r}: kernel size unknown")
        k = int(kt)
    else:
        k = int(_attr(node, "kernel_shape")[i])
        if _attr(node, "ceil_mode", 0):
            raise NoSplit(f"{node.op_type} {node.name!r} uses ceil_mode (a partial last window)")
        if len(node.output) > 1 and node.output[1]:
            raise NoSplit(f"{node.op_type} {node.name!r} returns indices")
    n_sp = len(shapes.get(node.input[0], ())) - 2
    pads = _attr(node, "pads") or [0] * (2 * max(n_sp, 1))
    auto = _attr(node, "auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto not in ("NOTSET", "VALID") or pads[i] or pads[i + n_sp]:
        raise NoSplit(f"{node.op_type} {node.name!r} pads the time axis ('same' padding): the "
                      "columns at a window's edges depend on the window, not on the stream")
    s = int((_attr(node, "strides") or [1] * n_sp)[i])
    d = int((_attr(node, "dilations") or [1] * n_sp)[i])
    return TimeMap(tm.axis, tm.stride * s, tm.field + (k - 1) * d * tm.stride)


def _reshape_axis(node: Any, tm: TimeMap, shapes: dict[str, tuple[int | None, ...]],
                  consts: dict[str, np.ndarray]) -> int:
    """Where the time axis lands in a Reshape that keeps it whole (layout or size-1 axes)."""
    src, dst = shapes.get(node.input[0]), shapes.get(node.output[0])
    if node.input[1] not in consts or not src or not dst:
        raise NoSplit(f"Reshape {node.name!r}: shapes unknown")
    if any(d is None for d in (*src[1:], *dst[1:])):
        raise NoSplit(f"Reshape {node.name!r}: shapes unknown")
    a, b = [int(d or 1) for d in src], [int(d or 1) for d in dst]
    before = math.prod(a[1 : tm.axis])
    for q in range(1, len(b)):
        if b[q] == a[tm.axis] and math.prod(b[1:q]) == before:
            return q
    raise NoSplit(f"Reshape {node.name!r} folds the time axis into another one")


def plan(model: Any, input_name: str, n_frames: int, stride_frames: int) -> SplitPlan:
    """The deepest valid cut for this window input; NoSplit with the reason if there is none."""
    g = model.graph
    if len(g.input) - len({i.name for i in g.initializer} & {i.name for i in g.input}) != 1:
        raise NoSplit("the model has more than one input")
    shapes = _static_shapes(model)
    consts = _constants(model)
    producer: dict[str, int] = {}
    for idx, node in enumerate(g.node):
        for o in node.output:
            producer[o] = idx
    dynamic = {input_name}
    times: dict[str, TimeMap] = {input_name: TimeMap(1)}
    reshapes: dict[int, tuple[int, int]] = {}
    blocker = ""
    for idx, node in enumerate(g.node):
        dyn = [i for i in node.input if i in dynamic]
        if not dyn:
            continue
        dynamic.update(o for o in node.output if o)
        if any(i not in times for i in dyn):
            continue
        tm = times[dyn[0]]
        try:
            op = node.op_type
            if op in UNARY or op == "BatchNormalization":
                if op == "BatchNormalization" and tm.axis == 1:
                    raise NoSplit(f"BatchNormalization {node.name!r} normalises over time")
                if len(dyn) > 1 or dyn[0] != node.input[0]:
                    raise NoSplit(f"{op} {node.name!r} takes time from a parameter")
                out = tm
            elif op in BINARY:
                if any(times[i] != tm for i in dyn):
                    raise NoSplit(f"{op} {node.name!r} joins tensors with different time maps")
                rank = len(shapes.get(node.output[0], ()))
                for other in node.input:
                    if other in dynamic:
                        continue
                    oshape = shapes.get(other)
                    if oshape is None:
                        raise NoSplit(f"{op} {node.name!r}: operand shape unknown")
                    j = tm.axis - (rank - len(oshape))
                    if 0 <= j < len(oshape) and oshape[j] != 1:
                        raise NoSplit(f"{op} {node.name!r} applies values that vary over time")
                out = tm
            elif op == "Transpose":
                out = TimeMap(list(_attr(node, "perm")).index(tm.axis), tm.stride, tm.field)
            elif op == "Reshape":
                q = _reshape_axis(node, tm, shapes, consts)
                reshapes[idx] = (tm.axis, q)
                out = TimeMap(q, tm.stride, tm.field)
            elif op in ("Squeeze", "Unsqueeze"):
                axes = _attr(node, "axes")
                if axes is None and len(node.input) > 1:
                    if node.input[1] not in consts:
                        raise NoSplit(f"{op} {node.name!r}: axes unknown")
                    axes = consts[node.input[1]].tolist()
                rank_in = len(shapes.get(node.input[0], ()))
                if axes is None or not rank_in:
                    raise NoSplit(f"{op} {node.name!r}: axes unknown")
                if op == "Squeeze":
                    axes = sorted(a % rank_in for a in axes)
                    if tm.axis in axes:
                        raise NoSplit(f"Squeeze {node.name!r} removes the time axis")
                    out = TimeMap(tm.axis - sum(a < tm.axis for a in axes), tm.stride, tm.field)
                else:
                    rank_out = rank_in + len(axes)
                    axes = sorted(a % rank_out for a in axes)
                    a_out = tm.axis
                    for a in axes:
                        if a <= a_out:
                            a_out += 1
                    out = TimeMap(a_out, tm.stride, tm.field)
            elif op in WINDOWED:
                out = _windowed(node, tm, shapes)
            else:
                raise NoSplit(f"{op} {node.name!r}")
        except NoSplit as e:
            blocker = blocker or str(e)
            continue
        for o in node.output[:1]:
            times[o] = out
    outputs = {o.name for o in g.output}

    def front_of(cut: str) -> set[int]:
        seen: set[int] = set()
        stack = [producer[cut]]
        while stack:
            i = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            stack.extend(producer[t] for t in g.node[i].input if t in dynamic and t in producer)
        return seen

    reasons: list[str] = []
    for idx in reversed(range(len(g.node))):
        node = g.node[idx]
        if not node.output or node.output[0] not in times or node.output[0] in outputs:
            continue
        cut = node.output[0]
        tm = times[cut]
        if stride_frames % tm.stride:
            reasons.append(f"stride {tm.stride}")
            continue
        front = front_of(cut)
        if not any(g.node[i].op_type in WINDOWED for i in front):
            continue
        made = {o for i in front for o in g.node[i].output}
        leaks = any(t in made and t != cut or t == input_name
                    for j, n in enumerate(g.node) if j not in front for t in n.input)
        if leaks:
            continue
        if tm.field > n_frames:
            continue
        shape = shapes.get(cut)
        if not shape or any(d is None for d in shape[1:]):
            continue
        columns = (n_frames - tm.field) // tm.stride + 1
        if shape[tm.axis] != columns:
            raise NoSplit(f"the cut {cut!r} has {shape[tm.axis]} columns, its time map says "
                          f"{columns}")
        fixed = tuple(1 if d is None else int(d) for d in shape)
        return SplitPlan(cut, tm, sorted(front), {i: q for i, q in reshapes.items()
                                                   if i in front}, columns, fixed)
    why = blocker or "no convolution along time"
    if reasons:
        why += (f"; deeper cuts have a time stride that does not divide the decision stride "
                f"({stride_frames} frames)")
    raise NoSplit(f"no tensor to cut at: time stops at {why}")


def build_pair(model: Any, p: SplitPlan, input_name: str) -> tuple[Any, Any]:
    """(front, head) ModelProtos for the plan; the caller checks and writes them."""
    import onnx
    from onnx import TensorProto, helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    const_nodes = {n.output[0]: n for n in g.node if n.op_type == "Constant" and n.output}
    front_set = set(p.front)
    axis = p.time.axis
    rank = len(p.cut_shape)

    producer = {o: n for n in g.node for o in n.output if o}

    def collect(nodes: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        """The constant-only nodes and the initializers these nodes need (recursively)."""
        made = {o for n in nodes for o in n.output}
        extra: list[Any] = []
        used: list[Any] = []
        stack = [t for n in nodes for t in n.input]
        seen: set[str] = set()
        while stack:
            t = stack.pop()
            if not t or t in seen or t in made:
                continue
            seen.add(t)
            if t in inits:
                used.append(inits[t])
            elif t in producer:
                extra.append(producer[t])
                made.update(producer[t].output)
                stack.extend(producer[t].input)
        return extra, used

    # front: the nodes up to the cut, Reshapes given the time length of their input
    front_nodes: list[Any] = []
    for i in p.front:
        node = g.node[i]
        if i in p.reshapes:
            src_axis, q = p.reshapes[i]
            tag = f"{node.name or i}__time"
            shape = onnx.numpy_helper.to_array(inits[node.input[1]]) if node.input[1] in inits \
                else onnx.numpy_helper.to_array(_attr(const_nodes[node.input[1]], "value"))
            shape = shape.astype(np.int64)
            front_nodes += [
                helper.make_node("Shape", [node.input[0]], [f"{tag}_shape"]),
                helper.make_node("Gather", [f"{tag}_shape", f"{tag}_axis"], [f"{tag}_len"],
                                 axis=0),
                helper.make_node("Concat", [f"{tag}_pre", f"{tag}_len", f"{tag}_post"],
                                 [f"{tag}_new"], axis=0),
                helper.make_node("Constant", [], [f"{tag}_axis"], value=helper.make_tensor(
                    f"{tag}_axis_v", TensorProto.INT64, [1], [src_axis])),
                helper.make_node("Constant", [], [f"{tag}_pre"], value=helper.make_tensor(
                    f"{tag}_pre_v", TensorProto.INT64, [q], shape[:q].tolist())),
                helper.make_node("Constant", [], [f"{tag}_post"], value=helper.make_tensor(
                    f"{tag}_post_v", TensorProto.INT64, [len(shape) - q - 1],
                    shape[q + 1 :].tolist())),
            ]
            new = onnx.NodeProto()
            new.CopyFrom(node)
            new.input[1] = f"{tag}_new"
            front_nodes.append(new)
        else:
            front_nodes.append(g.node[i])
    perm = [axis, *(d for d in range(rank) if d != axis)]
    front_nodes.append(helper.make_node("Transpose", [p.cut], [COLUMNS], perm=perm))
    consts, used_inits = collect(front_nodes)
    src_in = next(i for i in g.input if i.name == input_name)
    in_dims: list[Any] = [d.dim_value if d.HasField("dim_value") else None
                          for d in src_in.type.tensor_type.shape.dim]
    in_dims[0] = 1
    in_dims[1] = "frames"
    col_shape = [p.cut_shape[d] for d in perm]
    front_graph = helper.make_graph(
        _topo([*consts, *front_nodes]), "front",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, in_dims)],
        [helper.make_tensor_value_info(COLUMNS, TensorProto.FLOAT, ["columns", *col_shape[1:]])],
        initializer=used_inits,
    )
    # head: the rest, after the columns are put back in the cut's own layout
    inverse = [perm.index(d) for d in range(rank)]
    head_nodes = [helper.make_node("Transpose", [COLUMNS], [p.cut], perm=inverse)]
    head_nodes += [n for j, n in enumerate(g.node) if j not in front_set
                   and n.op_type != "Constant"]
    consts, used_inits = collect(head_nodes)
    head_graph = helper.make_graph(
        _topo([*consts, *head_nodes]), "head",
        [helper.make_tensor_value_info(COLUMNS, TensorProto.FLOAT, col_shape)],
        list(g.output), initializer=used_inits,
    )
    pair = []
    for graph in (front_graph, head_graph):
        m = helper.make_model(graph, opset_imports=list(model.opset_import),
                              producer_name="hark.export.streaming_split")
        m.ir_version = model.ir_version
        pair.append(m)
    return pair[0], pair[1]


def _topo(nodes: list[Any]) -> list[Any]:
    """Nodes in an order where each input is made before it is used."""
    made: set[str] = set()
    producers = {o for n in nodes for o in n.output}
    out: list[Any] = []
    pending = list(nodes)
    while pending:
        rest = []
        for n in pending:
            if all(t in made or t not in producers or not t for t in n.input):
                out.append(n)
                made.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise NoSplit("the graph has a cycle")
        pending = rest
    return out


def share_weights(proto: Any, whole: bytes, whole_name: str) -> int:
    """Point big inline initializers at the same bytes in the whole model's file; bytes saved."""
    saved = 0
    for t in proto.graph.initializer:
        raw = t.raw_data
        if len(raw) < MIN_SHARED_BYTES:
            continue
        at = whole.find(raw)
        if at < 0:
            continue
        t.ClearField("raw_data")
        t.data_location = 1  # TensorProto.EXTERNAL
        del t.external_data[:]
        for key, value in (("location", whole_name), ("offset", str(at)),
                           ("length", str(len(raw)))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        saved += len(raw)
    return saved


@dataclass
class SplitResult:
    """What `split_model` wrote, measured, or why it could not."""

    card: ModelCard
    split: StreamingSplit
    front_path: Path | None = None
    head_path: Path | None = None
    seconds: float = 0.0


def split_model(onnx_path: str | Path, signal_s: float = 30.0, tolerance: float = TOLERANCE,
                audio: np.ndarray | None = None) -> SplitResult:
    """Write NAME.front.onnx and NAME.head.onnx beside NAME.onnx and the split into NAME.json.

    A model that cannot be split, or whose pair differs from the whole window above
    `tolerance`, keeps running whole windows: the card then says why (ok false).
    """
    import onnx

    t0 = time.perf_counter()
    onnx_path = Path(onnx_path)
    card_path = onnx_path.with_suffix(".json")
    card = load_card(card_path)
    name = onnx_path.stem
    front_path = onnx_path.with_name(f"{name}.front.onnx")
    head_path = onnx_path.with_name(f"{name}.head.onnx")
    for stale in (front_path, head_path):
        stale.unlink(missing_ok=True)
    from hark.live.errors import HarkError

    split: StreamingSplit
    try:
        split = _make_pair(onnx_path, card, front_path, head_path)
        if split.ok:
            par = measure_parity(onnx_path, dataclasses.replace(card, streaming_split=split),
                                 signal_s, audio)
    except NoSplit as e:
        split = StreamingSplit(ok=False, reason=str(e))
    except (HarkError, ValueError, KeyError, IndexError, onnx.checker.ValidationError,
            onnx.shape_inference.InferenceError) as e:  # a graph this code did not foresee
        split = StreamingSplit(ok=False, reason=f"the split failed: {type(e).__name__}: {e}")
    if split.ok:
        par["tolerance"] = tolerance
        par["passed"] = bool(par["max_abs_diff"] <= tolerance)
        split = dataclasses.replace(split, parity={**split.parity, **par})
        if not par["passed"]:
            split = StreamingSplit(ok=False, parity=par, reason=(
                f"the streaming pair differs from the whole window by {par['max_abs_diff']:.1e} "
                f"(tolerance {tolerance:.0e})"))
    if not split.ok:
        for stale in (front_path, head_path):
            stale.unlink(missing_ok=True)
    card = dataclasses.replace(card, streaming_split=split)
    card.validate()
    card.save(card_path)
    return SplitResult(card, split, front_path if split.ok else None,
                       head_path if split.ok else None, round(time.perf_counter() - t0, 2))


def _make_pair(onnx_path: Path, card: ModelCard, front_path: Path,
               head_path: Path) -> StreamingSplit:
    import onnx

    from hark.live.streaming_window import file_sha256

    if card.streaming or len(card.inputs) != 1:
        raise NoSplit("only a window model with one input can be split")
    inp = card.inputs[0]
    fe = card.frontends[inp.frontend]
    if inp.framing == "clip":
        raise NoSplit("the window is framed per clip: its edge frames differ from the stream's "
                      "columns")
    if inp.has_window_ops or fe.has_window_ops:
        raise NoSplit("the window input has per-window operations (layout, pooling, window "
                      "normalisation, db_ref max, top_db or deltas): columns depend on the window")
    assert card.stride_s is not None
    hop = 1 if fe.kind == "raw" else fe.hop_samples(card.sample_rate)
    stride_frames = int(round(card.stride_s * card.sample_rate)) // hop
    n_frames = card.expected_frames(inp)
    model = onnx.load(str(onnx_path), load_external_data=False)
    p = plan(model, inp.name, n_frames, stride_frames)
    front, head = build_pair(model, p, inp.name)
    whole = onnx_path.read_bytes()
    for proto, path in ((front, front_path), (head, head_path)):
        share_weights(proto, whole, onnx_path.name)
        path.write_bytes(proto.SerializeToString())
        try:
            onnx.checker.check_model(str(path))  # by path: the shared weights are resolved
        except onnx.checker.ValidationError as e:
            raise NoSplit(f"the split graph is not valid ONNX: {str(e).splitlines()[0]}") from None
    return StreamingSplit(
        ok=True, input=inp.name, front=front_path.name, head=head_path.name,
        time_stride=p.time.stride, receptive_field=p.time.field, columns=p.columns,
        weights_from=onnx_path.name, weights_sha256=file_sha256(onnx_path),
        parity={"cut": p.cut},
    )


def probe_signal(sample_rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Noise with word-like bursts (gliding harmonic tones under an envelope), loud and quiet."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    x = 0.01 * rng.standard_normal(n)
    t = np.arange(int(0.5 * sample_rate)) / sample_rate
    for start in range(int(0.3 * sample_rate), n - len(t), int(0.9 * sample_rate)):
        f0 = rng.uniform(90, 250)
        glide = f0 * (1 + rng.uniform(-0.3, 0.3) * t / t[-1])
        phase = 2 * np.pi * np.cumsum(glide) / sample_rate
        burst = sum(np.sin(h * phase) / h for h in range(1, 8))
        env = np.sin(np.pi * t / t[-1]) ** 2 * rng.uniform(0.05, 0.8)
        x[start : start + len(t)] += env * burst
    return x.astype(np.float32)


def measure_parity(onnx_path: Path, card: ModelCard, signal_s: float,
                   audio: np.ndarray | None = None) -> dict[str, Any]:
    """Max |streaming - whole window| over every decision of a long signal, as the engine runs.

    Both go through live.runners.WindowRunner (frames from live.features.Frontend in uneven
    chunks), one with the pair and one without.
    """
    from hark.live.features import make_frontend
    from hark.live.model import OnnxModel
    from hark.live.runners import WindowRunner

    model = OnnxModel.load(onnx_path, card=card)
    whole, streamed = WindowRunner(model, split=False), WindowRunner(model)
    x = probe_signal(card.sample_rate, signal_s)
    if audio is not None:
        x = np.concatenate((x, np.asarray(audio, dtype=np.float32)))
    fronts = {name: make_frontend(spec, card.sample_rate) for name, spec in card.frontends.items()}
    rng = np.random.default_rng(1)
    posts: dict[str, list[np.ndarray]] = {"whole": [], "streamed": []}
    at = 0
    while at < len(x):
        step = int(rng.integers(1, int(0.25 * card.sample_rate)))
        chunk = x[at : at + step]
        at += step
        for name, fe in fronts.items():
            frames = fe.push(chunk)
            whole.add_frames(name, frames)
            streamed.add_frames(name, frames)
        for key, runner in (("whole", whole), ("streamed", streamed)):
            posts[key].append(runner.step()[1])
    a, b = np.concatenate(posts["whole"]), np.concatenate(posts["streamed"])
    if a.shape != b.shape or not len(a):
        raise NoSplit(f"the streaming pair gave {len(b)} decisions, the whole window {len(a)}")
    assert streamed.split is not None
    return {
        "max_abs_diff": float(np.max(np.abs(a - b))),
        "decisions": len(a),
        "signal_s": round(len(x) / card.sample_rate, 3),
        "signal": "seeded noise with harmonic bursts (probe_signal)"
                  + (", then the given audio" if audio is not None else ""),
        "front_calls": streamed.split.front_calls,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m hark.export.streaming_split",
        description="Add the streaming front/head pair to an exported window CNN (NAME.onnx "
        "with NAME.json beside it): writes NAME.front.onnx, NAME.head.onnx and the split with "
        "its parity into the card, or the reason it cannot be split.")
    ap.add_argument("model", help="NAME.onnx (its card NAME.json beside it)")
    ap.add_argument("--signal-s", type=float, default=30.0,
                    help="seconds of probe signal for the parity check (default 30)")
    ap.add_argument("--audio", metavar="WAV", help="also measure parity on this file (after the "
                    "probe signal)")
    ap.add_argument("--tolerance", type=float, default=TOLERANCE)
    args = ap.parse_args(argv)
    from hark.live.errors import HarkError

    try:
        audio = None
        if args.audio:
            audio = _read_audio(args.audio, load_card(Path(args.model).with_suffix(".json")))
        result = split_model(args.model, args.signal_s, args.tolerance, audio)
    except (HarkError, OSError) as e:
        print(f"hark: error: {e}", file=sys.stderr)
        return 2
    print(describe(result))
    return 0 if result.split.ok else 1


def _read_audio(path: str, card: ModelCard) -> np.ndarray:
    import soundfile as sf

    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr != card.sample_rate:
        import soxr

        x = soxr.resample(x, sr, card.sample_rate)
    return np.asarray(x, dtype=np.float32)


def describe(result: SplitResult) -> str:
    sp = result.split
    if not sp.ok:
        return f"not split: {sp.reason}"
    par = sp.parity
    return (f"wrote {result.front_path} and {result.head_path}: cut at {par.get('cut')!r}, "
            f"{sp.columns} columns of {sp.receptive_field} frames every {sp.time_stride}; "
            f"parity {par['max_abs_diff']:.1e} over {par['decisions']} decisions "
            f"({par['signal_s']:g} s)")


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["ExportError", "NoSplit", "SplitPlan", "SplitResult", "plan", "split_model"]
