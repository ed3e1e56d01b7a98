"""Edits on the tf2onnx graph: native recurrent nodes, streaming state, names, pruning.

Recurrent nodes are built from the Keras weights; their state becomes graph inputs/outputs.

ONNX recurrent nodes are time-major: X (T, batch, in), Y (T, dirs, batch, H), Y_h/Y_c
(dirs, batch, H), and so are their initial_h/initial_c inputs. Gate orders: Keras LSTM kernels are
i,f,c,o and ONNX wants i,o,f,c; Keras GRU z,r,h is ONNX's order (W = kernel.T; with
reset_after=True the two bias rows are Wb and Rb and linear_before_reset=1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hark.export.analysis import activation_name
from hark.export.errors import ExportError, LayerError
from hark.export.rewrite import RnnSite

_ONNX_ACT = {
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "relu": "Relu",
    "softsign": "Softsign",
    "softplus": "Softplus",
}


@dataclass(frozen=True)
class StateIO:
    """A recurrent state exposed on the graph: input feeds initial_h/c, output is Y_h/Y_c."""

    input: str
    output: str
    shape: tuple[int, ...]  # for batch 1, as ONNX wants it: (1, 1, units)


def _activation(layer: Any, attr: str) -> tuple[str, list[float], list[float]]:
    """ONNX activation name plus the alpha/beta values it consumes."""
    name = activation_name(layer, attr)
    if name in _ONNX_ACT:
        return _ONNX_ACT[name], [], []
    if name == "linear":
        return "Affine", [1.0], [0.0]
    if name == "elu":
        return "Elu", [1.0], []
    if name == "hard_sigmoid":
        # Keras 2: clip(0.2x + 0.5); Keras 3: clip(x/6 + 0.5). Measure the function itself.
        cell = getattr(layer, "cell", layer)
        fn = getattr(cell, attr, None) or getattr(layer, attr)
        import tensorflow as tf

        y = np.asarray(fn(tf.constant([0.0, 1.0], dtype=tf.float32)), dtype=np.float64)
        return "HardSigmoid", [float(y[1] - y[0])], [float(y[0])]
    raise LayerError(
        f"layer {layer.name!r}: activation {name!r} has no ONNX recurrent equivalent"
    )


def _lstm_order(m: np.ndarray) -> np.ndarray:
    i, f, c, o = np.split(m, 4, axis=-1)
    return np.concatenate([i, o, f, c], axis=-1)


def _weights(site: RnnSite) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(W, R, B) of one direction in ONNX layout: (G*H, in), (G*H, H), (2*G*H,)."""
    layer = site.layer
    w = layer.get_weights()
    kernel, recurrent = w[0], w[1]
    bias = w[2] if len(w) > 2 else None
    units = recurrent.shape[0]
    if site.kind == "LSTM":
        wb = _lstm_order(bias) if bias is not None else np.zeros(4 * units, np.float32)
        return (
            _lstm_order(kernel).T,
            _lstm_order(recurrent).T,
            np.concatenate([wb, np.zeros(4 * units, np.float32)]),
        )
    if site.kind == "GRU":
        gates = 3 * units
        if bias is None:
            b = np.zeros(2 * gates, np.float32)
        elif bias.ndim == 2:  # reset_after=True: input and recurrent bias rows
            b = np.concatenate([bias[0], bias[1]])
        else:
            b = np.concatenate([bias, np.zeros(gates, np.float32)])
        return kernel.T, recurrent.T, b
    b = bias if bias is not None else np.zeros(units, np.float32)
    return kernel.T, recurrent.T, np.concatenate([b, np.zeros(units, np.float32)])


def _node_spec(site: RnnSite) -> tuple[str, list[str], list[float], list[float], dict[str, Any]]:
    layer = site.layer
    if site.kind == "LSTM":
        acts = [_activation(layer, "recurrent_activation"), *[_activation(layer, "activation")] * 2]
        op, extra = "LSTM", {}
    elif site.kind == "GRU":
        acts = [_activation(layer, "recurrent_activation"), _activation(layer, "activation")]
        reset_after = bool(getattr(layer, "reset_after", getattr(layer.cell, "reset_after", True)))
        op, extra = "GRU", {"linear_before_reset": int(reset_after)}
    else:
        acts = [_activation(layer, "activation")]
        op, extra = "RNN", {}
    names = [a[0] for a in acts]
    alphas = [v for a in acts for v in a[1]]
    betas = [v for a in acts for v in a[2]]
    return op, names, alphas, betas, extra


