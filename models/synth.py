"""Synthetic data sets on disk for training and evaluation (wrappers around models.data).

- a Speech Commands tree (espeak-ng or flite voices, speaker-disjoint splits), reused if complete;
- speech streams (X.wav + X.tsv) from one split of a tree: command words (the truth) mixed with
  unknown words (not in the truth: nothing should be reported for them) over coloured noise,
  or unknown words only (to count false events);
- sound-event streams (clap, whistle, beep, knock, speech) at a given SNR.
Everything is seeded: the same arguments write the same files.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hark.live.events import Event
from hark.models.data.events import Stream
from hark.models.data.speech_commands import COMMAND_WORDS, UNKNOWN

if TYPE_CHECKING:
    from hark.models.data.rooms import RoomBankOptions

COMPLETE_MARK = ".complete"
PARTIAL_MARK = ".building"  # written first: an interrupted build of the same tree starts again


def unknown_per_word(n_per_word: int) -> int:
    """Clips per unknown word for a tree with n_per_word per command word.

    30 unknown words x n/4 gives 7.5 n unknown clips against 10 n command clips: enough fillers
    for the per-frame model to learn what not to report, without drowning the 12-class set.
    """
    return max(3, n_per_word // 4)  # 3: at least one per split, even in tiny test trees


@dataclass(frozen=True)
class TreeSources:
    """Who speaks a tree: engines with weights, chosen voices, held-out voices, new speakers.

    voices: engine voice names to use (none: every voice of the engines). hold_out: voices whose
    speaker (for Kokoro: the blend pair) is left out of the tree entirely, kept for measurement.
    shifts: Praat Change-gender speakers derived from each voice (seeded), in the voice's split.
    """

    engines: tuple[tuple[str, float], ...] = (("espeak", 1.0),)
    voices: tuple[str, ...] = ()
    hold_out: tuple[str, ...] = ()
    shifts: int = 0
    words: tuple[str, ...] = ()
    near_miss: bool = False

    def key(self) -> str:
        """Stable text for the completion mark (the old espeak-only key when nothing is set)."""
        if self == TreeSources():
            return "espeak"
        return repr(self)


def tree_voices(src: TreeSources, seed: int) -> list[Any]:
    """The voice pool of a tree (held-out speakers removed, derived speakers added)."""
    from hark.models.data.speakers import SpeakerRanges
    from hark.models.data.synth_speech import _word_key
    from hark.models.data.tts import find_voice, parse_engine, voices_for

    engines = [parse_engine(e)[0] for e, _ in src.engines]
    if src.voices:
        pool = []
        for name in src.voices:
            found = []
            for e in engines:
                try:
                    found.append(find_voice(e, name))
                except ValueError:
                    continue
            if not found:
                raise ValueError(f"no voice {name!r} in engines {engines}")
            pool.extend(found[:1])
    else:
        pool = [v for e in engines for v in voices_for(e)]
    held: set[str] = set()
    for name in src.hold_out:
        engine, _, voice = name.partition(":")
        e = parse_engine(engine)[0]
        held.add(find_voice(e, voice).speaker)
    pool = [v for v in pool if v.speaker not in held]
    if not pool:
        raise ValueError("no voices left after --hold-out")
    if src.shifts > 0:
        derived = []
        for v in pool:
            rng = np.random.default_rng([seed, _word_key(f"shift:{v.voice_id}")])
            derived += [v.shifted(SpeakerRanges().draw(rng)) for _ in range(src.shifts)]
        pool += derived
    return pool


def ensure_tree(
    root: str | Path,
    n_per_word: int,
    seed: int = 0,
    engine: str = "espeak",
    workers: int = 2,
    all_test: bool = False,
    sources: TreeSources | None = None,
) -> Path:
    """Generate a Speech Commands tree at root unless a complete one is already there.

    all_test: list every clip in testing_list.txt (a held-out synthesizer is test data only).
    sources: several engines with weights, voices, held-out voices, derived speakers, own words.
    """
    from hark.models.data.speech_commands import TESTING_LIST, VALIDATION_LIST
    from hark.models.data.synth_speech import (
        NEAR_MISS_WORDS,
        UNKNOWN_WORDS,
        SpeechSetOptions,
        generate_speech_commands,
    )
    from hark.models.data.tts import parse_engine

    src = sources or TreeSources(engines=((engine, 1.0),))
    out = Path(root)
    mark = out / COMPLETE_MARK
    what = engine if src == TreeSources(engines=((engine, 1.0),)) else src.key()
    key = f"{what} n_per_word={n_per_word} seed={seed} all_test={all_test}\n"
    if mark.is_file() and mark.read_text() == key:
        return out
    partial = out / PARTIAL_MARK
    if out.exists() and any(out.iterdir()):
        if not (partial.is_file() and partial.read_text() == key and not mark.exists()):
            raise FileExistsError(f"{out} holds another data set; remove it or pick another "
                                  "folder")
        shutil.rmtree(out)  # our own interrupted build of this very tree: make it again
    out.mkdir(parents=True, exist_ok=True)
    partial.write_text(key)
    if src == TreeSources(engines=((engine, 1.0),)):
        generate_speech_commands(
            out,
            n_per_word,
            n_per_unknown_word=unknown_per_word(n_per_word),
            seed=seed,
            engine=engine,  # type: ignore[arg-type]
            workers=workers,
        )
    else:
        weights = {parse_engine(e)[0]: w for e, w in src.engines}
        words = tuple(src.words) or COMMAND_WORDS
        unknown = [w for w in UNKNOWN_WORDS + (NEAR_MISS_WORDS if src.near_miss else ())
                   if w not in words]
        generate_speech_commands(
            out,
            n_per_word,
            words=words,
            unknown_words=unknown,
            n_per_unknown_word=unknown_per_word(n_per_word),
            seed=seed,
            engine=next(iter(weights)),
            voices=tree_voices(src, seed),
            workers=workers,
            engine_weights=weights,
            # a held-out source is test data only: every speaker in the test split (one voice,
            # such as flite slt, could not be spread over three speaker-disjoint splits)
            options=SpeechSetOptions(split_fractions=(0.0, 0.0, 1.0)) if all_test else None,
        )
    if all_test:
        clips = sorted(p.relative_to(out).as_posix() for p in out.glob("*/*.wav")
                       if not p.parent.name.startswith("_"))
        (out / TESTING_LIST).write_text("".join(f"{c}\n" for c in clips))
        (out / VALIDATION_LIST).write_text("")
    mark.write_text(key)
    partial.unlink()
    return out


def command_truth(stream: Stream) -> Stream:
    """The stream with only command-word events (unknown words are not events)."""
    return replace(stream, events=[e for e in stream.events if e.label != UNKNOWN])


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
    room_cache: str | Path | None = None,
    music: str | Path | None = None,
) -> list[Path]:
    """Write n streams (PREFIX_NNN.wav + .tsv) from one split of a tree; returns the wavs.

    room_cache: play every stream through a room of the evaluation bank (reverberation only;
    its rooms are drawn with EVAL_ROOM_SEED, never the training bank's), for a reverb condition.
    music: a folder of recordings; a stretch of one lies under every stream, the words
    snr_db_range above it (before the room).
    """
    from hark.models.datasets import load_clips, only_unknown, speech_pool, speech_streams

    data = load_clips(tree, 16000, splits=(split,))  # type: ignore[arg-type]
    pool = speech_pool(data, split)
    if unknown_only:
        pool = only_unknown(pool)
    if not pool:
        raise ValueError(f"no {'unknown ' if unknown_only else ''}words in the {split} split")
    streams = speech_streams(pool, n, seed, duration_s, snr_db_range)
    if music is not None:
        from hark.models.data.real_speech import recordings
        from hark.models.data.streams import under_background

        backgrounds = recordings(music, 16000)
        rng = rng_for(seed, 78)
        streams = [under_background(st, backgrounds, rng, snr_db_range or (5.0, 30.0))
                   for st in streams]
    if room_cache is not None:
        streams = reverberant(streams, room_cache, seed)
    out = Path(out_dir)
    written = []
    for i, st in enumerate(streams):
        wav, _ = command_truth(st).write(out / f"{prefix}_{i:03d}.wav")
        written.append(wav)
    return written


EVAL_ROOM_SEED = 1000  # the evaluation room bank; training draws RoomBankOptions().seed (0)


def reverberant(streams: list[Stream], room_cache: str | Path, seed: int,
                bank_options: RoomBankOptions | None = None) -> list[Stream]:
    """Each stream convolved with one impulse response of the evaluation bank (RT60 0.2-1.0 s)."""
    from hark.models.data.rooms import ChannelAugmenter, ChannelOptions, RoomBankOptions, room_bank

    bank = room_bank(room_cache, bank_options or RoomBankOptions(seed=EVAL_ROOM_SEED))
    only_room = ChannelOptions(room_p=1.0, eq_p=0.0, laptop_highpass_p=0.0, bandpass_p=0.0,
                               telephone_p=0.0, mp3_p=0.0, clipping_p=0.0, noise_p=0.0,
                               gain_db=(0.0, 0.0))
    room = ChannelAugmenter(16000, bank, only_room)
    rng = rng_for(seed, 77)
    return [replace(st, audio=room(st.audio, rng)) for st in streams]


def write_sound_streams(
    out_dir: str | Path,
    n: int,
    *,
    seed: int = 0,
    duration_s: float = 10.0,
    snr_db: tuple[float, float] = (10.0, 10.0),
    prefix: str = "sounds",
    speech_tree: str | Path | None = None,
    split: str = "test",
    speech_real: str | Path | None = None,
    music: str | Path | None = None,
    room_cache: str | Path | None = None,
    n_speech: int = 2000,
) -> list[Path]:
    """Write n sound-event streams at an SNR (range); returns the wavs.

    speech_tree / split / speech_real: where speech events come from (default: espeak-ng words);
    music: recordings under every stream; room_cache: every stream through a room of the
    evaluation bank.
    """
    from hark.models.data.sound_events import EventSources
    from hark.models.datasets import sound_streams

    sources = None
    if speech_tree is not None or speech_real is not None or music is not None:
        from hark.models.data.real_speech import recordings, speech_pieces
        from hark.models.datasets import tree_speech

        rng = rng_for(seed, 79)
        speech: list[np.ndarray] = []
        if speech_tree is not None:
            speech += tree_speech(speech_tree, split, n_speech, 16000, rng)
        if speech_real is not None:
            speech += speech_pieces(speech_real, 16000,
                                    n_speech // 2 if speech_tree else n_speech, rng)
        sources = EventSources(speech=tuple(speech),
                               backgrounds=tuple(recordings(music, 16000)) if music else (),
                               background_p=1.0)
    streams = sound_streams(n, seed, duration_s, snr_db, sources)
    if room_cache is not None:
        streams = reverberant(streams, room_cache, seed)
    out = Path(out_dir)
    written = []
    for i, st in enumerate(streams):
        wav, _ = st.write(out / f"{prefix}_{i:03d}.wav")
        written.append(wav)
    return written


def unknown_events(stream: Stream) -> list[Event]:
    """The unknown-word spans of a speech stream (for reports)."""
    return [e for e in stream.events if e.label == UNKNOWN]


def rng_for(*keys: int) -> np.random.Generator:
    """A generator seeded by integers (helper for callers that derive sub-seeds)."""
    return np.random.default_rng(list(keys))
