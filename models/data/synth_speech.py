"""Write a synthetic Speech Commands tree (espeak-ng or flite), split by speaker.

Each clip is one word spoken by one voice at a random tempo, pitch and level, trimmed to its
audible part and placed at a random offset in a `clip_s` clip. Every speaker (voice group) lands in
exactly one split, listed in validation_list.txt / testing_list.txt like the real dataset. A tree
from flite, never used for training, measures how far the espeak-trained models generalise.

Command line: python -m hark.models.data.synth_speech OUT_DIR --n-per-word 100 [--engine flite]
"""

from __future__ import annotations

import argparse
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hark.models.data.audio import FloatArray, active_extent, db_to_amplitude, write_wav
from hark.models.data.augment import NOISE_COLOURS, coloured_noise
from hark.models.data.speech_commands import (
    BACKGROUND_NOISE_DIR,
    COMMAND_WORDS,
    NOHASH,
    SPLITS,
    TESTING_LIST,
    VALIDATION_LIST,
    Split,
)
from hark.models.data.tts import ENGINES, Engine, Prosody, Voice, synth_clip, voices_for

# The dataset's auxiliary words, its v2 additions, and five more everyday words: ~30 fillers.
UNKNOWN_WORDS: tuple[str, ...] = (
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "backward", "forward", "follow", "learn", "visual",
    "hello", "water", "yellow", "table", "music",
)  # fmt: skip
MAX_SPEEDUP_TRIES = 4
# A tree of other words than the ten commands lists its word folders here (one a line).
VOCABULARY_FILE = "words.txt"
# Words that sound like command words (and like common keywords): the negatives a spotter meets.
NEAR_MISS_WORDS: tuple[str, ...] = (
    "yet", "yeah", "yell", "know", "note", "now", "upon", "cup", "town", "lift", "light", "write",
    "bright", "own", "of", "top", "shop", "goal", "dawn", "gone", "lefty", "ride", "oft", "stock",
)  # fmt: skip


@dataclass(frozen=True)
class SpeechSetOptions:
    """How the clips vary and what else the tree holds.

    Prosody ranges follow tts.Prosody (speed factor; pitch 0..1 of the engine's control). The word's
    peak is drawn in dBFS; `trim_top_db` decides the audible extent of the raw synthesis.
    """

    speed_range: tuple[float, float] = (0.6, 1.2)
    pitch_range: tuple[float, float] = (0.25, 0.75)
    peak_dbfs_range: tuple[float, float] = (-20.0, -1.0)
    trim_top_db: float = 50.0
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    noise_s: float = 60.0
    noise_colours: tuple[str, ...] = NOISE_COLOURS
    noise_rms: float = 0.1


@dataclass(frozen=True)
class GenerationReport:
    """What a generation run wrote and how fast."""

    out_dir: Path
    engine: Engine
    n_clips: int
    seconds: float
    clips_per_split: dict[Split, int]
    speakers_per_split: dict[Split, tuple[str, ...]]

    @property
    def clips_per_s(self) -> float:
        """Throughput of the whole run (synthesis, processing and writing)."""
        return self.n_clips / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True)
class _ClipJob:
    word: str
    voice: Voice
    path: Path
    entropy: tuple[int, ...]
    sample_rate: int
    clip_s: float
    options: SpeechSetOptions


def split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """Split n items by fractions (largest remainder).

    Every positive fraction gets at least one item when n allows it, so small runs still have
    validation and test data.
    """
    total = float(sum(fractions))
    if total <= 0 or any(f < 0 for f in fractions):
        raise ValueError(f"fractions must be >= 0 and not all 0: {fractions}")
    raw = [n * f / total for f in fractions]
    counts = [int(r) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: counts[i] - raw[i])
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    active = [i for i, f in enumerate(fractions) if f > 0]
    if n >= len(active):
        for i in active:
            if counts[i] == 0:
                counts[int(np.argmax(counts))] -= 1
                counts[i] = 1
    return counts


def assign_speakers(
    speakers: Sequence[str], fractions: Sequence[float], rng: np.random.Generator
) -> dict[str, Split]:
    """Seeded speaker -> split assignment with split_counts proportions (speaker-disjoint)."""
    ordered = sorted(set(speakers))
    shuffled = [ordered[i] for i in rng.permutation(len(ordered))]
    assignment: dict[str, Split] = {}
    start = 0
    for split, count in zip(SPLITS, split_counts(len(shuffled), fractions), strict=True):
        for speaker in shuffled[start : start + count]:
            assignment[speaker] = split
        start += count
    return assignment


