"""How a Keras input shape is read against a frontend: which layout, how many frames.

A shape fits a frontend in several ways (a (880,) vector is 44 frames x 20 coefficients in
either order, a (1, 80) input is one frame or a mean over the window). The export takes a
reading only when exactly one fits what the user asked for; otherwise the error lists each
reading that fits and the option that picks it. A raw-sample reading needs at least 50 ms of
audio: a shorter "waveform" is a feature vector in disguise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hark.export.errors import FrontendMismatchError
from hark.live.card import FrontendSpec

MIN_RAW_S = 0.05


@dataclass(frozen=True)
class LayoutOptions:
    """What the user said about the layout (None: infer it)."""

    layout: str | None = None  # frames_bins | bins_frames
    flatten: bool | None = None
    # none | mean | mean_std (each bin over the frames) | bins_mean (each frame over its bins:
    # never inferred, a frame count fits any vector)
    pool: str | None = None
    channels: int | None = None
    channel_axis: str | None = None  # last | first
    window_norm: str | None = None  # none | per_bin | global
    framing: str | None = None  # stream | clip (live.clip_framing)

    @classmethod
    def of(cls, value: Any) -> LayoutOptions:
        if value is None:
            return cls()
        if isinstance(value, LayoutOptions):
            return value
        return cls(**dict(value))


@dataclass(frozen=True)
class Reading:
    """One way to read a shape: InputSpec layout fields plus the frames a window holds."""

    role: str  # frames | window | raw
    frames: int | None  # frames (samples for raw) per window; None: any (pooled / frames role)
    layout: str = "frames_bins"
    flatten: bool = False
    pool: str = "none"
    channels: int = 1
    channel_axis: str = "last"

    def fields(self, window_norm: str | None) -> dict[str, Any]:
        """The InputSpec fields of this reading."""
        out: dict[str, Any] = {"role": self.role}
        if self.role == "window":
            out.update(layout=self.layout, flatten=self.flatten, pool=self.pool,
                       channels=self.channels, channel_axis=self.channel_axis,
                       window_norm=window_norm or "none")
        return out

    def describe(self, bins: int) -> str:
        if self.role == "raw":
            return f"{self.frames} raw samples"
        if self.role == "frames":
            return f"a sequence of {bins}-bin frames, fed as they arrive"
        if self.pool == "bins_mean":
            text = f"one value per frame for {self.frames} frames, the mean of its {bins} bins"
        elif self.pool != "none":
            what = "mean" if self.pool == "mean" else "mean and std"
            text = f"the {what} of {bins} bins over the window's frames"
        else:
            order = ("frames x bins" if self.layout == "frames_bins"
                     else "bins x frames (coefficient-first)")
            n = f"{self.frames} frame" + ("" if self.frames == 1 else "s")
            text = f"{n} of {bins} bins as {order}"
            if self.flatten:
                text += ", flattened"
        if self.channels > 1 or self.channel_axis == "first":
            text += f", {self.channels} channel(s) {self.channel_axis}"
        return text

    def option(self) -> str:
        if self.role != "window":
            return ""
        if self.pool != "none":
            return f"--pool {self.pool}"
        parts = [f"--layout {self.layout}"]
        if self.flatten:
            parts.append("--flatten")
        if self.channels > 1:
            parts.append(f"--channels {self.channels}")
        if self.channel_axis == "first":
            parts.append("--channel-axis first")
        return " ".join(parts)


def _core_readings(core: tuple[int, ...], bins: int, channels: int,
                   axis: str) -> list[Reading]:
    out: list[Reading] = []
    if len(core) == 2:
        a, c = core
        if c == bins:
            out.append(Reading("window", a, "frames_bins", channels=channels, channel_axis=axis))
        if a == bins:
            out.append(Reading("window", c, "bins_frames", channels=channels, channel_axis=axis))
    elif len(core) == 1:
        (n,) = core
        if n % bins == 0 and n // bins > 1:
            for layout in ("frames_bins", "bins_frames"):
                out.append(Reading("window", n // bins, layout, flatten=True, channels=channels,
                                   channel_axis=axis))
        for pool, width in (("mean", bins), ("mean_std", 2 * bins)):
            if n == width:
                out.append(Reading("window", None, pool=pool, channels=channels,
                                   channel_axis=axis))
    return out


def feature_readings(shape: tuple[int | None, ...], bins: int) -> list[Reading]:
    """Every reading of a fixed window shape (no batch axis) for frames of `bins` values."""
    if any(d is None for d in shape):
        return []
    dims = tuple(int(d) for d in shape if d is not None)
    found: list[Reading] = []
    # channel axis: last or first, 1 or several copies
    splits: list[tuple[tuple[int, ...], int, str]] = [(dims, 1, "last")]
    if len(dims) >= 2:
        splits.append((dims[:-1], dims[-1], "last"))
        splits.append((dims[1:], dims[0], "first"))
    squeezed = tuple(d for d in dims if d != 1)
    if len(squeezed) == 1 and squeezed != dims:
        splits.append((squeezed, 1, "last"))  # (1, n), (n, 1), (1, 1, n): one vector
    for core, ch, axis in splits:
        if core == dims and ch != 1:
            continue
        # stacked copies (a grayscale spectrogram x3 for an ImageNet CNN) of a 2-D window only
        if len(core) > 2 or not 1 <= ch <= 4 or (ch > 1 and len(core) != 2):
            continue
        if ch == 1:
            axis = "last"  # one copy: no channel axis to place
        for r in _core_readings(core, bins, ch, axis):
            if ch > 1 and (r.frames or 0) < 2:
                continue
            # the card reshapes the built tensor to the model's shape: compare without 1-axes
            want = _tensor(r, bins)
            if tuple(d for d in want if d != 1) == squeezed and r not in found:
                found.append(r)
    return found


def bins_mean_reading(shape: tuple[int | None, ...]) -> Reading | None:
    """The frames a vector input holds when each value is the mean of one frame's bins.

    (216,), (216, 1) or (1, 216): 216 frames. Any vector fits some window length, so this
    reading is taken only when asked for (--pool bins_mean) and offered when nothing else fits.
    """
    dims = [d for d in shape if d != 1]
    if len(dims) != 1 or dims[0] is None or len(shape) > 2 or dims[0] < 2:
        return None
    return Reading("window", int(dims[0]), pool="bins_mean")


def _tensor(r: Reading, bins: int) -> tuple[int, ...]:
    if r.pool == "bins_mean":
        core: tuple[int, ...] = (r.frames or 0,)
    elif r.pool == "mean":
        core = (bins,)
    elif r.pool == "mean_std":
        core = (2 * bins,)
    else:
        frames = r.frames or 0
        core = (frames, bins) if r.layout == "frames_bins" else (bins, frames)
        if r.flatten:
            core = (core[0] * core[1],)
    if r.channels == 1:
        return core
    return (*core, r.channels) if r.channel_axis == "last" else (r.channels, *core)


def _wanted(r: Reading, opts: LayoutOptions) -> bool:
    if opts.pool is not None and opts.pool != r.pool:
        return False
    if opts.layout is not None and (r.pool != "none" or opts.layout != r.layout):
        return False
    if opts.flatten is not None and opts.flatten != r.flatten:
        return False
    if opts.channels is not None and opts.channels != r.channels:
        return False
    return not (opts.channel_axis is not None and opts.channel_axis != r.channel_axis)


def read_input(name: str, shape: tuple[int | None, ...], frames_role: bool, spec: FrontendSpec,
               sample_rate: int, opts: LayoutOptions, label: str,
               window_s: float | None = None) -> Reading:
    """The one reading of Keras input `name` that fits the frontend and the options.

    window_s (when the user gave it) lets a vector's length be recognised as its frame count.
    """
    where = f"Keras input {name!r} with shape {tuple(shape)}"
    if spec.kind == "raw":
        dims = [d for d in shape if d != 1]
        if len(shape) not in (1, 2) or len(dims) != 1 or dims[0] is None or (
            len(shape) == 2 and shape[1] != 1
        ):
            raise FrontendMismatchError(
                f"{where} is not a raw waveform ((samples,) or (samples, 1)): give a feature "
                "frontend (--preset or --kind)"
            )
        n = int(dims[0])
        if n / sample_rate < MIN_RAW_S:
            raise FrontendMismatchError(
                f"{where}: {n} samples are {1000 * n / sample_rate:.1f} ms at {sample_rate} Hz, "
                f"shorter than {1000 * MIN_RAW_S:.0f} ms: that is a feature vector, not a "
                "waveform window; give the feature frontend it was computed with and --pool or "
                "--flatten"
            )
        return Reading("raw", n)
    bins = spec.n_bins(sample_rate)
    if frames_role:
        if shape[-1] != bins:
            raise FrontendMismatchError(
                f"{where} takes frames of {shape[-1]} bins but the {label} frontend gives "
                f"{bins}: {_bins_hint(spec, [shape[-1]])}"
            )
        return Reading("frames", None)
    if opts.pool == "bins_mean":
        if opts.layout is not None or opts.flatten:
            raise FrontendMismatchError(
                f"{where}: --pool bins_mean gives one value per frame; it has no --layout or "
                "--flatten to choose"
            )
        r = bins_mean_reading(shape)
        if r is None:
            raise FrontendMismatchError(
                f"{where}: --pool bins_mean gives one value per frame, a vector ((frames,), "
                f"(frames, 1) or (1, frames)); this input is not one"
            )
        return r
    readings = feature_readings(shape, bins)
    n = math.prod(d for d in shape if isinstance(d, int))
    raw_hint = ""
    if len([d for d in shape if d != 1]) == 1 and len(shape) <= 2 and (
        len(shape) == 1 or shape[1] == 1
    ) and n / sample_rate >= MIN_RAW_S:
        raw_hint = (f"{n} raw samples, {n / sample_rate:g} s at {sample_rate} Hz (--kind raw, "
                    "or --preset raw16k at 16 kHz)")
    if not readings:
        sizes = sorted({d for d in shape if isinstance(d, int) and d > 1})
        per_frame = bins_mean_reading(shape)
        if per_frame is not None:
            hint = _frame_count_hint(per_frame, spec, sample_rate, window_s)
            other = _bins_hint(spec, sizes, possible_only=True)
            if other:
                hint += f"; if they are {sizes[0]} values of one frame instead, {other}"
        else:
            hint = _bins_hint(spec, sizes)
        raise FrontendMismatchError(
            f"{where} cannot be read as frames of the {label} frontend's {bins} bins (frames x "
            f"bins, bins x frames, flattened, or pooled over the window): {hint}"
            + (f"; or it takes {raw_hint}" if raw_hint else "")
        )
    chosen = [r for r in readings if _wanted(r, opts)]
    if len(chosen) == 1 and not (raw_hint and opts == LayoutOptions()):
        return chosen[0]
    listed = "; ".join(f"{r.describe(bins)} ({r.option()})" for r in readings)
    if not chosen:
        raise FrontendMismatchError(
            f"{where}: none of its readings with {bins}-bin frames matches the layout options "
            f"given; it reads as: {listed}"
        )
    listed = "; ".join([f"{r.describe(bins)} ({r.option()})" for r in chosen]
                       + ([raw_hint] if raw_hint else []))
    ways = len(chosen) + (1 if raw_hint else 0)
    raise FrontendMismatchError(
        f"{where} fits the {label} frontend in {ways} ways: {listed}. Pick one with the "
        "option shown"
    )


def _frame_count_hint(r: Reading, spec: FrontendSpec, sample_rate: int,
                      window_s: float | None) -> str:
    """A vector's length read as frames: the window it spans and the pooling that gives it."""
    n = r.frames or 0
    hop = spec.hop_samples(sample_rate)
    if window_s is not None and frames_in(int(round(window_s * sample_rate)), spec,
                                          sample_rate) == n:
        span = f"{n} is the frame count of your {window_s:g} s window"
        window = ""
    else:
        secs = nice_window_s(n, spec, sample_rate)
        span = f"{n} values are one per frame of a {secs:g} s window ({n} frames, hop {hop} " \
               f"samples at {sample_rate} Hz)"
        window = "" if window_s is None else f" --window-s {secs:g}"
    return (f"{span}: if each value is the mean over one frame's {spec.n_bins(sample_rate)} bins "
            f"(np.mean(librosa.feature.mfcc(...), axis=0)), add --pool bins_mean{window}")


