"""Many streams of one frame model, one onnxruntime call per hop for all of them (hark serve).

Serving N microphones from one process, onnxruntime's per-call overhead (~15-20 us) dominates a
small LSTM step, so the streams whose frames are due are stacked on the batch axis, (B, 1, bins),
their states on the state's batch axis ((directions, batch, hidden) -> axis 1; a Keras-style
(batch, hidden) -> axis 0), and run in one session.run. Everything else is each stream's own and
has the live Engine's semantics: its frontend (Frontend.push), its speech gate (webrtcvad or silero,
as the card or the options say), the card's pre-roll (frames held while the gate is shut are run
first when it opens, and answered with zeros only when they age out of it), state reset after
reset_after_ms of closed gate, its Smoother. Streams
come and go (add_stream / remove_stream) and are fed independently (feed); process() runs every
frame that has arrived. tests/live/test_batched.py holds it equal to one Engine per stream.

The batch axis must be dynamic in the graph (`hark export` declares it so): check_batch says why
not; relaxed_session declares it dynamic in memory, to be used only after verify_batching.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hark.live.engine import EngineOptions
from hark.live.events import Event
from hark.live.features import make_frontend, normalize
from hark.live.model import OnnxModel, check_finite
from hark.live.preroll import FrameRing
from hark.live.smoothing import Smoother
from hark.live.vad import Gate, VadOptions, make_gate

_ONE_ANSWER = np.ones(1, bool)  # the live hop's plan: one frame, answered (never written to)
_ONE_ANSWER.flags.writeable = False


@dataclass(frozen=True)
class BatchCheck:
    """Whether a model can be run with several streams in one call, and why not."""

    ok: bool
    reason: str


def state_batch_axis(shape: tuple[int, ...]) -> int:
    """ONNX LSTM/GRU state (directions, batch, hidden): axis 1; a rank-2 (batch, hidden): axis 0."""
    return 1 if len(shape) == 3 else 0


def check_batch(model: OnnxModel) -> BatchCheck:
    """Whether every batch axis is dynamic in the graph's declared input shapes."""
    card = model.card
    if not card.streaming:
        return BatchCheck(False, "the batched engine runs frame (recurrent) models only")
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


def relaxed_session(model: OnnxModel, threads: int = 1) -> Any:
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


def verify_batching(model: OnnxModel, session: Any, n: int = 3, steps: int = 4,
                    tol: float = 1e-5) -> float:
    """Max |batched - one by one| over `steps` frames of n random streams (raises above tol)."""
    card = model.card
    rng = np.random.default_rng(7)
    bins = card.frontends[card.inputs[0].frontend].n_bins(card.sample_rate)
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


class _Stream:
    """One stream's own parts: frontend, gate, smoother, state, frames not yet run."""

    def __init__(self, engine: BatchedEngine) -> None:
        card = engine.card
        self.frontend = make_frontend(engine.spec, card.sample_rate)
        self.gate: Gate | None = (make_gate(card.sample_rate, engine.vad_options)
                                  if engine.vad_options else None)
        self.ring = FrameRing(engine.pre_roll, self.frontend.n_bins)
        self.smoother = Smoother(card.labels, card.smoothing, card.decision_hop_s(),
                                 task=card.task, ignore_labels=card.ignore_labels,
                                 history=engine.options.history, model=card.name)
        self.state = [np.zeros(s.shape, np.float32) for s in card.state]
        # frames arrived but not yet run, as the blocks gave them (joined once, in _plan)
        self.queued: list[np.ndarray] = []
        self.first = 0  # frame index of the first queued frame
        self.is_open: list[bool] = []  # the gate at each queued frame
        self.off_frames = 0
        self.out = 0  # frame index of the next posterior handed to the smoother
        self.samples = 0  # fed so far: the stream's clock
        self.recorded: list[np.ndarray] = []


