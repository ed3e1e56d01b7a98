"""The streaming engine: samples in, posteriors and events out, one consumer, no threads inside.

feed() does the cheap-to-heavy chain for whatever samples arrived (any chunk size):
resample (per model rate) -> VAD gates -> shared frontends -> runners -> smoothers.
It is deterministic: the same samples give the same events whatever the chunking.

The public surface (re-exported as `hark.Engine`): `Engine(models, sample_rate=...)`,
`feed(block) -> Update` (finished and opened events, per-class scores), `close() -> Update`,
`reset()` for a new stream, and `events`, a bounded history of the latest finished events.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hark.live.card import FrontendSpec, ModelCard
from hark.live.events import Event, OpenEvent, Update
from hark.live.features import AnyFrontend, make_frontend
from hark.live.model import OnnxModel
from hark.live.preroll import FrameRing
from hark.live.runners import FrameRunner, WindowRunner
from hark.live.smoothing import Smoother
from hark.live.vad import Gate, GateKind, VadOptions, make_gate


@dataclass(frozen=True)
class EngineOptions:
    """Engine-wide overrides of what the cards say.

    vad: None keeps each card's choice; True/False forces the gate on/off for every model.
    vad_kind: gate every model with this kind (webrtc or silero) instead of its card's kind;
    implies the gate on unless vad is False.
    vad_mode: overrides the cards' webrtcvad aggressiveness (0-3).
    reset_after_silence: reset recurrent state once the gate has been shut for the card's
    reset_after_ms (a new utterance starts from a clean state, as in training).
    record: keep every raw posterior (for evaluation and tests; costs memory on long streams).
    history: frames of smoothed scores each model keeps for the UI's roll.
    event_history: finished events kept in `Engine.events` (the latest ones: a stream left
    running for a month must not grow without bound; sinks see every event as it finishes).
    """

    vad: bool | None = None
    vad_kind: GateKind | None = None
    vad_mode: int | None = None
    reset_after_silence: bool = True
    record: bool = False
    history: int = 500
    event_history: int = 1000

    def __post_init__(self) -> None:
        """Refuse what would otherwise be taken silently for something else.

        `vad="off"` is a non-empty string, which every `if options.vad` reads as on; a float
        history would fail deep inside numpy. numpy bools and integers are taken (and stored as
        Python ones): they are what arithmetic on arrays gives.
        """
        for name in ("vad", "reset_after_silence", "record"):
            value = getattr(self, name)
            if name == "vad" and value is None:
                continue
            if not isinstance(value, bool | np.bool_):
                also = " or None" if name == "vad" else ""
                raise ValueError(f"EngineOptions.{name} must be True or False{also}, not "
                                 f"{value!r}")
            object.__setattr__(self, name, bool(value))
        if self.vad_kind is not None and self.vad_kind not in ("webrtc", "silero"):
            raise ValueError("EngineOptions.vad_kind must be 'webrtc', 'silero' or None, not "
                             f"{self.vad_kind!r}")
        mode = self.vad_mode
        if mode is not None:
            if not _is_int(mode) or not 0 <= mode <= 3:
                raise ValueError("EngineOptions.vad_mode must be an integer 0-3 (webrtcvad "
                                 f"aggressiveness) or None, not {mode!r}")
            object.__setattr__(self, "vad_mode", int(mode))
        for name in ("history", "event_history"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"EngineOptions.{name} must be a positive integer, not "
                                 f"{value!r}")
            object.__setattr__(self, name, int(value))


def _is_int(value: object) -> bool:
    """An integer that is not a bool (True is an int to Python, never a count or a mode)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


@dataclass
class StageTimes:
    """Compute seconds spent per stage (in the last feed, or accumulated).

    model: the part of inference spent inside onnxruntime's session.run for frame models (the
    model's own cost; the rest of inference is normalization and state bookkeeping).
    """

    vad: float = 0.0
    features: float = 0.0
    inference: float = 0.0
    smoothing: float = 0.0
    model: float = 0.0

    @property
    def total(self) -> float:
        return self.vad + self.features + self.inference + self.smoothing

    def add(self, other: StageTimes) -> None:
        self.vad += other.vad
        self.features += other.features
        self.inference += other.inference
        self.smoothing += other.smoothing
        self.model += other.model


