"""Decode, resample, trim and write audio: the few buffer operations every data module shares."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import librosa
import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

# Trim analysis resolution: 25 ms frames every 10 ms, the same grid as the features.
TRIM_FRAME_S = 0.025
TRIM_HOP_S = 0.010


def read_audio(
    source: str | Path | BinaryIO,
    sample_rate: int,
    *,
    start: int = 0,
    frames: int = -1,
    source_rate: float | None = None,
) -> FloatArray:
    """Decode a file (or file object) to mono float32 at `sample_rate`.

    `start`/`frames` count samples of the source file, so a segment of a long file is read without
    decoding the rest. `source_rate` overrides the rate the samples are taken to have: a value other
    than the file's own speeds the audio up or down like a tape (pitch and tempo together).
    """
    data, file_rate = sf.read(source, start=start, frames=frames, dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    in_rate = float(file_rate if source_rate is None else source_rate)
    return resample(mono, in_rate, sample_rate)


def audio_info(path: str | Path) -> tuple[int, int]:
    """(sample_rate, n_frames) of an audio file, read from its header only."""
    info = sf.info(str(path))
    return int(info.samplerate), int(info.frames)


def resample(x: npt.ArrayLike, in_rate: float, out_rate: float) -> FloatArray:
    """Resample with soxr (high quality); returns a float32 copy even when the rates match."""
    mono = np.asarray(x, dtype=np.float32)
    if in_rate != out_rate and mono.size:
        mono = soxr.resample(mono, in_rate, out_rate)
    return np.array(mono, dtype=np.float32)


def fix_length(x: FloatArray, n_samples: int) -> FloatArray:
    """Zero-pad or cut the end so every clip has exactly `n_samples` (the Speech Commands habit)."""
    return np.asarray(librosa.util.fix_length(x, size=n_samples), dtype=np.float32)


def active_extent(x: FloatArray, sample_rate: int, top_db: float = 40.0) -> tuple[int, int]:
    """Sample range [start, stop) of `x` that is within `top_db` of its loudest frame.

    Frames (25 ms every 10 ms, not centred) whose RMS is within top_db of the loudest decide the
    region, which is robust to isolated clicks; the edges are then tightened to the first and last
    sample reaching that level, so a placed word's onset/offset is where its sound is, not up to
    a frame away. Returns (0, 0) for digital silence.
    """
    if x.size == 0 or not np.any(x):
        return 0, 0
    frame = min(x.size, max(1, round(TRIM_FRAME_S * sample_rate)))
    hop = max(1, round(TRIM_HOP_S * sample_rate))
    padded = np.concatenate([x.astype(np.float64), np.zeros(hop)])  # last frame reaches the end
    windows = np.lib.stride_tricks.sliding_window_view(padded, frame)[::hop]
    rms = np.sqrt(np.mean(windows**2, axis=1))
    level = rms.max() * 10.0 ** (-top_db / 20.0)
    loud = np.flatnonzero(rms >= level)
    lo, hi = int(loud[0]) * hop, int(loud[-1]) * hop + frame
    # a frame with RMS >= level holds a sample with |x| >= level, so this is never empty
    above = np.flatnonzero(np.abs(x[lo:hi]) >= level)
    return lo + int(above[0]), lo + int(above[-1]) + 1


def power(x: npt.ArrayLike) -> float:
    """Mean square of the samples (0.0 for an empty buffer)."""
    arr = np.asarray(x, dtype=np.float64)
    return float(np.mean(arr**2)) if arr.size else 0.0


def db_to_amplitude(db: float) -> float:
    """Amplitude ratio for a level in dB (20 log10 convention)."""
    return float(10.0 ** (db / 20.0))


def write_wav(path: str | Path, x: npt.ArrayLike, sample_rate: int) -> Path:
    """Write mono 16-bit PCM (the Speech Commands format), clipping to [-1, 1] first.

    libsndfile does not clip on float->int conversion, so an overshoot would wrap around.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0)
    sf.write(out, data, sample_rate, subtype="PCM_16", format="WAV")
    return out