def _bins_hint(spec: FrontendSpec, sizes: list[Any], possible_only: bool = False) -> str:
    """The bin-count setting that would make frames `sizes` wide.

    An mfcc of more coefficients than mel bands cannot exist: such a width also needs --n-mels,
    and with possible_only it is not offered at all (a frame count is the likelier reading).
    """
    field = {"logmel": "--n-mels", "mfcc": "--n-mfcc"}.get(spec.kind)
    opts = sorted({int(s) for s in sizes if isinstance(s, int) and s > 1})
    if spec.kind == "mfcc" and possible_only:
        opts = [s for s in opts if s <= spec.n_mels]
    if field is None:
        what = "a frontend whose frames have one of these widths: " + ", ".join(map(str, opts))
        return what if opts else ("" if possible_only else "another frontend")
    if not opts:
        return "" if possible_only else "another frontend"

    def setting(s: int) -> str:
        extra = f" --n-mels {s}" if spec.kind == "mfcc" and s > spec.n_mels else ""
        return f"{field} {s}{extra}"

    if len(opts) == 1:
        return f"set {setting(opts[0])}"
    return ("the frames would need one of these widths: "
            + ", ".join(setting(s) for s in opts))


def window_samples_for(frames: int, spec: FrontendSpec, sample_rate: int) -> tuple[int, int]:
    """The range [lo, hi] of window lengths (samples) that give `frames` frames."""
    if spec.kind == "raw":
        return frames, frames
    hop = spec.hop_samples(sample_rate)
    if spec.center:
        return (frames - 1) * hop, frames * hop - 1
    win = spec.window_samples(sample_rate)
    return (frames - 1) * hop + win, frames * hop + win - 1


