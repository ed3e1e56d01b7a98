"""Training-time augmentation: coloured noise, mixing at a given SNR, time shift and gain.

Synthetic speech is clean; the microphone is not. Mixing in noise of several spectral tilts at a
random SNR is the cheapest way to stop a model from relying on digital silence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hark.models.data.audio import FloatArray, db_to_amplitude, power

# Power spectral density goes as f**k for each colour (k = 0 white, -1 pink: -3 dB/octave, ...).
NOISE_EXPONENTS: dict[str, float] = {
    "white": 0.0,
    "pink": -1.0,
    "brown": -2.0,
    "blue": 1.0,
    "violet": 2.0,
}
NOISE_COLOURS: tuple[str, ...] = tuple(NOISE_EXPONENTS)


def coloured_noise(n_samples: int, colour: str | float, rng: np.random.Generator) -> FloatArray:
    """Gaussian noise with power spectral density ~ f**k and unit RMS.

    `colour` is a name from NOISE_EXPONENTS or the exponent k itself. White noise is shaped in the
    frequency domain by f**(k/2) (amplitude); the DC bin is zeroed so 1/f shapes stay finite.
    """
    exponent = NOISE_EXPONENTS[colour] if isinstance(colour, str) else float(colour)
    if n_samples <= 0:
        return np.zeros(0, dtype=np.float32)
    spectrum = np.fft.rfft(rng.standard_normal(n_samples))
    freqs = np.fft.rfftfreq(n_samples)
    shape = np.zeros_like(freqs)
    shape[1:] = freqs[1:] ** (exponent / 2.0)
    noise = np.fft.irfft(spectrum * shape, n=n_samples)
    rms = np.sqrt(np.mean(noise**2))
    if rms == 0.0:  # n_samples == 1: only a DC bin, which the shaping removed
        return np.zeros(n_samples, dtype=np.float32)
    return (noise / rms).astype(np.float32)


def noise_gain_for_snr(signal_power: float, noise_power: float, snr_db: float) -> float:
    """Factor for the noise so that 10 log10(signal_power / scaled noise power) == snr_db."""
    if noise_power <= 0.0:
        raise ValueError("noise has no power: cannot set an SNR")
    return float(np.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0))))


def mix_at_snr(
    signal: npt.ArrayLike,
    noise: npt.ArrayLike,
    snr_db: float,
    *,
    signal_power: float | None = None,
) -> FloatArray:
    """Add `noise` scaled so the signal-to-noise ratio is `snr_db` (powers over the whole buffer).

    Pass `signal_power` to measure the signal elsewhere, e.g. over a word's active part only.
    """
    sig = np.asarray(signal, dtype=np.float32)
    nse = np.asarray(noise, dtype=np.float32)
    if sig.shape != nse.shape:
        raise ValueError(f"signal {sig.shape} and noise {nse.shape} differ in shape")
    p_signal = power(sig) if signal_power is None else signal_power
    gain = noise_gain_for_snr(p_signal, power(nse), snr_db)
    return (sig + np.float32(gain) * nse).astype(np.float32)


def time_shift(x: FloatArray, shift: int) -> FloatArray:
    """Delay (shift > 0) or advance (shift < 0) by `shift` samples, filling with zeros (no wrap)."""
    out = np.zeros_like(x)
    if shift >= 0:
        if shift < x.shape[-1]:
            out[..., shift:] = x[..., : x.shape[-1] - shift]
    elif -shift < x.shape[-1]:
        out[..., :shift] = x[..., -shift:]
    return out


def apply_gain_db(x: FloatArray, gain_db: float) -> FloatArray:
    """Scale by a gain in dB."""
    return (x * np.float32(db_to_amplitude(gain_db))).astype(np.float32)


@dataclass(frozen=True)
class Augmenter:
    """Random shift, noise at an SNR and gain for fixed-length clips; draws from the caller's rng.

    The order is shift, then noise (SNR relative to the whole clip), then gain, so the gain moves
    the overall level without changing the SNR. `noise_bank` holds recorded or generated noise at
    the clip rate (e.g. the `_background_noise_` files); an excerpt is used with `bank_prob`.
    """

    sample_rate: int = 16000
    shift_max_s: float = 0.1
    gain_db_range: tuple[float, float] = (-6.0, 6.0)
    noise_prob: float = 0.8
    snr_db_range: tuple[float, float] = (0.0, 25.0)
    colours: tuple[str, ...] = NOISE_COLOURS
    noise_bank: tuple[FloatArray, ...] = ()
    bank_prob: float = 0.5

    def __call__(self, x: FloatArray, rng: np.random.Generator) -> FloatArray:
        """Augment one 1-D clip."""
        max_shift = round(self.shift_max_s * self.sample_rate)
        out = time_shift(x, int(rng.integers(-max_shift, max_shift + 1))) if max_shift else x.copy()
        if rng.random() < self.noise_prob and power(out) > 0.0:
            noise = self._noise(out.shape[-1], rng)
            out = mix_at_snr(out, noise, float(rng.uniform(*self.snr_db_range)))
        return apply_gain_db(out, float(rng.uniform(*self.gain_db_range)))

    def batch(
        self, clips: FloatArray | Sequence[FloatArray], rng: np.random.Generator
    ) -> FloatArray:
        """Augment each row of a [n, samples] batch independently."""
        return np.stack([self(np.asarray(c, dtype=np.float32), rng) for c in clips])

    def _noise(self, n_samples: int, rng: np.random.Generator) -> FloatArray:
        usable = [b for b in self.noise_bank if b.shape[-1] >= n_samples]
        if usable and rng.random() < self.bank_prob:
            source = usable[int(rng.integers(len(usable)))]
            start = int(rng.integers(source.shape[-1] - n_samples + 1))
            excerpt = np.asarray(source[start : start + n_samples], dtype=np.float32)
            if power(excerpt) > 0.0:
                return excerpt
        colour = self.colours[int(rng.integers(len(self.colours)))]
        return coloured_noise(n_samples, colour, rng)
