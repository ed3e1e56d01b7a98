"""Text-to-speech engines (espeak-ng, flite): which voices exist and how to speak one clip.

Both engines run as subprocesses, deterministic for the same arguments. A `Voice` carries a
filesystem-safe id for file names and a `speaker` key: voices that sound alike (or are identical)
share it, so splits made by speaker never put the same voice on both sides.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np

from hark.models.data.audio import FloatArray, audio_info, read_audio
from hark.models.data.speakers import GenderChange, change_gender

Engine = Literal["espeak", "flite", "kokoro"]
ENGINES: tuple[Engine, ...] = ("espeak", "flite", "kokoro")
# Never synthesised here: kept for independent evaluation (issue 11).
RESERVED_ENGINES: tuple[str, ...] = ("festival", "piper")
# Kokoro blends of every pair of voices at these weights of the first voice.
KOKORO_BLEND_WEIGHTS: tuple[float, ...] = (0.3, 0.7)

# English accents that accept "+variant" (NOTES: "en-gb+m3" silently drops the variant; "en+m3"
# does not). en-us-nyc equals en-us for many words, which is why splits group by variant.
ESPEAK_ACCENTS: tuple[str, ...] = (
    "en",
    "en-us",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-rp",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
ESPEAK_DEFAULT_WPM = 175
# espeak's full-scale amplitude (100) clips for ~6% of voices; 50 leaves headroom.
ESPEAK_AMPLITUDE = 50
# flite's built-in voices and who speaks them: kal and kal16 are one speaker at 8 and 16 kHz.
# awb_time is a limited-domain voice that can only say clock times, so it is left out.
FLITE_SPEAKERS: dict[str, str] = {
    "kal": "kal",
    "kal16": "kal",
    "awb": "awb",
    "rms": "rms",
    "slt": "slt",
}
# flite pitch is moved by replaying faster/slower (tape); pitch 0..1 maps to this factor range.
FLITE_TAPE_RANGE = (0.9, 1.1)
PROBE_WORD = "seven"


@dataclass(frozen=True)
class Voice:
    """One synthesiser voice: `name` is the engine's argument (e.g. "en-us+m3", "slt")."""

    engine: Engine
    name: str
    voice_id: str
    speaker: str
    shift: GenderChange | None = None

    def shifted(self, change: GenderChange) -> Voice:
        """The voice through Praat's Change gender: same speaker key (same split, no leak)."""
        return Voice(self.engine, self.name, f"{self.voice_id}-{slug(change.tag)}", self.speaker,
                     change)


@dataclass(frozen=True)
class Prosody:
    """Speaking rate and pitch; the defaults are the voice's own.

    speed: tempo factor (>1 faster). pitch: 0..1 position in the engine's pitch control, 0.5 being
    the default: espeak -p 0..99; flite replays the audio 0.9..1.1 times as fast (tempo
    compensated), which shifts pitch and formants together like a different vocal tract length.
    """

    speed: float = 1.0
    pitch: float = 0.5


def slug(text: str) -> str:
    """Lowercase id with runs of anything but letters/digits turned into one '-'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def require_binary(name: str) -> str:
    """Path of an executable, or a RuntimeError that says how to install it."""
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(
            f"{name} is not installed (needed to synthesise speech): apt-get install {name}"
        )
    return path


def _run(cmd: list[str], stdin: bytes | None = None) -> bytes:
    result = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    message = result.stderr.decode(errors="replace").strip()
    # flite exits 0 when a voice fails to load (it falls back to another): "Error" means failure.
    if result.returncode != 0 or "error" in message.lower():
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {message}")
    return result.stdout


@cache
def espeak_data_dir() -> Path:
    """espeak-ng's data folder, as `espeak-ng --version` reports it."""
    out = _run([require_binary("espeak-ng"), "--version"]).decode()
    match = re.search(r"Data at:\s*(\S.*)$", out.strip(), flags=re.MULTILINE)
    if match is None:
        raise RuntimeError(f"cannot find the espeak-ng data folder in: {out!r}")
    return Path(match.group(1).strip())


@cache
def espeak_variants() -> tuple[str, ...]:
    """Names of the installed voice variants (m1..m8, f1..f5, klatt, whisper, ...), sorted."""
    folder = espeak_data_dir() / "voices" / "!v"
    return tuple(sorted(p.name for p in folder.iterdir() if p.is_file()))


@cache
def _espeak_variant_speakers() -> dict[str, str]:
    """Map each variant to a speaker key; variants whose probe word is byte-identical share one.

    (caleb, klatt and klatt6 produce the same waveform in espeak-ng 1.51.)
    """
    by_digest: dict[str, str] = {}
    speakers: dict[str, str] = {}
    for variant in espeak_variants():
        audio = _run(_espeak_cmd(f"en-us+{variant}", Prosody()), PROBE_WORD.encode())
        digest = hashlib.sha1(audio).hexdigest()
        speakers[variant] = by_digest.setdefault(digest, f"espeak-{slug(variant)}")
    return speakers


def espeak_voices(
    accents: tuple[str, ...] = ESPEAK_ACCENTS, variants: tuple[str, ...] | None = None
) -> tuple[Voice, ...]:
    """Every accent x variant voice ("en+m3" style); the speaker key is the variant alias group."""
    speakers = _espeak_variant_speakers()
    chosen = espeak_variants() if variants is None else variants
    unknown = sorted(set(chosen) - set(speakers))
    if unknown:
        raise ValueError(f"unknown espeak-ng variants: {unknown}")
    return tuple(
        Voice(
            "espeak",
            f"{accent}+{variant}",
            f"espeak-{slug(accent)}-{slug(variant)}",
            speakers[variant],
        )
        for accent in accents
        for variant in chosen
    )


