"""The graph tidy: tf2onnx's Tensordot and cancelling Transpose pairs go, outputs stay identical."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hark.export.tidy import REWRITE_NOTE, prove_same, tidy_graph, tidy_model_file
from hark.live.model import OnnxModel, bundled_dir


def _tensordot(x: str, w: np.ndarray, out: str, free: list[int], tag: str) -> tuple[list, list]:
    """tf2onnx's Dense-on-a-sequence: Shape, Cast, Gather(free), Reshape, MatMul, Concat, Cast,
    Reshape (its exact node sequence)."""
    k, n = w.shape
    inits = [
        numpy_helper.from_array(w.astype(np.float32), f"{tag}_w"),
        numpy_helper.from_array(np.array(free, np.int64), f"{tag}_free"),
        numpy_helper.from_array(np.array([-1, k], np.int64), f"{tag}_flat"),
        numpy_helper.from_array(np.array([n], np.int32), f"{tag}_n"),
    ]
    nodes = [
        helper.make_node("Shape", [x], [f"{tag}_shape"]),
        helper.make_node("Cast", [f"{tag}_shape"], [f"{tag}_shape32"], to=TensorProto.INT32),
        helper.make_node("Gather", [f"{tag}_shape32", f"{tag}_free"], [f"{tag}_lead"], axis=0),
        helper.make_node("Reshape", [x, f"{tag}_flat"], [f"{tag}_2d"]),
        helper.make_node("MatMul", [f"{tag}_2d", f"{tag}_w"], [f"{tag}_mm"]),
        helper.make_node("Concat", [f"{tag}_lead", f"{tag}_n"], [f"{tag}_cat"], axis=0),
        helper.make_node("Cast", [f"{tag}_cat"], [f"{tag}_cat64"], to=TensorProto.INT64),
        helper.make_node("Reshape", [f"{tag}_mm", f"{tag}_cat64"], [out]),
    ]
    return nodes, inits


def _graph(free: list[int], perms: tuple[list[int], list[int]]) -> onnx.ModelProto:
    """frames (batch, time, 6) -> Tensordot -> Transpose -> Transpose -> Relu -> y."""
    rng = np.random.default_rng(1)
    nodes, inits = _tensordot("frames", rng.standard_normal((6, 5)), "td", free, "a")
    nodes += [
        helper.make_node("Transpose", ["td"], ["t1"], perm=perms[0]),
        helper.make_node("Transpose", ["t1"], ["t2"], perm=perms[1]),
        helper.make_node("Relu", ["t2"], ["y"]),
    ]
    g = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("frames", TensorProto.FLOAT, ["batch", "time", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "time", 5])],
        inits,
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_tensordot_and_transpose_pair_fold_to_one_matmul() -> None:
    model = _graph([0, 1], ([1, 0, 2], [1, 0, 2]))
    before = model.SerializeToString()
    report = tidy_graph(model)
    assert (report.tensordots, report.transpose_pairs) == (1, 1)
    assert [n.op_type for n in model.graph.node] == ["MatMul", "Relu"]
    assert report.nodes_before == 11 and report.nodes_after == 2
    assert not model.graph.initializer[1:]  # the shape constants went with their nodes
    onnx.checker.check_model(model)
    assert prove_same(before, model.SerializeToString()) == 0.0


def test_near_misses_are_left_alone() -> None:
    # Gather of axis 0 alone is not "every leading axis" of a rank-3 input; the perms compose
    # to (2, 1, 0)-like orders that do not cancel
    model = _graph([0], ([1, 0, 2], [0, 2, 1]))
    report = tidy_graph(model)
    assert not report.changed
    assert report.nodes_after == report.nodes_before == 11


def test_prove_same_sees_a_different_graph() -> None:
    a = _graph([0, 1], ([1, 0, 2], [1, 0, 2]))
    b = _graph([0, 1], ([1, 0, 2], [1, 0, 2]))
    b.graph.node[-1].op_type = "Sigmoid"
    assert prove_same(a.SerializeToString(), b.SerializeToString()) > 0.1


@pytest.mark.parametrize("name", ["commands", "sounds"])
def test_bundled_frame_models_are_tidy(name: str) -> None:
    model = onnx.load(str(bundled_dir() / f"{name}.onnx"))
    ops = [n.op_type for n in model.graph.node]
    assert not {"Shape", "Gather", "Concat", "Reshape"} & set(ops), ops
    assert not tidy_graph(model).changed
    card = OnnxModel.load(name).card
    assert any(r.startswith(REWRITE_NOTE) for r in card.provenance["rewrites"])
    assert card.provenance["onnx"]["op_types"] == sorted(set(ops))


def _untidy_copy(tmp_path: Path) -> Path:
    """The bundled sounds model with a cancelling Transpose pair put back in front of rnn0."""
    for suffix in (".onnx", ".json"):
        shutil.copy(bundled_dir() / f"sounds{suffix}", tmp_path / f"sounds{suffix}")
    path = tmp_path / "sounds.onnx"
    model = onnx.load(str(path))
    g = model.graph
    relu = next(n for n in g.node if n.op_type == "Relu")
    at = list(g.node).index(relu) + 1
    for consumer in g.node:
        for i, name in enumerate(consumer.input):
            if name == relu.output[0]:
                consumer.input[i] = "back"
    g.node.insert(at, helper.make_node("Transpose", [relu.output[0]], ["there"], perm=[2, 0, 1]))
    g.node.insert(at + 1, helper.make_node("Transpose", ["there"], ["back"], perm=[1, 2, 0]))
    onnx.save(model, str(path))
    return tmp_path / "sounds.json"


def test_tidy_model_file_rewrites_graph_and_card(tmp_path: Path) -> None:
    card_path = _untidy_copy(tmp_path)
    untidy = (tmp_path / "sounds.onnx").read_bytes()
    report = tidy_model_file(card_path)
    assert report.transpose_pairs == 1 and report.nodes_after == report.nodes_before - 2
    assert prove_same(untidy, (tmp_path / "sounds.onnx").read_bytes()) == 0.0
    assert prove_same((bundled_dir() / "sounds.onnx").read_bytes(),
                      (tmp_path / "sounds.onnx").read_bytes()) == 0.0
    model = OnnxModel.load(tmp_path / "sounds.onnx")  # card and graph still agree
    prov = model.card.provenance
    assert prov["onnx"]["bytes"] == (tmp_path / "sounds.onnx").stat().st_size
    assert [r for r in prov["rewrites"] if r.startswith(REWRITE_NOTE)] == [report.describe()]
    assert not tidy_model_file(card_path).changed  # a second run finds nothing


def test_cli_reports_a_broken_graph_in_one_line(tmp_path: Path) -> None:
    card_path = _untidy_copy(tmp_path)
    (tmp_path / "sounds.onnx").write_bytes(b"not a graph")
    res = subprocess.run([sys.executable, "-m", "hark.export.tidy", str(card_path)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert len(res.stderr.strip().splitlines()) == 1 and "sounds.json" in res.stderr
    assert (tmp_path / "sounds.onnx").read_bytes() == b"not a graph"
