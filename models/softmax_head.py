"""A softmax head (multinomial logistic regression, L2) on flattened embedding windows.

`hark enroll` refits a model's head on a few takes of the user's voice plus its synthetic set:
a convex problem of a few thousand windows x 768 values, which L-BFGS solves in well under a
second per fit (no TensorFlow, no Keras). The per-bin normalisation is folded into the weights,
so the ONNX graph is Reshape -> Gemm -> Softmax on the raw embeddings, and the card carries no
normalisation (the graph holds it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from scipy.optimize import minimize

OPSET = 17
IR_VERSION = 8  # onnxruntime 1.17+ reads it
# L-BFGS stops when no gradient component exceeds this: on 4,230 enrolment windows 1e-5 took
# 40-50% fewer iterations than 1e-6 for posteriors within 0.005 of it and the same argmax
GTOL = 1e-5


@dataclass(frozen=True)
class SoftmaxHead:
    """posteriors = softmax(flatten(x) @ weight + bias) on raw (frames, bins) windows."""

    weight: np.ndarray  # (frames * bins, classes), normalisation folded in
    bias: np.ndarray  # (classes,)
    frames: int
    bins: int

    def logits(self, x: np.ndarray) -> np.ndarray:
        """(n, classes) float64 logits of (n, frames, bins) windows."""
        flat = np.asarray(x, dtype=np.float64).reshape(len(x), self.frames * self.bins)
        return flat @ self.weight.astype(np.float64) + self.bias.astype(np.float64)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(n, classes) float64 posteriors: the numpy reference of the ONNX graph."""
        return softmax(self.logits(x))

    def to_onnx(self, input_name: str, output_name: str) -> onnx.ModelProto:
        """The graph (batch, frames, bins) -> Reshape (batch, frames*bins) -> Gemm -> Softmax."""
        c = self.weight.shape[1]
        shape = numpy_helper.from_array(np.array([-1, self.frames * self.bins], np.int64),
                                        "flat_shape")
        w = numpy_helper.from_array(self.weight.astype(np.float32), "head_weight")
        b = numpy_helper.from_array(self.bias.astype(np.float32), "head_bias")
        nodes = [
            helper.make_node("Reshape", [input_name, "flat_shape"], ["flat"], name="flatten"),
            helper.make_node("Gemm", ["flat", "head_weight", "head_bias"], ["logits"],
                             name="head"),
            helper.make_node("Softmax", ["logits"], [output_name], axis=-1, name="softmax"),
        ]
        graph = helper.make_graph(
            nodes, "enrolled_head",
            [helper.make_tensor_value_info(input_name, TensorProto.FLOAT,
                                           [None, self.frames, self.bins])],
            [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [None, c])],
            initializer=[shape, w, b],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="hark enroll")
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model)
        return model


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum (no overflow)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


@dataclass(frozen=True)
class Fit:
    """Weights on normalised flattened windows, and how the optimiser ended."""

    weight: np.ndarray  # (d, classes)
    bias: np.ndarray
    loss: float
    iterations: int


def fit_softmax(x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, n_classes: int,
                l2: float, init: Fit | None = None, max_iter: int = 400) -> Fit:
    """Minimise the weighted mean cross-entropy + l2/2 |W|^2 (bias free) with L-BFGS.

    x: (n, d) normalised features; sample_weight: any positive scale (normalised to mean 1, so
    l2 means the same whatever the number of windows).
    """
    # the two products run in float32 (half the time of float64; the features are float32 to
    # begin with), the loss and the optimiser's state in float64
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x32.shape
    s = np.asarray(sample_weight, dtype=np.float64)
    s = s / s.mean()
    rows = np.arange(n)
    sn = (s / n).astype(np.float32)[:, None]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[: d * n_classes].reshape(d, n_classes)
        b = theta[d * n_classes :]
        z = (x32 @ w.astype(np.float32)).astype(np.float64) + b
        z -= z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = -float(np.dot(s, log_p[rows, y])) / n
        p = np.exp(log_p).astype(np.float32)
        p[rows, y] -= 1.0
        g = p * sn
        grad_w = (x32.T @ g).astype(np.float64) + l2 * w
        return loss + 0.5 * l2 * float(np.sum(w * w)), np.concatenate(
            (grad_w.ravel(), g.sum(axis=0, dtype=np.float64)))

    theta0 = (np.zeros(d * n_classes + n_classes) if init is None
              else np.concatenate((init.weight.ravel(), init.bias)))
    res = minimize(objective, theta0, jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "gtol": GTOL})
    theta = res.x
    return Fit(theta[: d * n_classes].reshape(d, n_classes).copy(), theta[d * n_classes :].copy(),
               float(res.fun), int(res.nit))


def fold_normalisation(fit: Fit, mean: np.ndarray, std: np.ndarray, frames: int) -> SoftmaxHead:
    """The head on raw windows: ((x - mean) / std) @ W + b == x @ (W / std) + (b - mean/std @ W).

    mean, std: per bin (bins,), the same for every frame of the window.
    """
    m = np.tile(np.asarray(mean, np.float64), frames)
    sd = np.tile(np.asarray(std, np.float64), frames)
    w = fit.weight / sd[:, None]
    b = fit.bias - (m / sd) @ fit.weight
    return SoftmaxHead(w, b, frames, len(mean))


@dataclass(frozen=True)
class L2Choice:
    """The L2 strength chosen, and the leave-one-take-out cross-entropy of each candidate."""

    l2: float
    scores: dict[float, float]
    rule: str
    start: Fit | None = None  # a fit at this L2 on almost the same data: the final fit starts here


def choose_l2(x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, groups: np.ndarray,
              n_classes: int, candidates: Sequence[float], default: float) -> L2Choice:
    """Pick L2 by leave-one-take-out: fit without take k of every word, score take k's windows.

    groups: the take index of each user window, -1 for synthetic windows (always trained on).
    The score is the mean cross-entropy of the left-out takes' windows (smooth, unlike accuracy,
    which is 1.0 for every candidate when the takes are easy); the smallest wins, a tie goes to
    the stronger L2. With fewer than two user takes per word there is nothing to leave out:
    `default`. The held-out take (the last) is never seen here.
    """
    takes = sorted(int(g) for g in np.unique(groups) if g >= 0)
    if len(takes) < 2:
        return L2Choice(default, {}, f"{len(takes)} training take(s) per word: default {default:g}")
    scores: dict[float, float] = {}
    fits: dict[float, Fit] = {}
    init: Fit | None = None
    for l2 in sorted(candidates, reverse=True):  # strong first: each fit warm-starts the next
        losses = []
        for k in takes:
            train = groups != k
            fit = fit_softmax(x[train], y[train], sample_weight[train], n_classes, l2, init)
            init = fit
            z = x[~train] @ fit.weight + fit.bias
            z -= z.max(axis=1, keepdims=True)
            log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            losses.append(-float(np.mean(log_p[np.arange(len(z)), y[~train]])))
        scores[l2] = float(np.mean(losses))
        assert init is not None
        fits[l2] = init
    best = min(scores, key=lambda v: (round(scores[v], 4), -v))
    return L2Choice(best, scores, "leave-one-take-out cross-entropy of the user's takes, "
                    f"lowest of {', '.join(f'{v:g}' for v in sorted(scores))}", fits[best])
