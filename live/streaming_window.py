"""Streaming window CNNs: each column of the front computed once, the head run on a ring of them.

A split window model (card.streaming_split, written by hark.export.streaming_split) has a front
that maps input frames to time columns (column c covers frames [c*S, c*S + R)) and a head that
maps one window's columns to posteriors. Decision k's window starts at frame k * stride, a whole
number of columns (S divides the stride), so its columns are those of the whole stream starting
at column k * stride / S: only the columns no earlier window has computed are run through the
front, the head then reads the window's columns from the ring as they are.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from hark.live.card import CardError, InputSpec, Normalization, StreamingSplit
from hark.live.features import normalize
from hark.live.model import ModelError, OnnxModel, open_session


class ColumnRing:
    """Columns (time first) indexed by their absolute column number; old ones are dropped.

    Preallocated: appending copies the new columns in; the live part is moved to the front (or
    the array doubled) only when the end is reached.
    """

    def __init__(self, column_shape: tuple[int, ...], capacity: int) -> None:
        self.buf = np.zeros((max(1, capacity), *column_shape), dtype=np.float32)
        self.base = 0  # absolute column number of buf[self.start]
        self.start = 0
        self.count = 0

    @property
    def end(self) -> int:
        return self.base + self.count

    def restart(self, column: int) -> None:
        """Forget every column: the next one appended is `column`."""
        self.base, self.start, self.count = column, 0, 0

    def append(self, cols: np.ndarray) -> None:
        n = len(cols)
        if self.start + self.count + n > len(self.buf):
            live = self.buf[self.start : self.start + self.count]
            if self.count + n > len(self.buf):
                grown = np.zeros((2 * (self.count + n), *self.buf.shape[1:]), dtype=np.float32)
                grown[: self.count] = live
                self.buf = grown
            else:
                self.buf[: self.count] = live.copy() if self.start < self.count else live
            self.start = 0
        at = self.start + self.count
        self.buf[at : at + n] = cols
        self.count += n

    def take(self, first: int, count: int) -> np.ndarray:
        """Columns first .. first + count - 1 (a contiguous view: no copy)."""
        i = self.start + first - self.base
        return self.buf[i : i + count]

    def drop_before(self, column: int) -> None:
        k = min(column - self.base, self.count)
        if k > 0:
            self.base += k
            self.start += k
            self.count -= k


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class SplitWindow:
    """The front/head pair of one split window model and the ring of its columns."""

    def __init__(self, model: OnnxModel, split: StreamingSplit, inp: InputSpec,
                 norm: Normalization | None, stride_frames: int) -> None:
        folder = model.path.parent
        assert split.front is not None and split.head is not None
        if split.weights_from is not None:
            src = folder / split.weights_from
            if not src.is_file() or file_sha256(src) != split.weights_sha256:
                raise CardError(
                    f"{model.path}: the streaming pair reads its weights from {src.name}, which "
                    "is not the file it was split from (re-run: python -m "
                    f"hark.export.streaming_split {model.path})")
        self.front = self._open(folder / split.front, model)
        self.head = self._open(folder / split.head, model)
        self._front_in = self.front.get_inputs()[0].name
        self._front_out = self.front.get_outputs()[0].name
        self._head_in = self.head.get_inputs()[0].name
        self._head_out = model.output
        head_shape = self.head.get_inputs()[0].shape
        self.column_shape = tuple(int(d) for d in head_shape[1:])
        self.stride = split.time_stride
        self.field = split.receptive_field
        self.columns = split.columns
        self.stride_frames = stride_frames
        self.norm = norm
        self.raw = inp.role == "raw"
        self.rank = len(inp.shape)
        self.ring = ColumnRing(self.column_shape, 2 * self.columns)
        self.front_calls = 0

    @staticmethod
    def _open(path: Path, model: OnnxModel) -> Any:
        if not path.is_file():
            raise ModelError(f"{model.path}: its card names the streaming graph {path.name}, "
                             "which is not in the model's folder")
        return open_session(path, model.options)

    def reset(self) -> None:
        self.ring.restart(0)

    def run(self, first_frame: int, frames: Any) -> np.ndarray:
        """Posteriors of the window starting at `first_frame` (frames: the runner's buffer)."""
        c0 = first_frame // self.stride
        end = c0 + self.columns
        ring = self.ring
        if not ring.count or c0 < ring.base or c0 > ring.end:
            ring.restart(c0)  # a gap (decisions skipped while the gate was shut): start anew
        if ring.end < end:
            a = ring.end
            n_frames = (end - 1 - a) * self.stride + self.field
            x = normalize(frames.take(a * self.stride, n_frames), self.norm)
            x = x.astype(np.float32, copy=False)
            if self.raw:
                feed = x.reshape((1, n_frames, 1) if self.rank == 3 else (1, n_frames))
            else:
                feed = x[None, :, :, None] if self.rank == 4 else x[None]
            cols = self.front.run([self._front_out], {self._front_in: feed})[0]
            self.front_calls += 1
            if len(cols) != end - a:
                raise ModelError(f"the streaming front gave {len(cols)} columns for "
                                 f"{n_frames} frames, not {end - a}")
            ring.append(cols)
        x = ring.take(c0, self.columns)
        out = self.head.run([self._head_out], {self._head_in: x})[0]
        return np.asarray(out, dtype=np.float32)

    def drop_before(self, first_frame: int) -> None:
        """Columns of windows before the one starting at `first_frame` are no longer needed."""
        self.ring.drop_before(first_frame // self.stride)
