"""Stand-in users for `hark enroll`: takes of a held-out voice as a microphone would record them.

No person can speak into these machines, so the voices held out of all training (flite slt, the
Kokoro blend jf_nezumi*0.5+jm_kumo) say each word several times with a different speed and pitch
per take, inside a little room noise and silence, like takes captured one utterance at a time.
Tests and scripts/enroll_accuracy.py use them; training never does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from hark.models.data.augment import coloured_noise
from hark.models.data.tts import Prosody, find_voice, synth_clip

RATE = 16000
# (speed, pitch) of take 1, 2, ...: the last is the held-out one (a fourth, different, delivery)
TAKE_PROSODIES: tuple[tuple[float, float], ...] = (
    (0.95, 0.45), (1.05, 0.55), (1.0, 0.4), (0.9, 0.6), (1.1, 0.5), (1.0, 0.65),
)  # fmt: skip
STAND_INS: dict[str, tuple[str, str]] = {
    "slt": ("flite", "slt"),  # held out of all training: the figures
    "kokoro-blend": ("kokoro", "jf_nezumi*0.5+jm_kumo"),  # held out too
    # a development user for design choices (never the figures): a Kokoro voice enrolment
    # never synthesises, trained on by the bundled heads
    "kokoro-kumo": ("kokoro", "jm_kumo"),
}
HELD_OUT_STAND_INS = ("slt", "kokoro-blend")


@dataclass(frozen=True)
class TakeStyle:
    """The room around a take: silence before/after (s, drawn per take) and noise level."""

    before_s: tuple[float, float] = (0.3, 0.6)
    after_s: tuple[float, float] = (0.45, 0.7)
    noise_dbfs: float = -55.0  # RMS of the room's pink noise
    seed: int = 0


def user_takes(words: list[str] | tuple[str, ...], stand_in: str, n_takes: int,
               style: TakeStyle | None = None) -> dict[str, list[np.ndarray]]:
    """n_takes takes of each word by a stand-in voice (a key of STAND_INS), 16 kHz mono."""
    if stand_in not in STAND_INS:
        raise ValueError(f"unknown stand-in {stand_in!r} (known: {', '.join(STAND_INS)})")
    if n_takes > len(TAKE_PROSODIES):
        raise ValueError(f"at most {len(TAKE_PROSODIES)} takes per word")
    style = style or TakeStyle()
    engine, name = STAND_INS[stand_in]
    voice = find_voice(engine, name)  # type: ignore[arg-type]
    rng = np.random.default_rng([style.seed, 7])
    gain = np.float32(10 ** (style.noise_dbfs / 20))
    out: dict[str, list[np.ndarray]] = {}
    for word in words:
        takes = []
        for speed, pitch in TAKE_PROSODIES[:n_takes]:
            clip = synth_clip(word, voice, RATE, Prosody(speed, pitch))
            pre = np.zeros(int(rng.uniform(*style.before_s) * RATE), np.float32)
            post = np.zeros(int(rng.uniform(*style.after_s) * RATE), np.float32)
            take = np.concatenate((pre, clip, post))
            take += gain * coloured_noise(take.size, "pink", rng)
            takes.append(take.astype(np.float32))
        out[word] = takes
    return out


def write_takes(folder: Path, takes: dict[str, list[np.ndarray]]) -> Path:
    """FOLDER/<word, _ for spaces>/take1.wav ... (16-bit PCM), as `hark enroll --from` reads."""
    for word, clips in takes.items():
        d = folder / word.replace(" ", "_")
        d.mkdir(parents=True, exist_ok=True)
        for k, clip in enumerate(clips, 1):
            sf.write(d / f"take{k}.wav", clip, RATE, subtype="PCM_16")
    return folder
