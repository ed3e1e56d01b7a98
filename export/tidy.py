"""Graph tidying after conversion: folds that leave every output bit for bit the same.

tf2onnx writes a Keras Dense on a sequence as TensorFlow's Tensordot: Shape, Cast, Gather, Concat,
Cast, Reshape, MatMul, Reshape (eight nodes) where ONNX's MatMul broadcasts over the leading axes
in one; and a Transpose out of each recurrent layer straight into the next one's Transpose back.
onnxruntime's own optimiser keeps both. Every node costs a few microseconds per call, which on a
10 ms hop with a one-frame LSTM call is a sixth of the call (hark bench). Each fold is matched
exactly (anything else is left alone) and `prove_same` checks the outputs against the graph it
came from on several batch and time shapes.

`python -m hark.export.tidy MODEL.json` tidies an exported model in place (its card's provenance
records the fold), after proving it.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper

from hark.export.onnx_edit import GraphEditor
from hark.live.card import CardError, load_card

REWRITE_NOTE = "graph tidied"


@dataclass
class TidyReport:
    """What the folds did: counts, and the node count before and after."""

    tensordots: int = 0
    transpose_pairs: int = 0
    nodes_before: int = 0
    nodes_after: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.tensordots or self.transpose_pairs)

    def describe(self) -> str:
        return (
            f"{REWRITE_NOTE}: {self.nodes_before} -> {self.nodes_after} nodes "
            f"({self.tensordots} Tensordot reshapes folded into a broadcasting MatMul, "
            f"{self.transpose_pairs} Transpose pairs that cancel removed); outputs identical"
        )


def _producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in graph.node for o in n.output if o}


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    out: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            out.setdefault(i, []).append(n)
    return out


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    """Known ranks of the graph's tensors (shape inference on a copy; unknown ones absent)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    try:
        inferred = onnx.shape_inference.infer_shapes(copy)
    except Exception:  # inference is an aid: without it no fold is proved safe, none is made
        return {}
    g = inferred.graph
    ranks: dict[str, int] = {}
    for vi in [*g.input, *g.value_info, *g.output]:
        t = vi.type.tensor_type
        if t.HasField("shape"):
            ranks[vi.name] = len(t.shape.dim)
    return ranks


def _through_casts(name: str, prod: dict[str, onnx.NodeProto]) -> onnx.NodeProto | None:
    node = prod.get(name)
    while node is not None and node.op_type == "Cast":
        node = prod.get(node.input[0])
    return node


def _fold_tensordots(editor: GraphEditor) -> int:
    """Reshape(X, [-1, K]) -> MatMul(W [K, N]) -> Reshape(X.shape[:-1] + [N])  ==>  MatMul(X, W)."""
    g = editor.graph
    prod, cons = _producers(g), _consumers(g)
    ranks = _ranks(editor.model)
    folded = 0
    for r1 in list(g.node):
        if r1.op_type != "Reshape" or len(r1.input) != 2:
            continue
        mm = prod.get(r1.input[0])
        if mm is None or mm.op_type != "MatMul" or len(cons.get(mm.output[0], [])) != 1:
            continue
        r0 = prod.get(mm.input[0])
        w = editor.constant(mm.input[1])
        if r0 is None or r0.op_type != "Reshape" or w is None or w.ndim != 2:
            continue
        if len(cons.get(r0.output[0], [])) != 1 or editor.is_graph_output(r0.output[0]):
            continue
        x = r0.input[0]
        k, n_out = w.shape
        flat = editor.constant(r0.input[1])
        if flat is None or flat.tolist() != [-1, k]:
            continue
        rank = ranks.get(x)
        if rank is None or rank < 2:
            continue
        # the target shape must be Concat(Gather(Shape(X), [0 .. rank-2]), [N]), through casts
        cat = _through_casts(r1.input[1], prod)
        if cat is None or cat.op_type != "Concat" or len(cat.input) != 2:
            continue
        tail = editor.constant(cat.input[1])
        gather = _through_casts(cat.input[0], prod)
        if tail is None or tail.tolist() != [n_out] or gather is None:
            continue
        if gather.op_type != "Gather" or len(gather.input) != 2:
            continue
        idx = editor.constant(gather.input[1])
        shape = _through_casts(gather.input[0], prod)
        if idx is None or idx.tolist() != list(range(rank - 1)):
            continue
        if shape is None or shape.op_type != "Shape" or shape.input[0] != x or shape.attribute:
            continue
        at = list(g.node).index(r1)
        g.node.insert(at, helper.make_node("MatMul", [x, mm.input[1]], [r1.output[0]],
                                           name=editor.unique(mm.name or "MatMul")))
        g.node.remove(r1)  # r0, mm and the shape arithmetic are now dead: prune() drops them
        folded += 1
        prod, cons = _producers(g), _consumers(g)
    return folded


