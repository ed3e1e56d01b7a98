"""N independent streams of one frame model in one onnxruntime call per hop (for --streams).

The live engine runs one stream: FrameRunner feeds (1, T, bins) with state (1, 1, H). Serving N
microphones from one process, the per-call overhead of onnxruntime (~15-20 us) dominates a tiny
LSTM step, so here N streams' frames are stacked on the batch axis, (B, 1, bins), and their
states on the LSTM's batch axis, (1, B, H) (ONNX recurrent state is (directions, batch, hidden);
a rank-2 Keras-style state (batch, H) is batched on axis 0), and run in one session.run.

Everything else is each stream's own, with the engine's semantics: its VAD gate (VadGate's logic,
vectorised across streams; webrtcvad still called per stream), its features (the live frontend's
transform, applied to all streams' frames at once), state reset after reset_after_ms of closed
gate, zero posteriors while the gate is shut, its Smoother. Only the streams whose gate is open at
a frame are in that frame's batch. tests/bench checks the posteriors
equal N separate Engines' to 1e-5.

The batch axis must be dynamic in the ONNX graph (`hark export` declares it so). A graph that
fixes it at 1 is reported as such; `relaxed_session` can declare it dynamic in memory, which is
only used after `verify_batching` has shown the results equal unbatched calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


@dataclass(frozen=True)
class BatchCheck:
    """Whether a model can be run with several streams in one call, and why not."""

    ok: bool
    reason: str


def state_batch_axis(shape: tuple[int, ...]) -> int:
    """ONNX LSTM/GRU state (directions, batch, hidden): axis 1; a rank-2 (batch, hidden): axis 0."""
    return 1 if len(shape) == 3 else 0


def check_batch(model: Any) -> BatchCheck:
    """Whether every batch axis is dynamic in the graph's declared input shapes."""
    card = model.card
    if not card.streaming:
        return BatchCheck(False, "the batched variant covers frame (recurrent) models only")
    declared = {i.name: i.shape for i in model.session.get_inputs()}
    fixed = []
    inp = card.inputs[0].name
    if isinstance(declared[inp][0], int):
        fixed.append(f"{inp}[0]={declared[inp][0]}")
    for st in card.state:
        ax = state_batch_axis(st.shape)
        dim = declared[st.input][ax]
        if isinstance(dim, int):
            fixed.append(f"{st.input}[{ax}]={dim}")
    if fixed:
        return BatchCheck(False, "the ONNX graph fixes the batch axis at 1 (" + ", ".join(fixed)
                          + "): batched runs are not possible without re-export")
    return BatchCheck(True, "batch axis dynamic in the ONNX graph")


def relaxed_session(model: Any, threads: int = 1) -> Any:
    """A session on the same graph with every batch axis declared dynamic (in memory only)."""
    import onnx
    import onnxruntime as ort

    card = model.card
    m = onnx.load(str(model.path))
    axes = {card.inputs[0].name: 0, model.output: 0}
    for st in card.state:
        axes[st.input] = axes[st.output] = state_batch_axis(st.shape)
    for vi in [*m.graph.input, *m.graph.output]:
        if vi.name in axes:
            dim = vi.type.tensor_type.shape.dim[axes[vi.name]]
            dim.Clear()
            dim.dim_param = "batch"
    del m.graph.value_info[:]  # inferred shapes may still say 1
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(m.SerializeToString(), sess_options=so,
                                providers=["CPUExecutionProvider"])


def verify_batching(model: Any, session: Any, n: int = 3, steps: int = 4, tol: float = 1e-5
                    ) -> float:
    """Max |batched - one by one| over `steps` frames of n random streams (raises above tol)."""
    card = model.card
    rng = np.random.default_rng(7)
    bins = card.inputs[0].shape[2]
    rank4 = len(card.inputs[0].shape) == 4
    outs = [model.output, *(s.output for s in card.state)]
    single = [{s.input: np.zeros(s.shape, np.float32) for s in card.state} for _ in range(n)]
    batch = {s.input: np.repeat(np.zeros(s.shape, np.float32), n, axis=state_batch_axis(s.shape))
             for s in card.state}
    worst = 0.0
    for _ in range(steps):
        x = rng.standard_normal((n, 1, bins)).astype(np.float32)
        xs = x[..., None] if rank4 else x
        res = session.run(outs, {card.inputs[0].name: xs, **batch})
        for spec, val in zip(card.state, res[1:], strict=True):
            batch[spec.input] = val
        got = np.asarray(res[0]).reshape(n, -1)
        for i in range(n):
            r = model.session.run(outs, {card.inputs[0].name: xs[i : i + 1], **single[i]})
            for spec, val in zip(card.state, r[1:], strict=True):
                single[i][spec.input] = val
            worst = max(worst, float(np.abs(np.asarray(r[0]).reshape(-1) - got[i]).max()))
    if worst > tol:
        raise ValueError(f"batched results differ from single-stream ones by {worst:.2e}")
    return worst


