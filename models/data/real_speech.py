"""Real human speech without command words: Debian's Asterisk prompts (es, fr, it, ru; 8 kHz).

Why: a spotter trained on synthetic words must be measured against real voices that say none of
its words; false accepts per hour on them is the figure a user feels. Professional speakers,
CC-BY-SA. The packages are fetched at run time with `apt-get download NAME` and unpacked with
`dpkg -x` into a cache folder (never installed, never committed): ~20-30 MB each.
English prompts (asterisk-core-sounds-en*) are reserved for independent evaluation and refused.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

PROMPT_LANGUAGES: tuple[str, ...] = ("es", "fr", "it", "ru")
# Kept out of training and tuning: false accepts per hour are measured on it.
HELD_OUT_LANGUAGE = "ru"
MUSIC_PACKAGE = "asterisk-moh-opsound-wav"
# The package's five tracks: this one is kept out of training, for a music condition in evaluation.
HELD_OUT_MUSIC = "reno_project-system"
MUSIC_PARTS = ("train", "test")


def package_for(language: str) -> str:
    """Debian package of one language's prompts; English is refused (reserved)."""
    if language.startswith("en"):
        raise ValueError("the English Asterisk prompts are reserved for independent evaluation")
    if language not in PROMPT_LANGUAGES:
        raise ValueError(f"no Asterisk prompts for {language!r} (known: {PROMPT_LANGUAGES})")
    return f"asterisk-core-sounds-{language}-wav"


def unpack_package(package: str, cache_dir: str | Path) -> Path:
    """apt-get download + dpkg -x into cache_dir/package (reused when complete); the folder."""
    if "asterisk-core-sounds-en" in package:
        raise ValueError("the English Asterisk prompts are reserved for independent evaluation")
    out = Path(cache_dir) / package
    mark = out / ".complete"
    if mark.is_file():
        return out
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is needed to fetch {package} (a Debian package)")
    with tempfile.TemporaryDirectory(prefix="hark-deb-") as tmp:
        got = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True,
                             text=True, check=False, timeout=600)
        debs = list(Path(tmp).glob("*.deb"))
        if got.returncode != 0 or not debs:
            raise RuntimeError(f"apt-get download {package} failed: {got.stderr.strip()[-300:]}")
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg", "-x", str(debs[0]), str(out)], check=True, timeout=600)
    mark.write_text("ok\n")
    return out


def prompt_files(language: str, cache_dir: str | Path) -> list[Path]:
    """Every prompt WAV of a language (sorted), fetching the package on first use."""
    root = unpack_package(package_for(language), cache_dir)
    files = sorted(root.rglob("*.wav"))
    if not files:
        raise RuntimeError(f"{root} holds no WAV prompts")
    return files


def music_files(cache_dir: str | Path, part: str | None = None) -> list[Path]:
    """The music-on-hold recordings (background noise of the real kind), 8 kHz, 18 min in all.

    part "train": every track but HELD_OUT_MUSIC; "test": that track alone; None: all five.
    """
    files = sorted(unpack_package(MUSIC_PACKAGE, cache_dir).rglob("*.wav"))
    if part is None:
        return files
    if part not in MUSIC_PARTS:
        raise ValueError(f"music part {part!r}: known {MUSIC_PARTS}")
    return [f for f in files if (f.stem == HELD_OUT_MUSIC) == (part == "test")]


def recordings(folder: str | Path, sample_rate: int) -> list[np.ndarray]:
    """Every audio file under a folder, decoded (backgrounds such as `hark synth music`)."""
    from hark.models.data.audio import read_audio
    from hark.models.false_accepts import negative_files

    out = [read_audio(f, sample_rate) for f in negative_files([folder])]
    return [x for x in out if x.size and np.any(x)]


def concatenate(files: list[Path], out: str | Path, sample_rate: int = 16000,
                gap_s: float = 0.3) -> Path:
    """One long recording of many prompts (the engine's start-up cost is paid once)."""
    from hark.models.data.audio import read_audio, write_wav

    gap = np.zeros(round(gap_s * sample_rate), np.float32)
    parts = []
    for f in files:
        parts += [read_audio(f, sample_rate), gap]
    return write_wav(out, np.concatenate(parts) if parts else gap, sample_rate)


def speech_pieces(folder: str | Path, sample_rate: int, n: int, rng: np.random.Generator,
                  length_s: tuple[float, float] = (0.4, 3.0)) -> list[np.ndarray]:
    """N pieces of real speech from the audio files under `folder` (drawn with replacement).

    Each piece is a random stretch of one file's active part (silence at the edges trimmed),
    0.4-3 s long: what a word spotter must learn to pass over. Files are decoded once each.
    """
    from hark.models.data.audio import active_extent, read_audio
    from hark.models.false_accepts import negative_files

    files = negative_files([folder])
    decoded: dict[int, np.ndarray] = {}
    out: list[np.ndarray] = []
    lo, hi = (round(s * sample_rate) for s in length_s)
    for _ in range(n):
        i = int(rng.integers(len(files)))
        if i not in decoded:
            x = read_audio(files[i], sample_rate)
            a, b = active_extent(x, sample_rate) if x.size else (0, 0)
            decoded[i] = x[a:b]
        x = decoded[i]
        if x.size < lo:
            if x.size and np.any(x):
                out.append(x.copy())
            continue
        size = int(rng.integers(lo, min(hi, x.size) + 1))
        start = int(rng.integers(0, x.size - size + 1))
        piece = x[start : start + size]
        if np.any(piece):
            out.append(piece.copy())
    return out
