"""Parity: the exported ONNX graph against the original Keras model, on the same inputs.

Window/raw models: batch 1 and 2. Frame (sequence) models: batch 1 and 2 at T = 1, 10 and 500,
plus the streaming check: the sequence fed 1 and 7 frames per call with the recurrent state
carried from call to call must equal the Keras output on the whole sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from hark.export.analysis import KerasInput
from hark.export.errors import ParityError
from hark.export.heads import apply_head
from hark.export.onnx_edit import StateIO

SEQUENCE_LENGTHS = (1, 10, 500)
BATCHES = (1, 2)
STREAM_CHUNKS = (1, 7)
STREAM_FRAMES = 500


def session(onnx_bytes: bytes, threads: int = 0) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])


@dataclass
class Case:
    label: str
    batch: int
    frames: int | None
    feeds: list[np.ndarray]  # one per Keras input, in model order


class KerasReference:
    """Calls the original model in a tf.function traced once per input shape.

    Not one trace with a dynamic time axis: Keras 3 TimeDistributed fails at T=1 that way, and
    predict_on_batch gets its output shape wrong for T > batch.
    """

    def __init__(self, model: Any, inputs: Sequence[KerasInput]) -> None:
        import tensorflow as tf

        multi = len(inputs) > 1

        def call(*xs: Any) -> Any:
            return model(list(xs) if multi else xs[0], training=False)

        self._fn = tf.function(call)

    def __call__(self, feeds: Sequence[np.ndarray]) -> np.ndarray:
        return np.asarray(self._fn(*feeds), dtype=np.float32)


class Parity:
    """Builds the cases once, caches the Keras answers, measures any ONNX session on them."""

    def __init__(
        self,
        model: Any,
        inputs: Sequence[KerasInput],
        onnx_inputs: Sequence[str],
        output: str,
        states: Sequence[StateIO],
        seed: int = 0,
        head: str | None = None,
    ) -> None:
        self.inputs = list(inputs)
        self.onnx_inputs = list(onnx_inputs)
        self.output = output
        self.states = list(states)
        self.frames = any(i.role == "frames" for i in inputs)
        self.fixed_t = self.frames and inputs[0].length is not None
        self.head = head  # softmax / sigmoid appended in the graph: applied to Keras's output too
        self._keras = KerasReference(model, inputs)
        rng = np.random.default_rng(seed)
        self.cases: list[Case] = []
        if self.frames:
            lengths = (inputs[0].length,) if self.fixed_t else SEQUENCE_LENGTHS
            for t in lengths:
                for b in BATCHES:
                    self.cases.append(Case(f"batch {b} T={t}", b, t, [self._frames(rng, b, t)]))
        else:
            for b in BATCHES:
                self.cases.append(Case(f"batch {b}", b, None, self._windows(rng, b)))
        self._answers = [self.ref(c.feeds) for c in self.cases]
        self.stream_x: np.ndarray | None = None
        if self.frames and not self.fixed_t:
            long = [c for c in self.cases if c.batch == 1 and c.frames == STREAM_FRAMES]
            self.stream_x = long[0].feeds[0]
            self._stream_answer = self._answers[self.cases.index(long[0])]

    def ref(self, feeds: Sequence[np.ndarray]) -> np.ndarray:
        """The original Keras model's answer (with the appended head, if any)."""
        return apply_head(self._keras(feeds), self.head)

    def _frames(self, rng: np.random.Generator, batch: int, t: int | None) -> np.ndarray:
        shape = (batch, t or 1, *_ints(self.inputs[0].shape[1:]))
        return rng.standard_normal(shape).astype(np.float32)

    def _windows(self, rng: np.random.Generator, batch: int) -> list[np.ndarray]:
        out = []
        for inp in self.inputs:
            shape = (batch, *_ints(inp.shape))
            if inp.role == "raw":
                out.append(rng.uniform(-0.5, 0.5, shape).astype(np.float32))
            else:
                out.append(rng.standard_normal(shape).astype(np.float32))
        return out

    def run(self, sess: ort.InferenceSession, feeds: Sequence[np.ndarray]) -> np.ndarray:
        batch = feeds[0].shape[0]
        d: dict[str, np.ndarray] = dict(zip(self.onnx_inputs, feeds, strict=True))
        for st in self.states:
            d[st.input] = np.zeros((st.shape[0], batch, *st.shape[2:]), np.float32)
        return np.asarray(sess.run([self.output], d)[0])

    def stream(self, sess: ort.InferenceSession, x: np.ndarray, chunk: int) -> np.ndarray:
        """Feed x (1, T, F) `chunk` frames per call, carrying the state; concatenate outputs."""
        state = {st.input: np.zeros(st.shape, np.float32) for st in self.states}
        names = [self.output] + [st.output for st in self.states]
        outs = []
        for start in range(0, x.shape[1], chunk):
            feeds = {self.onnx_inputs[0]: x[:, start : start + chunk], **state}
            res = sess.run(names, feeds)
            outs.append(res[0])
            for st, value in zip(self.states, res[1:], strict=True):
                state[st.input] = value
        return np.concatenate(outs, axis=1)

    def measure(self, sess: ort.InferenceSession) -> dict[str, Any]:
        cases = []
        for case, want in zip(self.cases, self._answers, strict=True):
            got = self.run(sess, case.feeds)
            same = got.shape == want.shape
            diff = float(np.max(np.abs(got - want))) if same else float("inf")
            entry: dict[str, Any] = {"batch": case.batch, "max_abs_diff": diff}
            if case.frames is not None:
                entry["frames"] = case.frames
            cases.append(entry)
        streaming = []
        if self.stream_x is not None:
            for chunk in STREAM_CHUNKS:
                got = self.stream(sess, self.stream_x, chunk)
                want = self._stream_answer
                diff = (
                    float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
                )
                streaming.append(
                    {"frames_per_call": chunk, "frames": int(self.stream_x.shape[1]),
                     "max_abs_diff": diff}
                )
        worst = max(e["max_abs_diff"] for e in cases + streaming)
        return {"max_abs_diff": worst, "cases": cases, "streaming": streaming,
                "inputs": "standard-normal features / uniform(-0.5, 0.5) samples, seed 0"}


def _ints(shape: Sequence[int | None]) -> tuple[int, ...]:
    return tuple(1 if d is None else int(d) for d in shape)


def summary(result: dict[str, Any]) -> str:
    """One line: every measured difference."""
    parts = []
    for e in result["cases"]:
        t = f" T={e['frames']}" if "frames" in e else ""
        parts.append(f"batch {e['batch']}{t}: {e['max_abs_diff']:.1e}")
    for e in result.get("streaming", []):
        parts.append(f"streaming {e['frames_per_call']}/call: {e['max_abs_diff']:.1e}")
    return ", ".join(parts)


def check(result: dict[str, Any], tolerance: float) -> None:
    result["tolerance"] = tolerance
    result["passed"] = bool(result["max_abs_diff"] <= tolerance)
    if not result["passed"]:
        raise ParityError(
            f"parity check failed: onnxruntime differs from Keras by up to "
            f"{result['max_abs_diff']:.2e} (tolerance {tolerance:.0e}): {summary(result)}"
        )