def render_word(
    word: str,
    voice: Voice,
    rng: np.random.Generator,
    sample_rate: int = 16000,
    clip_s: float = 1.0,
    options: SpeechSetOptions | None = None,
) -> FloatArray:
    """One fixed-length float32 clip: the word at a random tempo/pitch/level and offset.

    A word longer than the clip is re-synthesised faster (up to MAX_SPEEDUP_TRIES) before cutting.
    """
    opts = options or SpeechSetOptions()
    n_samples = round(clip_s * sample_rate)
    speed = float(rng.uniform(*opts.speed_range))
    pitch = float(rng.uniform(*opts.pitch_range))
    peak = db_to_amplitude(float(rng.uniform(*opts.peak_dbfs_range)))
    offset_u = float(rng.random())
    for _ in range(MAX_SPEEDUP_TRIES):
        raw = synth_clip(word, voice, sample_rate, Prosody(speed=speed, pitch=pitch))
        start, stop = active_extent(raw, sample_rate, opts.trim_top_db)
        spoken = raw[start:stop]
        if spoken.size == 0:
            raise RuntimeError(f"{voice.engine} voice {voice.name!r} produced silence for {word!r}")
        if spoken.size <= n_samples:
            break
        speed *= 1.05 * spoken.size / n_samples
    spoken = spoken[:n_samples]
    clip = np.zeros(n_samples, dtype=np.float32)
    offset = int(offset_u * (n_samples - spoken.size + 1))
    clip[offset : offset + spoken.size] = spoken * np.float32(peak / np.max(np.abs(spoken)))
    return clip


def _render_job(job: _ClipJob) -> None:
    rng = np.random.default_rng(np.random.SeedSequence(job.entropy))
    clip = render_word(job.word, job.voice, rng, job.sample_rate, job.clip_s, job.options)
    write_wav(job.path, clip, job.sample_rate)


def _word_key(text: str) -> int:
    """Stable integer for a string (seeds must not depend on Python's salted hash)."""
    return zlib.crc32(text.encode("utf-8"))


def generate_speech_commands(
    out_dir: str | Path,
    n_per_word: int,
    *,
    words: Sequence[str] = COMMAND_WORDS,
    unknown_words: Sequence[str] = UNKNOWN_WORDS,
    n_per_unknown_word: int | None = None,
    seed: int = 0,
    sample_rate: int = 16000,
    clip_s: float = 1.0,
    engine: Engine = "espeak",
    voices: Sequence[Voice] | None = None,
    options: SpeechSetOptions | None = None,
    workers: int = 2,
    engine_weights: dict[Engine, float] | None = None,
) -> GenerationReport:
    """Write root/<word>/<voice_id>_nohash_<k>.wav, the two list files and _background_noise_/.

    Voices default to every voice of `engine`; each word's clips are spread over the voices of each
    split in a seeded order. Output is byte-identical for the same arguments, whatever `workers`.
    The folder must be empty or absent, so stale clips can never leak into a new set.
    """
    weights = dict(engine_weights) if engine_weights else {engine: 1.0}
    for e in weights:
        if e not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, not {e!r}")
    opts = options or SpeechSetOptions()
    root = Path(out_dir)
    if root.exists() and any(not p.name.startswith(".") for p in root.iterdir()):
        raise FileExistsError(f"{root} is not empty; generate into a new folder")
    pool = tuple(voices) if voices is not None else tuple(
        v for e in weights for v in voices_for(e))
    if not pool or any(v.engine not in weights for v in pool):
        raise ValueError(f"need at least one voice, all of engines {sorted(weights)}")

    began = time.perf_counter()
    assignment = assign_speakers(
        [v.speaker for v in pool],
        opts.split_fractions,
        np.random.default_rng([seed, _word_key("speakers")]),
    )
    by_split = {
        s: sorted((v for v in pool if assignment[v.speaker] == s), key=lambda v: v.voice_id)
        for s in SPLITS
    }
    jobs = _plan_jobs(
        root,
        words,
        unknown_words,
        n_per_word,
        n_per_unknown_word,
        seed,
        sample_rate,
        clip_s,
        by_split,
        opts,
        weights,
    )
    if tuple(words) != COMMAND_WORDS:
        root.mkdir(parents=True, exist_ok=True)
        (root / VOCABULARY_FILE).write_text("".join(f"{folder_name(w)}\n" for w in words))
    _write_noise(root / BACKGROUND_NOISE_DIR, seed, sample_rate, opts)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as executor:
            list(executor.map(_render_job, [job for job, _ in jobs], chunksize=8))
    else:
        for job, _ in jobs:
            _render_job(job)
    listed = {
        s: sorted(job.path.relative_to(root).as_posix() for job, js in jobs if js == s)
        for s in SPLITS
    }
    (root / VALIDATION_LIST).write_text("".join(f"{p}\n" for p in listed["validation"]))
    (root / TESTING_LIST).write_text("".join(f"{p}\n" for p in listed["test"]))
    return GenerationReport(
        out_dir=root,
        engine=engine,
        n_clips=len(jobs),
        seconds=time.perf_counter() - began,
        clips_per_split={s: len(listed[s]) for s in SPLITS},
        speakers_per_split={s: tuple(sorted({v.speaker for v in by_split[s]})) for s in SPLITS},
    )