class BatchedVad:
    """n webrtcvad gates in lockstep, with live.vad.VadGate's semantics.

    Hangover, history and is_open_at by sample position as VadGate; the int16 conversion and the
    bookkeeping are done for all streams at once, only webrtcvad's own call is per stream.
    """

    def __init__(self, n: int, sample_rate: int, options: Any, history_frames: int = 4096) -> None:
        import webrtcvad

        self.n, self.sample_rate = n, sample_rate
        self.frame_len = sample_rate * options.frame_ms // 1000
        self._hang = int(np.ceil(options.hangover_ms / options.frame_ms))
        self._vads = [webrtcvad.Vad(options.mode) for _ in range(n)]
        self._pending = np.zeros((n, 0), np.int16)
        self._since = np.full(n, self._hang + 1, dtype=np.int64)
        self._hist = history_frames
        self._decisions = np.zeros((n, history_frames), dtype=bool)
        self._n_frames = 0

    def push(self, samples: np.ndarray) -> None:
        """samples: (n, m) float32, as Engine.feed hands them to its gates."""
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
        buf = np.concatenate((self._pending, pcm), axis=1) if self._pending.size else pcm
        fl = self.frame_len
        for k in range(buf.shape[1] // fl):
            frame = np.ascontiguousarray(buf[:, k * fl : (k + 1) * fl])
            rate = self.sample_rate
            rows = zip(self._vads, frame, strict=True)
            speech = np.fromiter((v.is_speech(r.tobytes(), rate) for v, r in rows), bool, self.n)
            self._since = np.where(speech, 0, self._since + 1)
            self._decisions[:, self._n_frames % self._hist] = self._since <= self._hang
            self._n_frames += 1
        self._pending = buf[:, (buf.shape[1] // fl) * fl :].copy()

    def is_open_at(self, sample_pos: int) -> np.ndarray:
        """(n,) gate states for audio ending at sample_pos (VadGate.is_open_at for each)."""
        idx = sample_pos // self.frame_len - 1
        back = self._n_frames - 1 - idx
        if idx < 0 or back >= min(self._n_frames, self._hist):
            return np.zeros(self.n, dtype=bool)
        if back < 0:
            raise ValueError("VAD queried ahead of the samples pushed")
        return self._decisions[:, idx % self._hist].copy()


class BatchedFrameStreams:
    """n streams of one frame model, fed in lockstep (n, samples) per call."""

    def __init__(self, model: Any, n: int, options: Any = None, session: Any = None,
                 record: bool = False) -> None:
        from hark.live.engine import EngineOptions
        from hark.live.features import Frontend
        from hark.live.smoothing import Smoother
        from hark.live.vad import VadOptions

        options = options or EngineOptions()
        card = model.card
        if not card.streaming:
            raise ValueError("BatchedFrameStreams needs a frame model")
        self.model, self.card, self.n = model, card, n
        self.session = session or model.session
        self.rate = card.sample_rate
        inp = card.inputs[0]
        self.input_name = inp.name
        self._rank4 = len(inp.shape) == 4
        self.fe = Frontend(card.frontends[inp.frontend], self.rate)
        self.window, self.hop = self.fe.window, self.fe.hop
        norm = card.normalization.get(inp.frontend)
        self._mean = None if norm is None else np.asarray(norm.mean, np.float32)
        self._std = None if norm is None else np.asarray(norm.std, np.float32)
        self._pending = np.zeros((n, 0))
        self.frames_out = 0
        use_vad = card.vad.enabled if options.vad is None else options.vad
        # NOTE: the speech gate here has no pre-roll (live.engine's has): a card's pre_roll_ms
        # is ignored, so with the gate on this bank equals the live engine only at pre_roll 0
        self.gates = None
        if use_vad:
            vopts = VadOptions.from_spec(card.vad, "webrtc", options.vad_mode)
            self.gates = BatchedVad(n, self.rate, vopts)
        hop_s = card.decision_hop_s()
        self.reset_frames = (int(np.ceil(card.vad.reset_after_ms / 1000.0 / hop_s))
                             if options.reset_after_silence else None)
        self._off = np.zeros(n, dtype=np.int64)
        self.smoothers = [
            Smoother(card.labels, card.smoothing, hop_s, task=card.task,
                     ignore_labels=card.ignore_labels, history=options.history, model=card.name)
            for _ in range(n)
        ]
        self._specs = card.state
        self._axes = [state_batch_axis(s.shape) for s in card.state]
        self._outputs = [model.output, *(s.output for s in card.state)]
        self.state = [np.repeat(np.zeros(s.shape, np.float32), n, axis=ax)
                      for s, ax in zip(card.state, self._axes, strict=True)]
        self.n_classes = len(card.labels)
        self.calls = 0
        self.last_times = np.zeros(4)  # vad, features, inference, smoothing (seconds)
        self.recorded: list[list[np.ndarray]] | None = [[] for _ in range(n)] if record else None

    def _frames(self, x: np.ndarray) -> np.ndarray:
        """The live frontend's frames for all streams at once: (n, k, bins)."""
        buf = np.concatenate((self._pending, x), axis=1) if self._pending.size else x
        if buf.shape[1] < self.window:
            self._pending = buf.copy()
            return np.zeros((self.n, 0, self.fe.n_bins), np.float32)
        k = (buf.shape[1] - self.window) // self.hop + 1
        frames = sliding_window_view(buf, self.window, axis=1)[:, :: self.hop][:, :k]
        self._pending = buf[:, k * self.hop :].copy()
        self.frames_out += k
        return self.fe._transform(frames)  # the same maths as Frontend.push

    def _run(self, sel: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """One session.run for the streams `sel` (one frame each); states updated in place."""
        x = frames if self._mean is None or self._std is None else (
            (frames - self._mean) / self._std)
        x = x.astype(np.float32, copy=False)[:, None, :]
        if self._rank4:
            x = x[..., None]
        whole = sel.size == self.n
        feeds = {self.input_name: x}
        for spec, st, ax in zip(self._specs, self.state, self._axes, strict=True):
            feeds[spec.input] = st if whole else np.take(st, sel, axis=ax)
        out = self.session.run(self._outputs, feeds)
        self.calls += 1
        for i, (st, ax) in enumerate(zip(self.state, self._axes, strict=True)):
            if whole:
                self.state[i] = out[i + 1]
            else:
                idx: list[Any] = [slice(None)] * st.ndim
                idx[ax] = sel
                st[tuple(idx)] = out[i + 1]
        return np.asarray(out[0], np.float32).reshape(sel.size, -1)[:, -self.n_classes :]

    def _reset(self, streams: np.ndarray) -> None:
        for st, ax in zip(self.state, self._axes, strict=True):
            idx: list[Any] = [slice(None)] * st.ndim
            idx[ax] = streams
            st[tuple(idx)] = 0.0

    def feed(self, x: np.ndarray) -> list[list[Any]]:
        """x: (n, samples) float; returns each stream's finished events."""
        perf = time.perf_counter
        x32 = np.asarray(x, dtype=np.float32)  # what Engine.feed gives its gates and frontends
        t0 = perf()
        if self.gates is not None:
            self.gates.push(x32)
        t1 = perf()
        first = self.frames_out
        frames = self._frames(x32.astype(np.float64))
        t2 = perf()
        k = frames.shape[1]
        posts = np.zeros((self.n, k, self.n_classes), np.float32)
        everyone = np.arange(self.n)
        for j in range(k):
            if self.gates is None:
                posts[:, j] = self._run(everyone, frames[:, j])
                continue
            end = (first + j) * self.hop + self.window
            is_open = self.gates.is_open_at(end)
            sel = np.flatnonzero(is_open)
            if self.reset_frames is not None:
                stale = sel[self._off[sel] >= self.reset_frames]
                if stale.size:
                    self._reset(stale)
            self._off[is_open] = 0
            self._off[~is_open] += 1
            if sel.size:
                posts[sel, j] = self._run(sel, frames[sel, j])
        t3 = perf()
        events: list[list[Any]] = [[] for _ in range(self.n)]
        if k:
            t_first = ((first * self.hop) + self.window / 2) / self.rate
            for i, sm in enumerate(self.smoothers):
                events[i] = sm.update(posts[i], t_first)
            if self.recorded is not None:
                for i in range(self.n):
                    self.recorded[i].append(posts[i])
        t4 = perf()
        self.last_times = np.array([t1 - t0, t2 - t1, t3 - t2, t4 - t3])
        return events

    def recording(self, i: int) -> np.ndarray:
        """Raw posteriors of stream i (record=True)."""
        assert self.recorded is not None
        rows = self.recorded[i]
        return np.concatenate(rows) if rows else np.zeros((0, self.n_classes), np.float32)
