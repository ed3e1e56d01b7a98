"""The audio a benchmark replays: a recording (decoded like `hark replay` does) or a synthetic mix.

The synthetic mix is deterministic (seeded) and keeps the speech gate open most of the time, so
the models run on most hops, as they would while someone talks: voiced harmonic "syllables" with
formant-shaped spectra, beeps, whistles and noise bursts over a quiet noise floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class AudioSpec:
    """Where the benchmark audio comes from: a file path, or `synth_s` seconds of synthesis."""

    path: Path | None = None
    synth_s: float | None = None
    seed: int = 0

    def describe(self) -> dict[str, object]:
        if self.path is not None:
            return {"source": "file", "path": str(self.path)}
        return {"source": "synth", "synth_s": self.synth_s, "seed": self.seed}


def load(spec: AudioSpec, sample_rate: int) -> np.ndarray:
    """Mono float32 at sample_rate."""
    if spec.path is not None:
        from hark.live.sources import FileSource

        src = FileSource(spec.path, sample_rate, block_s=1.0)
        try:
            blocks = list(src.blocks())
        finally:
            src.close()
        return np.concatenate(blocks).astype(np.float32) if blocks else np.zeros(0, np.float32)
    assert spec.synth_s is not None
    return synth(spec.synth_s, sample_rate, spec.seed)


def _voiced(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A vowel-like sound: glottal harmonics under three formant bumps, syllable-rate AM."""
    t = np.arange(n) / rate
    f0 = rng.uniform(100, 200) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(1, 3) * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    formants = rng.uniform([500, 1000, 2300], [900, 1700, 3000])
    out = np.zeros(n)
    for h in range(1, int(0.45 * rate / 200)):
        fh = h * f0.mean()
        gain = sum(np.exp(-0.5 * ((fh - f) / 150.0) ** 2) for f in formants) + 0.05 / h
        out += gain * np.sin(h * phase)
    syll = 0.5 - 0.5 * np.cos(2 * np.pi * rng.uniform(3, 5) * t)
    return out / (np.abs(out).max() + 1e-9) * syll


def synth(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """`seconds` of deterministic test audio at sample_rate (float32, peak <= 0.5)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    out = 0.002 * rng.standard_normal(n)  # a -54 dBFS noise floor: never digital silence
    pos = int(0.05 * sample_rate)
    kinds = ("voiced", "voiced", "beep", "voiced", "whistle", "noise")
    k = 0
    while pos < n:
        kind = kinds[k % len(kinds)]
        k += 1
        length = int(rng.uniform(0.3, 0.7) * sample_rate)
        seg_n = min(length, n - pos)
        t = np.arange(seg_n) / sample_rate
        if kind == "voiced":
            seg = _voiced(seg_n, sample_rate, rng)
        elif kind == "beep":
            seg = np.sin(2 * np.pi * rng.uniform(700, 1500) * t)
        elif kind == "whistle":
            f = rng.uniform(1000, min(3000, 0.4 * sample_rate)) * (1 + 0.2 * t)
            seg = np.sin(2 * np.pi * np.cumsum(f) / sample_rate)
        else:
            seg = rng.standard_normal(seg_n) * np.exp(-t / 0.1)
        ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01) if seg_n else seg
        out[pos : pos + seg_n] += rng.uniform(0.2, 0.45) * seg * ramp
        pos += seg_n + int(rng.uniform(0.05, 0.25) * sample_rate)  # short pauses
    return np.clip(out, -0.5, 0.5).astype(np.float32)


def default_audio() -> AudioSpec:
    """The bundled demo recording if installed, else 10 s of synthesis."""
    from hark.live.model import bundled_dir

    demo = bundled_dir() / "demo.wav"
    return AudioSpec(path=demo) if demo.is_file() else AudioSpec(synth_s=10.0)


def blocks(audio: np.ndarray, block: int) -> list[np.ndarray]:
    """Consecutive blocks of `block` samples (the last may be shorter), as a mic delivers them."""
    return [audio[i : i + block] for i in range(0, audio.size, block)]