def _drop_transpose_pairs(editor: GraphEditor) -> int:
    """Transpose(p) straight into Transpose(q) with q after p the identity: both go."""
    g = editor.graph
    dropped = 0
    while True:
        prod, cons = _producers(g), _consumers(g)
        pair = None
        for t2 in g.node:
            if t2.op_type != "Transpose":
                continue
            t1 = prod.get(t2.input[0])
            if t1 is None or t1.op_type != "Transpose":
                continue
            if len(cons.get(t1.output[0], [])) != 1 or editor.is_graph_output(t1.output[0]):
                continue
            if editor.is_graph_output(t2.output[0]):
                continue
            p = [list(a.ints) for a in t1.attribute if a.name == "perm"]
            q = [list(a.ints) for a in t2.attribute if a.name == "perm"]
            if not p or not q or len(p[0]) != len(q[0]):
                continue
            if [p[0][i] for i in q[0]] == list(range(len(p[0]))):
                pair = (t1, t2)
                break
        if pair is None:
            return dropped
        t1, t2 = pair
        source, gone = t1.input[0], t2.output[0]
        for node in g.node:
            for i, name in enumerate(node.input):
                if name == gone:
                    node.input[i] = source
        g.node.remove(t2)
        g.node.remove(t1)
        dropped += 1


def tidy_graph(model: onnx.ModelProto) -> TidyReport:
    """Apply every fold in place; the report says what changed."""
    editor = GraphEditor(model)
    report = TidyReport(nodes_before=len(model.graph.node))
    report.tensordots = _fold_tensordots(editor)
    report.transpose_pairs = _drop_transpose_pairs(editor)
    editor.prune()
    report.nodes_after = len(model.graph.node)
    return report


def _session(data: bytes) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])


def _feeds(sess: Any, batch: int, time: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    feeds = {}
    for i in sess.get_inputs():
        named = {"batch": batch, "time": time}
        shape = [d if isinstance(d, int) else named.get(str(d), 1) for d in i.shape]
        feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def prove_same(before: bytes, after: bytes, seed: int = 0) -> float:
    """Largest |difference| of any output over several (batch, time) shapes (0.0: identical).

    Raises ValueError if the graphs differ in their inputs or outputs.
    """
    a, b = _session(before), _session(after)
    if [(i.name, i.shape) for i in a.get_inputs()] != [(i.name, i.shape) for i in b.get_inputs()]:
        raise ValueError("the tidied graph's inputs differ from the original's")
    names = [o.name for o in a.get_outputs()]
    if names != [o.name for o in b.get_outputs()]:
        raise ValueError("the tidied graph's outputs differ from the original's")
    rng = np.random.default_rng(seed)
    worst = 0.0
    for batch, time in ((1, 1), (1, 7), (3, 5)):
        feeds = _feeds(a, batch, time, rng)
        for x, y in zip(a.run(names, feeds), b.run(names, feeds), strict=True):
            if x.shape != y.shape:
                raise ValueError(f"output shapes differ: {x.shape} vs {y.shape}")
            worst = max(worst, float(np.max(np.abs(x.astype(np.float64) - y))) if x.size else 0.0)
    return worst


def tidy_proved(model: onnx.ModelProto) -> tuple[onnx.ModelProto | None, str]:
    """(a tidied copy proved identical, its description), or (None, why not; "" if no fold)."""
    tidied, _, note = _tidy_and_prove(model)
    return tidied, note


def _tidy_and_prove(model: onnx.ModelProto) -> tuple[onnx.ModelProto | None, TidyReport, str]:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    report = tidy_graph(copy)
    if not report.changed:
        return None, report, ""
    try:
        onnx.checker.check_model(copy)
        worst = prove_same(model.SerializeToString(), copy.SerializeToString())
    except Exception as e:  # onnx/onnxruntime raise their own types; the graph stays untidied
        return None, report, f"graph left untidied: the tidied graph could not be proved ({e})"
    if worst != 0.0:
        return None, report, f"graph left untidied: the tidied graph's outputs differ by {worst:g}"
    return copy, report, report.describe()


def tidy_model_file(card_path: Path) -> TidyReport:
    """Tidy an exported model's graph in place, proved identical; the card records it."""
    card = load_card(card_path)  # a valid card first: nothing is written for a bad one
    path = card_path.with_suffix(".onnx")
    before = path.read_bytes()
    try:
        original = onnx.load_from_string(before)
    except Exception as e:  # protobuf's DecodeError and kin
        raise ValueError(f"{path.name} is not a valid ONNX graph ({type(e).__name__})") from None
    model, report, note = _tidy_and_prove(original)
    if not report.changed:
        return report
    if model is None:
        raise ValueError(note)
    after = model.SerializeToString()
    path.write_bytes(after)
    prov = card.provenance
    info = prov.setdefault("onnx", {})
    info["op_types"] = sorted({n.op_type for n in model.graph.node})
    info["bytes"] = len(after)
    info["sha256_before_tidy"] = hashlib.sha256(before).hexdigest()
    rewrites = [r for r in prov.get("rewrites", []) if not r.startswith(REWRITE_NOTE)]
    prov["rewrites"] = [*rewrites, report.describe()]
    card.save(card_path)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hark.export.tidy", description=__doc__)
    ap.add_argument("cards", nargs="+", type=Path, help="MODEL.json beside MODEL.onnx")
    args = ap.parse_args(argv)
    for card in args.cards:
        try:
            report = tidy_model_file(card)
        except (OSError, ValueError, CardError, onnx.checker.ValidationError) as e:
            print(f"hark tidy: {card}: {e}", file=sys.stderr)
            return 1
        print(f"{card}: {report.describe() if report.changed else 'already tidy'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