def _plan_jobs(
    root: Path,
    words: Sequence[str],
    unknown_words: Sequence[str],
    n_per_word: int,
    n_per_unknown_word: int | None,
    seed: int,
    sample_rate: int,
    clip_s: float,
    by_split: dict[Split, list[Voice]],
    opts: SpeechSetOptions,
    weights: dict[Engine, float] | None = None,
) -> list[tuple[_ClipJob, Split]]:
    """Every clip to render, with its split.

    Each word's voice order is seeded by the word itself, so adding or removing a word leaves the
    other words' clips unchanged.
    """
    n_unknown = n_per_word if n_per_unknown_word is None else n_per_unknown_word
    plan = [(w, n_per_word) for w in words] + [(w, n_unknown) for w in unknown_words]
    if len({w for w, _ in plan}) != len(plan):
        raise ValueError("a word appears twice in words/unknown_words")
    jobs: list[tuple[_ClipJob, Split]] = []
    for word, count in plan:
        key = _word_key(word)
        rng = np.random.default_rng([seed, key])
        taken: Counter[str] = Counter()
        for s_index, (split, n_split) in enumerate(
            zip(SPLITS, split_counts(count, opts.split_fractions), strict=True)
        ):
            voices = by_split[split]
            if n_split and not voices:
                raise ValueError(f"no speaker left for the {split} split: add voices")
            picks = _pick_voices(voices, n_split, rng, weights)
            for j, voice in enumerate(picks):
                path = root / folder_name(word) / \
                    f"{voice.voice_id}{NOHASH}{taken[voice.voice_id]}.wav"
                taken[voice.voice_id] += 1
                job = _ClipJob(
                    word, voice, path, (seed, key, s_index, j), sample_rate, clip_s, opts
                )
                jobs.append((job, split))
    return jobs


def folder_name(word: str) -> str:
    """The folder (and label) of a word or phrase: spaces become '_' ("lights on" -> lights_on)."""
    name = "_".join(word.lower().split())
    if not name or name.startswith("_") or "/" in name or name in (".", ".."):
        raise ValueError(f"not a usable word: {word!r}")
    return name


def _pick_voices(
    voices: Sequence[Voice], n: int, rng: np.random.Generator,
    weights: dict[Engine, float] | None,
) -> list[Voice]:
    """N voices for one word in one split.

    One engine: a seeded permutation, cycled (the original order, so old trees stay identical).
    Several: each clip draws an engine by weight (among engines with voices in this split), then
    cycles through that engine's voices in a seeded order.
    """
    if not voices:
        return []
    engines = sorted({v.engine for v in voices})
    if weights is None or len(weights) <= 1 or len(engines) == 1:
        order = rng.permutation(len(voices))
        return [voices[int(order[j % len(voices)])] for j in range(n)]
    per = {e: [v for v in voices if v.engine == e] for e in engines}
    orders = {e: rng.permutation(len(per[e])) for e in engines}
    w = np.array([weights.get(e, 0.0) for e in engines], dtype=np.float64)
    if w.sum() <= 0:
        w = np.ones(len(engines))
    drawn = rng.choice(len(engines), size=n, p=w / w.sum())
    used = Counter[str]()
    out = []
    for k in drawn:
        e = engines[int(k)]
        out.append(per[e][int(orders[e][used[e] % len(per[e])])])
        used[e] += 1
    return out


def _write_noise(folder: Path, seed: int, sample_rate: int, opts: SpeechSetOptions) -> None:
    """One long coloured-noise file per colour, as the dataset's _background_noise_ folder has."""
    n_samples = round(opts.noise_s * sample_rate)
    for colour in opts.noise_colours:
        rng = np.random.default_rng([seed, _word_key(f"noise:{colour}")])
        noise = coloured_noise(n_samples, colour, rng) * np.float32(opts.noise_rms)
        write_wav(folder / f"{colour}_noise.wav", noise, sample_rate)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: generate a tree and print the throughput."""
    parser = argparse.ArgumentParser(description="Write a synthetic Speech Commands tree.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--n-per-word", type=int, default=100)
    parser.add_argument("--n-per-unknown-word", type=int, default=None)
    parser.add_argument("--engine", choices=ENGINES, default="espeak")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    report = generate_speech_commands(
        args.out_dir,
        args.n_per_word,
        n_per_unknown_word=args.n_per_unknown_word,
        engine=args.engine,
        seed=args.seed,
        sample_rate=args.sample_rate,
        workers=args.workers,
    )
    print(
        f"{report.n_clips} clips in {report.seconds:.1f} s ({report.clips_per_s:.0f} clips/s); "
        f"per split {report.clips_per_split}; speakers "
        f"{ {s: len(v) for s, v in report.speakers_per_split.items()} }"
    )


if __name__ == "__main__":
    main()
