"""The bundled demo recording: the ten command words, two filler words and four sounds, ~26 s.

Words are spoken by espeak-ng voices of the held-out (test) speakers of the seed-1 tree the
bundled command models were trained on, so the demo is not training data. A faint pink-noise
floor (about 30 dB under the words) stands in for a room. The truth (demo.tsv, DCASE format)
lists the words and sounds with their audible extents, and every spoken item (fillers included)
once more as `speech` for the sound-event model; the fillers are not command events.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hark.live.events import Event, write_events_tsv
from hark.models.data.audio import active_extent, db_to_amplitude, write_wav
from hark.models.data.augment import coloured_noise
from hark.models.data.sound_events import synth_event
from hark.models.data.tts import Prosody, Voice, espeak_voices, synth_clip

SAMPLE_RATE = 16000
DURATION_S = 26.0
BUNDLED_TREE_SEED = 1  # the seed of the tree the bundled command models were trained on
# (start time s, what): words are spoken, sounds synthesised; fillers are unknown words
SCRIPT: tuple[tuple[float, str], ...] = (
    (0.5, "yes"), (2.0, "no"), (3.4, "clap"), (5.0, "up"), (6.4, "down"),
    (7.9, "house"), (9.3, "whistle"), (11.0, "left"), (12.4, "right"), (13.8, "beep"),
    (15.8, "on"), (17.2, "off"), (18.6, "knock"), (20.6, "stop"), (22.0, "go"),
    (23.4, "marvin"),
)  # fmt: skip
SOUNDS = ("clap", "whistle", "beep", "knock")
FILLERS = ("house", "marvin")


def heldout_voices(seed: int = BUNDLED_TREE_SEED) -> list[Voice]:
    """espeak-ng voices whose speaker lands in the test split of a tree made with `seed`."""
    from hark.models.data.synth_speech import SpeechSetOptions, _word_key, assign_speakers

    voices = espeak_voices()
    opts = SpeechSetOptions()
    split = assign_speakers([v.speaker for v in voices], opts.split_fractions,
                            np.random.default_rng([seed, _word_key("speakers")]))
    return sorted((v for v in voices if split[v.speaker] == "test"), key=lambda v: v.voice_id)


def make_demo(seed: int = 0) -> tuple[np.ndarray, list[Event]]:
    """(audio, truth events) of the demo recording."""
    rng = np.random.default_rng([seed, 2024])
    n = round(DURATION_S * SAMPLE_RATE)
    audio = np.zeros(n, dtype=np.float32)
    voices = heldout_voices()
    # plain adult voices read best in a demo: prefer m/f variants over whisper/klatt oddities
    plain = [v for v in voices if v.name.split("+")[-1][:1] in ("m", "f")] or voices
    events: list[Event] = []
    for k, (start_s, what) in enumerate(SCRIPT):
        if what in SOUNDS:
            clip = synth_event(what, rng, SAMPLE_RATE)
            level_db = -10.0
        else:
            voice = plain[k % len(plain)]
            clip = synth_clip(what, voice, SAMPLE_RATE, Prosody(speed=0.9))
            level_db = -6.0
        a, b = active_extent(clip, SAMPLE_RATE, 40.0)
        clip = clip[a:b]
        clip = clip / np.max(np.abs(clip)) * np.float32(db_to_amplitude(level_db))
        i = round(start_s * SAMPLE_RATE)
        audio[i : i + clip.size] += clip[: n - i]
        on, off = i / SAMPLE_RATE, (i + clip.size) / SAMPLE_RATE
        if what not in FILLERS:
            events.append(Event(what, on, off))
        if what not in SOUNDS:  # every spoken item is also `speech` for the sound-event model
            events.append(Event("speech", on, off))
    audio += coloured_noise(n, "pink", rng) * np.float32(db_to_amplitude(-45.0))
    return audio, sorted(events, key=lambda e: (e.onset_s, e.label))


def write_demo(wav_path: str | Path, seed: int = 0) -> tuple[Path, Path]:
    """Write the demo as 16-bit 16 kHz mono WAV and its truth as a DCASE tsv beside it."""
    audio, events = make_demo(seed)
    wav = write_wav(wav_path, audio, SAMPLE_RATE)
    tsv = write_events_tsv(Path(wav).with_suffix(".tsv"), events)
    return wav, tsv
