"""Model runners: how feature frames become posteriors for the two kinds of model.

FrameRunner: a causal (recurrent) model fed the frames as they arrive, its state carried from call
to call, so each hop costs one small call instead of re-running the whole history.
WindowRunner: a CNN on the last window_s of frames (or samples), every stride_s. Each frame is
computed once by the shared frontend and kept until the last window that needs it has run.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hark.live.card import InputSpec, Normalization
from hark.live.features import normalize
from hark.live.model import OnnxModel, check_finite


class FrameRunner:
    """Feeds (1, T, bins) per call with the recurrent state carried between calls."""

    def __init__(self, model: OnnxModel) -> None:
        card = model.card
        self.model = model
        self.input: InputSpec = card.inputs[0]
        self.norm: Normalization | None = card.normalization.get(self.input.frontend)
        self._rank4 = len(self.input.shape) == 4
        t_axis = model.input_shape(self.input.name)[1]
        self.one_frame_per_call = t_axis == 1
        self._state_specs = card.state
        self._outputs = [model.output, *(s.output for s in card.state)]
        self._state: dict[str, np.ndarray] = {}
        self.calls = 0
        self.reset()

    def reset(self) -> None:
        """Zero the recurrent state: the model starts as on a fresh stream."""
        self._state = {s.input: np.zeros(s.shape, dtype=np.float32) for s in self._state_specs}

    def run(self, frames: np.ndarray) -> np.ndarray:
        """Posteriors (n, classes) for n consecutive frames (n, bins), state carried."""
        x = normalize(frames, self.norm).astype(np.float32, copy=False)
        if self.one_frame_per_call and len(x) > 1:
            return np.concatenate([self.run(frames[i : i + 1]) for i in range(len(frames))])
        feed = x[None, :, :, None] if self._rank4 else x[None]
        feeds = {self.input.name: feed, **self._state}
        out = self.model.session.run(self._outputs, feeds)
        self.calls += 1
        for spec, value in zip(self._state_specs, out[1:], strict=True):
            self._state[spec.input] = value
        post = np.asarray(out[0], dtype=np.float32)
        check_finite(post, self.model.name)
        return post.reshape(-1, post.shape[-1])[-len(frames) :]


class _FrameBuffer:
    """Frames of one input, indexed by their absolute frame number; old ones are dropped."""

    def __init__(self, n_bins: int) -> None:
        self.buf = np.zeros((0, n_bins), dtype=np.float32)
        self.base = 0  # absolute index of buf[0]

    @property
    def end(self) -> int:
        return self.base + len(self.buf)

    def add(self, frames: np.ndarray) -> None:
        self.buf = np.concatenate((self.buf, frames)) if len(self.buf) else frames

    def take(self, first: int, count: int) -> np.ndarray:
        return self.buf[first - self.base : first - self.base + count]

    def drop_before(self, first: int) -> None:
        k = first - self.base
        if k > 0:
            self.buf = self.buf[k:]
            self.base = first


class WindowRunner:
    """Runs a window model on decision k = the window ending at window + k * stride samples."""

    def __init__(self, model: OnnxModel) -> None:
        card = model.card
        assert card.window_s is not None and card.stride_s is not None
        self.model = model
        sr = card.sample_rate
        self.window_samples = int(round(card.window_s * sr))
        self.stride_samples = int(round(card.stride_s * sr))
        self.sample_rate = sr
        self._inputs: list[tuple[InputSpec, int, int, Normalization | None]] = []
        self._buffers: dict[str, _FrameBuffer] = {}
        for inp in card.inputs:
            fe = card.frontends[inp.frontend]
            hop = 1 if fe.kind == "raw" else fe.hop_samples(sr)
            count = card.expected_frames(inp)
            self._inputs.append((inp, hop, count, card.normalization.get(inp.frontend)))
            self._buffers.setdefault(inp.frontend, _FrameBuffer(fe.n_bins(sr)))
        self._hop = {inp.frontend: hop for inp, hop, _, _ in self._inputs}
        self.k = 0  # next decision
        self.calls = 0

    def reset(self) -> None:
        """Nothing recurrent to forget: windows are independent."""

    def add_frames(self, frontend: str, frames: np.ndarray) -> None:
        if frontend in self._buffers:
            self._buffers[frontend].add(frames)

    def ready(self) -> bool:
        for inp, hop, count, _ in self._inputs:
            first = self.k * self.stride_samples // hop
            if self._buffers[inp.frontend].end < first + count:
                return False
        return True

    def step(self, gate: Callable[[int], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Run every decision the frames now allow: (times_s (n,), posteriors (n, classes)).

        A decision whose window ends while the gate is shut is not computed: its posteriors are 0.
        """
        times: list[float] = []
        posts: list[np.ndarray] = []
        n_classes = len(self.model.card.labels)
        while self.ready():
            end = self.window_samples + self.k * self.stride_samples
            times.append((end - self.window_samples / 2) / self.sample_rate)
            if gate is None or gate(end):
                posts.append(self._run_window())
            else:
                posts.append(np.zeros(n_classes, dtype=np.float32))
            self.k += 1
            for name, buf in self._buffers.items():
                buf.drop_before(self.k * self.stride_samples // self._hop[name])
        if not posts:
            return np.zeros(0), np.zeros((0, n_classes), dtype=np.float32)
        stacked = np.stack(posts)
        check_finite(stacked, self.model.name)  # once per step, all its decisions
        return np.asarray(times), stacked

    def _run_window(self) -> np.ndarray:
        feeds = {}
        for inp, hop, count, norm in self._inputs:
            first = self.k * self.stride_samples // hop
            x = normalize(self._buffers[inp.frontend].take(first, count), norm)
            x = x.astype(np.float32, copy=False)
            if inp.role == "raw":
                feeds[inp.name] = x.reshape((1, count, 1) if len(inp.shape) == 3 else (1, count))
            else:
                feeds[inp.name] = x[None, :, :, None] if len(inp.shape) == 4 else x[None]
        self.calls += 1
        out = np.asarray(self.model.session.run([self.model.output], feeds)[0], dtype=np.float32)
        return out.reshape(-1)[-len(self.model.card.labels) :]