def frames_in(n_samples: int, spec: FrontendSpec, sample_rate: int) -> int:
    """Frames in a window of n_samples (the card's expected_frames)."""
    if spec.kind == "raw":
        return n_samples
    hop = spec.hop_samples(sample_rate)
    if spec.center:
        return n_samples // hop + 1
    win = spec.window_samples(sample_rate)
    return 0 if n_samples < win else (n_samples - win) // hop + 1


def nice_window_s(frames: int, spec: FrontendSpec, sample_rate: int,
                  prefer: tuple[float, ...] = ()) -> float:
    """A window_s giving exactly `frames` frames.

    A preferred value if one fits, else the roundest number of seconds in range, else the
    shortest exact length.
    """
    lo, hi = window_samples_for(frames, spec, sample_rate)
    for w in prefer:
        if lo <= int(round(w * sample_rate)) <= hi:
            return w
    for step in (1.0, 0.5, 0.25, 0.1, 0.05, 0.01, 0.005, 0.001):
        k = math.ceil(lo / sample_rate / step - 1e-9)
        w = round(k * step, 6)
        if lo <= int(round(w * sample_rate)) <= hi:
            return w
    return lo / sample_rate


def stride_for(spec: FrontendSpec, sample_rate: int, wanted: float = 0.1) -> float:
    """The whole number of hops (samples for raw) nearest to `wanted` seconds."""
    hop = 1 if spec.kind == "raw" else spec.hop_samples(sample_rate)
    k = max(1, int(round(wanted * sample_rate / hop)))
    return k * hop / sample_rate
