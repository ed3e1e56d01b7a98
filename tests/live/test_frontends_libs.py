"""hark's streamed frames and window tensors against the real librosa, tf.signal and
python_speech_features on the same audio: <= 1e-4 relative (to the array's max), dB within 1e-3."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hark.live.card import FrontendSpec, InputSpec
from hark.live.features import (
    Frontend,
    compute_features,
    dct_matrix,
    n_frames_for,
    window_features,
)
from hark.live.runners import window_tensor

SR = 22050
# librosa.feature.mfcc's defaults as the wild models' repositories call it
LIBROSA_MFCC = dict(
    kind="mfcc", n_fft=2048, win_length=2048, hop_length=512, center=True, n_mels=128,
    log="db", floor_mode="max", log_floor=1e-10, top_db=80.0,
)


def _signal(n: int, seed: int, sr: int = SR) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    x = 0.1 * rng.standard_normal(n) + 0.4 * env * np.sin(2 * np.pi * 440 * t * (1 + t))
    return x.astype(np.float32)


def _clip_frames(spec: FrontendSpec, clip: np.ndarray, sr: int, count: int) -> np.ndarray:
    """Frames of a clip as a stream sees it when silence follows (librosa pads the end)."""
    tail = np.zeros(spec.fft_size(sr), dtype=np.float32)
    return Frontend(spec, sr).push(np.concatenate((clip, tail)))[:count]


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, np.float64) - b).max() / np.abs(b).max())


@pytest.mark.parametrize("n_mfcc", [13, 20, 40])
def test_librosa_mfcc_window_is_librosas(n_mfcc: int) -> None:
    import librosa

    y = _signal(SR, n_mfcc)
    ref = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=n_mfcc)  # (n_mfcc, 44)
    spec = FrontendSpec(**LIBROSA_MFCC, n_mfcc=n_mfcc)  # type: ignore[arg-type]
    got = window_features(_clip_frames(spec, y, SR, ref.shape[1]), spec)
    assert got.shape == ref.T.shape
    assert _rel(got, ref.T) < 1e-4


def test_top_db_clamp_acts_before_the_dct() -> None:
    """A clip with silence: the clamp changes the mfcc, and hark's still equals librosa's."""
    import librosa

    y = _signal(SR, 5)
    y[: SR // 2] *= 1e-6
    ref = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=13)
    spec = FrontendSpec(**LIBROSA_MFCC, n_mfcc=13)  # type: ignore[arg-type]
    frames = _clip_frames(spec, y, SR, ref.shape[1])
    assert _rel(window_features(frames, spec), ref.T) < 1e-4
    assert _rel(frames @ dct_matrix(128, 13, 2, "ortho"), ref.T) > 1e-2  # without the clamp


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
@pytest.mark.parametrize("power,log", [(2.0, "db"), (1.0, "db_amplitude")])
def test_librosa_melspectrogram_db_centred(pad_mode: str, power: float, log: str) -> None:
    import librosa

    y = _signal(SR, 1)
    mel = librosa.feature.melspectrogram(
        y=y, sr=SR, pad_mode=pad_mode, power=power  # type: ignore[arg-type]
    )
    ref = (librosa.power_to_db(mel) if power == 2.0 else librosa.amplitude_to_db(mel)).T
    spec = FrontendSpec(
        kind="logmel", n_fft=2048, win_length=2048, hop_length=512, center=True,
        pad_mode=pad_mode, n_mels=128, power=power, log=log,  # type: ignore[arg-type]
        floor_mode="max", log_floor=1e-10 if power == 2.0 else 1e-5,
    )
    got = Frontend(spec, SR).push(y)  # frames complete inside the clip: no end padding
    assert len(got) == n_frames_for(len(y), spec, SR) == len(ref) - 2
    assert np.abs(got - ref[: len(got)]).max() < 1e-3


@pytest.mark.parametrize("htk,norm", [(False, "slaney"), (True, None), (True, "slaney")])
def test_librosa_mel_options_and_win_length(htk: bool, norm: str | None) -> None:
    import librosa

    y = _signal(16000, 2, 16000)
    ref = librosa.feature.melspectrogram(
        y=y, sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=40, htk=htk,
        norm=norm, power=2.0, window="hamming",
    ).T
    spec = FrontendSpec(
        kind="logmel", n_fft=512, win_length=400, hop_length=160, center=True, n_mels=40,
        mel_scale="htk" if htk else "slaney", mel_norm=norm,  # type: ignore[arg-type]
        window_fn="hamming", log="none",
    )
    got = _clip_frames(spec, y, 16000, len(ref))
    assert _rel(got[:-2], ref[:-2]) < 1e-4


@pytest.mark.parametrize("order", [1, 2])
def test_deltas_over_the_window_are_librosas(order: int) -> None:
    import librosa

    y = _signal(SR, 7)
    m = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=13)
    ref = np.concatenate([m] + [librosa.feature.delta(m, order=o) for o in range(1, order + 1)])
    spec = FrontendSpec(**LIBROSA_MFCC, n_mfcc=13, delta_order=order)  # type: ignore[arg-type]
    got = window_features(_clip_frames(spec, y, SR, m.shape[1]), spec)
    assert got.shape == ref.T.shape == (44, 13 * (1 + order))
    for k in range(1 + order):
        part = slice(13 * k, 13 * (k + 1))
        assert _rel(got[:, part], ref.T[:, part]) < 1e-4


@pytest.mark.parametrize("frame_length,window_fn", [(256, "hann"), (255, "hann_symmetric")])
def test_tf_stft_magnitude(frame_length: int, window_fn: str) -> None:
    """tf.signal.stft: hann_window(periodic) is periodic for even lengths, symmetric for odd."""
    tf = pytest.importorskip("tensorflow")
    y = _signal(16000, 3, 16000)
    ref = np.abs(tf.signal.stft(y, frame_length=frame_length, frame_step=128).numpy())
    spec = FrontendSpec(
        kind="stft", win_length=frame_length, hop_length=128, n_fft="pow2", power=1.0,
        log="none", window_fn=window_fn,  # type: ignore[arg-type]
    )
    got = Frontend(spec, 16000).push(y)
    assert got.shape == ref.shape
    assert _rel(got, ref) < 1e-4


def test_tf_log_mel_mfcc() -> None:
    tf = pytest.importorskip("tensorflow")
    y = _signal(16000, 4, 16000)
    mag = tf.abs(tf.signal.stft(y, frame_length=400, frame_step=160, fft_length=512))
    w = tf.signal.linear_to_mel_weight_matrix(40, 257, 16000, 20.0, 7600.0)
    logmel = tf.math.log(tf.tensordot(mag, w, 1) + 1e-6)
    ref_mfcc = tf.signal.mfccs_from_log_mel_spectrograms(logmel)[..., :13].numpy()
    common = dict(
        win_length=400, hop_length=160, n_fft=512, power=1.0, filterbank="tf", n_mels=40,
        fmin=20.0, fmax=7600.0, log_floor=1e-6,
    )
    lm = Frontend(FrontendSpec(kind="logmel", **common), 16000).push(y)  # type: ignore[arg-type]
    assert np.abs(lm - logmel.numpy()).max() < 1e-3
    spec = FrontendSpec(kind="mfcc", n_mfcc=13, dct_norm="tf", **common)  # type: ignore[arg-type]
    got = Frontend(spec, 16000).push(y)
    assert _rel(got, ref_mfcc) < 1e-4


def test_psf_mfcc_and_logfbank() -> None:
    import python_speech_features as psf

    y = (_signal(16000, 6, 16000) * 32767).astype(np.int16).astype(np.float64)
    common = dict(
        win_length=400, hop_length=160, n_fft=512, window_fn="rect", preemphasis=0.97,
        fft_scale="1/n_fft", filterbank="psf", floor_mode="replace_zero",
        log_floor=float(np.finfo(float).eps),
    )
    ref_fb = psf.logfbank(y, 16000, nfilt=26, nfft=512)
    fb = Frontend(FrontendSpec(kind="logmel", n_mels=26, **common), 16000).push(y)  # type: ignore[arg-type]
    # psf zero-pads a last partial frame; a stream has no last frame
    assert len(fb) == len(ref_fb) - 1
    assert _rel(fb, ref_fb[: len(fb)]) < 1e-4
    ref = psf.mfcc(y, 16000, nfft=512)
    spec = FrontendSpec(
        kind="mfcc", n_mels=26, n_mfcc=13, lifter=22, lifter_style="psf", append_energy=True,
        **common,  # type: ignore[arg-type]
    )
    got = Frontend(spec, 16000).push(y)
    assert len(got) == len(ref) - 1
    assert _rel(got, ref[: len(got)]) < 1e-4


@pytest.mark.parametrize("dct_type,norm", [(2, None), (3, "ortho"), (3, None)])
def test_dct_types_are_scipys(dct_type: int, norm: str | None) -> None:
    import librosa

    y = _signal(SR, 8)
    spec = FrontendSpec(**{**LIBROSA_MFCC, "top_db": None}, n_mfcc=20,  # type: ignore[arg-type]
                        dct_type=dct_type, dct_norm=norm, lifter=22)  # type: ignore[arg-type]
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR), top_db=None)
    ref = librosa.feature.mfcc(S=mel_db, n_mfcc=20, dct_type=dct_type, norm=norm, lifter=22)
    got = _clip_frames(spec, y, SR, ref.shape[1])
    assert _rel(got, ref.T) < 1e-4


STREAM_SPECS = {
    "librosa_mfcc": (FrontendSpec(**LIBROSA_MFCC, n_mfcc=13), SR),  # type: ignore[arg-type]
    "reflect_db": (FrontendSpec(kind="logmel", n_fft=512, hop_length=128, win_length=400,
                                center=True, pad_mode="reflect", log="db", n_mels=32), 16000),
    "tf_stft": (FrontendSpec(kind="stft", win_length=255, hop_length=128, n_fft="pow2",
                             power=1.0, log="none", window_fn="hann_symmetric"), 16000),
    "psf_mfcc": (FrontendSpec(kind="mfcc", win_length=400, hop_length=160, n_fft=512,
                              window_fn="rect", preemphasis=0.97, fft_scale="1/n_fft",
                              filterbank="psf", n_mels=26, lifter=22, lifter_style="psf",
                              append_energy=True, floor_mode="replace_zero"), 16000),
}


@pytest.mark.parametrize("name", list(STREAM_SPECS))
@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(0, 12000),
    cuts=st.lists(st.integers(1, 5000), min_size=0, max_size=30),
)
def test_any_chunking_equals_offline_new_kinds(
    name: str, seed: int, n: int, cuts: list[int]
) -> None:
    spec, rate = STREAM_SPECS[name]
    x = _signal(n, seed, rate)
    offline = compute_features(x, spec, rate)
    assert offline.shape == (n_frames_for(n, spec, rate), spec.frame_bins(rate))
    fe = Frontend(spec, rate)
    parts, i = [], 0
    for c in cuts:
        parts.append(fe.push(x[i : i + c]))
        i += c
    parts.append(fe.push(x[i:]))
    stream = np.concatenate(parts)
    assert stream.shape == offline.shape
    np.testing.assert_allclose(stream, offline, rtol=1e-5, atol=1e-4)


def _inp(shape: tuple[int, ...], **kw: object) -> InputSpec:
    return InputSpec(name="x", role="window", shape=shape, **kw)  # type: ignore[arg-type]


def test_window_tensor_layouts_are_the_repositories() -> None:
    """velardo (44, 13), dodo (880,) coefficient-major, us8k-style (n_mfcc, frames, 1), siren
    mean (1, 80), mean_std, per-bin norm and 3 channels, each equal to numpy on librosa's mfcc."""
    import librosa

    y = _signal(SR, 9)
    for n_mfcc in (13, 20, 40):
        ref = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=n_mfcc)  # (n_mfcc, 44)
        spec = FrontendSpec(**LIBROSA_MFCC, n_mfcc=n_mfcc)  # type: ignore[arg-type]
        frames = _clip_frames(spec, y, SR, ref.shape[1])
        cases = {
            (1, 44, n_mfcc): (_inp((1, 44, n_mfcc)), ref.T),
            (1, 44 * n_mfcc): (_inp((1, 44 * n_mfcc), layout="bins_frames", flatten=True),
                               ref.reshape(-1)),
            (1, n_mfcc, 44, 1): (_inp((1, n_mfcc, 44, 1), layout="bins_frames"), ref[..., None]),
            (1, 1, n_mfcc): (_inp((1, 1, n_mfcc), pool="mean"), np.mean(ref.T, axis=0)[None]),
            (1, 2 * n_mfcc, 1): (_inp((1, 2 * n_mfcc, 1), pool="mean_std"),
                                 np.concatenate((ref.mean(1), ref.std(1)))[:, None]),
            (1, 44, n_mfcc, 3): (_inp((1, 44, n_mfcc, 3), channels=3),
                                 np.repeat(ref.T[..., None], 3, axis=-1)),
            (1, 3, 44, n_mfcc): (_inp((1, 3, 44, n_mfcc), channels=3, channel_axis="first",
                                      window_norm="per_bin"),
                                 np.repeat(((ref.T - ref.T.mean(0)) / (ref.T.std(0) + 1e-8))
                                           [None], 3, axis=0)),
        }
        for shape, (inp, want) in cases.items():
            got = window_tensor(frames, spec, inp, None)
            assert got.shape == shape
            assert _rel(got[0], want) < 1e-4, (n_mfcc, shape)
