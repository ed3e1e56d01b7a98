"""The frontend: streaming equals offline for any chunking; specgram equals scipy's."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from hark.live.card import FrontendSpec, Normalization
from hark.live.features import Frontend, compute_features, n_frames_for

SPECS = {
    "specgram8k": (FrontendSpec(kind="specgram", window_ms=20, hop_ms=10), 8000),
    "specgram16k": (FrontendSpec(kind="specgram", window_ms=20, hop_ms=10), 16000),
    "logmel": (FrontendSpec(kind="logmel", window_ms=25, hop_ms=10, n_fft=512, n_mels=40), 16000),
    "logmel_band": (
        FrontendSpec(kind="logmel", window_ms=32, hop_ms=16, n_fft=512, n_mels=64, fmin=60,
                     fmax=7600), 16000),
    "mfcc": (FrontendSpec(kind="mfcc", window_ms=25, hop_ms=10, n_fft=512, n_mfcc=13), 16000),
    "raw": (FrontendSpec(kind="raw"), 16000),
}


def _signal(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (0.1 * rng.standard_normal(n) + 0.5 * np.sin(2 * np.pi * 700 * t)).astype(np.float32)


@pytest.mark.parametrize("name", list(SPECS))
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(0, 24000),
    cuts=st.lists(st.integers(1, 16000), min_size=0, max_size=40),
)
def test_any_chunking_equals_offline(name: str, seed: int, n: int, cuts: list[int]) -> None:
    spec, rate = SPECS[name]
    x = _signal(n, seed)
    offline = compute_features(x, spec, rate)
    assert offline.shape == (n_frames_for(n, spec, rate), spec.n_bins(rate))
    fe = Frontend(spec, rate)
    parts, i = [], 0
    for c in cuts:
        parts.append(fe.push(x[i : i + c]))
        i += c
    parts.append(fe.push(x[i:]))
    stream = np.concatenate(parts)
    assert stream.shape == offline.shape
    np.testing.assert_allclose(stream, offline, atol=1e-5)


@pytest.mark.parametrize("chunk", [1, 7, 160, 161, 1000, 16000])
def test_fixed_chunks_equal_offline(chunk: int) -> None:
    spec, rate = SPECS["logmel"]
    x = _signal(40000, 3)
    offline = compute_features(x, spec, rate)
    fe = Frontend(spec, rate)
    stream = np.concatenate([fe.push(x[i : i + chunk]) for i in range(0, x.size, chunk)])
    np.testing.assert_allclose(stream, offline, atol=1e-5)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_specgram_equals_the_kaggle_log_specgram(rate: int) -> None:
    """scipy.signal.spectrogram(hann, 20 ms, 10 ms overlap, detrend=False), log(spec + 1e-10)."""
    x = _signal(rate * 2, 5).astype(np.float64)
    nperseg, noverlap = rate * 20 // 1000, rate * 10 // 1000
    _, _, spec = scipy.signal.spectrogram(
        x, fs=rate, window="hann", nperseg=nperseg, noverlap=noverlap, detrend=False
    )
    ref = np.log(spec.T.astype(np.float32) + 1e-10)
    ours = compute_features(x, SPECS["specgram8k"][0], rate)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    if rate == 8000:
        assert ours[:99].shape == (99, 81)  # one second: the light-weight CNN's input


def test_logmel_matches_librosa_on_the_same_frames() -> None:
    """Same numbers as librosa.feature.melspectrogram on causal frames (no centre padding)."""
    import librosa

    spec, rate = SPECS["logmel"]
    x = _signal(16000, 9)
    ours = compute_features(x, spec, rate)
    frames = librosa.util.frame(x, frame_length=400, hop_length=160)  # (400, n)
    mel = librosa.feature.melspectrogram(
        S=np.abs(np.fft.rfft(frames.T * scipy.signal.get_window("hann", 400), n=512)).T ** 2,
        sr=rate, n_fft=512, n_mels=40,
    )
    np.testing.assert_allclose(ours, np.log(mel.T + spec.log_floor), atol=1e-4)


@pytest.mark.parametrize(
    ("sr", "n_fft", "n_mels", "fmin", "fmax"),
    [(16000, 512, 40, 0.0, 8000.0), (16000, 512, 64, 20.0, 7600.0), (8000, 256, 40, 0.0, 4000.0),
     (22050, 2048, 128, 0.0, 11025.0), (16000, 400, 40, 300.0, 8000.0)],
)
def test_mel_filterbank_is_librosas(
    sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float
) -> None:
    """live's numpy filterbank (no librosa import at start-up) is librosa's, bit for bit."""
    import librosa

    from hark.live.features import mel_matrix

    want = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    got = mel_matrix(sr, n_fft, n_mels, fmin, fmax)
    assert np.array_equal(got.T.astype(np.float32), want)


def test_mfcc_is_dct_of_logmel() -> None:
    import scipy.fft

    mspec, rate = SPECS["logmel"]
    x = _signal(8000, 2)
    logmel = compute_features(x, mspec, rate)
    mfcc = compute_features(x, SPECS["mfcc"][0], rate)
    ref = scipy.fft.dct(logmel.astype(np.float64), type=2, norm="ortho", axis=-1)[:, :13]
    np.testing.assert_allclose(mfcc, ref, atol=1e-4)


def test_causal_frames_never_see_the_future() -> None:
    """Changing samples after frame i's window leaves frame i untouched."""
    spec, rate = SPECS["logmel"]
    x = _signal(8000, 1)
    y = x.copy()
    y[4000:] = 0
    a, b = compute_features(x, spec, rate), compute_features(y, spec, rate)
    last_safe = (4000 - 400) // 160
    np.testing.assert_array_equal(a[: last_safe + 1], b[: last_safe + 1])
    assert not np.allclose(a[last_safe + 1], b[last_safe + 1])


