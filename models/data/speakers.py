"""New speakers from any voice: Praat's "Change gender" (formants, pitch median/range, duration).

The phonetic standard for a speaker change: PSOLA resynthesis with the formants scaled by
`formant_ratio` (a shorter or longer vocal tract), the pitch moved to `pitch_median_hz` and its
excursions scaled by `pitch_range`, and the tempo by `duration`. 13-40 ms per word.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hark.models.data.audio import FloatArray

PITCH_FLOOR_HZ = 75.0
PITCH_CEILING_HZ = 600.0


@dataclass(frozen=True)
class GenderChange:
    """Arguments of Praat's Change gender; pitch_median_hz 0 keeps the voice's own median."""

    formant_ratio: float = 1.0
    pitch_median_hz: float = 0.0
    pitch_range: float = 1.0
    duration: float = 1.0

    @property
    def tag(self) -> str:
        """Short id for file names: f1.15-p200-r1.0-d1.0."""
        return (f"f{self.formant_ratio:.2f}-p{self.pitch_median_hz:.0f}-"
                f"r{self.pitch_range:.2f}-d{self.duration:.2f}")


@dataclass(frozen=True)
class SpeakerRanges:
    """Where random new speakers are drawn from (uniform in each range)."""

    formant_ratio: tuple[float, float] = (0.85, 1.2)
    pitch_median_hz: tuple[float, float] = (90.0, 260.0)
    pitch_range: tuple[float, float] = (0.6, 1.4)
    duration: tuple[float, float] = (0.9, 1.1)

    def draw(self, rng: np.random.Generator) -> GenderChange:
        """One random speaker change."""
        return GenderChange(
            round(float(rng.uniform(*self.formant_ratio)), 3),
            round(float(rng.uniform(*self.pitch_median_hz)), 1),
            round(float(rng.uniform(*self.pitch_range)), 3),
            round(float(rng.uniform(*self.duration)), 3),
        )


def change_gender(
    audio: FloatArray, sample_rate: int, change: GenderChange, seed: int = 0
) -> FloatArray:
    """The clip spoken by another speaker (parselmouth's Praat); float32, same rate.

    Praat's resynthesis draws random numbers (unvoiced stretches): its generator is seeded first,
    so the same clip and change always give the same samples.
    """
    import parselmouth
    from parselmouth.praat import call, run

    run(f"random_initializeWithSeedUnsafelyButPredictably: {int(seed)}")
    if audio.size < sample_rate // 20:  # Praat's pitch analysis needs a few periods
        return audio.astype(np.float32)
    snd = parselmouth.Sound(audio.astype(np.float64), sampling_frequency=float(sample_rate))
    out = call(snd, "Change gender", PITCH_FLOOR_HZ, PITCH_CEILING_HZ, change.formant_ratio,
               change.pitch_median_hz, change.pitch_range, change.duration)
    changed = np.asarray(out.values[0], dtype=np.float32)
    # Praat returns silence (or NaN) when it finds no voiced frame (whispered voices, "s"):
    # keep the clip as it was rather than write an empty one.
    if not np.all(np.isfinite(changed)) or np.max(np.abs(changed)) < 1e-3 * np.max(np.abs(audio)):
        return audio.astype(np.float32)
    return changed


def pitch_median_hz(audio: FloatArray, sample_rate: int) -> float:
    """Median F0 of the voiced frames (Praat's autocorrelation pitch), for tests and reports."""
    import parselmouth
    from parselmouth.praat import call

    snd = parselmouth.Sound(audio.astype(np.float64), sampling_frequency=float(sample_rate))
    pitch = snd.to_pitch(pitch_floor=PITCH_FLOOR_HZ, pitch_ceiling=PITCH_CEILING_HZ)
    return float(call(pitch, "Get quantile", 0, 0, 0.5, "Hertz"))
