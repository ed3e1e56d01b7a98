"""The model card: everything the runtime needs to feed and read one ONNX model.

A card is NAME.json beside NAME.onnx. `hark export` writes it; `load_card` validates it so that a
mismatch is one clear error at load time instead of a wrong answer at run time.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from hark.live.errors import HarkError

SCHEMA_VERSION = 1
MAX_CARD_BYTES = 16 * 2**20  # a card is a few kB; normalization of 16k bins is ~400 kB
FRONTEND_KINDS = ("specgram", "stft", "logmel", "mfcc", "raw", "embedding")
INPUT_ROLES = ("frames", "window", "raw")
TASKS = ("multiclass", "multilabel")
# fields that change numbers only over a whole window (a clip), never per frame
WINDOW_OP_FIELDS = ("db_ref", "top_db", "delta_order")
# The speech-embedding backbone's framing (live.backbone): 32-bin mel frames of 512 samples every
# 160, clamped to 80 dB below the loudest of each chunk of 8 (openWakeWord's 80 ms calls), and
# one 96-dim embedding of 76 mel frames every 8 (80 ms), at 16 kHz.
EMBEDDING_RATE = 16000
EMBEDDING_MEL_WINDOW = 512
EMBEDDING_MEL_HOP = 160
EMBEDDING_MEL_FRAMES = 76
EMBEDDING_STEP_MELS = 8
EMBEDDING_DIM = 96
EMBEDDING_HOP = EMBEDDING_MEL_HOP * EMBEDDING_STEP_MELS  # 1280 samples
# embedding e needs the whole clamp chunks holding mel frames 8e .. 8e + 75: frames up to 8e + 79
EMBEDDING_CHUNKS = -(-EMBEDDING_MEL_FRAMES // EMBEDDING_STEP_MELS)  # 10
EMBEDDING_WINDOW = (EMBEDDING_MEL_HOP * (EMBEDDING_CHUNKS * EMBEDDING_STEP_MELS - 1)
                    + EMBEDDING_MEL_WINDOW)  # 13152 samples (822 ms)
BACKBONES = ("speech_embedding",)


class CardError(HarkError):
    """A model card that is missing, malformed, or does not match its model."""


@dataclass(frozen=True)
class FrontendSpec:
    """How audio becomes feature frames (see live/features.py for the exact maths).

    kind: specgram (scipy.signal.spectrogram PSD, hann, log(x + log_floor): fixed), stft (the
    spectrum itself, |X| or |X|^2), logmel (a mel filterbank on it, then `log`), mfcc (a DCT of
    the log-mel), raw (no frames: the input is the waveform itself), or embedding (a frozen
    speech-embedding backbone, live.backbone: one 96-dim frame every 80 ms at 16 kHz, covering
    the last 782 ms; its framing is the backbone's own, the other fields do not apply).

    Framing: causal by default, frame t covers samples [t*hop, t*hop + window), zero-padded at
    its end to n_fft (scipy, tf.signal, python_speech_features). center=True is librosa's: frame
    t is n_fft samples centred on sample t*hop, the window centred inside it, the stream's start
    padded by n_fft//2 (pad_mode); the frame is complete n_fft - n_fft//2 samples after t*hop.
    """

    kind: Literal["specgram", "stft", "logmel", "mfcc", "raw", "embedding"] = "logmel"
    window_ms: float = 25.0
    hop_ms: float = 10.0
    # FFT size; None = the window length; "pow2" = the next power of 2 >= the window (tf.signal)
    n_fft: int | Literal["pow2"] | None = None
    n_mels: int = 40
    fmin: float = 0.0
    fmax: float | None = None
    n_mfcc: int = 13
    # the floor of the log: log(x + floor), max(x, floor) or x == 0 -> floor (see floor_mode);
    # librosa's amin, tf's eps, python_speech_features' machine eps
    log_floor: float = 1e-6
    # window length in samples (librosa win_length, tf frame_length); overrides window_ms
    win_length: int | None = None
    # hop in samples (librosa hop_length, tf frame_step); overrides hop_ms
    hop_length: int | None = None
    # librosa center=True framing (see above); pad_mode pads the stream's start
    center: bool = False
    pad_mode: Literal["constant", "reflect"] = "constant"
    # hann/hamming are periodic (scipy get_window, librosa, tf.signal); *_symmetric are numpy's
    # np.hanning / np.hamming; rect is python_speech_features' default (no window)
    window_fn: Literal["hann", "hamming", "rect", "hann_symmetric", "hamming_symmetric"] = "hann"
    # y[n] = x[n] - preemphasis * x[n-1] over the whole stream (python_speech_features: 0.97)
    preemphasis: float = 0.0
    # 1.0: magnitude |X| (tf.abs, librosa power=1); 2.0: power |X|^2
    power: float = 2.0
    # "1/n_fft": the spectrum divided by n_fft (python_speech_features' powspec)
    fft_scale: Literal["none", "1/n_fft"] = "none"
    # whose mel filterbank: librosa.filters.mel (mel_scale, mel_norm apply), tf.signal's
    # linear_to_mel_weight_matrix (HTK, no norm, DC zeroed), python_speech_features' integer-bin one
    filterbank: Literal["librosa", "tf", "psf"] = "librosa"
    mel_scale: Literal["slaney", "htk"] = "slaney"
    mel_norm: Literal["slaney"] | None = "slaney"
    # ln (np.log), log10, db (10*log10: librosa power_to_db), db_amplitude (20*log10:
    # amplitude_to_db, log_floor then is its amin on the amplitude), none (linear values)
    log: Literal["ln", "log10", "db", "db_amplitude", "none"] = "ln"
    # how log_floor applies: add (log(x + floor): tf, hark), max (librosa's amin),
    # replace_zero (python_speech_features: where(x == 0, eps, x))
    floor_mode: Literal["add", "max", "replace_zero"] = "add"
    # dB reference: a value (librosa ref=1.0) or "max" (ref=np.max: the max over the window)
    db_ref: float | Literal["max"] = 1.0
    # clamp dB values to (max over the window - top_db): librosa power_to_db's top_db (80 in
    # librosa.feature.mfcc, applied to the mel dB before the DCT); per window, never per frame
    top_db: float | None = None
    # DCT of the mfcc kind: type 2 or 3; norm "ortho" (scipy/librosa), None (scipy unnormalised),
    # "tf" (tf.signal.mfccs_from_log_mel_spectrograms: DCT-II * 1/sqrt(2 * n_mels))
    dct_type: Literal[2, 3] = 2
    dct_norm: Literal["ortho", "tf"] | None = "ortho"
    # cepstral liftering 1 + (L/2) sin(pi n / L); librosa counts n from 1, python_speech_features
    # (ceplifter) from 0
    lifter: float = 0.0
    lifter_style: Literal["librosa", "psf"] = "librosa"
    # python_speech_features appendEnergy: coefficient 0 replaced by the log frame energy
    append_energy: bool = False
    # librosa.feature.delta (savgol, mode interp) over the window, orders 1..delta_order appended
    # to the bins: width = base * (1 + delta_order); per window, never per frame
    delta_width: int = 9
    delta_order: Literal[0, 1, 2] = 0

    def window_samples(self, sample_rate: int) -> int:
        if self.kind == "embedding":
            return EMBEDDING_WINDOW
        if self.win_length is not None:
            return self.win_length
        return _exact_samples(self.window_ms, sample_rate, "window_ms")

    def hop_samples(self, sample_rate: int) -> int:
        if self.kind == "embedding":
            return EMBEDDING_HOP
        if self.hop_length is not None:
            return self.hop_length
        return _exact_samples(self.hop_ms, sample_rate, "hop_ms")

    def hop_s(self, sample_rate: int) -> float:
        """Seconds between two frames (exact for hops given in samples)."""
        return self.hop_samples(sample_rate) / sample_rate

    def fft_size(self, sample_rate: int) -> int:
        if self.kind == "embedding":
            return EMBEDDING_MEL_WINDOW
        win = self.window_samples(sample_rate)
        if self.n_fft == "pow2":
            return 1 << max(0, (win - 1).bit_length())
        return self.n_fft if self.n_fft is not None else win

    def frame_extent(self, sample_rate: int) -> int:
        """Samples from sample t*hop on that frame t needs: its delay in a causal stream."""
        if self.kind == "raw":
            return 1
        if self.center:
            n_fft = self.fft_size(sample_rate)
            return n_fft - n_fft // 2
        return self.window_samples(sample_rate)

    def first_frame_samples(self, sample_rate: int) -> int:
        """Samples the stream needs before frame 0 exists (reflect padding needs one more)."""
        need = self.frame_extent(sample_rate)
        if self.center and self.pad_mode == "reflect":
            need = max(need, self.fft_size(sample_rate) // 2 + 1)
        return need

    @property
    def has_window_ops(self) -> bool:
        """True when some numbers depend on the whole window (a clip), not on one frame."""
        return self.db_ref == "max" or self.top_db is not None or self.delta_order > 0

    @property
    def defers_dct(self) -> bool:
        """True for mfcc with a dB clamp over the window: frames stay log-mel, DCT per window."""
        return self.kind == "mfcc" and (self.db_ref == "max" or self.top_db is not None)

    def base_bins(self, sample_rate: int) -> int:
        """Width of one feature frame before deltas are appended."""
        if self.kind in ("specgram", "stft"):
            return self.fft_size(sample_rate) // 2 + 1
        if self.kind == "logmel":
            return self.n_mels
        if self.kind == "mfcc":
            return self.n_mfcc
        if self.kind == "embedding":
            return EMBEDDING_DIM
        return 1

    def frame_bins(self, sample_rate: int) -> int:
        """Width of the frames `Frontend.push` yields (before the window ops)."""
        if self.defers_dct:
            return self.n_mels
        return self.base_bins(sample_rate)

    def n_bins(self, sample_rate: int) -> int:
        """Width of one feature frame as the model sees it (deltas included)."""
        return self.base_bins(sample_rate) * (1 + self.delta_order)

    def validate(self, sample_rate: int) -> None:
        if self.kind not in FRONTEND_KINDS:
            raise CardError(
                f"unknown frontend kind {self.kind!r} (expected one of {', '.join(FRONTEND_KINDS)})"
            )
        if self.kind == "raw":
            return
        if self.kind == "embedding":
            if sample_rate != EMBEDDING_RATE:
                raise CardError(f"the embedding frontend runs at {EMBEDDING_RATE} Hz only, "
                                f"not {sample_rate}")
            changed = [f.name for f in fields(self)
                       if f.name not in ("kind",) and getattr(self, f.name) != _DEFAULTS[f.name]]
            if changed:
                raise CardError(f"the embedding frontend has its backbone's own framing: "
                                f"{', '.join(changed)} cannot be set")
            return
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise CardError(
                    f"frontend {name} {getattr(self, name)!r} is not one of "
                    f"{', '.join(map(repr, choices))}"
                )
        for name in ("win_length", "hop_length"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise CardError(f"frontend {name} must be a whole number of samples >= 1")
        if isinstance(self.n_fft, int) and (isinstance(self.n_fft, bool) or self.n_fft < 1):
            raise CardError("frontend n_fft must be >= 1")
        win = self.window_samples(sample_rate)
        self.hop_samples(sample_rate)
        n_fft = self.fft_size(sample_rate)
        if n_fft < win:
            raise CardError(
                f"frontend n_fft {self.n_fft} is shorter than the window ({win} samples)"
            )
        if self.kind == "specgram":
            fixed = [f for f in _SPECGRAM_FIXED if getattr(self, f) != _DEFAULTS[f]]
            if fixed:
                raise CardError(
                    f"the specgram kind is scipy's spectrogram as it is: {', '.join(fixed)} "
                    "cannot change (use kind stft for another spectrum)"
                )
        if self.power not in (1.0, 2.0):
            raise CardError(f"frontend power {self.power} must be 1.0 (magnitude) or 2.0 (power)")
        if not 0.0 <= self.preemphasis < 1.0:
            raise CardError(f"frontend preemphasis {self.preemphasis} must be in [0, 1)")
        if self.kind in ("logmel", "mfcc"):
            fmax = self.fmax if self.fmax is not None else sample_rate / 2
            if not 0 <= self.fmin < fmax <= sample_rate / 2:
                raise CardError(
                    f"frontend fmin/fmax {self.fmin}/{fmax} outside 0..{sample_rate / 2} Hz"
                )
            if self.n_mels < 1:
                raise CardError("frontend n_mels must be >= 1")
        if self.kind == "mfcc":
            if not 0 < self.n_mfcc <= self.n_mels:
                raise CardError(f"n_mfcc {self.n_mfcc} must be in 1..n_mels ({self.n_mels})")
            if self.log == "none":
                raise CardError("an mfcc frontend needs a log (ln, log10, db or db_amplitude)")
        elif self.lifter or self.append_energy:
            raise CardError("lifter and append_energy apply to the mfcc kind only")
        if self.log_floor <= 0:
            raise CardError("frontend log_floor must be > 0")
        if self.lifter < 0:
            raise CardError("frontend lifter must be >= 0")
        if (self.db_ref == "max" or self.top_db is not None) and self.log not in (
            "db", "db_amplitude"
        ):
            raise CardError("db_ref=max and top_db need log db or db_amplitude")
        if isinstance(self.db_ref, float | int) and self.db_ref <= 0:
            raise CardError("frontend db_ref must be > 0 or 'max'")
        if self.top_db is not None and self.top_db < 0:
            raise CardError("frontend top_db must be >= 0")
        if self.defers_dct and self.append_energy:
            raise CardError("append_energy cannot be combined with a dB clamp over the window")
        if self.delta_order and (self.delta_width < 3 or self.delta_width % 2 == 0):
            raise CardError(f"delta_width {self.delta_width} must be odd and >= 3")


_CHOICES: dict[str, tuple[Any, ...]] = {
    "pad_mode": ("constant", "reflect"),
    "window_fn": ("hann", "hamming", "rect", "hann_symmetric", "hamming_symmetric"),
    "fft_scale": ("none", "1/n_fft"),
    "filterbank": ("librosa", "tf", "psf"),
    "mel_scale": ("slaney", "htk"),
    "mel_norm": ("slaney", None),
    "log": ("ln", "log10", "db", "db_amplitude", "none"),
    "floor_mode": ("add", "max", "replace_zero"),
    "dct_type": (2, 3),
    "dct_norm": ("ortho", "tf", None),
    "lifter_style": ("librosa", "psf"),
    "delta_order": (0, 1, 2),
    "center": (False, True),
    "append_energy": (False, True),
}
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(FrontendSpec)}
# specgram is scipy.signal.spectrogram + log(x + log_floor), nothing else
_SPECGRAM_FIXED = (
    "center", "window_fn", "preemphasis", "power", "fft_scale", "log", "floor_mode", "db_ref",
    "top_db", "delta_order",
)


def _exact_samples(ms: float, sample_rate: int, what: str) -> int:
    n = ms * sample_rate / 1000.0
    if n < 1 or abs(n - round(n)) > 1e-6:
        raise CardError(
            f"{what}={ms} is not a whole number of samples at {sample_rate} Hz "
            f"(give it in samples: {'win_length' if what == 'window_ms' else 'hop_length'})"
        )
    return int(round(n))


@dataclass(frozen=True)
class InputSpec:
    """One ONNX input and what feeds it.

    role: frames (a sequence of feature frames, fed as they arrive: (1, T, bins)),
    window (the last window_s of feature frames), or raw (the last window_s of samples:
    (1, samples[, 1])). shape uses None for a dynamic axis.

    How a window becomes the tensor (window role), in this order: window_norm standardises the
    (frames, bins) window; pool reduces it over frames to (bins,) (mean) or (2*bins,) (mean then
    std, np.std with ddof 0), or over the bins of each frame to (frames,) (bins_mean:
    np.mean(librosa.feature.mfcc(...), axis=0), one value per frame); else layout orders it
    (frames_bins: (frames, bins); bins_frames: (bins, frames), coefficient-first as librosa
    returns it) and flatten makes it one row-major vector ((bins, frames) flattened =
    coefficient-major); channels copies it that many times on a channel axis (last, or first:
    (C, ...)). The result is reshaped to the model's shape, so
    (1, n), (1, 1, n) and (1, n, 1) all take a pooled or flattened vector.
    """

    name: str
    role: str
    shape: tuple[int | None, ...]
    frontend: str = "main"
    layout: Literal["frames_bins", "bins_frames"] = "frames_bins"
    flatten: bool = False
    # copies on a channel axis (3: a grayscale spectrogram for an ImageNet CNN); with 1 the
    # channel axis is present only when the shape has the rank for it
    channels: int = 1
    channel_axis: Literal["last", "first"] = "last"
    pool: Literal["none", "mean", "mean_std", "bins_mean"] = "none"
    # per-window standardisation (x - mean) / (std + window_norm_eps): per bin or over all values
    window_norm: Literal["none", "per_bin", "global"] = "none"
    window_norm_eps: float = 1e-8
    # stream: a window's frames are the stream's. clip: each window is framed as the clip it was
    # trained on (librosa center=True pads a clip at both ends, live.clip_framing): its edge
    # frames are recomputed from the window's samples, which raw frontend `clip_samples` gives
    framing: Literal["stream", "clip"] = "stream"
    clip_samples: str | None = None

    @property
    def has_window_ops(self) -> bool:
        """True when the tensor is anything but the frames as they are."""
        return (
            self.layout != "frames_bins" or self.flatten or self.channels != 1
            or self.pool != "none" or self.window_norm != "none"
        )

    def tensor_shape(self, n_frames: int, n_bins: int) -> tuple[int, ...]:
        """The tensor (no batch axis) built from a (n_frames, n_bins) window.

        It is then reshaped to the model's shape.
        """
        if self.pool == "mean":
            core: tuple[int, ...] = (n_bins,)
        elif self.pool == "mean_std":
            core = (2 * n_bins,)
        elif self.pool == "bins_mean":
            core = (n_frames,)
        else:
            core = (n_frames, n_bins) if self.layout == "frames_bins" else (n_bins, n_frames)
            if self.flatten:
                core = (core[0] * core[1],)
        if self.channels == 1:
            return core
        return (*core, self.channels) if self.channel_axis == "last" else (self.channels, *core)

    def validate(self) -> None:
        """Field ranges (the shape is checked against the frontend by the card)."""
        where = f"input {self.name!r}"
        for name, choices in _INPUT_CHOICES.items():
            if getattr(self, name) not in choices:
                raise CardError(
                    f"{where}: {name} {getattr(self, name)!r} is not one of "
                    f"{', '.join(map(repr, choices))}"
                )
        if isinstance(self.channels, bool) or not isinstance(self.channels, int) or not (
            1 <= self.channels <= 64
        ):
            raise CardError(f"{where}: channels must be 1..64")
        if self.window_norm_eps < 0:
            raise CardError(f"{where}: window_norm_eps must be >= 0")
        if self.role != "window" and self.has_window_ops:
            raise CardError(
                f"{where}: layout, flatten, channels, pool and window_norm apply to window "
                f"inputs only (this one is {self.role})"
            )
        if self.pool != "none" and (self.flatten or self.layout != "frames_bins"):
            raise CardError(f"{where}: a pooled input has no layout or flatten to choose")
        if self.framing == "clip" and (self.role != "window" or not self.clip_samples):
            raise CardError(f"{where}: framing clip needs a window input and clip_samples (the "
                            "raw frontend that gives the window's samples)")


_INPUT_CHOICES: dict[str, tuple[Any, ...]] = {
    "layout": ("frames_bins", "bins_frames"),
    "flatten": (False, True),
    "channel_axis": ("last", "first"),
    "pool": ("none", "mean", "mean_std", "bins_mean"),
    "window_norm": ("none", "per_bin", "global"),
    "framing": ("stream", "clip"),
}


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
class StreamingSplit:
    """A window CNN cut in two where time stops being a free axis (hark.export.streaming_split).

    ok False: the model runs whole windows; `reason` says why it could not be split.
    ok True: `front` (a file in the model's folder) maps input frames (1, T, ...) of `input` to
    the columns they complete, time first: (n, ...); column c covers input frames
    [c * time_stride, c * time_stride + receptive_field). `head` maps the `columns` columns of
    one window to posteriors. The pair reads its larger weights as byte ranges of
    `weights_from` (the whole-window model): its sha256 must still be `weights_sha256`.
    parity: streaming against whole-window posteriors, measured at export.
    """

    ok: bool = False
    reason: str | None = None
    input: str | None = None
    front: str | None = None
    head: str | None = None
    time_stride: int = 1
    receptive_field: int = 1
    columns: int = 0
    weights_from: str | None = None
    weights_sha256: str | None = None
    parity: dict[str, Any] = field(default_factory=dict)

    def files(self) -> tuple[str, ...]:
        """The pair's file names in the model's folder (none when the model was not split)."""
        return tuple(n for n in (self.front, self.head) if n) if self.ok else ()

    def validate(self, card: ModelCard) -> None:
        """The pair must fit the card: a window input, whole columns, a compatible stride."""
        if not self.ok:
            if not self.reason:
                raise CardError("streaming_split: ok is false but no reason is given")
            return
        if card.streaming:
            raise CardError("streaming_split: only a window model can be split")
        inp = next((i for i in card.inputs if i.name == self.input), None)
        if inp is None or len(card.inputs) != 1:
            raise CardError(f"streaming_split.input {self.input!r} is not the model's one input")
        for what, name in (("front", self.front), ("head", self.head),
                           ("weights_from", self.weights_from)):
            if what != "weights_from" and not name:
                raise CardError(f"streaming_split.{what}: required when ok is true")
            if name is not None and (not name or "/" in name or "\\" in name or name in (".", "..")
                                     or "\0" in name):
                raise CardError(f"streaming_split.{what}: {name!r} must be a file name in the "
                                "model's folder")
        if self.time_stride < 1 or self.receptive_field < 1 or self.columns < 1:
            raise CardError("streaming_split: time_stride, receptive_field and columns must be "
                            ">= 1")
        fe = card.frontends[inp.frontend]
        assert card.stride_s is not None
        hop = 1 if fe.kind == "raw" else fe.hop_samples(card.sample_rate)
        stride = int(round(card.stride_s * card.sample_rate)) // hop
        if stride % self.time_stride:
            raise CardError(f"streaming_split.time_stride {self.time_stride} does not divide the "
                            f"decision stride ({stride} frames)")
        n = card.expected_frames(inp)
        want = (n - self.receptive_field) // self.time_stride + 1
        if self.receptive_field > n or want != self.columns:
            raise CardError(f"streaming_split.columns {self.columns}: a {n}-frame window gives "
                            f"{want} columns of {self.receptive_field} frames every "
                            f"{self.time_stride}")


@dataclass(frozen=True)
class BackboneRef:
    """The frozen backbone an embedding frontend runs (live.backbone), pinned by its files.

    name: one of BACKBONES; sha256: of its ONNX graphs as shipped in hark (live.backbone checks
    it on load, so a card never runs on other numbers than it was trained on); source, licence
    and attribution travel with every model built on it.
    """

    name: str
    sha256: str
    source: str = ""
    licence: str = ""
    attribution: str = ""


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
    # the front/head pair of a split window CNN, or why there is none (None: never tried)
    streaming_split: StreamingSplit | None = None
    # the backbone of an embedding frontend (None: no frontend of this card is one)
    backbone: BackboneRef | None = None
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
            return fe.hop_s(self.sample_rate)
        assert self.stride_s is not None
        return self.stride_s

    def algorithmic_latency_s(self) -> float:
        """Audio that must arrive before a decision about a sound can exist, plus smoothing delay.

        Frame models: one analysis frame (a centred frame is n_fft long and complete n_fft/2
        after its centre); window models: the whole window_s plus the samples a centred last
        frame needs past the window's end. Both plus one decision hop (worst-case alignment)
        and the median filter's look-behind half.
        """
        hop = self.decision_hop_s()
        sr = self.sample_rate
        if self.streaming:
            fe = self.frontends[self._frames_input().frontend]
            base = (fe.fft_size(sr) if fe.center else fe.window_samples(sr)) / sr
        else:
            base = float(self.window_s or 0.0)
            n = int(round(base * sr))
            extra = 0
            for inp in self.inputs:
                fe = self.frontends[inp.frontend]
                if fe.kind != "raw":
                    last = (self.expected_frames(inp) - 1) * fe.hop_samples(sr)
                    extra = max(extra, last + fe.frame_extent(sr) - n)
            base += extra / sr
        sm = self.smoothing
        smooth = (sm.median_frames // 2) * hop if sm.method == "median" else 0.0
        return base + hop + smooth

    def _frames_input(self) -> InputSpec:
        return next(i for i in self.inputs if i.role == "frames")

    # ---- serialisation -------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["labels"] = list(self.labels)
        if d["streaming_split"] is None:
            del d["streaming_split"]  # cards of models never split stay as they were
        if d["backbone"] is None:
            del d["backbone"]
        return {"schema": d.pop("schema"), **d}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelCard:
        """A validated card from its parsed JSON (see `load_card`, which names the file)."""
        try:
            text = json.dumps(d)
        except (TypeError, ValueError) as e:
            raise CardError(f"malformed model card: {e}") from None
        return card_from_text(text)

    # ---- validation ----------------------------------------------------------------------
    def validate(self) -> None:
        """Check the card against itself (the ONNX side is checked by `check_against_model`).

        Types are the schema's job (live.schema, on JSON); this checks caps first (live.limits),
        then ranges and consistency.
        """
        from hark.live.limits import check_limits

        check_limits(self)
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
            if not all(math.isfinite(v) for v in (*norm.mean, *norm.std)):
                raise CardError(f"normalization {name!r} holds NaN or infinity")
            if min(norm.std) <= 0:
                raise CardError(f"normalization {name!r} has a std <= 0")
        roles = {i.role for i in self.inputs}
        for inp in self.inputs:
            if inp.role not in INPUT_ROLES:
                raise CardError(f"input {inp.name!r}: unknown role {inp.role!r}")
            if inp.frontend not in self.frontends:
                raise CardError(f"input {inp.name!r} names unknown frontend {inp.frontend!r}")
            inp.validate()
            fe = self.frontends[inp.frontend]
            if inp.role == "frames" and fe.has_window_ops:
                raise CardError(
                    f"input {inp.name!r}: {', '.join(WINDOW_OP_FIELDS)} work over a window; "
                    "a frames input is fed frame by frame"
                )
            if inp.role == "raw" and fe.kind != "raw":
                raise CardError(f"input {inp.name!r}: role raw needs a raw frontend, not {fe.kind}")
            if inp.role != "raw" and fe.kind == "raw":
                raise CardError(f"input {inp.name!r}: a raw frontend can only feed a raw input")
            self._check_input_shape(inp)
            if inp.framing == "clip" and (
                fe.kind in ("raw", "embedding")
                or self.frontends.get(inp.clip_samples or "", fe).kind != "raw"
            ):
                raise CardError(f"input {inp.name!r}: framing clip needs a feature frontend and "
                                f"clip_samples naming a raw frontend of the card")
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
                    hop_n = fe.hop_samples(self.sample_rate)
                    k = self.stride_s * self.sample_rate / hop_n
                    if abs(k - round(k)) > 1e-6:
                        raise CardError(
                            f"stride_s {self.stride_s} is not a whole number of "
                            f"{hop_n * 1000 / self.sample_rate:g} ms ({hop_n}-sample) hops"
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
        if self.streaming_split is not None:
            self.streaming_split.validate(self)
        uses_backbone = any(fe.kind == "embedding" for fe in self.frontends.values())
        if uses_backbone and self.backbone is None:
            raise CardError("an embedding frontend needs the card's backbone (name, sha256)")
        if self.backbone is not None:
            if not uses_backbone:
                raise CardError("the card names a backbone but no frontend is of kind embedding")
            if self.backbone.name not in BACKBONES:
                raise CardError(f"unknown backbone {self.backbone.name!r} "
                                f"(expected one of {', '.join(BACKBONES)})")

    def expected_frames(self, inp: InputSpec) -> int:
        """Number of feature frames (or samples for raw) in one window of a window input."""
        fe = self.frontends[inp.frontend]
        assert self.window_s is not None
        n = int(round(self.window_s * self.sample_rate))
        if fe.kind == "raw":
            return n
        hop = fe.hop_samples(self.sample_rate)
        if fe.center:
            return n // hop + 1  # librosa's frame count for a clip of n samples
        return (n - fe.window_samples(self.sample_rate)) // hop + 1

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
        bins = fe.n_bins(self.sample_rate)
        if inp.role == "frames" or not inp.has_window_ops:
            if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] != 1):
                raise CardError(f"{where}: expected (1, frames, bins) or (1, frames, bins, 1)")
            if shape[2] != bins:
                raise CardError(f"{where}: the {fe.kind} frontend gives {bins} bins per frame")
            if inp.role == "frames" and shape[1] not in (None, 1):
                raise CardError(f"{where}: a frames input needs a time axis of None or 1")
            return
        if self.window_s is None or any(d is None for d in shape[1:]):
            raise CardError(f"{where}: a {inp.layout}/pooled window input needs a fixed shape")
        want = inp.tensor_shape(self.expected_frames(inp), bins)
        # the model's shape may add axes of 1 anywhere ((1, 80) as (1, 1, 80) or (1, 80, 1))
        if tuple(d for d in shape[1:] if d != 1) != tuple(d for d in want if d != 1):
            raise CardError(
                f"{where}: layout {inp.layout}"
                + (", flatten" if inp.flatten else "")
                + (f", pool {inp.pool}" if inp.pool != "none" else "")
                + (f", {inp.channels} channels" if inp.channels > 1 else "")
                + f" builds {list(want)} from {self.expected_frames(inp)} frames x {bins} bins"
            )

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
            if inp.role in ("window", "raw") and isinstance(got[1], int) and not (
                inp.has_window_ops  # its axes are not (frames, ...): _check_input_shape did it
            ):
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


def card_from_text(text: str) -> ModelCard:
    """Parse (strict schema, live.schema) and validate (caps, ranges) a card's JSON text."""
    from hark.live.schema import parse_card

    card = parse_card(text)
    card.validate()
    return card


def load_card(path: str | Path) -> ModelCard:
    """Read and validate a card file; every error is one line naming the file and the field."""
    from hark.live.paths import path_kind

    p = Path(path)
    if path_kind(p, CardError) != "file":  # not is_file(): a locked folder raises, as one line
        raise CardError(f"model card not found: {p}")
    try:
        if p.stat().st_size > MAX_CARD_BYTES:
            raise CardError(f"model card {p} is larger than {MAX_CARD_BYTES // 2**20} MB")
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CardError(f"model card {p} cannot be read: {e}") from None
    try:
        return card_from_text(text)
    except CardError as e:
        raise CardError(f"{p}: {e}") from None