def test_normalization_and_reset() -> None:
    spec, rate = SPECS["logmel"]
    x = _signal(4000, 4)
    feats = compute_features(x, spec, rate)
    norm = Normalization(mean=tuple(feats.mean(0)), std=tuple(feats.std(0)))
    z = compute_features(x, spec, rate, norm)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-3)
    fe = Frontend(spec, rate)
    fe.push(x[:1234])
    fe.reset()
    np.testing.assert_array_equal(fe.push(x), feats)
    assert fe.frames_out == len(feats)


CENTRED = {
    "librosa_mfcc": (FrontendSpec(kind="mfcc", n_fft=2048, win_length=2048, hop_length=512,
                                  center=True, n_mels=128, log="db", floor_mode="max",
                                  log_floor=1e-10), 22050),
    "constant_pad": (FrontendSpec(kind="logmel", window_ms=25, hop_ms=10, n_fft=512, n_mels=40,
                                  center=True, pad_mode="constant"), 16000),
    "preemphasis": (FrontendSpec(kind="mfcc", window_ms=25, hop_ms=10, n_fft=512, n_mfcc=13,
                                 preemphasis=0.97), 16000),
}


@pytest.mark.parametrize("name", [*SPECS, *CENTRED])
def test_one_hop_blocks_equal_offline(name: str) -> None:
    """Blocks of one hop (the live case, each completing at most one frame: the preallocated
    single-frame path) give the frames the offline many-frame path gives."""
    spec, rate = {**SPECS, **CENTRED}[name]
    x = _signal(rate * 2 + 123, 5)
    offline = compute_features(x, spec, rate)
    fe = Frontend(spec, rate)
    hop = 1 if spec.kind == "raw" else spec.hop_samples(rate)
    stream = np.concatenate([fe.push(x[i : i + hop]) for i in range(0, x.size, hop)])
    np.testing.assert_allclose(stream, offline, atol=1e-5)
    assert fe.frames_out == len(offline)
    fe.reset()
    again = np.concatenate([fe.push(x[i : i + hop]) for i in range(0, x.size, hop)])
    np.testing.assert_array_equal(again, stream)


@pytest.mark.parametrize("n", [512, 400, 401, 2048])
def test_hop_rfft_is_numpys(n: int) -> None:
    """The live hop's rfft (numpy's pocketfft gufunc, called without its wrapper) is
    numpy.fft.rfft to the bit, for even and odd lengths."""
    from hark.live.features import rfft_into

    x = np.random.default_rng(n).standard_normal(n)
    out = np.zeros(n // 2 + 1, dtype=np.complex128)
    rfft_into(x, out)
    np.testing.assert_array_equal(out, np.fft.rfft(x))