@cache
def flite_voice_names() -> tuple[str, ...]:
    """Built-in flite voices as `flite -lv` lists them, restricted to FLITE_SPEAKERS."""
    out = _run([require_binary("flite"), "-lv"]).decode()
    listed = out.split(":", 1)[-1].split()
    return tuple(name for name in listed if name in FLITE_SPEAKERS)


def flite_voices() -> tuple[Voice, ...]:
    """The usable built-in voices; kal and kal16 share the speaker key "flite-kal"."""
    return tuple(
        Voice("flite", name, f"flite-{slug(name)}", f"flite-{FLITE_SPEAKERS[name]}")
        for name in flite_voice_names()
    )


def kokoro_voice(name: str) -> Voice:
    """A Kokoro voice or blend ('jf_alpha', 'jf_alpha*0.3+jm_kumo'); a pair is one speaker."""
    from hark.models.data.kokoro import KokoroStyle

    style = KokoroStyle.parse(name)
    pair = style.a if style.b is None else "+".join(sorted((style.a, style.b)))
    return Voice("kokoro", style.name, style.voice_id, f"kokoro-{slug(pair)}")


def kokoro_voices() -> tuple[Voice, ...]:
    """The five voices and blends of every pair at KOKORO_BLEND_WEIGHTS."""
    from itertools import combinations

    from hark.models.data.kokoro import KOKORO_VOICES

    names = list(KOKORO_VOICES)
    names += [f"{a}*{w:g}+{b}" for a, b in combinations(KOKORO_VOICES, 2)
              for w in KOKORO_BLEND_WEIGHTS]
    return tuple(kokoro_voice(n) for n in names)


def voices_for(engine: Engine) -> tuple[Voice, ...]:
    """All default voices of an engine."""
    if engine == "kokoro":
        return kokoro_voices()
    return espeak_voices() if engine == "espeak" else flite_voices()


def parse_engine(spec: str) -> tuple[Engine, float]:
    """'espeak-ng:0.5' -> ("espeak", 0.5); a bare name weighs 1. Reserved engines are refused."""
    name, _, weight = spec.partition(":")
    name = {"espeak-ng": "espeak"}.get(name.strip().lower(), name.strip().lower())
    if name in RESERVED_ENGINES:
        raise ValueError(f"{name} voices are reserved for independent evaluation only")
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r} (known: espeak-ng, flite, kokoro)")
    w = float(weight) if weight else 1.0
    if not w > 0:
        raise ValueError(f"engine weight must be > 0: {spec!r}")
    return name, w


def find_voice(engine: Engine, name: str) -> Voice:
    """A voice of an engine by its engine name (espeak 'en-us+m3', flite 'slt', kokoro blend)."""
    if engine == "kokoro":
        return kokoro_voice(name)
    for v in (espeak_voices() if engine == "espeak" else flite_voices()):
        if v.name == name:
            return v
    raise ValueError(f"no {engine} voice named {name!r}")


def _espeak_cmd(voice_name: str, prosody: Prosody) -> list[str]:
    wpm = round(ESPEAK_DEFAULT_WPM * prosody.speed)
    pitch = int(np.clip(round(99 * prosody.pitch), 0, 99))
    return [
        require_binary("espeak-ng"),
        "-v",
        voice_name,
        "-s",
        str(wpm),
        "-p",
        str(pitch),
        "-a",
        str(ESPEAK_AMPLITUDE),
        "--stdout",
    ]


def synth_clip(
    text: str, voice: Voice, sample_rate: int = 16000, prosody: Prosody | None = None
) -> FloatArray:
    """Speak `text` with `voice` and return mono float32 at `sample_rate` (engine padding kept)."""
    clip = _synth_raw(text, voice, sample_rate, prosody or Prosody())
    if voice.shift is None:
        return clip
    return change_gender(clip, sample_rate, voice.shift, seed=zlib.crc32(text.encode()))


def _synth_raw(text: str, voice: Voice, sample_rate: int, prosody: Prosody) -> FloatArray:
    if voice.engine == "kokoro":
        from hark.models.data.kokoro import KokoroStyle, synth_kokoro

        # Kokoro has no pitch control: pitch comes from blends and Change gender instead.
        return synth_kokoro(text, KokoroStyle.parse(voice.name), sample_rate, prosody.speed)
    if voice.engine == "espeak":
        # Text goes in on stdin so a word can never be read as an option.
        wav = _run(_espeak_cmd(voice.name, prosody), text.encode())
        return read_audio(io.BytesIO(wav), sample_rate)
    if voice.name not in FLITE_SPEAKERS:
        raise ValueError(f"not a built-in flite voice: {voice.name!r}")
    low, high = FLITE_TAPE_RANGE
    tape = low + (high - low) * float(np.clip(prosody.pitch, 0.0, 1.0))
    # Replaying `tape` times as fast shortens by 1/tape: pre-stretch so the net tempo is `speed`.
    stretch = tape / prosody.speed
    with tempfile.TemporaryDirectory(prefix="hark-flite-") as tmp:
        out = Path(tmp) / "clip.wav"
        cmd = [
            require_binary("flite"),
            "-voice",
            voice.name,
            "--setf",
            f"duration_stretch={stretch:.4f}",
        ]
        _run([*cmd, "-t", text, "-o", str(out)])
        rate, _ = audio_info(out)
        return read_audio(out, sample_rate, source_rate=rate * tape)
