"""Synthetic data sets on disk for training and evaluation (wrappers around models.data).

- a Speech Commands tree (espeak-ng or flite voices, speaker-disjoint splits), reused if complete;
- speech streams (X.wav + X.tsv) from one split of a tree: command words (the truth) mixed with
  unknown words (not in the truth: nothing should be reported for them) over coloured noise,
  or unknown words only (to count false events);
- sound-event streams (clap, whistle, beep, knock, speech) at a given SNR.
Everything is seeded: the same arguments write the same files.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from hark.live.events import Event
from hark.models.data.events import Stream
from hark.models.data.speech_commands import COMMAND_WORDS, UNKNOWN

COMPLETE_MARK = ".complete"


def unknown_per_word(n_per_word: int) -> int:
    """Clips per unknown word for a tree with n_per_word per command word.

    30 unknown words x n/4 gives 7.5 n unknown clips against 10 n command clips: enough fillers
    for the per-frame model to learn what not to report, without drowning the 12-class set.
    """
    return max(3, n_per_word // 4)  # 3: at least one per split, even in tiny test trees


def ensure_tree(
    root: str | Path,
    n_per_word: int,
    seed: int = 0,
    engine: str = "espeak",
    workers: int = 2,
    all_test: bool = False,
) -> Path:
    """Generate a Speech Commands tree at root unless a complete one is already there.

    all_test: list every clip in testing_list.txt (a held-out synthesizer is test data only).
    """
    from hark.models.data.speech_commands import TESTING_LIST, VALIDATION_LIST
    from hark.models.data.synth_speech import generate_speech_commands

    out = Path(root)
    mark = out / COMPLETE_MARK
    key = f"{engine} n_per_word={n_per_word} seed={seed} all_test={all_test}\n"
    if mark.is_file() and mark.read_text() == key:
        return out
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} holds another data set; remove it or pick another folder")
    generate_speech_commands(
        out,
        n_per_word,
        n_per_unknown_word=unknown_per_word(n_per_word),
        seed=seed,
        engine=engine,  # type: ignore[arg-type]
        workers=workers,
    )
    if all_test:
        clips = sorted(p.relative_to(out).as_posix() for p in out.glob("*/*.wav")
                       if not p.parent.name.startswith("_"))
        (out / TESTING_LIST).write_text("".join(f"{c}\n" for c in clips))
        (out / VALIDATION_LIST).write_text("")
    mark.write_text(key)
    return out


def command_truth(stream: Stream) -> Stream:
    """The stream with only command-word events (unknown words are not events)."""
    return replace(stream, events=[e for e in stream.events if e.label in COMMAND_WORDS])


def write_speech_streams(
    tree: str | Path,
    out_dir: str | Path,
    n: int,
    *,
    split: str = "test",
    duration_s: float = 60.0,
    seed: int = 0,
    unknown_only: bool = False,
    snr_db_range: tuple[float, float] | None = (5.0, 30.0),
    prefix: str = "speech",
) -> list[Path]:
    """Write n streams (PREFIX_NNN.wav + .tsv) from one split of a tree; returns the wavs."""
    from hark.models.datasets import load_clips, only_unknown, speech_pool, speech_streams

    data = load_clips(tree, 16000, splits=(split,))  # type: ignore[arg-type]
    pool = speech_pool(data, split)
    if unknown_only:
        pool = only_unknown(pool)
    if not pool:
        raise ValueError(f"no {'unknown ' if unknown_only else ''}words in the {split} split")
    streams = speech_streams(pool, n, seed, duration_s, snr_db_range)
    out = Path(out_dir)
    written = []
    for i, st in enumerate(streams):
        wav, _ = command_truth(st).write(out / f"{prefix}_{i:03d}.wav")
        written.append(wav)
    return written


def write_sound_streams(
    out_dir: str | Path,
    n: int,
    *,
    seed: int = 0,
    duration_s: float = 10.0,
    snr_db: tuple[float, float] = (10.0, 10.0),
    prefix: str = "sounds",
) -> list[Path]:
    """Write n sound-event streams at an SNR (range); returns the wavs."""
    from hark.models.datasets import sound_streams

    out = Path(out_dir)
    written = []
    for i, st in enumerate(sound_streams(n, seed, duration_s, snr_db)):
        wav, _ = st.write(out / f"{prefix}_{i:03d}.wav")
        written.append(wav)
    return written


def unknown_events(stream: Stream) -> list[Event]:
    """The unknown-word spans of a speech stream (for reports)."""
    return [e for e in stream.events if e.label == UNKNOWN]


def rng_for(*keys: int) -> np.random.Generator:
    """A generator seeded by integers (helper for callers that derive sub-seeds)."""
    return np.random.default_rng(list(keys))
