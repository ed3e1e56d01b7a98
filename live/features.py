"""Causal feature frames, computed incrementally as samples arrive.

`Frontend.push` and `compute_features` are one code path: training, evaluation and the live
stream all call `Frontend.push`, so features cannot drift between them, whatever the chunking.
Frame i covers samples [i*hop, i*hop + window): no centre padding, nothing from the future.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hark.live.backbone import EmbeddingFrontend, n_embeddings
from hark.live.card import FrontendSpec, Normalization

SPECGRAM_EPS = 1e-10  # the Kaggle kernel's log(spec + 1e-10)


def _resolve_rfft() -> Callable[[np.ndarray, np.ndarray], object]:
    """rfft(frame, out) of one 1-D float64 frame into a complex128 out, for the live hop.

    numpy.fft.rfft is a Python wrapper (norm, axis and shape checks: ~4 us of a ~7 us call)
    around a pocketfft gufunc; the hop calls the gufunc itself, exactly as the wrapper does
    for norm="backward". A numpy without that gufunc falls back to the wrapper.
    tests/live/test_features.py holds it equal to numpy.fft.rfft.
    """
    try:
        from numpy.fft import _pocketfft_umath as pfu  # type: ignore[attr-defined]  # numpy 2

        even, odd = pfu.rfft_n_even, pfu.rfft_n_odd
    except (ImportError, AttributeError):
        return lambda a, out: np.fft.rfft(a, out=out)
    axes = [(0,), (), (0,)]

    def rfft(a: np.ndarray, out: np.ndarray) -> object:
        return (even if a.shape[0] % 2 == 0 else odd)(a, 1, axes=axes, out=out)

    return rfft


rfft_into = _resolve_rfft()


@lru_cache(maxsize=16)
def _hann(n: int) -> np.ndarray:
    """Periodic Hann window, as scipy.signal.get_window('hann', n) and librosa use."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


@lru_cache(maxsize=16)
def window_vector(window_fn: str, n: int) -> np.ndarray:
    """The analysis window: periodic (scipy get_window, librosa, tf.signal) or numpy's symmetric."""
    if window_fn == "hann":
        return _hann(n)
    if window_fn == "hamming":
        return 0.54 - 0.46 * np.cos(2.0 * np.pi * np.arange(n) / n)
    if window_fn == "hann_symmetric":
        return np.hanning(n)
    if window_fn == "hamming_symmetric":
        return np.hamming(n)
    return np.ones(n)


# Slaney mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def _hz_to_mel(f: float, htk: bool = False) -> float:
    if htk:
        return float(2595.0 * np.log10(1.0 + f / 700.0))
    if f >= _MIN_LOG_HZ:
        return float(_MIN_LOG_MEL + np.log(f / _MIN_LOG_HZ) / _LOGSTEP)
    return f / _F_SP


def _mel_to_hz(mels: np.ndarray, htk: bool = False) -> np.ndarray:
    if htk:
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    freqs = _F_SP * mels
    log_t = mels >= _MIN_LOG_MEL
    freqs[log_t] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels[log_t] - _MIN_LOG_MEL))
    return freqs


