"""Rooms, microphones and channels for clean synthetic speech, with audiomentations.

Why: synthetic words are dry and full-band; a user's words come through a room, a microphone
and sometimes a phone line. Room impulse responses come from pyroomacoustics (ShoeBox sized by
inverse Sabine for an RT60 of 0.2-1.0 s), simulated once into a cached bank of WAV files that
audiomentations' ApplyImpulseResponse then convolves (a simulation takes up to seconds; a
convolution milliseconds). The rest is audiomentations as it ships: EQ, band-pass, a laptop-mic
high-pass, MP3, clipping, gain, coloured noise; the telephone channel is a 300-3400 Hz band and an
8 kHz round trip (soxr). audiomentations draws from numpy's and Python's global generators, so
`ChannelAugmenter.__call__` seeds both from the caller's generator: same seed, same output.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hark.models.data.audio import FloatArray, resample, write_wav

TELEPHONE_RATE = 8000


@dataclass(frozen=True)
class RoomBankOptions:
    """How the cached bank of impulse responses is drawn."""

    n: int = 24
    rt60_range: tuple[float, float] = (0.2, 1.0)
    room_range_m: tuple[tuple[float, float], ...] = ((3.0, 9.0), (3.0, 8.0), (2.4, 3.5))
    max_order: int | None = None  # None: the order inverse_sabine asks for (a cap cuts the tail)
    seed: int = 0


def simulate_rir(rt60: float, dims: tuple[float, float, float], rng: np.random.Generator,
                 sample_rate: int = 16000, max_order: int | None = None) -> FloatArray:
    """One impulse response: source and microphone at random spots >= 0.5 m from the walls."""
    import pyroomacoustics as pra

    absorption, order = pra.inverse_sabine(rt60, list(dims))
    room = pra.ShoeBox(list(dims), fs=sample_rate, materials=pra.Material(absorption),
                       max_order=order if max_order is None else min(order, max_order))
    lo = np.full(3, 0.5)
    hi = np.asarray(dims) - 0.5
    room.add_source(list(rng.uniform(lo, hi)))
    room.add_microphone(list(rng.uniform(lo, hi)))
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float32)
    return rir / np.float32(np.max(np.abs(rir)))


def room_bank(cache_dir: str | Path, options: RoomBankOptions = RoomBankOptions(),
              sample_rate: int = 16000) -> Path:
    """Folder of rir_NNN_rt60-X.wav, simulated once (a complete folder is reused as it is)."""
    folder = Path(cache_dir) / f"rirs-n{options.n}-s{options.seed}-{sample_rate}"
    mark = folder / ".complete"
    if mark.is_file():
        return folder
    rng = np.random.default_rng(options.seed)
    for i in range(options.n):
        rt60 = float(rng.uniform(*options.rt60_range))
        dims = tuple(float(rng.uniform(*r)) for r in options.room_range_m)
        rir = simulate_rir(rt60, dims, rng, sample_rate, options.max_order)  # type: ignore[arg-type]
        write_wav(folder / f"rir_{i:03d}_rt60-{rt60:.2f}.wav", rir, sample_rate)
    mark.write_text("ok\n")
    return folder


def telephone(audio: FloatArray, sample_rate: int) -> FloatArray:
    """300-3400 Hz band and an 8 kHz round trip (what a phone line leaves of a voice)."""
    from audiomentations import BandPassFilter

    band = BandPassFilter(min_center_freq=1000.0, max_center_freq=1000.0, min_bandwidth_fraction=
                          1.55, max_bandwidth_fraction=1.55, min_rolloff=24, max_rolloff=24,
                          zero_phase=True, p=1.0)
    narrow = band(samples=audio.astype(np.float32), sample_rate=sample_rate)
    return resample(resample(narrow, sample_rate, TELEPHONE_RATE), TELEPHONE_RATE, sample_rate)


@dataclass(frozen=True)
class ChannelOptions:
    """Probabilities of each stage (0 turns one off)."""

    room_p: float = 0.6
    eq_p: float = 0.5
    laptop_highpass_p: float = 0.2
    bandpass_p: float = 0.2
    telephone_p: float = 0.1
    mp3_p: float = 0.1
    clipping_p: float = 0.1
    noise_p: float = 0.5
    snr_db: tuple[float, float] = (5.0, 30.0)
    gain_db: tuple[float, float] = (-6.0, 6.0)


class ChannelAugmenter:
    """Room -> microphone -> channel -> noise -> gain, each stage with its probability."""

    def __init__(self, sample_rate: int, rir_dir: str | Path | None,
                 options: ChannelOptions = ChannelOptions()) -> None:
        """Build the audiomentations stages once (the IR files are read once)."""
        import audiomentations as am

        self.sample_rate = sample_rate
        self.options = options
        o = options
        self.room: Any = (am.ApplyImpulseResponse(ir_path=str(rir_dir), p=1.0,
                                                  leave_length_unchanged=True)
                          if rir_dir is not None else None)
        self.eq = am.SevenBandParametricEQ(min_gain_db=-6.0, max_gain_db=6.0, p=1.0)
        self.laptop = am.HighPassFilter(min_cutoff_freq=200.0, max_cutoff_freq=500.0, p=1.0)
        self.band = am.BandPassFilter(min_center_freq=800.0, max_center_freq=2000.0, p=1.0)
        self.mp3 = am.Mp3Compression(min_bitrate=16, max_bitrate=64, backend="fast-mp3-augment",
                                     p=1.0)
        self.clip = am.ClippingDistortion(min_percentile_threshold=0,
                                          max_percentile_threshold=10, p=1.0)
        self.noise = am.AddColorNoise(min_snr_db=o.snr_db[0], max_snr_db=o.snr_db[1], p=1.0)
        self.gain = am.Gain(min_gain_db=o.gain_db[0], max_gain_db=o.gain_db[1], p=1.0)

    def __call__(self, audio: FloatArray, rng: np.random.Generator) -> FloatArray:
        """One augmented copy; seeded by `rng` (global generators are set from it)."""
        o = self.options
        np.random.seed(int(rng.integers(2**31)))
        random.seed(int(rng.integers(2**31)))
        x = audio.astype(np.float32)
        sr = self.sample_rate
        stages = [(self.room, o.room_p), (self.eq, o.eq_p), (self.laptop, o.laptop_highpass_p),
                  (self.band, o.bandpass_p)]
        for stage, p in stages:
            if stage is not None and rng.random() < p:
                x = stage(samples=x, sample_rate=sr)
        if rng.random() < o.telephone_p:
            x = telephone(x, sr)
        if rng.random() < o.mp3_p:
            x = self.mp3(samples=x, sample_rate=sr)[: audio.size]
        if rng.random() < o.clipping_p:
            x = self.clip(samples=x, sample_rate=sr)
        if rng.random() < o.noise_p and np.any(x):
            x = self.noise(samples=x, sample_rate=sr)
        return np.asarray(self.gain(samples=x, sample_rate=sr), dtype=np.float32)
