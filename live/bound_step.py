"""One model call per hop on buffers onnxruntime reads and writes in place (its IO binding).

A plain `session.run` wraps every input in a new tensor and allocates every output on each call:
for a two-layer LSTM step that is about a fifth of the call. Here the frame, the recurrent state
and the posteriors live in numpy buffers bound once. Two bindings alternate: one reads state
buffers A and writes B, the other reads B and writes A, so carrying the state from call to call
costs neither a copy nor a bind. tests/live/test_bound_step.py holds the answers equal to
`session.run`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class BoundStep:
    """One frame in `frame`, one call, posteriors out in `post`; the state carried between calls."""

    def __init__(self, session: Any, frame_input: str, frame: np.ndarray, output: str,
                 post_shape: tuple[int, ...], state: list[tuple[str, str, tuple[int, ...]]]
                 ) -> None:
        """state: (input name, output name, shape) for each recurrent state, float32 all."""
        import onnxruntime as ort

        self.frame = frame
        self.post = np.zeros(post_shape, dtype=np.float32)
        sides = [[np.zeros(shape, dtype=np.float32) for _, _, shape in state] for _ in range(2)]
        self._sides = sides
        self._values: list[Any] = []  # the OrtValues wrap the numpy buffers: kept with them
        self._bindings: list[Any] = []
        for read in (0, 1):
            io = session.io_binding()
            io.bind_ortvalue_input(frame_input, self._value(ort, frame))
            io.bind_ortvalue_output(output, self._value(ort, self.post))
            for (name_in, name_out, _), a, b in zip(state, sides[read], sides[1 - read],
                                                    strict=True):
                io.bind_ortvalue_input(name_in, self._value(ort, a))
                io.bind_ortvalue_output(name_out, self._value(ort, b))
            self._bindings.append(io._iobinding)  # the C++ binding: no wrapper call per hop
        self._run = session._sess.run_with_iobinding
        self._options = ort.RunOptions()
        self._read = 0

    def _value(self, ort: Any, buf: np.ndarray) -> Any:
        value = ort.OrtValue.ortvalue_from_numpy(buf)  # on the CPU: the buffer itself, no copy
        self._values.append(value)
        return value

    @property
    def state(self) -> list[np.ndarray]:
        """The state the next call reads (writable: reset and the many-frame path fill it)."""
        return self._sides[self._read]

    def load(self, values: list[np.ndarray]) -> None:
        """Make `values` the state the next call reads."""
        for buf, value in zip(self._sides[self._read], values, strict=True):
            np.copyto(buf, value)

    def zero(self) -> None:
        for buf in self._sides[self._read]:
            buf.fill(0.0)

    def run(self) -> np.ndarray:
        """One call on `frame`; the posteriors (`post`, overwritten by the next call)."""
        self._run(self._bindings[self._read], self._options)
        self._read ^= 1
        return self.post


def bind_after(session: Any, frame_input: str, frame: np.ndarray, output: str,
               state_pairs: list[tuple[str, str]], first: list[np.ndarray]) -> BoundStep | None:
    """A BoundStep carrying on from a first plain call's outputs, or None if it cannot bind.

    first: that call's outputs (posteriors, then each state in `state_pairs`' order). None for a
    session other than onnxruntime's on the CPU, or an output that is not float32 (the plain
    call casts it).
    """
    if not can_bind(session) or any(o.dtype != np.float32 for o in first):
        return None
    specs = [(name_in, name_out, tuple(o.shape))
             for (name_in, name_out), o in zip(state_pairs, first[1:], strict=True)]
    step = BoundStep(session, frame_input, frame, output, tuple(first[0].shape), specs)
    step.load(first[1:])
    return step


def can_bind(session: Any) -> bool:
    """A real onnxruntime session on the CPU provider alone (buffers bound as host memory)."""
    inner = getattr(session, "_sess", None)
    providers: list[str] = getattr(session, "get_providers", list)()
    return (inner is not None and hasattr(inner, "run_with_iobinding")
            and hasattr(session, "io_binding") and providers == ["CPUExecutionProvider"])