class BatchedEngine:
    """Streams of one frame model: feed each as its audio arrives, process() runs them batched.

    >>> bank = BatchedEngine(model); a, b = bank.add_stream(), bank.add_stream()
    >>> bank.feed(a, block_a); bank.feed(b, block_b); events = bank.process()  # {a: [...], ...}
    """

    def __init__(self, model: OnnxModel, options: EngineOptions | None = None,
                 session: Any = None) -> None:
        card = model.card
        if not card.streaming:
            raise ValueError("the batched engine runs frame (recurrent) models only")
        self.model, self.card = model, card
        self.options = options or EngineOptions()
        self.session = session or model.session
        inp = card.inputs[0]
        self.input_name = inp.name
        self.spec = card.frontends[inp.frontend]
        self._norm = card.normalization.get(inp.frontend)
        self._rank4 = len(inp.shape) == 4
        opts = self.options
        use_vad = card.vad.enabled if opts.vad is None else opts.vad
        if opts.vad is None and opts.vad_kind is not None:
            use_vad = True
        self.vad_options: VadOptions | None = None
        hop_s = card.decision_hop_s()
        self.pre_roll = 0  # frames held while the gate is shut (live.engine's rule)
        if use_vad:
            self.vad_options = VadOptions.from_spec(card.vad, opts.vad_kind, opts.vad_mode)
            self.pre_roll = int(np.ceil(card.vad.pre_roll_ms / 1000.0 / hop_s - 1e-9))
        self.reset_frames = (int(np.ceil(card.vad.reset_after_ms / 1000.0 / hop_s))
                             if self.options.reset_after_silence else None)
        self._axes = [state_batch_axis(s.shape) for s in card.state]
        self._outputs = [model.output, *(s.output for s in card.state)]
        self.n_classes = len(card.labels)
        self._streams: dict[int, _Stream] = {}
        self._ids = itertools.count()
        self.calls = 0
        self.last_times = np.zeros(4)  # vad, features, inference, smoothing (seconds)

    # ---- streams -------------------------------------------------------------------------
    @property
    def streams(self) -> list[int]:
        return list(self._streams)

    def add_stream(self) -> int:
        """A new stream with fresh state; returns its id."""
        sid = next(self._ids)
        self._streams[sid] = _Stream(self)
        return sid

    def remove_stream(self, sid: int) -> list[Event]:
        """End a stream: run what it has, close its open events and return them with the rest."""
        events = self.flush_stream(sid)
        stream = self._streams.pop(sid)
        return events + stream.smoother.close(stream.samples / self.card.sample_rate)

    def reset_stream(self, sid: int) -> None:
        """Forget a stream's recurrent state and filters (its open events carry on)."""
        stream = self._streams[sid]
        stream.state = [np.zeros(s.shape, np.float32) for s in self.card.state]
        stream.smoother.reset_filters()

    def smoother(self, sid: int) -> Smoother:
        """A stream's smoother: its open events, recent scores and roll (hark serve reads them)."""
        return self._streams[sid].smoother

    # ---- audio ---------------------------------------------------------------------------
    def feed(self, sid: int, samples: np.ndarray) -> None:
        """Queue mono float samples of one stream (at the model's rate); process() runs them."""
        stream = self._streams[sid]
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        stream.samples += x.size
        gate = stream.gate
        t0 = time.perf_counter()
        if gate is not None:
            gate.push(x)
        t1 = time.perf_counter()
        fe = stream.frontend
        first = fe.frames_out
        frames = fe.push(x)
        times = self.last_times
        times[0] += t1 - t0
        times[1] += time.perf_counter() - t1
        n = len(frames)
        if not n:
            return
        if not stream.queued:
            stream.first = first
        stream.queued.append(frames)
        if gate is None:
            stream.is_open.extend([True] * n)
        else:
            stream.is_open.extend([gate.is_open_at((first + i) * fe.hop + fe.window)
                                   for i in range(n)])

    def feed_all(self, blocks: Mapping[int, np.ndarray]) -> dict[int, list[Event]]:
        """Feed one block to each of several streams, then process: each stream's new events."""
        self.last_times = np.zeros(4)
        for sid, block in blocks.items():
            self.feed(sid, block)
        return self.process(reset_times=False)

    def process(self, reset_times: bool = True) -> dict[int, list[Event]]:
        """Run every queued frame, one session call per frame position across the streams."""
        if reset_times:
            self.last_times[2:] = 0.0
        t0 = time.perf_counter()
        # each due stream's work in output order: rows of frames to run (NaN-free), a mask of
        # which output rows are model answers (the rest are zeros: shut gate, aged pre-roll),
        # and the rows before which the recurrent state is reset
        plans = {sid: self._plan(s) for sid, s in self._streams.items() if s.queued}
        posts = {sid: np.zeros((len(p[1]), self.n_classes), np.float32) for sid, p in plans.items()}
        runs = {sid: np.flatnonzero(p[1]) for sid, p in plans.items()}
        depth = max((len(r) for r in runs.values()), default=0)
        for j in range(depth):
            batch: list[tuple[int, _Stream]] = []
            rows: list[np.ndarray] = []
            for sid, r in runs.items():
                if j >= len(r):
                    continue
                s = self._streams[sid]
                if j in plans[sid][2]:
                    s.state = [np.zeros(st.shape, np.float32) for st in self.card.state]
                batch.append((sid, s))
                rows.append(plans[sid][0][j])
            out = self._run(batch, np.stack(rows))
            for k, (sid, _) in enumerate(batch):
                posts[sid][runs[sid][j]] = out[k]
        t1 = time.perf_counter()
        events: dict[int, list[Event]] = {}
        for sid in plans:
            s = self._streams[sid]
            events[sid] = self._emit(s, posts[sid])
        self.last_times[2] += t1 - t0
        self.last_times[3] += time.perf_counter() - t1
        return events

    def _plan(self, s: _Stream) -> tuple[np.ndarray, np.ndarray, set[int]]:
        """A stream's queued frames through its gate and pre-roll (live.engine's _gated_run rule).

        Returns (frames to run, in order; per output row whether the model answers it; indices
        into the frames to run before which the state is reset).
        """
        frames_in = s.queued[0] if len(s.queued) == 1 else np.concatenate(s.queued)
        flags = s.is_open
        s.queued, s.is_open = [], []
        n = len(flags)
        if n == 1 and flags[0] and not s.ring.count:  # the live hop: one frame, gate open
            resets = {0} if self.reset_frames is not None and s.off_frames >= self.reset_frames \
                else set()
            s.off_frames = 0
            s.first += 1
            return frames_in, _ONE_ANSWER, resets
        to_run: list[np.ndarray] = []
        answered: list[np.ndarray] = []
        resets = set()
        n_run = 0
        i = 0
        while i < n:
            j = i
            while j < n and flags[j] == flags[i]:
                j += 1
            frames = frames_in[i:j]
            if not flags[i]:
                s.off_frames += j - i
                _, dropped = s.ring.push(s.first + i, frames)
                answered.append(np.zeros(dropped, bool))
            else:
                if self.reset_frames is not None and s.off_frames >= self.reset_frames:
                    resets.add(n_run)
                s.off_frames = 0
                if s.ring.count:
                    frames = np.concatenate((s.ring.take(), frames))
                to_run.append(frames)
                answered.append(np.ones(len(frames), bool))
                n_run += len(frames)
            i = j
        s.first += n
        run = np.concatenate(to_run) if to_run else frames_in[:0]
        return run, np.concatenate(answered) if answered else np.zeros(0, bool), resets

    def flush_stream(self, sid: int) -> list[Event]:
        """End of a stream's audio: frames still held as pre-roll are answered (shut: zeros)."""
        events = self.process().get(sid, [])
        s = self._streams[sid]
        if not s.ring.count:
            return events
        n = s.ring.count
        s.ring.clear()
        return events + self._emit(s, np.zeros((n, self.n_classes), np.float32))

    def _emit(self, s: _Stream, post: np.ndarray) -> list[Event]:
        """The stream's next consecutive posteriors to its smoother (and recording)."""
        if not len(post):
            return []
        fe = s.frontend
        events = s.smoother.update(post, (s.out * fe.hop + fe.window / 2) / self.card.sample_rate)
        if self.options.record:
            s.recorded.append(post)
        s.out += len(post)
        return events

    def _run(self, batch: list[tuple[int, _Stream]], x: np.ndarray) -> np.ndarray:
        """One session.run of one frame per stream in `batch` (rows of x); their states updated."""
        x = normalize(x, self._norm).astype(np.float32, copy=False)[:, None, :]
        if self._rank4:
            x = x[..., None]
        feeds = {self.input_name: x}
        for i, (spec, ax) in enumerate(zip(self.card.state, self._axes, strict=True)):
            feeds[spec.input] = np.concatenate([s.state[i] for _, s in batch], axis=ax)
        out = self.session.run(self._outputs, feeds)
        self.calls += 1
        for i, ax in enumerate(self._axes):
            o = np.asarray(out[i + 1])
            # each stream's slice of the batch axis, as a view (np.split's, without its cost)
            if ax == 1:
                for k, (_, s) in enumerate(batch):
                    s.state[i] = o[:, k : k + 1]
            else:
                for k, (_, s) in enumerate(batch):
                    s.state[i] = o[k : k + 1]
        post = np.asarray(out[0], np.float32).reshape(len(batch), -1)[:, -self.n_classes :]
        check_finite(post, self.card.name)
        return post

    def recording(self, sid: int) -> np.ndarray:
        """Raw posteriors of a stream (EngineOptions(record=True))."""
        rows = self._streams[sid].recorded
        return np.concatenate(rows) if rows else np.zeros((0, self.n_classes), np.float32)
