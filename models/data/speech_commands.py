"""Google Speech Commands layout: find the clips, split them, label them (12-class protocol).

Layout: root/<word>/<speaker>_nohash_<n>.wav, optional validation_list.txt / testing_list.txt
(paths relative to root), and long noise recordings in root/_background_noise_/. Files listed in
neither list are training files. Decoding is deferred until `load`/`arrays` is called.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from hark.models.data.audio import FloatArray, IntArray, audio_info, fix_length, read_audio

COMMAND_WORDS: tuple[str, ...] = (
    "yes",
    "no",
    "up",
    "down",
    "left",
    "right",
    "on",
    "off",
    "stop",
    "go",
)
SILENCE = "_silence_"
UNKNOWN = "_unknown_"
LABELS_12: tuple[str, ...] = (*COMMAND_WORDS, SILENCE, UNKNOWN)
BACKGROUND_NOISE_DIR = "_background_noise_"
VALIDATION_LIST = "validation_list.txt"
TESTING_LIST = "testing_list.txt"
NOHASH = "_nohash_"

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")
# Silence clips of each split come from their own stretch of every noise file (fractions of its
# length), so no noise sample is heard in two splits.
SILENCE_REGIONS: dict[Split, tuple[float, float]] = {
    "train": (0.0, 0.8),
    "validation": (0.8, 0.9),
    "test": (0.9, 1.0),
}
# TensorFlow's speech_commands input_data.py: silence is 10% of the known-word count per split.
DEFAULT_SILENCE_PERCENTAGE = 10.0
_MAX_NUM_WAVS_PER_CLASS = 2**27 - 1  # constant of the dataset's own split hash


@dataclass(frozen=True)
class Clip:
    """One example: a file (or a stretch of a noise file) and its label.

    `start`/`frames` are in samples of the source file; frames=-1 means to the end.
    """

    path: Path
    label: str
    speaker: str
    start: int = 0
    frames: int = -1


@dataclass
class SpeechCommandsSet:
    """The clips of each split plus what is needed to decode them to fixed-length arrays."""

    root: Path
    sample_rate: int
    clip_s: float
    labels: tuple[str, ...]
    splits: dict[Split, list[Clip]]
    noise_files: tuple[Path, ...]

    @property
    def n_samples(self) -> int:
        """Samples per clip at the requested rate."""
        return round(self.clip_s * self.sample_rate)

    def load(self, clip: Clip) -> FloatArray:
        """Decode one clip to mono float32 at sample_rate, padded/cut to clip_s."""
        audio = read_audio(clip.path, self.sample_rate, start=clip.start, frames=clip.frames)
        return fix_length(audio, self.n_samples)

    def arrays(self, split: Split) -> tuple[FloatArray, IntArray]:
        """Decode a whole split: X [n, n_samples] float32 and y [n] int64 indices into labels."""
        clips = self.splits[split]
        x = np.zeros((len(clips), self.n_samples), dtype=np.float32)
        for row, clip in enumerate(clips):
            x[row] = self.load(clip)
        index = {label: i for i, label in enumerate(self.labels)}
        y = np.array([index[c.label] for c in clips], dtype=np.int64)
        return x, y

    def counts(self, split: Split) -> dict[str, int]:
        """Number of clips per label in a split (labels with none are reported as 0)."""
        found = Counter(c.label for c in self.splits[split])
        return {label: found.get(label, 0) for label in self.labels}

    def background_noise(self) -> list[FloatArray]:
        """The long noise recordings, decoded at sample_rate (for an augmenter's noise bank)."""
        return [read_audio(path, self.sample_rate) for path in self.noise_files]


def speaker_of(path: str | Path) -> str:
    """Speaker id from a file name: the part before `_nohash_` (the whole stem if absent)."""
    stem = Path(path).stem
    return stem.split(NOHASH, 1)[0]


def which_set(
    filename: str | Path, validation_percentage: float = 10.0, testing_percentage: float = 10.0
) -> Split:
    """The dataset's own hash split by speaker, used when a tree has no list files.

    Same arithmetic as TensorFlow's speech_commands `which_set`, so real trees split as published.
    """
    name = re.sub(r"_nohash_.*$", "", Path(filename).name)
    digest = int(hashlib.sha1(name.encode()).hexdigest(), 16)
    percentage = (digest % (_MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / _MAX_NUM_WAVS_PER_CLASS)
    if percentage < validation_percentage:
        return "validation"
    if percentage < validation_percentage + testing_percentage:
        return "test"
    return "train"


def label_for_folder(folder: str, words: Sequence[str]) -> str | None:
    """Label of a word folder: itself if a command word, _silence_, _unknown_, or None to skip."""
    if folder in words:
        return folder
    if folder == SILENCE:
        return SILENCE
    if folder.startswith("_"):
        return None  # _background_noise_ and other bookkeeping folders
    return UNKNOWN


def tree_words(root: str | Path) -> tuple[str, ...]:
    """The tree's vocabulary: words.txt (from `hark synth tree --words`) or the ten commands."""
    listed = Path(root) / "words.txt"
    if listed.is_file():
        words = tuple(w.strip() for w in listed.read_text(encoding="utf-8").splitlines()
                      if w.strip())
        if words:
            return words
    return COMMAND_WORDS


def load_speech_commands(
    root: str | Path,
    sample_rate: int = 16000,
    clip_s: float = 1.0,
    *,
    words: Sequence[str] | None = None,
    silence_per_split: int | None = None,
    unknown_per_split: int | None = None,
    seed: int = 0,
) -> SpeechCommandsSet:
    """Index a Speech Commands tree into labelled train/validation/test clips.

    Labels are (*words, _silence_, _unknown_); every other word folder maps to _unknown_.

    silence_per_split: noise-only clips cut from _background_noise_ per split (None: 10% of the
    split's command-word clips, as TensorFlow does); ignored when the tree has a _silence_ folder.
    unknown_per_split: keep at most this many _unknown_ clips per split (seeded choice; None: all).
    """
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"Speech Commands root not found: {base}")
    if words is None:
        words = tree_words(base)
    listed = _read_lists(base)
    splits: dict[Split, list[Clip]] = {split: [] for split in SPLITS}
    has_silence_folder = False
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        label = label_for_folder(folder.name, words)
        if label is None:
            continue
        has_silence_folder |= label == SILENCE
        for wav in sorted(folder.glob("*.wav")):
            rel = f"{folder.name}/{wav.name}"
            split = listed.get(rel, "train") if listed is not None else which_set(wav.name)
            splits[split].append(Clip(wav, label, speaker_of(wav)))

    noise_files = tuple(sorted((base / BACKGROUND_NOISE_DIR).glob("*.wav")))
    for i, split in enumerate(SPLITS):
        rng = np.random.default_rng([seed, i])
        clips = _limit_unknown(splits[split], unknown_per_split, rng)
        if not has_silence_folder and noise_files:
            n_known = sum(c.label not in (SILENCE, UNKNOWN) for c in clips)
            n_silence = (
                math.ceil(n_known * DEFAULT_SILENCE_PERCENTAGE / 100.0)
                if silence_per_split is None
                else silence_per_split
            )
            clips += _silence_clips(noise_files, split, n_silence, clip_s, rng)
        splits[split] = clips
    labels = (*words, SILENCE, UNKNOWN)
    return SpeechCommandsSet(base, sample_rate, clip_s, labels, splits, noise_files)


def _read_lists(base: Path) -> dict[str, Split] | None:
    """Relative path -> split from the list files, or None when the tree has neither."""
    files: dict[Split, Path] = {"validation": base / VALIDATION_LIST, "test": base / TESTING_LIST}
    if not any(p.is_file() for p in files.values()):
        return None
    listed: dict[str, Split] = {}
    for split, path in files.items():
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    listed[line.strip().replace("\\", "/")] = split
    return listed


def _limit_unknown(clips: list[Clip], limit: int | None, rng: np.random.Generator) -> list[Clip]:
    unknown = [i for i, c in enumerate(clips) if c.label == UNKNOWN]
    if limit is None or len(unknown) <= limit:
        return list(clips)
    keep = set(rng.choice(unknown, size=limit, replace=False).tolist())
    return [c for i, c in enumerate(clips) if c.label != UNKNOWN or i in keep]


def _silence_clips(
    noise_files: Sequence[Path], split: Split, count: int, clip_s: float, rng: np.random.Generator
) -> list[Clip]:
    """Cut `count` clips from this split's region of the noise files, cycling over the files."""
    clips: list[Clip] = []
    first = int(rng.integers(len(noise_files)))
    lo, hi = SILENCE_REGIONS[split]
    infos = {path: audio_info(path) for path in noise_files}
    for k in range(count):
        path = noise_files[(first + k) % len(noise_files)]
        rate, total = infos[path]
        region_start, region_stop = int(lo * total), int(hi * total)
        frames = min(round(clip_s * rate), region_stop - region_start)
        if frames <= 0:
            continue
        start = region_start + int(rng.integers(region_stop - region_start - frames + 1))
        clips.append(Clip(path, SILENCE, f"noise-{path.stem}", start=start, frames=frames))
    return clips
