"""Resource caps: no card can make hark allocate gigabytes or compute for minutes.

Checked on the card's numbers before anything is allocated (a frontend's FFT window, the mel
matrix, a median filter's ring, a window model's input, recurrent state). Each cap is far above
anything a real model uses and far below what would hurt: a logmel frontend at the caps holds a
mel matrix of 8193 x 512 doubles (34 MB), computes one 16384-point FFT per millisecond of audio,
and a window model's input is at most 10 s of samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from hark.live.card import CardError, ModelCard


@dataclass(frozen=True)
class Cap:
    """The allowed range of one numeric card field, and why it is there."""

    low: float
    high: float
    why: str


MAX_FFT = 16384  # samples: one second at 16 kHz; the window and n_fft are both held to it
MAX_STATE_VALUES = 1 << 20  # floats per recurrent state tensor (4 MB)
MAX_INPUT_VALUES = 1 << 22  # floats in one window model input (16 MB)

# (dataclass name, field) -> Cap. A field not listed has no cap beyond its type and range checks.
CAPS: dict[tuple[str, str], Cap] = {
    ("ModelCard", "sample_rate"): Cap(1000, 192000, "Hz"),
    ("ModelCard", "window_s"): Cap(0.01, 10.0, "seconds of audio per window decision"),
    ("ModelCard", "stride_s"): Cap(0.005, 10.0, "seconds between window decisions"),
    ("FrontendSpec", "window_ms"): Cap(0.1, 1000.0, "analysis window"),
    ("FrontendSpec", "hop_ms"): Cap(1.0, 1000.0, "one frame per hop: below 1 ms is a loop"),
    ("FrontendSpec", "n_fft"): Cap(1, MAX_FFT, "FFT size"),
    ("FrontendSpec", "n_mels"): Cap(1, 512, "mel bands"),
    ("FrontendSpec", "n_mfcc"): Cap(1, 512, "cepstral coefficients"),
    ("FrontendSpec", "fmin"): Cap(0.0, 96000.0, "Hz"),
    ("FrontendSpec", "fmax"): Cap(0.0, 96000.0, "Hz"),
    ("FrontendSpec", "win_length"): Cap(1, MAX_FFT, "analysis window (samples)"),
    ("FrontendSpec", "hop_length"): Cap(1, 192000, "hop (samples)"),
    ("FrontendSpec", "delta_width"): Cap(3, 99, "delta filter width (frames)"),
    ("FrontendSpec", "lifter"): Cap(0.0, 10000.0, "cepstral lifter"),
    ("FrontendSpec", "top_db"): Cap(0.0, 1000.0, "dB"),
    ("SmoothingSpec", "median_frames"): Cap(1, 999, "median filter length (frames)"),
    ("SmoothingSpec", "ema_alpha"): Cap(1e-6, 1.0, "EMA weight of the newest frame"),
    ("SmoothingSpec", "min_on_ms"): Cap(0.0, 60000.0, "shortest event"),
    ("SmoothingSpec", "min_off_ms"): Cap(0.0, 60000.0, "gap bridged within one event"),
    ("SmoothingSpec", "offset_advance_ms"): Cap(0.0, 10000.0, "offset correction"),
    ("VadSpec", "hangover_ms"): Cap(0.0, 10000.0, "gate kept open after speech"),
    ("VadSpec", "reset_after_ms"): Cap(0.0, 3600000.0, "silence before a state reset"),
}
MAX_LABELS = 10000


def check_limits(card: ModelCard) -> None:
    """Raise CardError (naming the field) if any number in the card is outside its cap."""
    _check_fields(card, "")
    if len(card.labels) > MAX_LABELS:
        raise CardError(f"labels: {len(card.labels)} labels (at most {MAX_LABELS})")
    sr = card.sample_rate
    for name, fe in card.frontends.items():
        if fe.kind not in ("raw", "embedding"):  # the backbone's framing is fixed
            _check_framing(fe, sr, f"frontends.{name}")
    for i, st in enumerate(card.state):
        if any(d < 1 for d in st.shape):
            raise CardError(f"state[{i}].shape: {list(st.shape)} has a dimension < 1")
        if math.prod(st.shape) > MAX_STATE_VALUES:
            raise CardError(f"state[{i}].shape: {list(st.shape)} holds more than "
                            f"{MAX_STATE_VALUES} values")
    for i, inp in enumerate(card.inputs):
        if any(d is not None and d < 1 for d in inp.shape):
            raise CardError(f"inputs[{i}].shape: {list(inp.shape)} has a dimension < 1")
        fixed = [d for d in inp.shape if d is not None]
        if math.prod(fixed) > MAX_INPUT_VALUES:
            raise CardError(f"inputs[{i}].shape: {list(inp.shape)} holds more than "
                            f"{MAX_INPUT_VALUES} values")


def _check_framing(fe: Any, sr: int, where: str) -> None:
    """Window, FFT and hop in samples, however the card gives them (ms, samples, "pow2")."""
    try:
        win, hop, n_fft = fe.window_samples(sr), fe.hop_samples(sr), fe.fft_size(sr)
    except CardError:
        return  # not whole samples: the range checks say so
    if win > MAX_FFT:
        raise CardError(f"{where}.window_ms: {fe.window_ms} ms is {win} samples at {sr} Hz "
                        f"(at most {MAX_FFT})")
    if n_fft > MAX_FFT:
        raise CardError(f"{where}.n_fft: an FFT of {n_fft} samples (at most {MAX_FFT})")
    if hop * 1000 < sr:
        raise CardError(f"{where}.hop_ms: a hop of {hop} samples is under 1 ms at {sr} Hz (one "
                        "frame per hop: that is a loop, not a stream)")


def _check_fields(obj: Any, where: str) -> None:
    """Every capped field of every dataclass inside the card (frontends by their names)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if is_dataclass(value):
                _check_fields(value, f"{where}.{key}" if where else str(key))
        return
    cls = type(obj).__name__
    for f in fields(obj):
        value = getattr(obj, f.name)
        path = f"{where}.{f.name}" if where else f.name
        if isinstance(value, dict) or is_dataclass(value):
            _check_fields(value, path)
        cap = CAPS.get((cls, f.name))
        if cap is None or value is None or isinstance(value, bool | str):
            continue  # strings are the schema's (Literal) business
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise CardError(f"{path}: {value!r} is not a finite number")
        if not cap.low <= value <= cap.high:
            raise CardError(f"{path}: {value:g} is outside {cap.low:g}..{cap.high:g} ({cap.why})")
