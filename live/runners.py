"""Model runners: how feature frames become posteriors for the two kinds of model.

FrameRunner: a causal (recurrent) model fed the frames as they arrive, its state carried from call
to call, so each hop costs one small call instead of re-running the whole history.
WindowRunner: a CNN on the last window_s of frames (or samples), every stride_s. Each frame is
computed once by the shared frontend and kept until the last window that needs it has run. When
the card has a streaming split (a front/head pair, live.streaming_window), each column of the
front is computed once too and only the head runs on the whole window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from hark.live.bound_step import BoundStep, bind_after
from hark.live.card import FrontendSpec, InputSpec, Normalization
from hark.live.clip_framing import ClipFramer
from hark.live.features import normalize, window_features
from hark.live.model import OnnxModel, check_finite

if TYPE_CHECKING:
    from hark.live.streaming_window import SplitWindow


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
        self._state: list[np.ndarray] = []  # the state, unless bound (then BoundStep.state)
        self.calls = 0
        self.call_s = 0.0  # seconds spent inside session.run (the model's own cost, for the bench)
        n_bins = int(card.frontends[self.input.frontend].n_bins(card.sample_rate))
        self._n_classes = len(card.labels)
        self._state_inputs = [s.input for s in card.state]
        self._state_pairs = [(s.input, s.output) for s in card.state]
        # the per-hop path (run_one): the normalised frame goes to one preallocated buffer; on the
        # CPU provider the frame, state and posteriors are bound in place (live.bound_step) from
        # the second call on (the first tells the posteriors' shape)
        self._norm32: tuple[np.ndarray, np.ndarray] | None = None
        if self.norm is not None:
            self._norm32 = (np.asarray(self.norm.mean, dtype=np.float32),
                            np.asarray(self.norm.std, dtype=np.float32))
        self._one_shape = (1, 1, n_bins, 1) if self._rank4 else (1, 1, n_bins)
        self._one_buf = np.zeros((1, n_bins), dtype=np.float32)
        self._one_in = self._one_buf.reshape(self._one_shape)  # a view: the buffer, as fed
        self._try_bind = True  # once, on the first run_one call
        self._step: BoundStep | None = None
        self.reset()

    def reset(self) -> None:
        """Zero the recurrent state: the model starts as on a fresh stream."""
        if self._step is not None:
            self._step.zero()
        else:
            self._state = [np.zeros(s.shape, dtype=np.float32) for s in self._state_specs]

    @property
    def state(self) -> list[np.ndarray]:
        """The recurrent state the next call reads, in the card's order."""
        return self._step.state if self._step is not None else self._state

    def _feeds(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return {**dict(zip(self._state_inputs, self.state, strict=True)), self.input.name: x}

    def _keep_state(self, out: list[np.ndarray]) -> None:
        if self._step is not None:
            self._step.load(out[1:])
        else:
            self._state = list(out[1:])

    def run(self, frames: np.ndarray) -> np.ndarray:
        """Posteriors (n, classes) for n consecutive frames (n, bins), state carried."""
        x = normalize(frames, self.norm).astype(np.float32, copy=False)
        if self.one_frame_per_call and len(x) > 1:
            return np.concatenate([self.run(frames[i : i + 1]) for i in range(len(frames))])
        feed = x[None, :, :, None] if self._rank4 else x[None]
        out = self._call(self._feeds(feed))
        post = np.asarray(out[0], dtype=np.float32)
        check_finite(post, self.model.name)
        return post.reshape(-1, post.shape[-1])[-len(frames) :]

    def _call(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        t0 = time.perf_counter()
        out = self.model.session.run(self._outputs, feeds)
        self.call_s += time.perf_counter() - t0
        self.calls += 1
        self._keep_state(out)
        return list(out)

    def run_one(self, frame: np.ndarray) -> np.ndarray:
        """run() for one frame (1, bins), the live hop: the same numbers in fewer steps.

        The frame is normalised into the buffer the call reads (no new arrays, no feed dict on
        the bound path); tests/live hold the answers equal to run()'s.
        """
        norm, buf = self._norm32, self._one_buf
        if norm is None:
            buf[...] = frame
        else:
            np.subtract(frame, norm[0], out=buf)
            np.divide(buf, norm[1], out=buf)
        step = self._step
        if step is None:
            out = self._call(self._feeds(self._one_in))
            if self._try_bind:
                self._try_bind = False
                self._step = bind_after(self.model.session, self.input.name, self._one_in,
                                        self.model.output, self._state_pairs, out)
            post = np.asarray(out[0], dtype=np.float32)
        else:
            t0 = time.perf_counter()
            step.run()
            self.call_s += time.perf_counter() - t0
            self.calls += 1
            post = step.post
        check_finite(post, self.model.name)
        return post.reshape(1, self._n_classes).copy()

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
    """Runs a window model on decision k = the window ending at window + k * stride samples.

    pre_roll: with a speech gate, up to this many decisions taken while it was shut are held
    (their frames kept) and computed when it opens, under their own time stamps.
    """

    def __init__(self, model: OnnxModel, pre_roll: int = 0, split: bool = True) -> None:
        """split=False runs whole windows even when the card has a streaming pair."""
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
            width = 1 if fe.kind == "raw" else fe.frame_bins(sr)
            self._buffers.setdefault(inp.frontend, _FrameBuffer(width))
        self._specs = card.frontends
        self._hop = {inp.frontend: hop for inp, hop, _, _ in self._inputs}
        # framing clip: the window's edge frames recomputed from its samples (live.clip_framing)
        self._clip: dict[str, tuple[ClipFramer, str]] = {}
        for inp, _, count, _ in self._inputs:
            if inp.framing == "clip" and inp.clip_samples:
                fe = card.frontends[inp.frontend]
                self._clip[inp.name] = (ClipFramer(fe, sr, count, self.window_samples),
                                        inp.clip_samples)
                self._buffers.setdefault(inp.clip_samples, _FrameBuffer(1))
                self._hop[inp.clip_samples] = 1
        self.k = 0  # next decision
        self.calls = 0
        self.pre_roll = pre_roll
        self._held: list[int] = []  # decisions taken while shut, not yet answered (oldest first)
        self.split: SplitWindow | None = None
        sp = card.streaming_split
        if split and sp is not None and sp.ok and not self._clip:
            from hark.live.streaming_window import SplitWindow

            inp, hop, _, norm = self._inputs[0]
            self.split = SplitWindow(model, sp, inp, norm, self.stride_samples // hop)

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
        end = self.k * self.stride_samples + self.window_samples
        return all(self._buffers[src].end >= end for _, src in self._clip.values())

    def step(self, gate: Callable[[int], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Run every decision the frames now allow: (times_s (n,), posteriors (n, classes)).

        A decision whose window ends while the gate is shut is held as pre-roll; one pushed out
        of it is not computed (posteriors 0). When the gate opens, the held ones run first. The
        returned decisions are consecutive.
        """
        ks: list[int] = []
        posts: list[np.ndarray] = []
        n_classes = len(self.model.card.labels)
        zeros = np.zeros(n_classes, dtype=np.float32)
        while self.ready():
            end = self.window_samples + self.k * self.stride_samples
            if gate is None or gate(end):
                for k in self._held:
                    ks.append(k)
                    posts.append(self._run_window(k))
                self._held.clear()
                ks.append(self.k)
                posts.append(self._run_window(self.k))
            else:
                self._held.append(self.k)
                if len(self._held) > self.pre_roll:
                    ks.append(self._held.pop(0))
                    posts.append(zeros)
            self.k += 1
            keep = self._held[0] if self._held else self.k
            for name, buf in self._buffers.items():
                buf.drop_before(keep * self.stride_samples // self._hop[name])
            if self.split is not None:
                self.split.drop_before(keep * self.split.stride_frames)
        if not posts:
            return np.zeros(0), np.zeros((0, n_classes), dtype=np.float32)
        stacked = np.stack(posts)
        check_finite(stacked, self.model.name)  # once per step, all its decisions
        return self._times(ks), stacked

    def flush_held(self) -> tuple[np.ndarray, np.ndarray]:
        """End of stream: the held decisions answered as the shut gate says (zeros)."""
        n_classes = len(self.model.card.labels)
        ks, self._held = self._held, []
        return self._times(ks), np.zeros((len(ks), n_classes), dtype=np.float32)

    def _times(self, ks: list[int]) -> np.ndarray:
        """Decision k's time: the centre of its window."""
        ends = self.window_samples + np.asarray(ks, dtype=np.int64) * self.stride_samples
        return (ends - self.window_samples / 2) / self.sample_rate

    def _run_window(self, k: int) -> np.ndarray:
        if self.split is not None:
            inp, hop, _, _ = self._inputs[0]
            self.calls += 1
            out = self.split.run(k * self.split.stride_frames, self._buffers[inp.frontend])
            return out.reshape(-1)[-len(self.model.card.labels) :]
        feeds = {}
        for inp, hop, count, norm in self._inputs:
            first = k * self.stride_samples // hop
            frames = self._buffers[inp.frontend].take(first, count)
            if inp.name in self._clip:
                framer, src = self._clip[inp.name]
                samples = self._buffers[src].take(k * self.stride_samples, self.window_samples)
                frames = framer.apply(frames, samples[:, 0])
            if inp.role == "raw":
                x = normalize(frames, norm).astype(np.float32, copy=False)
                feeds[inp.name] = x.reshape((1, count, 1) if len(inp.shape) == 3 else (1, count))
            else:
                feeds[inp.name] = window_tensor(frames, self._specs[inp.frontend], inp, norm)
        self.calls += 1
        out = np.asarray(self.model.session.run([self.model.output], feeds)[0], dtype=np.float32)
        return out.reshape(-1)[-len(self.model.card.labels) :]


def window_tensor(
    frames: np.ndarray, spec: FrontendSpec, inp: InputSpec, norm: Normalization | None
) -> np.ndarray:
    """The exact tensor a window input receives, batch axis included, from its frames.

    In order: the frontend's window operations (db_ref max, top_db, a deferred DCT, deltas),
    the card's fixed statistics, then the input's own: window_norm, pool, layout, flatten,
    channels (see InputSpec), reshaped to the model's shape.
    """
    x = normalize(window_features(frames, spec), norm).astype(np.float32, copy=False)
    if not inp.has_window_ops:
        return x[None, :, :, None] if len(inp.shape) == 4 else x[None]
    x = x.astype(np.float64)
    if inp.window_norm == "per_bin":
        x = (x - x.mean(axis=0)) / (x.std(axis=0) + inp.window_norm_eps)
    elif inp.window_norm == "global":
        x = (x - x.mean()) / (x.std() + inp.window_norm_eps)
    if inp.pool == "mean":
        x = x.mean(axis=0)
    elif inp.pool == "mean_std":
        x = np.concatenate((x.mean(axis=0), x.std(axis=0)))
    elif inp.pool == "bins_mean":
        x = x.mean(axis=1)  # one value per frame
    else:
        if inp.layout == "bins_frames":
            x = x.T
        if inp.flatten:
            x = x.reshape(-1)
    if inp.channels > 1:
        axis = -1 if inp.channel_axis == "last" else 0
        x = np.repeat(np.expand_dims(x, axis), inp.channels, axis=axis)
    shape = tuple(1 if d is None else d for d in inp.shape)
    return np.ascontiguousarray(x.reshape(shape), dtype=np.float32)
