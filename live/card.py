"""The model card: everything the runtime needs to feed and read one ONNX model.

A card is NAME.json beside NAME.onnx. `hark export` writes it; `load_card` validates it so that a
mismatch is one clear error at load time instead of a wrong answer at run time.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from hark.live.errors import HarkError

SCHEMA_VERSION = 1
FRONTEND_KINDS = ("specgram", "logmel", "mfcc", "raw")
INPUT_ROLES = ("frames", "window", "raw")
TASKS = ("multiclass", "multilabel")


class CardError(HarkError):
    """A model card that is missing, malformed, or does not match its model."""


@dataclass(frozen=True)
class FrontendSpec:
    """How audio becomes feature frames. Frame i covers samples [i*hop, i*hop + window) (causal).

    kind: specgram (scipy-style PSD, hann, log(x + log_floor)), logmel, mfcc, or raw (no frames:
    the input is the waveform itself). window_ms / hop_ms define the framing; n_fft defaults to
    the window length for specgram and must be >= it for logmel/mfcc.
    """

    kind: str = "logmel"
    window_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int | None = None
    n_mels: int = 40
    fmin: float = 0.0
    fmax: float | None = None
    n_mfcc: int = 13
    log_floor: float = 1e-6

    def window_samples(self, sample_rate: int) -> int:
        return _exact_samples(self.window_ms, sample_rate, "window_ms")

    def hop_samples(self, sample_rate: int) -> int:
        return _exact_samples(self.hop_ms, sample_rate, "hop_ms")

    def fft_size(self, sample_rate: int) -> int:
        return self.n_fft if self.n_fft is not None else self.window_samples(sample_rate)

    def n_bins(self, sample_rate: int) -> int:
        """Width of one feature frame."""
        if self.kind == "specgram":
            return self.fft_size(sample_rate) // 2 + 1
        if self.kind == "logmel":
            return self.n_mels
        if self.kind == "mfcc":
            return self.n_mfcc
        return 1

    def validate(self, sample_rate: int) -> None:
        if self.kind not in FRONTEND_KINDS:
            raise CardError(
                f"unknown frontend kind {self.kind!r} (expected one of {', '.join(FRONTEND_KINDS)})"
            )
        if self.kind == "raw":
            return
        win = self.window_samples(sample_rate)
        self.hop_samples(sample_rate)
        if self.fft_size(sample_rate) < win:
            raise CardError(
                f"frontend n_fft {self.n_fft} is shorter than the window ({win} samples)"
            )
        if self.kind in ("logmel", "mfcc"):
            fmax = self.fmax if self.fmax is not None else sample_rate / 2
            if not 0 <= self.fmin < fmax <= sample_rate / 2:
                raise CardError(
                    f"frontend fmin/fmax {self.fmin}/{fmax} outside 0..{sample_rate / 2} Hz"
                )
        if self.kind == "mfcc" and not 0 < self.n_mfcc <= self.n_mels:
            raise CardError(f"n_mfcc {self.n_mfcc} must be in 1..n_mels ({self.n_mels})")
        if self.log_floor <= 0:
            raise CardError("frontend log_floor must be > 0")


def _exact_samples(ms: float, sample_rate: int, what: str) -> int:
    n = ms * sample_rate / 1000.0
    if n < 1 or abs(n - round(n)) > 1e-6:
        raise CardError(f"{what}={ms} is not a whole number of samples at {sample_rate} Hz")
    return int(round(n))


@dataclass(frozen=True)
class InputSpec:
    """One ONNX input and what feeds it.

    role: frames (a sequence of feature frames, fed as they arrive: (1, T, bins)),
    window (the last window_s of feature frames: (1, frames, bins[, 1])), or raw (the last
    window_s of samples: (1, samples[, 1])). shape uses None for a dynamic axis.
    """

    name: str
    role: str
    shape: tuple[int | None, ...]
    frontend: str = "main"


@dataclass(frozen=True)
class StateSpec:
    """A recurrent state carried from one call to the next: output `output` feeds input `input`."""

    input: str
    output: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class SmoothingSpec:
    """Defaults for turning posteriors into events (see live.smoothing)."""

    method: Literal["median", "ema", "none"] = "median"
    median_frames: int = 5
    ema_alpha: float = 0.3
    threshold_on: float = 0.5
    threshold_off: float = 0.35
    min_on_ms: float = 60.0
    min_off_ms: float = 100.0
    # back-date onsets to where the posterior began to rise (None: where threshold_on was reached)
    threshold_rise: float | None = None
    # report offsets this much earlier (a label tail the model was trained with)
    offset_advance_ms: float = 0.0


VAD_KINDS = ("webrtc", "silero")
WEBRTC_RATES = (8000, 16000, 32000, 48000)
SILERO_RATES = (8000, 16000)
MAX_PRE_ROLL_MS = 2000.0  # frames held while the gate is shut: bounded memory and delay


@dataclass(frozen=True)
class VadSpec:
    """Whether a speech gate applies to this model, which one, and how.

    kind: webrtc (webrtcvad, `mode` 0-3 on `frame_ms` frames) or silero (silero-vad's ONNX on its
    own 32 ms frames, speech from `threshold` up, held down to threshold - 0.15 as silero does).
    hangover_ms keeps the gate open after speech; pre_roll_ms is how much audio before the gate
    opens the model is run over when it does (state warmed, those posteriors back-dated), so an
    onset the VAD was late for is not lost. reset_after_ms of shut gate resets recurrent state.
    """

    enabled: bool = True
    kind: Literal["webrtc", "silero"] = "webrtc"
    mode: int = 2
    frame_ms: int = 30
    threshold: float = 0.5
    hangover_ms: float = 300.0
    pre_roll_ms: float = 300.0
    reset_after_ms: float = 500.0

    def validate(self, sample_rate: int) -> None:
        """One clear error for settings no gate can run with."""
        if self.kind not in VAD_KINDS:
            raise CardError(f"unknown vad kind {self.kind!r} (expected webrtc or silero)")
        if self.mode not in (0, 1, 2, 3) or self.frame_ms not in (10, 20, 30):
            raise CardError("vad mode must be 0-3 and frame_ms 10, 20 or 30")
        if not 0.0 < self.threshold < 1.0:
            raise CardError("vad threshold must be between 0 and 1")
        if self.hangover_ms < 0 or self.reset_after_ms < 0:
            raise CardError("vad hangover_ms and reset_after_ms must be >= 0")
        if not 0 <= self.pre_roll_ms <= MAX_PRE_ROLL_MS:
            raise CardError(f"vad pre_roll_ms must be in 0..{MAX_PRE_ROLL_MS:.0f}")
        if not self.enabled:
            return
        rates = WEBRTC_RATES if self.kind == "webrtc" else SILERO_RATES
        if sample_rate not in rates:
            khz = "/".join(str(r // 1000) for r in rates)
            raise CardError(f"the {self.kind} VAD cannot run at {sample_rate} Hz "
                            f"({khz} kHz only)")


@dataclass(frozen=True)
class Normalization:
    """Per-bin standardisation applied to frames of one frontend: (x - mean) / std."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class ModelCard:
    """What `hark export` writes beside NAME.onnx; see DESIGN.md "The model card"."""

    name: str
    labels: tuple[str, ...]
    sample_rate: int
    frontends: dict[str, FrontendSpec]
    inputs: tuple[InputSpec, ...]
    task: str = "multiclass"
    output: str | None = None
    state: tuple[StateSpec, ...] = ()
    window_s: float | None = None
    stride_s: float | None = None
    normalization: dict[str, Normalization] = field(default_factory=dict)
    ignore_labels: tuple[str, ...] = ()
    smoothing: SmoothingSpec = field(default_factory=SmoothingSpec)
    vad: VadSpec = field(default_factory=VadSpec)
    provenance: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION

    @property
    def streaming(self) -> bool:
        """True for frame models (fed every hop); False for window models (fed every stride)."""
        return any(i.role == "frames" for i in self.inputs)

    @property
    def event_labels(self) -> tuple[str, ...]:
        """Labels that may become events (background classes such as _silence_ never do)."""
        return tuple(lb for lb in self.labels if lb not in self.ignore_labels)

    def decision_hop_s(self) -> float:
        """Seconds between two posterior vectors."""
        if self.streaming:
            fe = self.frontends[self._frames_input().frontend]
            return fe.hop_ms / 1000.0
        assert self.stride_s is not None
        return self.stride_s

    def algorithmic_latency_s(self) -> float:
        """Audio that must arrive before a decision about a sound can exist, plus smoothing delay.

        Frame models: one analysis window; window models: the whole window_s. Both plus one
        decision hop (worst-case alignment) and the median filter's look-behind half.
        """
        hop = self.decision_hop_s()
        if self.streaming:
            fe = self.frontends[self._frames_input().frontend]
            base = fe.window_ms / 1000.0
        else:
            base = float(self.window_s or 0.0)
        sm = self.smoothing
        smooth = (sm.median_frames // 2) * hop if sm.method == "median" else 0.0
        return base + hop + smooth

    def _frames_input(self) -> InputSpec:
        return next(i for i in self.inputs if i.role == "frames")

    # ---- serialisation -------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["labels"] = list(self.labels)
        return {"schema": d.pop("schema"), **d}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelCard:
        try:
            schema = int(d.get("schema", 0))
            if schema != SCHEMA_VERSION:
                raise CardError(
                    f"card schema {schema} is not supported (expected {SCHEMA_VERSION})"
                )
            frontends = {k: FrontendSpec(**v) for k, v in d["frontends"].items()}
            inputs = tuple(
                InputSpec(
                    name=i["name"],
                    role=i["role"],
                    shape=tuple(i["shape"]),
                    frontend=i.get("frontend", "main"),
                )
                for i in d["inputs"]
            )
            state = tuple(
                StateSpec(input=s["input"], output=s["output"], shape=tuple(s["shape"]))
                for s in d.get("state", ())
            )
            norm = {
                k: Normalization(mean=tuple(v["mean"]), std=tuple(v["std"]))
                for k, v in (d.get("normalization") or {}).items()
            }
            card = cls(
                name=str(d["name"]),
                labels=tuple(d["labels"]),
                sample_rate=int(d["sample_rate"]),
                frontends=frontends,
                inputs=inputs,
                task=d.get("task", "multiclass"),
                output=d.get("output"),
                state=state,
                window_s=d.get("window_s"),
                stride_s=d.get("stride_s"),
                normalization=norm,
                ignore_labels=tuple(d.get("ignore_labels", ())),
                smoothing=SmoothingSpec(**d.get("smoothing", {})),
                vad=VadSpec(**d.get("vad", {})),
                provenance=dict(d.get("provenance", {})),
                evaluation=dict(d.get("evaluation", {})),
            )
        except CardError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise CardError(f"malformed model card: {type(e).__name__}: {e}") from e
        card.validate()
        return card

    # ---- validation ----------------------------------------------------------------------
    def validate(self) -> None:
        """Check the card against itself (the ONNX side is checked by `check_against_model`)."""
        if self.task not in TASKS:
            raise CardError(f"unknown task {self.task!r} (expected multiclass or multilabel)")
        if not self.labels or len(set(self.labels)) != len(self.labels):
            raise CardError("labels must be a non-empty list of distinct names")
        unknown = set(self.ignore_labels) - set(self.labels)
        if unknown:
            raise CardError(f"ignore_labels {sorted(unknown)} are not among the labels")
        if self.sample_rate <= 0:
            raise CardError(f"sample_rate {self.sample_rate} must be positive")
        if not self.inputs:
            raise CardError("card lists no inputs")
        for name, fe in self.frontends.items():
            try:
                fe.validate(self.sample_rate)
            except CardError as e:
                raise CardError(f"frontend {name!r}: {e}") from None
        for name, norm in self.normalization.items():
            if name not in self.frontends:
                raise CardError(f"normalization for unknown frontend {name!r}")
            n = self.frontends[name].n_bins(self.sample_rate)
            if len(norm.mean) != n or len(norm.std) != n:
                raise CardError(
                    f"normalization {name!r} has {len(norm.mean)}/{len(norm.std)} values, "
                    f"frontend gives {n} bins"
                )
            if min(norm.std) <= 0:
                raise CardError(f"normalization {name!r} has a std <= 0")
        roles = {i.role for i in self.inputs}
        for inp in self.inputs:
            if inp.role not in INPUT_ROLES:
                raise CardError(f"input {inp.name!r}: unknown role {inp.role!r}")
            if inp.frontend not in self.frontends:
                raise CardError(f"input {inp.name!r} names unknown frontend {inp.frontend!r}")
            fe = self.frontends[inp.frontend]
            if inp.role == "raw" and fe.kind != "raw":
                raise CardError(f"input {inp.name!r}: role raw needs a raw frontend, not {fe.kind}")
            if inp.role != "raw" and fe.kind == "raw":
                raise CardError(f"input {inp.name!r}: a raw frontend can only feed a raw input")
            self._check_input_shape(inp)
        if "frames" in roles:
            if len(self.inputs) != 1:
                raise CardError("a frame model (role frames) must have exactly one feature input")
        else:
            if not self.window_s or not self.stride_s or self.window_s <= 0 or self.stride_s <= 0:
                raise CardError("a window model needs window_s and stride_s > 0")
            for inp in self.inputs:
                fe = self.frontends[inp.frontend]
                if fe.kind == "raw":
                    _exact_samples(self.stride_s * 1000, self.sample_rate, "stride_s")
                else:
                    hop = fe.hop_ms / 1000.0
                    k = self.stride_s / hop
                    if abs(k - round(k)) > 1e-6:
                        raise CardError(
                            f"stride_s {self.stride_s} is not a whole number of {fe.hop_ms} ms hops"
                        )
        input_names = {i.name for i in self.inputs}
        for st in self.state:
            if st.input in input_names:
                raise CardError(f"state input {st.input!r} is also listed as a feature input")
        if self.state and "frames" not in roles:
            raise CardError("recurrent state needs a frame model (an input with role frames)")
        sm = self.smoothing
        if sm.method not in ("median", "ema", "none"):
            raise CardError(f"unknown smoothing method {sm.method!r}")
        if not 0 <= sm.threshold_off <= sm.threshold_on <= 1:
            raise CardError("smoothing needs 0 <= threshold_off <= threshold_on <= 1")
        if sm.threshold_rise is not None and not 0 <= sm.threshold_rise <= sm.threshold_on:
            raise CardError("smoothing needs 0 <= threshold_rise <= threshold_on")
        if sm.offset_advance_ms < 0:
            raise CardError("smoothing needs offset_advance_ms >= 0")
        self.vad.validate(self.sample_rate)

    def expected_frames(self, inp: InputSpec) -> int:
        """Number of feature frames (or samples for raw) in one window of a window input."""
        fe = self.frontends[inp.frontend]
        assert self.window_s is not None
        n = int(round(self.window_s * self.sample_rate))
        if fe.kind == "raw":
            return n
        win, hop = fe.window_samples(self.sample_rate), fe.hop_samples(self.sample_rate)
        return (n - win) // hop + 1

    def _check_input_shape(self, inp: InputSpec) -> None:
        fe = self.frontends[inp.frontend]
        shape = inp.shape
        where = f"input {inp.name!r} shape {list(shape)}"
        if len(shape) < 2 or shape[0] not in (1, None):
            raise CardError(f"{where}: expected a leading batch axis of 1 or None")
        if inp.role == "raw":
            if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] != 1):
                raise CardError(f"{where}: a raw input must be (1, samples) or (1, samples, 1)")
            return
        if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] != 1):
            raise CardError(f"{where}: expected (1, frames, bins) or (1, frames, bins, 1)")
        bins = fe.n_bins(self.sample_rate)
        if shape[2] != bins:
            raise CardError(f"{where}: the {fe.kind} frontend gives {bins} bins per frame")
        if inp.role == "frames" and shape[1] not in (None, 1):
            raise CardError(f"{where}: a frames input needs a time axis of None or 1")

    def check_against_model(
        self,
        inputs: dict[str, tuple[int | str | None, ...]],
        outputs: dict[str, tuple[int | str | None, ...]],
    ) -> str:
        """Validate against the ONNX graph's inputs/outputs (name -> shape); return the output."""
        for inp in self.inputs:
            if inp.name not in inputs:
                raise CardError(f"card input {inp.name!r} is not an input of the model "
                                f"(model inputs: {', '.join(inputs)})")
            got = inputs[inp.name]
            if len(got) != len(inp.shape):
                raise CardError(f"input {inp.name!r} has rank {len(got)} in the model, "
                                f"{len(inp.shape)} in the card")
            for a, b in zip(got[1:], inp.shape[1:], strict=True):
                if isinstance(a, int) and b is not None and a != b:
                    raise CardError(f"input {inp.name!r} is {list(got)} in the model, "
                                    f"{list(inp.shape)} in the card")
            if inp.role in ("window", "raw") and isinstance(got[1], int):
                want = self.expected_frames(inp)
                if got[1] != want:
                    raise CardError(
                        f"input {inp.name!r} takes {got[1]} frames but window_s={self.window_s} "
                        f"gives {want}"
                    )
        state_in = {s.input for s in self.state}
        state_out = {s.output for s in self.state}
        for st in self.state:
            if st.input not in inputs:
                raise CardError(f"state input {st.input!r} is not an input of the model")
            if st.output not in outputs:
                raise CardError(
                    f"state input {st.input!r} has no output {st.output!r} in the model"
                )
        extra = set(inputs) - {i.name for i in self.inputs} - state_in
        if extra:
            raise CardError(f"model inputs {sorted(extra)} are not described by the card")
        candidates = [o for o in outputs if o not in state_out]
        out = self.output or (candidates[0] if candidates else None)
        if out is None or out not in outputs:
            raise CardError(f"posterior output {out!r} is not an output of the model")
        width = outputs[out][-1]
        if isinstance(width, int) and width != len(self.labels):
            raise CardError(f"the card has {len(self.labels)} labels but the model outputs "
                            f"{width} classes")
        return out


def load_card(path: str | Path) -> ModelCard:
    """Read and validate a card file."""
    p = Path(path)
    if not p.is_file():
        raise CardError(f"model card not found: {p}")
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CardError(f"model card {p} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise CardError(f"model card {p} is not a JSON object")
    try:
        return ModelCard.from_json(data)
    except CardError as e:
        raise CardError(f"{p.name}: {e}") from None
