"""Long speech streams for per-frame models: words, fillers and silences with gaps, plus truth.

Each word clip is trimmed to its audible extent when placed, so an event's onset/offset is where
the word's energy is, not where its 1 s clip began. Optional coloured noise covers the whole stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hark.live.events import Event
from hark.models.data.audio import FloatArray, active_extent
from hark.models.data.augment import coloured_noise, noise_gain_for_snr
from hark.models.data.events import Stream
from hark.models.data.speech_commands import SILENCE


@dataclass(frozen=True)
class SpeechStreamOptions:
    """Shape of a stream.

    `snr_db_range` is the word-to-noise ratio over the words' active parts (None: no added noise);
    clips labelled `silence_label` are laid in as background, not events.
    """

    duration_s: float = 30.0
    sample_rate: int = 16000
    gap_s: tuple[float, float] = (0.1, 1.0)
    trim_top_db: float = 35.0
    snr_db_range: tuple[float, float] | None = (5.0, 30.0)
    noise_colours: tuple[str, ...] = ("white", "pink", "brown")
    silence_label: str = SILENCE


def make_speech_stream(
    pool: Sequence[tuple[FloatArray, str]],
    rng: np.random.Generator,
    options: SpeechStreamOptions | None = None,
) -> Stream:
    """Fill `duration_s` with random picks from `pool` (clip at the stream rate, label) and gaps.

    Picks stop at the first one that no longer fits. Events keep the pool's labels (e.g. a word or
    _unknown_); map or filter them before `frame_targets` as the model's labels require.
    """
    opts = options or SpeechStreamOptions()
    if not pool:
        raise ValueError("the pool of clips is empty")
    sr = opts.sample_rate
    n_total = round(opts.duration_s * sr)
    audio = np.zeros(n_total, dtype=np.float32)
    events: list[Event] = []
    word_energy = 0.0
    word_samples = 0
    cursor = round(rng.uniform(*opts.gap_s) * sr)
    while True:
        clip, label = pool[int(rng.integers(len(pool)))]
        if label == opts.silence_label:
            piece = np.asarray(clip, dtype=np.float32)
        else:
            start, stop = active_extent(clip, sr, opts.trim_top_db)
            piece = np.asarray(clip[start:stop], dtype=np.float32)
        if piece.size == 0:
            raise ValueError(f"a clip labelled {label!r} is digital silence")
        if cursor + piece.size > n_total:
            break
        audio[cursor : cursor + piece.size] += piece
        if label != opts.silence_label:
            events.append(Event(label, cursor / sr, (cursor + piece.size) / sr))
            word_energy += float(np.sum(piece.astype(np.float64) ** 2))
            word_samples += piece.size
        cursor += piece.size + round(rng.uniform(*opts.gap_s) * sr)
    if opts.snr_db_range is not None and word_samples:
        colour = opts.noise_colours[int(rng.integers(len(opts.noise_colours)))]
        noise = coloured_noise(n_total, colour, rng)
        snr_db = float(rng.uniform(*opts.snr_db_range))
        gain = noise_gain_for_snr(word_energy / word_samples, 1.0, snr_db)
        audio += np.float32(gain) * noise
    return Stream(audio, sr, events)


def under_background(
    stream: Stream,
    backgrounds: Sequence[FloatArray],
    rng: np.random.Generator,
    snr_db_range: tuple[float, float] = (5.0, 25.0),
) -> Stream:
    """The stream with a random stretch of one recording (e.g. music) laid beneath it.

    Its level puts the words `snr_db_range` above it (power over the events' spans); a stream
    without events gets it at the stream's own power.
    """
    from hark.models.data.sound_events import background_stretch

    if not backgrounds:
        raise ValueError("no background recordings")
    rec = backgrounds[int(rng.integers(len(backgrounds)))]
    piece = background_stretch(rec, stream.audio.size, rng)
    sr = stream.sample_rate
    spans = [stream.audio[round(e.onset_s * sr) : round(e.offset_s * sr)] for e in stream.events]
    words = np.concatenate(spans) if spans else stream.audio
    word_power = float(np.mean(words.astype(np.float64) ** 2)) if words.size else 0.0
    piece_power = float(np.mean(piece.astype(np.float64) ** 2))
    if word_power <= 0 or piece_power <= 0:
        return stream
    gain = noise_gain_for_snr(word_power, piece_power, float(rng.uniform(*snr_db_range)))
    return Stream(stream.audio + np.float32(gain) * piece, sr, stream.events)