@dataclass
class Recording:
    """Raw (unsmoothed) posteriors of one model with their time stamps."""

    times: list[np.ndarray] = field(default_factory=list)
    posteriors: list[np.ndarray] = field(default_factory=list)

    def arrays(self, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.times:
            return np.zeros(0), np.zeros((0, n_classes), dtype=np.float32)
        return np.concatenate(self.times), np.concatenate(self.posteriors)


class _RateGroup:
    """Everything that runs at one sample rate.

    A resampler from the stream rate if needed, the shared frontends, the VAD gates.
    """

    def __init__(self, stream_rate: int, rate: int) -> None:
        self.rate = rate
        self.resampler = None
        if rate != stream_rate:
            import soxr

            self.resampler = soxr.ResampleStream(stream_rate, rate, 1, dtype="float32")
        self.frontends: dict[FrontendSpec, AnyFrontend] = {}
        self.gates: dict[VadOptions, Gate] = {}
        self.samples = 0  # samples pushed at this rate
        # keyed by the Frontend object: an identity hash, where a FrontendSpec hashes ~30 fields
        self.new_frames: dict[AnyFrontend, tuple[int, np.ndarray]] = {}

    def frontend(self, spec: FrontendSpec) -> AnyFrontend:
        if spec not in self.frontends:
            self.frontends[spec] = make_frontend(spec, self.rate)
        return self.frontends[spec]

    def gate(self, options: VadOptions) -> Gate:
        """The group's gate with these options (one per distinct options: models share it)."""
        if options not in self.gates:
            self.gates[options] = make_gate(self.rate, options)
        return self.gates[options]


class ModelStream:
    """One model listening to the stream: its runner, gate and smoother."""

    def __init__(self, model: OnnxModel, group: _RateGroup, options: EngineOptions) -> None:
        card = model.card
        self.model = model
        self.card: ModelCard = card
        self.group = group
        self.frontends = {name: group.frontend(spec) for name, spec in card.frontends.items()}
        use_vad = card.vad.enabled if options.vad is None else options.vad
        if options.vad is None and options.vad_kind is not None:
            use_vad = True
        self.gate: Gate | None = None
        if use_vad:
            vopts = VadOptions.from_spec(card.vad, options.vad_kind, options.vad_mode)
            self.gate = group.gate(vopts)
        self.runner: FrameRunner | WindowRunner
        self._frame_model = bool(card.streaming)
        hop_s = card.decision_hop_s()
        # pre-roll in decisions: frames (frame models) or strides (window models) held while shut
        pre_roll = int(np.ceil(card.vad.pre_roll_ms / 1000.0 / hop_s - 1e-9)) if use_vad else 0
        self.pre_roll = pre_roll
        if card.streaming:
            self.runner = FrameRunner(model)
            fe = self._fe = self.frontends[card.inputs[0].frontend]
            self._hop, self._win = fe.hop, fe.window
            self._ring = FrameRing(pre_roll, fe.spec.n_bins(group.rate))
        else:
            self.runner = WindowRunner(model, pre_roll=pre_roll)
        self.reset_frames = (
            int(np.ceil(card.vad.reset_after_ms / 1000.0 / hop_s))
            if options.reset_after_silence
            else None
        )
        self._off_frames = 0
        self.smoother = Smoother(
            card.labels,
            card.smoothing,
            hop_s,
            task=card.task,
            ignore_labels=card.ignore_labels,
            history=options.history,
            model=card.name,
        )
        self.recording = Recording() if options.record else None
        self.gate_open = not use_vad
        self.rows = 0  # smoothed frames the last process() completed
        self._labels = tuple(card.labels)
        self._open_keys: frozenset[tuple[str, float]] = frozenset()

    def open_events(self) -> tuple[tuple[OpenEvent, ...], tuple[OpenEvent, ...]]:
        """(events that opened since the last call, every open event), oldest first."""
        active = self.smoother.active
        if not active and not self._open_keys:
            return (), ()
        now = tuple(
            OpenEvent(lb, on, score, self.card.name)
            for lb, (on, score) in sorted(active.items(), key=lambda kv: kv[1][0])
        )
        keys = frozenset((e.label, e.onset_s) for e in now)
        opened = tuple(e for e in now if (e.label, e.onset_s) not in self._open_keys)
        self._open_keys = keys
        return opened, now

    def scores(self) -> dict[str, float]:
        """Per class, the highest smoothed score over the frames of the last process().

        When it completed none (the gate holds frames as pre-roll, a window model between
        strides, a block shorter than a hop), each class keeps its last smoothed value (0.0
        before the first frame): a reader indexing `scores[label]` never meets a missing class,
        and a score does not fall to 0 only because no frame was due.
        """
        sm = self.smoother
        top = sm.recent_max(self.rows) if self.rows > 1 else sm.newest_row()
        return dict(zip(self._labels, top.tolist(), strict=True))

    def process(self, times: StageTimes) -> list[Event]:
        t0 = time.perf_counter()
        runner = self.runner
        if self._frame_model:
            assert isinstance(runner, FrameRunner)
            c0 = runner.call_s
            stamps, post = self._run_frames(runner)
            times.model += runner.call_s - c0
        else:
            assert isinstance(runner, WindowRunner)
            for name, fe in self.frontends.items():
                entry = self.group.new_frames.get(fe)
                if entry is not None:
                    runner.add_frames(name, entry[1])
            gate = self.gate.is_open_at if self.gate is not None else None
            stamps, post = runner.step(gate)
        t1 = time.perf_counter()
        self.rows = len(post)
        events = self._emit(stamps, post)
        times.inference += t1 - t0
        times.smoothing += time.perf_counter() - t1
        return events

    def _emit(self, stamps: np.ndarray, post: np.ndarray) -> list[Event]:
        """Posteriors (consecutive decisions) to the recording and the smoother."""
        if not len(post):
            return []
        if self.recording is not None:
            self.recording.times.append(stamps)
            self.recording.posteriors.append(post)
        return self.smoother.update(post, float(stamps[0]))

    def flush(self) -> list[Event]:
        """End of stream: decisions still held as pre-roll are answered (gate shut: zeros)."""
        n_classes = len(self.card.labels)
        if isinstance(self.runner, FrameRunner):
            self.rows = n = self._ring.count
            if not n:
                return []
            first = self._ring.first
            self._ring.clear()
            return self._emit(self._stamps(first, n), np.zeros((n, n_classes), np.float32))
        stamps, post = self.runner.flush_held()
        self.rows = len(post)
        return self._emit(stamps, post)

    def _stamps(self, first: int, n: int) -> np.ndarray:
        """Time stamps (s) of frames first .. first + n - 1: the centre of each frame."""
        if n <= 1:  # the live case (one frame per 10 ms block, or none held back): no arange
            t = (first * self._hop + self._win / 2) / self.group.rate
            return np.array([t] if n else [], dtype=np.float64)
        return ((np.arange(first, first + n) * self._hop) + self._win / 2) / self.group.rate

    def _run_frames(self, runner: FrameRunner) -> tuple[np.ndarray, np.ndarray]:
        first, frames = self.group.new_frames.get(self._fe, (0, None))
        n_classes = len(self.card.labels)
        if frames is None or not len(frames):
            return np.zeros(0), np.zeros((0, n_classes), dtype=np.float32)
        if len(frames) == 1:  # the live case (one 10 ms block, one frame): no index arrays
            return self._run_one_frame(runner, first, frames)
        idx = np.arange(first, first + len(frames))
        stamps = (idx * self._hop + self._win / 2) / self.group.rate
        if self.gate is None:
            return stamps, runner.run(frames)
        gate = self.gate
        is_open = np.fromiter(
            (gate.is_open_at(int(i) * self._hop + self._win) for i in idx), bool, len(idx)
        )
        self.gate_open = bool(is_open[-1])
        parts: list[np.ndarray] = []
        out_first = -1
        i = 0
        while i < len(frames):
            j = i
            while j < len(frames) and is_open[j] == is_open[i]:
                j += 1
            start, post = self._gated_run(runner, first + i, frames[i:j], bool(is_open[i]))
            if len(post):
                if out_first < 0:
                    out_first = start
                parts.append(post)
            i = j
        if not parts:
            return np.zeros(0), np.zeros((0, n_classes), dtype=np.float32)
        post = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return self._stamps(out_first, len(post)), post

    def _gated_run(
        self, runner: FrameRunner, first: int, frames: np.ndarray, is_open: bool
    ) -> tuple[int, np.ndarray]:
        """One run of frames that share a gate state: (first answered frame, answers).

        Open: the pre-roll is run first, then the frames; shut: the frames are held as pre-roll
        and only those pushed out of it are answered (zeros).
        """
        if not is_open:
            self._off_frames += len(frames)
            out_first, n = self._ring.push(first, frames)
            return out_first, np.zeros((n, len(self.card.labels)), dtype=np.float32)
        if self.reset_frames is not None and self._off_frames >= self.reset_frames:
            runner.reset()
        self._off_frames = 0
        if self._ring.count:
            start = self._ring.first
            frames = np.concatenate((self._ring.take(), frames))
            return start, runner.run(frames)
        return first, runner.run(frames)

    def _run_one_frame(
        self, runner: FrameRunner, index: int, frames: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """_run_frames for a single frame, with the same gate, pre-roll and reset rules."""
        if self.gate is None:
            return self._stamps(index, 1), runner.run_one(frames)
        is_open = self.gate.is_open_at(index * self._hop + self._win)
        self.gate_open = is_open
        if is_open and not self._ring.count:
            if self.reset_frames is not None and self._off_frames >= self.reset_frames:
                runner.reset()
            self._off_frames = 0
            return self._stamps(index, 1), runner.run_one(frames)
        start, post = self._gated_run(runner, index, frames, is_open)
        return self._stamps(start, len(post)), post

    def reset_state(self) -> None:
        """Forget recurrent state and the smoothing filters' memory; open events carry on."""
        self.runner.reset()
        self.smoother.reset_filters()


class Engine:
    """Feeds any chunking of one audio stream to one or more models.

    models: OnnxModel objects (`hark.load_model`), or one of them. sample_rate: the rate of the
    samples you feed; each model hears them resampled (soxr) to its card's rate. Without it every
    model must share one rate, which is then the stream's: never silently the first model's.
    """

    def __init__(
        self,
        models: Sequence[OnnxModel] | OnnxModel,
        options: EngineOptions | None = None,
        *,
        sample_rate: int | None = None,
    ) -> None:
        models = [models] if isinstance(models, OnnxModel) else list(models)
        if not models:
            raise ValueError("the engine needs at least one model")
        self.options = options or EngineOptions()
        rates = sorted({int(m.card.sample_rate) for m in models})
        if sample_rate is None:
            if len(rates) > 1:
                raise ValueError(
                    f"the models run at {', '.join(map(str, rates))} Hz: give sample_rate= "
                    "(the rate of the samples you feed)"
                )
            sample_rate = rates[0]
        if not (isinstance(sample_rate, int | np.integer) and 1000 <= sample_rate <= 768000):
            raise ValueError(
                f"sample_rate must be an integer in 1000..768000 Hz, not {sample_rate!r}"
            )
        self.sample_rate = int(sample_rate)
        self._models = models
        self._build()
        self.events: deque[Event] = deque(maxlen=self.options.event_history)

    def _build(self) -> None:
        self._groups: dict[int, _RateGroup] = {}
        self.streams: list[ModelStream] = []
        for m in self._models:
            rate = m.card.sample_rate
            if rate not in self._groups:
                self._groups[rate] = _RateGroup(self.sample_rate, rate)
            self.streams.append(ModelStream(m, self._groups[rate], self.options))
        self.samples_in = 0
        self.nonfinite = 0
        self.last_times = StageTimes()
        self.total_times = StageTimes()
        self._meter: tuple[float, np.ndarray] | None = None  # (energy, block) of the last feed

    @property
    def level_dbfs(self) -> float:
        """Mean power of the last block fed (dBFS; -120 before any)."""
        if self._meter is None:
            return -120.0
        energy, x = self._meter
        return 10.0 * math.log10(max(energy / x.size, 1e-12))

    @property
    def peak(self) -> float:
        """Largest absolute sample of the last block fed (0 before any)."""
        if self._meter is None:
            return 0.0
        x = self._meter[1]
        return float(max(x.max(), -x.min()))

    @property
    def time_s(self) -> float:
        """Seconds of audio consumed so far."""
        return self.samples_in / self.sample_rate

    @property
    def models(self) -> list[OnnxModel]:
        return [s.model for s in self.streams]

    def feed(self, samples: np.ndarray) -> Update:
        """Consume mono samples at `sample_rate` (any length); report what they changed.

        float32 / float64 are taken as they are (full scale 1.0); int16 and int32 are scaled
        to [-1, 1). Anything else (uint8, complex, several channels) is a ValueError.
        """
        x = as_mono_float32(samples)
        # one pass for the NaN check and the level meter: any NaN/Inf makes the sum non-finite
        energy = float(np.dot(x, x)) if x.size else 0.0
        if not math.isfinite(energy):
            bad = ~np.isfinite(x)
            if bad.any():
                self.nonfinite += int(bad.sum())
                x = np.where(bad, np.float32(0.0), x)
            energy = float(np.dot(x.astype(np.float64), x.astype(np.float64)))
        if x.size:  # the meter is read at the UI's pace, so it is computed when read
            self._meter = (energy, x.copy())
        self.samples_in += x.size
        times = StageTimes()
        for group in self._groups.values():
            y = x if group.resampler is None else group.resampler.resample_chunk(x)
            group.samples += y.size
            t0 = time.perf_counter()
            for gate in group.gates.values():
                gate.push(y)
            t1 = time.perf_counter()
            new = group.new_frames = {}
            for fe in group.frontends.values():
                first = fe.frames_out
                new[fe] = (first, fe.push(y))
            times.vad += t1 - t0
            times.features += time.perf_counter() - t1
        events: list[Event] = []
        for stream in self.streams:
            events.extend(stream.process(times))
        self.last_times = times
        self.total_times.add(times)
        self.events.extend(events)
        return self._update(events)

    def _update(self, events: list[Event]) -> Update:
        if len(self.streams) == 1:  # one model (hark mic's usual case): no lists to merge
            stream = self.streams[0]
            new, now = stream.open_events()
            one = {stream.card.name: stream.scores()}
            return Update(tuple(events), new, now, one, self.time_s)
        opened: list[OpenEvent] = []
        active: list[OpenEvent] = []
        scores: dict[str, dict[str, float]] = {}
        for stream in self.streams:
            new, now = stream.open_events()
            opened.extend(new)
            active.extend(now)
            scores[stream.card.name] = stream.scores()
        return Update(tuple(events), tuple(opened), tuple(active), scores, self.time_s)

    def close(self) -> Update:
        """End of stream: close open events (their offset is now) and return them."""
        events: list[Event] = []
        for stream in self.streams:
            events.extend(stream.flush())
            events.extend(stream.smoother.close(self.time_s))
        self.events.extend(events)
        return self._update(events)

    def reset(self) -> None:
        """Start a new stream: clock, state, filters and open events are forgotten.

        Call close() first to keep the open events; the event history is kept.
        """
        self._build()

    def reset_models(self) -> None:
        """Forget recurrent state (the UI's 'r'); features and events carry on."""
        for stream in self.streams:
            stream.reset_state()

    def recording(self, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Raw posteriors recorded for model `index` (EngineOptions(record=True))."""
        stream = self.streams[index]
        if stream.recording is None:
            raise RuntimeError("the engine was not asked to record posteriors")
        return stream.recording.arrays(len(stream.card.labels))


_INT_SCALE = {np.dtype(np.int16): 1.0 / 32768.0, np.dtype(np.int32): 1.0 / 2147483648.0}


def as_mono_float32(samples: object) -> np.ndarray:
    """A block as 1-D float32 at full scale 1.0: int16/int32 scaled, floats cast, else refused."""
    x = np.asarray(samples)
    if x.ndim > 1:
        if sum(d > 1 for d in x.shape) > 1:
            raise ValueError(f"feed mono samples (n,), not an array of shape {x.shape}")
        x = x.reshape(-1)
    elif x.ndim == 0:
        x = x.reshape(1)
    if x.dtype == np.float32:
        return x
    if x.dtype in _INT_SCALE:
        return (x.astype(np.float64) * _INT_SCALE[x.dtype]).astype(np.float32)
    if x.dtype.kind == "f":
        return x.astype(np.float32)
    raise ValueError(
        f"samples must be float32/float64 (full scale 1.0) or int16/int32, not {x.dtype}"
    )


def offline_posteriors(
    model: OnnxModel,
    audio: np.ndarray,
    chunk: int | None = None,
    vad: bool = False,
    vad_kind: GateKind | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run a whole signal through the engine (VAD off by default): (times_s, posteriors).

    The stream is closed at the end, so decisions held as pre-roll are in the result too.
    """
    engine = Engine([model], EngineOptions(vad=vad, vad_kind=vad_kind if vad else None,
                                           record=True))
    step = chunk or max(1, audio.size)
    for i in range(0, audio.size, step):
        engine.feed(audio[i : i + step])
    engine.close()
    return engine.recording(0)