class GraphEditor:
    """Small helpers over one onnx.GraphProto."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.graph = model.graph
        self._counter = 0

    def unique(self, base: str) -> str:
        self._counter += 1
        return f"{base}__hark{self._counter}"

    def constant(self, name: str) -> np.ndarray | None:
        for init in self.graph.initializer:
            if init.name == name:
                return numpy_helper.to_array(init)
        for node in self.graph.node:
            if node.op_type == "Constant" and node.output[0] == name:
                for a in node.attribute:
                    if a.name == "value":
                        return numpy_helper.to_array(a.t)
        return None

    def add_initializer(self, name: str, value: np.ndarray) -> str:
        self.graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def consumers(self, tensor: str) -> list[onnx.NodeProto]:
        return [n for n in self.graph.node if tensor in n.input]

    def is_graph_output(self, tensor: str) -> bool:
        return any(o.name == tensor for o in self.graph.output)

    def rename(self, old: str, new: str) -> None:
        """Rename a tensor everywhere (producer, consumers, graph outputs, value_info)."""
        for node in self.graph.node:
            for seq in (node.input, node.output):
                for i, name in enumerate(seq):
                    if name == old:
                        seq[i] = new
        for coll in (self.graph.output, self.graph.input, self.graph.value_info):
            for vi in coll:
                if vi.name == old:
                    vi.name = new

    def prune(self) -> None:
        """Drop nodes nothing uses, then initializers and value_info nothing refers to."""
        while True:
            used = {o.name for o in self.graph.output}
            for n in self.graph.node:
                used.update(n.input)
                for a in n.attribute:
                    if a.type == onnx.AttributeProto.GRAPH:
                        used.update(_subgraph_inputs(a.g))
            dead = [n for n in self.graph.node if not any(o in used for o in n.output if o)]
            if not dead:
                break
            for n in dead:
                self.graph.node.remove(n)
        keep = [i for i in self.graph.initializer if i.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(keep)
        produced = {o for n in self.graph.node for o in n.output}
        vis = [v for v in self.graph.value_info if v.name in produced]
        del self.graph.value_info[:]
        self.graph.value_info.extend(vis)

    def op_types(self) -> list[str]:
        types: set[str] = set()

        def visit(g: onnx.GraphProto) -> None:
            for n in g.node:
                types.add(n.op_type)
                for a in n.attribute:
                    if a.type == onnx.AttributeProto.GRAPH:
                        visit(a.g)

        visit(self.graph)
        return sorted(types)


def _subgraph_inputs(g: onnx.GraphProto) -> set[str]:
    names = set()
    for n in g.node:
        names.update(n.input)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                names.update(_subgraph_inputs(a.g))
    return names


def _match_site(w: np.ndarray, sites: list[RnnSite], taken: set[int]) -> int | None:
    key = np.sort(w.ravel())
    for i, site in enumerate(sites):
        if i in taken or site.marker is None or site.marker.size != key.size:
            continue
        if np.allclose(np.sort(site.marker.ravel()), key, rtol=0, atol=1e-6):
            return i
    return None


def replace_standins(
    editor: GraphEditor, sites: list[RnnSite], expose_state: bool
) -> list[StateIO]:
    """Swap every stand-in LSTM node for the real node; optionally expose its state."""
    graph = editor.graph
    taken: set[int] = set()
    states: list[StateIO] = []
    for node in list(graph.node):
        if node.op_type != "LSTM":
            continue
        w = editor.constant(node.input[1])
        if w is None:
            raise ExportError(f"ONNX LSTM node {node.name!r} has non-constant weights")
        matched = []
        for d in range(w.shape[0]):
            i = _match_site(w[d], sites, taken)
            if i is None:
                raise ExportError(f"ONNX LSTM node {node.name!r} matches no Keras recurrent layer")
            taken.add(i)
            matched.append(sites[i])
        kinds = {s.kind for s in matched}
        specs = [_node_spec(s) for s in matched]
        shapes = {(sp[0], tuple(sp[1]), tuple(sp[4].items())) for sp in specs}
        if len(kinds) != 1 or len(shapes) != 1:
            raise LayerError(
                f"layers {[s.name for s in matched]}: a Bidirectional RNN needs the same layer "
                "type and activations in both directions"
            )
        op, acts, _, _, extra = specs[0]
        direction = next(
            (helper.get_attribute_value(a) for a in node.attribute if a.name == "direction"),
            b"forward",
        )
        weights = [_weights(s) for s in matched]
        units = weights[0][1].shape[1]
        base = matched[0].name.replace("/", "_")
        wn = editor.add_initializer(editor.unique(f"{base}_W"), np.stack([x[0] for x in weights]))
        rn = editor.add_initializer(editor.unique(f"{base}_R"), np.stack([x[1] for x in weights]))
        bn = editor.add_initializer(editor.unique(f"{base}_B"), np.stack([x[2] for x in weights]))
        ins = list(node.input) + [""] * (8 - len(node.input))
        outs = list(node.output) + [""] * (3 - len(node.output))
        new_inputs = [ins[0], wn, rn, bn, ins[4], ins[5]]
        new_outputs = [outs[0], outs[1]]
        if op == "LSTM":
            new_inputs.append(ins[6])
            new_outputs.append(outs[2])
        elif outs[2] and (editor.consumers(outs[2]) or editor.is_graph_output(outs[2])):
            raise LayerError(f"layer {matched[0].name!r}: a cell state is used but {op} has none")
        if expose_state:
            if direction != b"forward":
                raise LayerError(f"layer {matched[0].name!r} does not run forwards: cannot stream")
            pairs = [("h", 5, 1)] + ([("c", 6, 2)] if op == "LSTM" else [])
            for which, in_idx, out_idx in pairs:
                sin, sout = f"{matched[0].name}/{which}_in", f"{matched[0].name}/{which}_out"
                graph.input.append(
                    helper.make_tensor_value_info(sin, TensorProto.FLOAT, [1, "batch", units])
                )
                new_inputs[in_idx] = sin
                if new_outputs[out_idx]:
                    editor.rename(new_outputs[out_idx], sout)
                new_outputs[out_idx] = sout
                graph.output.append(
                    helper.make_tensor_value_info(sout, TensorProto.FLOAT, [1, "batch", units])
                )
                states.append(StateIO(sin, sout, (1, 1, units)))
        while new_inputs and new_inputs[-1] == "":
            new_inputs.pop()
        attrs: dict[str, Any] = {
            "hidden_size": units,
            "direction": direction,
            "activations": acts * len(matched),
            **extra,
        }
        alphas = [v for sp in specs for v in sp[2]]
        betas = [v for sp in specs for v in sp[3]]
        if alphas:
            attrs["activation_alpha"] = alphas
        if betas:
            attrs["activation_beta"] = betas
        new = helper.make_node(
            op, new_inputs, new_outputs, name=f"{op}_{base}", **attrs
        )
        idx = list(graph.node).index(node)
        graph.node.remove(node)
        graph.node.insert(idx, new)
    missing = [s for i, s in enumerate(sites) if i not in taken]
    if missing:
        raise LayerError(
            f"layer {missing[0].name!r} ({missing[0].kind}) did not become a native ONNX "
            f"recurrent node (graph ops: {', '.join(editor.op_types())})"
        )
    editor.prune()
    return states


def set_io_dims(editor: GraphEditor, names: dict[str, list[int | str | None]]) -> None:
    """Give graph inputs/outputs readable dims: ints stay, strings become dim_params."""
    for vi in list(editor.graph.input) + list(editor.graph.output):
        if vi.name not in names:
            continue
        dims = vi.type.tensor_type.shape.dim
        for d, want in zip(dims, names[vi.name], strict=False):
            if isinstance(want, str):
                d.dim_param = want
            elif isinstance(want, int):
                d.dim_value = want


def io_shapes(model: onnx.ModelProto) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """Graph inputs and outputs as name -> shape (int, or the dim_param string, or None)."""

    def shape(vi: onnx.ValueInfoProto) -> tuple:
        out: list[int | str | None] = []
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value"):
                out.append(int(d.dim_value))
            elif d.HasField("dim_param"):
                out.append(d.dim_param)
            else:
                out.append(None)
        return tuple(out)

    inits = {i.name for i in model.graph.initializer}
    ins = {vi.name: shape(vi) for vi in model.graph.input if vi.name not in inits}
    outs = {vi.name: shape(vi) for vi in model.graph.output}
    return ins, outs
