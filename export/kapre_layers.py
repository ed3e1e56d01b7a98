"""Stand-ins for kapre's STFT, Magnitude, ApplyFilterbank and MagnitudeToDecibel layers.

They let a model saved with kapre 0.3.x load and convert to ONNX.

Why not kapre itself: kapre 0.3.7 and 0.4.1 both pin tensorflow < 2.21, and 0.4 is written for
Keras 3 while kapre 0.3 files are tf.keras (tf_keras) files. Why not tf.signal.stft: it yields a
complex tensor, and tf2onnx turns `tf.abs` of it into ComplexAbs, which onnxruntime cannot run.

So the maths is kapre's, written in ops that convert: the windowed DFT of each frame is one
strided Conv1D whose kernels are window * cos and window * -sin (exactly tf.signal.stft: frames
of win_length, zero-padded at the end to n_fft, periodic window from tf.signal). The STFT layer's
output carries (real, imaginary) on a trailing axis that only Magnitude may read; the rest of the
model sees the shapes kapre gives. tests/export/test_kapre.py holds these layers equal to
tf.signal.stft / librosa on the same audio.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_CHANNELS_LAST = ("channels_last", "default")


def _format(value: Any) -> str:
    return value.get("config", "default") if isinstance(value, dict) else str(value)


def mel_filterbank(sample_rate: int, n_freq: int, n_mels: int = 128, f_min: float = 0.0,
                   f_max: float | None = None, htk: bool = False,
                   norm: Any = "slaney") -> np.ndarray:
    """The filterbank of kapre.backend.filterbank_mel: librosa.filters.mel(...).T, float32."""
    n_fft = (n_freq - 1) * 2
    if not htk and norm == "slaney":
        from hark.live.features import mel_matrix  # librosa's numbers, held equal in tests

        fmax = float(f_max) if f_max is not None else sample_rate / 2.0
        return mel_matrix(sample_rate, n_fft, n_mels, float(f_min), fmax).astype(np.float32)
    import librosa

    fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max,
                             htk=htk, norm=norm)
    return np.ascontiguousarray(fb.T, dtype=np.float32)


def dft_kernel(window: np.ndarray, n_fft: int) -> np.ndarray:
    """Conv1D kernel (win, 1, 2 * bins): window * cos, window * -sin of the n_fft-point DFT."""
    win = window.size
    bins = n_fft // 2 + 1
    n = np.arange(win)[:, None]
    k = np.arange(bins)[None, :]
    phase = 2.0 * np.pi * ((n * k) % n_fft) / n_fft
    w = window.astype(np.float64)[:, None]
    kernel = np.concatenate((w * np.cos(phase), -w * np.sin(phase)), axis=1)
    return kernel[:, None, :].astype(np.float32)


def kapre_objects(K: Any) -> dict[str, type]:
    """The four layers as subclasses of `K.layers.Layer` (K is tf_keras or keras)."""
    import tensorflow as tf

    class STFT(K.layers.Layer):
        """kapre.STFT: (batch, time, ch) -> (batch, frames, n_fft // 2 + 1, ch, [re, im])."""

        def __init__(self, n_fft: int = 2048, win_length: int | None = None,
                     hop_length: int | None = None, window_name: str | None = None,
                     pad_begin: bool = False, pad_end: bool = False,
                     input_data_format: Any = "default", output_data_format: Any = "default",
                     **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.n_fft = int(n_fft)
            self.win_length = int(win_length or n_fft)
            self.hop_length = int(hop_length or self.win_length // 4)
            self.window_name = window_name
            self.pad_begin = bool(pad_begin)
            self.pad_end = bool(pad_end)
            self.input_data_format = _format(input_data_format)
            self.output_data_format = _format(output_data_format)
            for what, fmt in (("input", self.input_data_format),
                              ("output", self.output_data_format)):
                if fmt not in _CHANNELS_LAST:
                    raise ValueError(
                        f"kapre STFT {self.name!r}: {what}_data_format={fmt!r} is not supported "
                        "by hark's kapre layers (channels_last only)"
                    )
            fn = getattr(tf.signal, window_name or "hann_window", None)
            if fn is None:
                raise ValueError(f"kapre STFT {self.name!r}: unknown window {window_name!r}")
            window = np.asarray(fn(self.win_length), dtype=np.float64)
            self._kernel = dft_kernel(window, self.n_fft)

        def call(self, x: Any) -> Any:
            bins = self.n_fft // 2 + 1
            shape = tf.shape(x)
            batch, n, ch = shape[0], shape[1], shape[2]
            w = tf.reshape(tf.transpose(x, (0, 2, 1)), (batch * ch, n, 1))
            if self.pad_begin:
                w = tf.pad(w, [[0, 0], [self.n_fft - self.hop_length, 0], [0, 0]])
            if self.pad_end:
                # tf.signal.frame(pad_end=True): ceil(n / hop) frames, zeros after the end
                length = tf.shape(w)[1]
                frames = -(-length // self.hop_length)
                extra = tf.maximum((frames - 1) * self.hop_length + self.win_length - length, 0)
                w = tf.pad(w, [[0, 0], [0, extra], [0, 0]])
            y = tf.nn.conv1d(w, tf.constant(self._kernel), stride=self.hop_length,
                             padding="VALID")  # (batch * ch, frames, 2 * bins)
            t = tf.shape(y)[1]
            y = tf.reshape(y, (batch, ch, t, 2, bins))
            return tf.transpose(y, (0, 2, 4, 1, 3))  # (batch, frames, bins, ch, 2)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "n_fft": self.n_fft, "win_length": self.win_length,
                    "hop_length": self.hop_length, "window_name": self.window_name,
                    "pad_begin": self.pad_begin, "pad_end": self.pad_end,
                    "input_data_format": self.input_data_format,
                    "output_data_format": self.output_data_format}

    class Magnitude(K.layers.Layer):
        """kapre.Magnitude: |STFT|, from the (re, im) axis the STFT stand-in adds."""

        def call(self, x: Any) -> Any:
            return tf.sqrt(tf.reduce_sum(tf.square(x), axis=-1))

    class ApplyFilterbank(K.layers.Layer):
        """kapre.ApplyFilterbank(type='mel'): frames @ librosa.filters.mel(...).T."""

        def __init__(self, type: str, filterbank_kwargs: dict[str, Any],  # noqa: A002
                     data_format: Any = "default", **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.type = type
            self.filterbank_kwargs = dict(filterbank_kwargs)
            self.data_format = _format(data_format)
            if type != "mel":
                raise ValueError(f"kapre ApplyFilterbank {self.name!r}: type={type!r} is not "
                                 "supported by hark's kapre layers (mel only)")
            if self.data_format not in _CHANNELS_LAST:
                raise ValueError(f"kapre ApplyFilterbank {self.name!r}: data_format="
                                 f"{self.data_format!r} is not supported (channels_last only)")
            self._fb = mel_filterbank(**self.filterbank_kwargs)

        def call(self, x: Any) -> Any:
            out = tf.tensordot(x, tf.constant(self._fb), axes=[[2], [0]])  # (b, t, ch, mels)
            return tf.transpose(out, (0, 1, 3, 2))

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "type": self.type,
                    "filterbank_kwargs": self.filterbank_kwargs, "data_format": self.data_format}

    class MagnitudeToDecibel(K.layers.Layer):
        """kapre.MagnitudeToDecibel: 10*log10(max(x, amin)), floored at (clip max - range)."""

        def __init__(self, ref_value: float = 1.0, amin: float = 1e-5,
                     dynamic_range: float = 80.0, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.ref_value = float(ref_value)
            self.amin = float(amin)
            self.dynamic_range = float(dynamic_range)

        def call(self, x: Any) -> Any:
            ln10 = float(np.log(10.0))
            db = 10.0 * tf.math.log(tf.maximum(x, self.amin)) / ln10
            db = db - 10.0 * float(np.log10(max(self.amin, self.ref_value)))
            axes = list(range(1, len(x.shape)))
            return tf.maximum(db, tf.reduce_max(db, axis=axes, keepdims=True)
                              - self.dynamic_range)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "ref_value": self.ref_value, "amin": self.amin,
                    "dynamic_range": self.dynamic_range}

    classes: dict[str, type] = {
        "STFT": STFT, "Magnitude": Magnitude, "ApplyFilterbank": ApplyFilterbank,
        "MagnitudeToDecibel": MagnitudeToDecibel,
    }
    # kapre 0.3.x registered them as "Kapre>NAME"; plain names are what its .h5 configs hold
    return {**classes, **{f"Kapre>{k}": v for k, v in classes.items()}}
