"""The softmax head of hark enroll: the fit, the folded normalisation, the ONNX graph, L2 choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hark.models.softmax_head import choose_l2, fit_softmax, fold_normalisation, softmax


def _blobs(n: int, d: int, c: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = 2.0 * rng.standard_normal((c, d))
    y = rng.integers(0, c, n)
    return centres[y] + rng.standard_normal((n, d)), y


def test_fit_matches_a_hand_gradient_check_and_separates_blobs() -> None:
    x, y = _blobs(300, 20, 4)
    fit = fit_softmax(x, y, np.ones(len(y)), 4, 1e-3)
    acc = float(np.mean(np.argmax(x @ fit.weight + fit.bias, axis=1) == y))
    assert acc > 0.95
    # at the optimum the gradient of the objective vanishes (the fit really minimised it)
    p = softmax(x @ fit.weight + fit.bias)
    onehot = np.eye(4)[y]
    g = x.T @ (p - onehot) / len(y) + 1e-3 * fit.weight
    assert np.abs(g).max() < 1e-4


def test_sample_weights_move_the_boundary() -> None:
    x = np.array([[-1.0], [1.0], [0.1]])
    y = np.array([0, 1, 0])
    light = fit_softmax(x, y, np.array([1.0, 1.0, 0.01]), 2, 1e-2)
    heavy = fit_softmax(x, y, np.array([1.0, 1.0, 10.0]), 2, 1e-2)
    p_light = softmax(np.array([[0.1]]) @ light.weight + light.bias)[0, 0]
    p_heavy = softmax(np.array([[0.1]]) @ heavy.weight + heavy.bias)[0, 0]
    assert p_heavy > p_light + 0.2


def test_folded_head_equals_normalise_then_head_and_onnx_equals_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frames, bins, c = 8, 96, 5
    raw = (3.0 + 2.0 * rng.standard_normal((64, frames, bins))).astype(np.float32)
    mean = raw.reshape(-1, bins).mean(axis=0)
    std = raw.reshape(-1, bins).std(axis=0)
    y = rng.integers(0, c, 64)
    xn = ((raw - mean) / std).reshape(64, -1)
    fit = fit_softmax(xn, y, np.ones(64), c, 1e-2)
    head = fold_normalisation(fit, mean, std, frames)
    want = softmax(xn @ fit.weight + fit.bias)
    np.testing.assert_allclose(head.forward(raw), want, atol=1e-9)
    model = head.to_onnx("embeddings", "posteriors")
    onnx.save(model, str(tmp_path / "h.onnx"))
    sess = ort.InferenceSession(str(tmp_path / "h.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"embeddings": raw})[0]
    assert got.shape == (64, c)
    assert float(np.abs(got - head.forward(raw)).max()) < 1e-5


def test_choose_l2_leaves_takes_out_and_falls_back_without_them() -> None:
    x, y = _blobs(200, 10, 3, seed=4)
    w = np.ones(len(y))
    one_take = np.where(np.arange(len(y)) < 100, -1, 0)
    assert choose_l2(x, y, w, one_take, 3, (1e-3, 1.0), 0.5).l2 == 0.5
    groups = np.where(np.arange(len(y)) < 100, -1, np.arange(len(y)) % 3)
    choice = choose_l2(x, y, w, groups, 3, (1e-3, 1e-2, 1e4), 0.5)
    assert set(choice.scores) == {1e-3, 1e-2, 1e4}
    # an absurd L2 flattens every posterior: its left-out cross-entropy is near log(3)
    assert choice.scores[1e4] == pytest.approx(np.log(3), abs=0.05)
    assert choice.l2 != 1e4 and choice.scores[choice.l2] == min(choice.scores.values())