@lru_cache(maxsize=16)
def mel_matrix(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float,
    fmax: float,
    htk: bool = False,
    norm: str | None = "slaney",
) -> np.ndarray:
    """librosa.filters.mel (Slaney or HTK scale, Slaney norm or none, float32 weights) in numpy.

    Not librosa itself: librosa.filters imports scipy.signal, numba and pooch, which cost
    `hark mic` ~0.6 s of start-up and ~130 MB of RSS for one 257 x 40 matrix (hark bench).
    tests/live/test_features.py holds it equal to librosa's.
    """
    fft_freqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    mel_f = _mel_to_hz(
        np.linspace(_hz_to_mel(fmin, htk), _hz_to_mel(fmax, htk), n_mels + 2), htk
    )
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    weights = np.zeros((n_mels, fft_freqs.size), dtype=np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    if norm == "slaney":
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


@lru_cache(maxsize=16)
def tf_mel_matrix(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float
) -> np.ndarray:
    """tf.signal.linear_to_mel_weight_matrix (HTK mel, no norm, DC zero) in numpy: (bins, mels)."""
    n_bins = n_fft // 2 + 1
    hz = np.linspace(0.0, sample_rate / 2.0, n_bins)[1:]
    mel = 1127.0 * np.log1p(hz / 700.0)
    lo_mel, hi_mel = 1127.0 * np.log1p(fmin / 700.0), 1127.0 * np.log1p(fmax / 700.0)
    edges = np.linspace(lo_mel, hi_mel, n_mels + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    lo = (mel[:, None] - lower[None, :]) / (center - lower)[None, :]
    up = (upper[None, :] - mel[:, None]) / (upper - center)[None, :]
    w = np.maximum(0.0, np.minimum(lo, up))
    return np.concatenate((np.zeros((1, n_mels)), w)).astype(np.float32).astype(np.float64)


@lru_cache(maxsize=16)
def psf_mel_matrix(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float
) -> np.ndarray:
    """python_speech_features.get_filterbanks (integer FFT bins, HTK mel) in numpy: (bins, mels)."""
    lo_mel = 2595.0 * np.log10(1.0 + fmin / 700.0)
    hi_mel = 2595.0 * np.log10(1.0 + fmax / 700.0)
    hz = 700.0 * (10.0 ** (np.linspace(lo_mel, hi_mel, n_mels + 2) / 2595.0) - 1.0)
    b = np.floor((n_fft + 1) * hz / sample_rate).astype(int)
    fb = np.zeros((n_mels, n_fft // 2 + 1))
    for j in range(n_mels):
        for i in range(b[j], b[j + 1]):
            fb[j, i] = (i - b[j]) / (b[j + 1] - b[j])
        for i in range(b[j + 1], b[j + 2]):
            fb[j, i] = (b[j + 2] - i) / (b[j + 2] - b[j + 1])
    return np.ascontiguousarray(fb.T)


@lru_cache(maxsize=32)
def dct_matrix(n_mels: int, n_mfcc: int, dct_type: int, norm: str | None) -> np.ndarray:
    """(n_mels, n_mfcc): x @ M is scipy.fft.dct(x, type, norm)[:n_mfcc] (tf: type 2 / sqrt(2N))."""
    if dct_type == 2 and norm == "ortho":
        return _dct_matrix(n_mels, n_mfcc)
    n = np.arange(n_mels)[:, None]
    k = np.arange(n_mfcc)[None, :]
    if dct_type == 2:
        m = 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels))
        if norm == "tf":
            m /= np.sqrt(2.0 * n_mels)
        return m
    m = 2.0 * np.cos(np.pi * n * (2 * k + 1) / (2 * n_mels))
    m[0, :] = 1.0
    if norm == "ortho":
        m[0, :] /= np.sqrt(n_mels)
        m[1:, :] *= np.sqrt(1.0 / (2.0 * n_mels))
    return m


def _lifter_vector(spec: FrontendSpec) -> np.ndarray | None:
    if not spec.lifter:
        return None
    n = np.arange(spec.n_mfcc) + (1 if spec.lifter_style == "librosa" else 0)
    return 1.0 + (spec.lifter / 2.0) * np.sin(np.pi * n / spec.lifter)


def _cepstrum_matrix(spec: FrontendSpec) -> np.ndarray:
    m = dct_matrix(spec.n_mels, spec.n_mfcc, spec.dct_type, spec.dct_norm)
    lift = _lifter_vector(spec)
    return m if lift is None else m * lift[None, :]


class Frontend:
    """Streaming feature extractor for one FrontendSpec at one sample rate.

    Keeps at most one frame of pending samples between calls; `push` returns every frame that
    the new samples complete, shape (n_frames, spec.frame_bins), float32. Operations over a
    whole window (db_ref max, top_db, deltas, a DCT after them) are `window_features`.
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
        self.n_bins = spec.frame_bins(sample_rate) if spec.kind != "raw" else 1
        self.frames_out = 0  # frames produced since the last reset: frame index of the next one
        self._fast = spec.kind != "raw" and _is_default_maths(spec)
        self._started = False
        self._last = 0.0  # the sample before the pending ones (pre-emphasis)
        self._buf = np.zeros(0, dtype=np.float64)
        self._n_pending = 0
        if spec.kind == "raw":
            return
        self._n_fft = spec.fft_size(sample_rate)
        win = window_vector(spec.window_fn, self.window)
        if spec.center:
            # librosa: the window centred in an n_fft frame centred on sample t*hop
            lpad = (self._n_fft - self.window) // 2
            full = np.zeros(self._n_fft)
            full[lpad : lpad + self.window] = win
            self._win = full
            self.window = self._n_fft  # samples one frame spans
        else:
            self._win = win
        if spec.kind == "specgram":
            # scipy.signal.spectrogram, scaling='density', one-sided: |X|^2 / (fs * sum(w^2)),
            # doubled except at DC and (for even n_fft) Nyquist.
            scale = np.full(spec.n_bins(sample_rate), 2.0 / (sample_rate * np.sum(self._win**2)))
            scale[0] /= 2.0
            if self._n_fft % 2 == 0:
                scale[-1] /= 2.0
            self._scale = scale
        if spec.kind in ("logmel", "mfcc"):
            fmax = spec.fmax if spec.fmax is not None else sample_rate / 2.0
            args = (sample_rate, self._n_fft, spec.n_mels, spec.fmin, fmax)
            if spec.filterbank == "tf":
                self._mel = tf_mel_matrix(*args)
            elif spec.filterbank == "psf":
                self._mel = psf_mel_matrix(*args)
            else:
                self._mel = mel_matrix(*args, spec.mel_scale == "htk", spec.mel_norm)
        if spec.kind == "mfcc":
            self._dct = _cepstrum_matrix(spec)
        # the live case, one block completing at most one frame, runs on preallocated buffers:
        # pending samples in _buf[:_n_pending] (fewer than window + hop), the windowed frame
        # zero-padded to n_fft in _fft_in, its spectrum in _spec (viewed as (bins, 2) floats)
        self._buf = np.zeros(self.window + self.hop, dtype=np.float64)
        self._n_pending = 0
        self._one_ok = not spec.preemphasis
        self._fft_in = np.zeros(self._n_fft, dtype=np.float64)
        self._spec = np.zeros(self._n_fft // 2 + 1, dtype=np.complex128)
        self._spec_ri = self._spec.view(np.float64).reshape(-1, 2)
        self._power = np.zeros(self._n_fft // 2 + 1, dtype=np.float64)
        self._power_row = self._power[None, :]
        self._mel_out = None  # (1, n_mels): the fast log-mel of one frame, computed in place
        if spec.kind in ("logmel", "mfcc"):
            self._mel_out = np.zeros((1, spec.n_mels), dtype=np.float64)

    def reset(self) -> None:
        """Forget pending samples and restart frame numbering (a new stream)."""
        self._n_pending = 0
        self.frames_out = 0
        self._started = False
        self._last = 0.0

    @property
    def _pending(self) -> np.ndarray:
        return self._buf[: self._n_pending] if self.spec.kind != "raw" else self._buf[:0]

    def _keep(self, rest: np.ndarray) -> None:
        """Store the samples a later frame needs (always fewer than window + hop)."""
        self._buf[: rest.size] = rest
        self._n_pending = rest.size

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add mono samples; return the frames they complete."""
        if self.spec.kind == "raw":
            x = np.asarray(samples, dtype=np.float64).reshape(-1)
            self.frames_out += x.size
            return x.astype(np.float32).reshape(-1, 1)
        x = np.asarray(samples).reshape(-1)
        n0 = self._n_pending
        if self._one_ok and (self._started or not self.spec.center) and (
            n0 + x.size < self._buf.size
        ):
            return self._push_one(x, n0)
        x = x.astype(np.float64, copy=False)
        if self.spec.preemphasis and x.size:
            prev = np.concatenate(([self._last], x[:-1]))
            self._last = float(x[-1])
            x = x - self.spec.preemphasis * prev
        buf = np.concatenate((self._pending, x)) if self._n_pending else x
        if self.spec.center and not self._started:
            half = self._n_fft // 2
            if self.spec.pad_mode == "reflect":
                if buf.size < half + 1:
                    self._keep(buf)
                    return np.zeros((0, self.n_bins), dtype=np.float32)
                pad = buf[1 : half + 1][::-1]
            else:
                pad = np.zeros(half)
            buf = np.concatenate((pad, buf))
            self._started = True
        if buf.size < self.window:
            self._keep(buf)
            return np.zeros((0, self.n_bins), dtype=np.float32)
        n = (buf.size - self.window) // self.hop + 1
        frames = sliding_window_view(buf, self.window)[:: self.hop][:n]
        spec = np.fft.rfft(frames * self._win, n=self._n_fft, axis=-1)
        power = spec.real**2 + spec.imag**2
        self._keep(buf[n * self.hop :])
        self.frames_out += n
        return self._transform(power)

    def _push_one(self, x: np.ndarray, n0: int) -> np.ndarray:
        """push() for a block that completes at most one frame, on preallocated buffers.

        No concatenation and no new arrays until the frame's own output; the same numbers as
        the many-frame path (tests/live/test_features.py holds them equal).
        """
        buf, end = self._buf, n0 + x.size
        buf[n0:end] = x
        if end < self.window:
            self._n_pending = end
            return np.zeros((0, self.n_bins), dtype=np.float32)
        w, hop = self.window, self.hop
        np.multiply(buf[:w], self._win, out=self._fft_in[:w])  # _fft_in[w:] stays zero
        rfft_into(self._fft_in, self._spec)
        ri = self._spec_ri
        np.square(ri, out=ri)
        power = np.add(ri[:, 0], ri[:, 1], out=self._power)
        buf[: end - hop] = buf[hop:end]
        self._n_pending = end - hop
        self.frames_out += 1
        if self._fast and self._mel_out is not None:  # the default log-mel: into its buffer
            mel = np.matmul(self._power_row, self._mel, out=self._mel_out)
            np.add(mel, self.spec.log_floor, out=mel)
            np.log(mel, out=mel)
            return (mel if self.spec.kind == "logmel" else mel @ self._dct).astype(np.float32)
        return self._transform(power[None, :])

    def _transform(self, power: np.ndarray) -> np.ndarray:
        """Frames (n, bins) of the power spectrum (|rfft|^2 of the windowed frames) to features."""
        if self.spec.kind == "specgram":
            return np.log(power * self._scale + SPECGRAM_EPS).astype(np.float32)
        if self._fast:
            logmel = np.log(power @ self._mel + self.spec.log_floor)
            if self.spec.kind == "logmel":
                return logmel.astype(np.float32)
            return (logmel @ self._dct).astype(np.float32)
        s = self.spec
        x = power if s.power == 2.0 else np.sqrt(power)
        if s.fft_scale == "1/n_fft":
            x = x / self._n_fft
        if s.kind == "stft":
            return self._log(x).astype(np.float32)
        y = self._log(x @ self._mel)
        if s.kind == "logmel" or s.defers_dct:
            return y.astype(np.float32)
        c = y @ self._dct
        if s.append_energy:
            c[:, 0] = np.log(_floored(np.sum(x, axis=-1), s.log_floor, s.floor_mode))
        return c.astype(np.float32)

    def _log(self, x: np.ndarray) -> np.ndarray:
        s = self.spec
        if s.log == "none":
            return x
        v = _floored(x, s.log_floor, s.floor_mode)
        if s.log == "ln":
            return np.log(v)
        if s.log == "log10":
            return np.log10(v)
        k = 10.0 if s.log == "db" else 20.0
        ref = 1.0 if s.db_ref == "max" else float(s.db_ref)  # max: subtracted per window
        floor_ref = max(s.log_floor, ref) if s.floor_mode == "max" else ref
        return k * np.log10(v) - k * np.log10(floor_ref)


def _floored(x: np.ndarray, floor: float, mode: str) -> np.ndarray:
    if mode == "add":
        return x + floor
    if mode == "max":
        return np.maximum(x, floor)
    return np.where(x == 0, floor, x)


def _is_default_maths(spec: FrontendSpec) -> bool:
    """Today's pipeline (hann, power, Slaney mel, ln(x + floor), DCT-II ortho): the fast path."""
    return (
        spec.kind in ("specgram", "logmel", "mfcc")
        and not spec.center
        and spec.window_fn == "hann"
        and not spec.preemphasis
        and spec.power == 2.0
        and spec.fft_scale == "none"
        and spec.filterbank == "librosa"
        and spec.mel_scale == "slaney"
        and spec.mel_norm == "slaney"
        and spec.log == "ln"
        and spec.floor_mode == "add"
        and spec.dct_type == 2
        and spec.dct_norm == "ortho"
        and not spec.lifter
        and not spec.append_energy
        and not spec.has_window_ops
    )


def window_features(frames: np.ndarray, spec: FrontendSpec) -> np.ndarray:
    """The operations a clip pipeline does over the whole clip, on one window of frames.

    frames: (n, spec.frame_bins) as `Frontend.push` gives them. In order: db_ref max (the dB
    relative to the window's max), top_db (clamped to the window's max - top_db), the DCT of an
    mfcc deferred past them (librosa.feature.mfcc), then librosa.feature.delta orders appended.
    """
    if not spec.has_window_ops:
        return frames
    x = np.asarray(frames, dtype=np.float64)
    if spec.db_ref == "max" and x.size:
        x = x - x.max()
    if spec.top_db is not None and x.size:
        x = np.maximum(x, x.max() - spec.top_db)
    if spec.defers_dct:
        x = x @ _cepstrum_matrix(spec)
    if spec.delta_order:
        x = np.concatenate([x, *(_delta(x, spec.delta_width, o) for o in
                                 range(1, spec.delta_order + 1))], axis=1)
    return x.astype(np.float32)


def _delta(x: np.ndarray, width: int, order: int) -> np.ndarray:
    """librosa.feature.delta(x.T, width, order, mode='interp').T: a Savitzky-Golay derivative."""
    from scipy.signal import savgol_filter  # only for delta pipelines, off the default path

    if len(x) < width:
        raise ValueError(f"delta_width {width} needs at least that many frames (got {len(x)})")
    return np.asarray(
        savgol_filter(x, width, deriv=order, polyorder=order, axis=0, mode="interp")
    )


AnyFrontend = Frontend | EmbeddingFrontend


def make_frontend(spec: FrontendSpec, sample_rate: int) -> AnyFrontend:
    """The streaming frontend of a spec: a Frontend, or the speech-embedding backbone's."""
    if spec.kind == "embedding":
        return EmbeddingFrontend(spec, sample_rate)
    return Frontend(spec, sample_rate)


def n_frames_for(n_samples: int, spec: FrontendSpec, sample_rate: int) -> int:
    """How many frames `compute_features` gives for n_samples."""
    if spec.kind == "raw":
        return n_samples
    if spec.kind == "embedding":
        return n_embeddings(n_samples)
    hop = spec.hop_samples(sample_rate)
    if spec.center:
        need = spec.frame_extent(sample_rate)
        if n_samples < spec.first_frame_samples(sample_rate):
            return 0
        return 0 if n_samples < need else (n_samples - need) // hop + 1
    win = spec.window_samples(sample_rate)
    return 0 if n_samples < win else (n_samples - win) // hop + 1


def compute_features(
    audio: np.ndarray,
    spec: FrontendSpec,
    sample_rate: int,
    normalization: Normalization | None = None,
) -> np.ndarray:
    """Offline features of a whole signal: the same code as streaming, in one push.

    The frames are `Frontend.push`'s; window operations are not applied (see window_features).
    """
    frames = make_frontend(spec, sample_rate).push(audio)
    return normalize(frames, normalization)


def normalize(frames: np.ndarray, normalization: Normalization | None) -> np.ndarray:
    """Per-bin (x - mean) / std, as written in the card; identity when there is none."""
    if normalization is None:
        return frames
    mean = np.asarray(normalization.mean, dtype=np.float32)
    std = np.asarray(normalization.std, dtype=np.float32)
    return (frames - mean) / std
