"""What each wild model's own repository feeds it, written from its code (see its SOURCE.md).

Each function is FUNC(audio, sample_rate) -> the model input for one window, as
`hark export --reference-features tests/export/wild_features.py:FUNC` takes it. librosa and
tf.signal are the libraries those repositories call; nothing here comes from hark.
"""

from __future__ import annotations

import numpy as np


def _fit(audio: np.ndarray, n: int, left: bool = False) -> np.ndarray:
    """Cut or zero-pad to n samples (right, or left as memm's loader does)."""
    y = np.asarray(audio, dtype=np.float32)[:n]
    pad = n - y.size
    return np.pad(y, (pad, 0) if left else (0, pad)) if pad > 0 else y


def velardo(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """keyword_spotting_service.py: mfcc(signal[:22050], n_mfcc=13, n_fft=2048, hop 512).T."""
    import librosa

    y = _fit(audio, 22050)
    return librosa.feature.mfcc(y=y, sr=sample_rate, n_mfcc=13, n_fft=2048, hop_length=512).T


def memm(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Left-padded to 22050, librosa.feature.mfcc(y[:22050], n_mfcc=13).T -> (44, 13)."""
    import librosa

    y = _fit(audio, 22050, left=True)
    return librosa.feature.mfcc(y=y, sr=sample_rate, n_mfcc=13).T


def dodo(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """loader.py: padded to 22050, mfcc(n_mfcc=20) -> (20, 44), flattened row-major to 880."""
    import librosa

    y = _fit(audio, 22050)
    return librosa.feature.mfcc(y=y, sr=sample_rate, n_mfcc=20).reshape(-1)


def siva(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """16000 samples, tf.abs(tf.signal.stft(frame_length=255, frame_step=128)) -> (124, 129)."""
    import tensorflow as tf

    y = _fit(audio, 16000)
    return np.abs(tf.signal.stft(y, frame_length=255, frame_step=128).numpy())


def ollie(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """0.25 s segments (5512 samples), mfcc(n_mfcc=13, n_fft=2048, hop 512).T -> (11, 13)."""
    import librosa

    y = _fit(audio, 5512)
    mfcc = librosa.feature.mfcc(y=y, sr=sample_rate, n_mfcc=13, n_fft=2048, hop_length=512)
    return mfcc.T[..., None]


def us8k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """mfcc(n_mfcc=40) -> (40, frames), zero-padded on the right to 174 frames."""
    import librosa

    mfcc = librosa.feature.mfcc(y=np.asarray(audio, dtype=np.float32), sr=sample_rate,
                                n_mfcc=40)[:, :174]
    return np.pad(mfcc, ((0, 0), (0, 174 - mfcc.shape[1])))[..., None]


def siren(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """np.mean(mfcc(n_mfcc=80).T, axis=0) over the whole clip -> (1, 80)."""
    import librosa

    mfcc = librosa.feature.mfcc(y=np.asarray(audio, dtype=np.float32), sr=sample_rate,
                                n_mfcc=80)
    return np.mean(mfcc.T, axis=0)[None]


def lucy(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """The raw 16 kHz waveform, 1 s (the kapre layers inside the model do the rest)."""
    return _fit(audio, 16000)[:, None]
