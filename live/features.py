"""Causal feature frames, computed incrementally as samples arrive.

`Frontend.push` and `compute_features` are one code path: training, evaluation and the live
stream all call `Frontend.push`, so features cannot drift between them, whatever the chunking.
Frame i covers samples [i*hop, i*hop + window): no centre padding, nothing from the future.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hark.live.card import FrontendSpec, Normalization

SPECGRAM_EPS = 1e-10  # the Kaggle kernel's log(spec + 1e-10)


@lru_cache(maxsize=16)
def _hann(n: int) -> np.ndarray:
    """Periodic Hann window, as scipy.signal.get_window('hann', n) and librosa use."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


# Slaney mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def _hz_to_mel(f: float) -> float:
    if f >= _MIN_LOG_HZ:
        return float(_MIN_LOG_MEL + np.log(f / _MIN_LOG_HZ) / _LOGSTEP)
    return f / _F_SP


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    freqs = _F_SP * mels
    log_t = mels >= _MIN_LOG_MEL
    freqs[log_t] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels[log_t] - _MIN_LOG_MEL))
    return freqs


@lru_cache(maxsize=16)
def mel_matrix(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """librosa.filters.mel (Slaney scale and norm, float32 weights), bit for bit, in numpy.

    Not librosa itself: librosa.filters imports scipy.signal, numba and pooch, which cost
    `hark mic` ~0.6 s of start-up and ~130 MB of RSS for one 257 x 40 matrix (hark bench).
    tests/live/test_features.py holds it equal to librosa's.
    """
    fft_freqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    weights = np.zeros((n_mels, fft_freqs.size), dtype=np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return np.ascontiguousarray(weights.T, dtype=np.float64)  # (bins, mels): frames @ m


@lru_cache(maxsize=16)
def _dct_matrix(n_mels: int, n_mfcc: int) -> np.ndarray:
    """Orthonormal DCT-II basis (n_mels, n_mfcc): the numbers of scipy.fft.dct(norm='ortho')."""
    k = np.arange(n_mfcc)[None, :]
    n = np.arange(n_mels)[:, None]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels)) * np.sqrt(2.0 / n_mels)
    basis[:, 0] /= np.sqrt(2.0)
    return basis


class Frontend:
    """Streaming feature extractor for one FrontendSpec at one sample rate.

    Keeps at most one window of pending samples between calls; `push` returns every frame that
    the new samples complete, shape (n_frames, n_bins), float32.
    """

    def __init__(self, spec: FrontendSpec, sample_rate: int) -> None:
        spec.validate(sample_rate)
        self.spec = spec
        self.sample_rate = sample_rate
        if spec.kind == "raw":
            self.window, self.hop = 1, 1
        else:
            self.window = spec.window_samples(sample_rate)
            self.hop = spec.hop_samples(sample_rate)
        self.n_bins = spec.n_bins(sample_rate)
        self._pending = np.zeros(0, dtype=np.float64)
        self.frames_out = 0  # frames produced since the last reset: frame index of the next one
        if spec.kind != "raw":
            self._n_fft = spec.fft_size(sample_rate)
            self._win = _hann(self.window)
        if spec.kind == "specgram":
            # scipy.signal.spectrogram, scaling='density', one-sided: |X|^2 / (fs * sum(w^2)),
            # doubled except at DC and (for even n_fft) Nyquist.
            scale = np.full(self.n_bins, 2.0 / (sample_rate * np.sum(self._win**2)))
            scale[0] /= 2.0
            if self._n_fft % 2 == 0:
                scale[-1] /= 2.0
            self._scale = scale
        if spec.kind in ("logmel", "mfcc"):
            fmax = spec.fmax if spec.fmax is not None else sample_rate / 2.0
            self._mel = mel_matrix(sample_rate, self._n_fft, spec.n_mels, spec.fmin, fmax)
        if spec.kind == "mfcc":
            self._dct = _dct_matrix(spec.n_mels, spec.n_mfcc)

    def reset(self) -> None:
        """Forget pending samples and restart frame numbering (a new stream)."""
        self._pending = np.zeros(0, dtype=np.float64)
        self.frames_out = 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add mono samples; return the frames they complete."""
        x = np.asarray(samples, dtype=np.float64).reshape(-1)
        if self.spec.kind == "raw":
            self.frames_out += x.size
            return x.astype(np.float32).reshape(-1, 1)
        buf = np.concatenate((self._pending, x)) if self._pending.size else x
        if buf.size < self.window:
            self._pending = buf.copy()
            return np.zeros((0, self.n_bins), dtype=np.float32)
        n = (buf.size - self.window) // self.hop + 1
        if n == 1:  # a 10 ms mic block completes one frame: a slice, not a strided view (~7 us)
            frames = buf[None, : self.window]
        else:
            frames = sliding_window_view(buf, self.window)[:: self.hop][:n]
        self._pending = buf[n * self.hop :].copy()
        self.frames_out += n
        return self._transform(frames)

    def _transform(self, frames: np.ndarray) -> np.ndarray:
        spec = np.fft.rfft(frames * self._win, n=self._n_fft, axis=-1)
        power = spec.real**2 + spec.imag**2
        if self.spec.kind == "specgram":
            return np.log(power * self._scale + SPECGRAM_EPS).astype(np.float32)
        logmel = np.log(power @ self._mel + self.spec.log_floor)
        if self.spec.kind == "logmel":
            return logmel.astype(np.float32)
        return (logmel @ self._dct).astype(np.float32)


def n_frames_for(n_samples: int, spec: FrontendSpec, sample_rate: int) -> int:
    """How many frames `compute_features` gives for n_samples."""
    if spec.kind == "raw":
        return n_samples
    win, hop = spec.window_samples(sample_rate), spec.hop_samples(sample_rate)
    return 0 if n_samples < win else (n_samples - win) // hop + 1


def compute_features(
    audio: np.ndarray,
    spec: FrontendSpec,
    sample_rate: int,
    normalization: Normalization | None = None,
) -> np.ndarray:
    """Offline features of a whole signal: the same code as streaming, in one push."""
    frames = Frontend(spec, sample_rate).push(audio)
    return normalize(frames, normalization)


def normalize(frames: np.ndarray, normalization: Normalization | None) -> np.ndarray:
    """Per-bin (x - mean) / std, as written in the card; identity when there is none."""
    if normalization is None:
        return frames
    mean = np.asarray(normalization.mean, dtype=np.float32)
    std = np.asarray(normalization.std, dtype=np.float32)
    return (frames - mean) / std
