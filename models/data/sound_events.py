"""Synthetic sound events (clap, whistle, beep, knock, speech) and multi-label streams of them.

Every instance draws its own parameters (count, rhythm, pitch, decay, band, voice) from the rng, so
a model has to learn the class, not one waveform. Streams lay events over coloured noise at a
per-event SNR; events may overlap, and each keeps its true onset/offset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfilt
from scipy.signal.windows import tukey

from hark.live.events import Event
from hark.models.data.audio import FloatArray, active_extent, power
from hark.models.data.augment import NOISE_COLOURS, coloured_noise
from hark.models.data.events import Stream
from hark.models.data.speech_commands import COMMAND_WORDS
from hark.models.data.tts import Prosody, Voice, espeak_voices, synth_clip

EVENT_CLASSES: tuple[str, ...] = ("clap", "whistle", "beep", "knock", "speech")
SPEECH_TEXTS: tuple[str, ...] = (
    *COMMAND_WORDS,
    "hello there",
    "good morning",
    "what time is it",
    "thank you",
    "see you later",
    "open the door",
    "come here please",
)
# Placement never overlaps when asked not to; give up on an event after this many tries.
MAX_PLACEMENT_TRIES = 50


def _peak_normalised(x: np.ndarray) -> FloatArray:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return (x / peak if peak > 0 else x).astype(np.float32)


def _seconds(n_s: float, sample_rate: int) -> int:
    return max(1, round(n_s * sample_rate))


def synth_clap(rng: np.random.Generator, sample_rate: int = 16000) -> FloatArray:
    """2-3 hand claps: band-passed noise bursts with a 1 ms attack and a 6-20 ms decay."""
    n_claps = int(rng.integers(2, 4))
    spacing_s = rng.uniform(0.15, 0.4)
    low = rng.uniform(600.0, 1200.0)
    high = min(rng.uniform(2500.0, 6000.0), 0.45 * sample_rate)
    band = butter(2, [low, high], btype="bandpass", fs=sample_rate, output="sos")
    burst_n = _seconds(0.12, sample_rate)
    t = np.arange(burst_n) / sample_rate
    out = np.zeros(_seconds(spacing_s * 1.1 * (n_claps - 1), sample_rate) + burst_n)
    for i in range(n_claps):
        start = round(i * spacing_s * rng.uniform(0.9, 1.1) * sample_rate)
        envelope = np.exp(-t / rng.uniform(0.006, 0.02)) * np.minimum(1.0, t / 0.001)
        burst = sosfilt(band, rng.standard_normal(burst_n)) * envelope * rng.uniform(0.6, 1.0)
        out[start : start + burst_n] += burst
    return _peak_normalised(out)


def synth_whistle(rng: np.random.Generator, sample_rate: int = 16000) -> FloatArray:
    """A whistled glide between 1 and 3 kHz with vibrato, weak harmonics and a little breath."""
    duration_s = rng.uniform(0.3, 1.2)
    n = _seconds(duration_s, sample_rate)
    t = np.arange(n) / sample_rate
    f_start, f_end = rng.uniform(1000.0, 3000.0, size=2)
    vibrato = rng.uniform(0.0, 80.0) * np.sin(2 * np.pi * rng.uniform(4.0, 8.0) * t)
    freq = f_start + (f_end - f_start) * t / duration_s + vibrato
    phase = 2 * np.pi * np.cumsum(freq) / sample_rate
    out = np.sin(phase)
    for harmonic, level in ((2, rng.uniform(0.05, 0.3)), (3, rng.uniform(0.0, 0.15))):
        if harmonic * freq.max() < 0.45 * sample_rate:  # keep every partial below Nyquist
            out += level * np.sin(harmonic * phase)
    centre = float(np.clip(np.mean(freq), 600.0, 0.4 * sample_rate))
    breath_band = butter(
        2, [centre * 0.7, centre * 1.3], btype="bandpass", fs=sample_rate, output="sos"
    )
    out += rng.uniform(0.0, 0.1) * sosfilt(breath_band, rng.standard_normal(n))
    return _peak_normalised(out * tukey(n, alpha=rng.uniform(0.1, 0.4)))


def synth_beep(rng: np.random.Generator, sample_rate: int = 16000) -> FloatArray:
    """A pattern of 2-5 square-ish tones (tanh-clipped sine, 0.7-1.5 kHz) with gaps between."""
    freq = rng.uniform(700.0, 1500.0)
    n_beeps = int(rng.integers(2, 6))
    on_n = _seconds(rng.uniform(0.06, 0.25), sample_rate)
    off_n = _seconds(rng.uniform(0.05, 0.2), sample_rate)
    drive = rng.uniform(1.5, 6.0)
    t = np.arange(on_n) / sample_rate
    ramp = min(1.0, 2 * 0.004 * sample_rate / on_n)  # 4 ms cosine ramps, no clicks
    tone = np.tanh(drive * np.sin(2 * np.pi * freq * t)) / np.tanh(drive) * tukey(on_n, ramp)
    gap = np.zeros(off_n)
    pieces = [p for _ in range(n_beeps) for p in (tone, gap)][:-1]
    return _peak_normalised(np.concatenate(pieces))


def synth_knock(rng: np.random.Generator, sample_rate: int = 16000) -> FloatArray:
    """2-4 door knocks: damped low-frequency modes (60-200 Hz and an overtone) plus a dull click."""
    n_knocks = int(rng.integers(2, 5))
    spacing_s = rng.uniform(0.12, 0.3)
    f0 = rng.uniform(60.0, 200.0)
    f1 = f0 * rng.uniform(1.8, 2.7)
    tau = rng.uniform(0.02, 0.06)
    click_band = butter(
        2, rng.uniform(800.0, 1500.0), btype="lowpass", fs=sample_rate, output="sos"
    )
    knock_n = _seconds(0.25, sample_rate)
    t = np.arange(knock_n) / sample_rate
    out = np.zeros(_seconds(spacing_s * 1.1 * (n_knocks - 1), sample_rate) + knock_n)
    for i in range(n_knocks):
        start = round(i * spacing_s * rng.uniform(0.9, 1.1) * sample_rate)
        body = np.sin(2 * np.pi * f0 * t) + rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * f1 * t)
        click = sosfilt(click_band, rng.standard_normal(knock_n)) * np.exp(-t / 0.003)
        knock = body * np.exp(-t / tau) + rng.uniform(0.1, 0.5) * click
        out[start : start + knock_n] += knock * rng.uniform(0.7, 1.0)
    return _peak_normalised(out)


def synth_speech(
    rng: np.random.Generator,
    sample_rate: int = 16000,
    voices: Sequence[Voice] | None = None,
    texts: Sequence[str] = SPEECH_TEXTS,
) -> FloatArray:
    """A word or short phrase from a random espeak-ng voice (or `voices`), trimmed to its extent."""
    pool = tuple(voices) if voices is not None else espeak_voices()
    voice = pool[int(rng.integers(len(pool)))]
    text = texts[int(rng.integers(len(texts)))]
    prosody = Prosody(speed=rng.uniform(0.7, 1.2), pitch=rng.uniform(0.25, 0.75))
    raw = synth_clip(text, voice, sample_rate, prosody)
    start, stop = active_extent(raw, sample_rate, 50.0)
    return _peak_normalised(raw[start:stop])


SYNTHS: dict[str, Callable[[np.random.Generator, int], FloatArray]] = {
    "clap": synth_clap,
    "whistle": synth_whistle,
    "beep": synth_beep,
    "knock": synth_knock,
    "speech": synth_speech,
}


def synth_event(label: str, rng: np.random.Generator, sample_rate: int = 16000) -> FloatArray:
    """One instance of an event class, peak-normalised to 1."""
    if label not in SYNTHS:
        raise ValueError(f"unknown event class {label!r}; known: {sorted(SYNTHS)}")
    return SYNTHS[label](rng, sample_rate)


@dataclass(frozen=True)
class EventStreamOptions:
    """Shape of a sound-event stream.

    Each event's power over its active part is `snr_db_range` above the noise power; `noise_rms`
    sets the absolute noise level. n_events_range is inclusive; classes are drawn in shuffled
    rounds, so a stream with at least len(classes) events holds every class. The "speech" class
    needs espeak-ng.
    """

    duration_s: float = 10.0
    sample_rate: int = 16000
    classes: tuple[str, ...] = EVENT_CLASSES
    n_events_range: tuple[int, int] = (3, 8)
    snr_db_range: tuple[float, float] = (0.0, 20.0)
    noise_colours: tuple[str, ...] = NOISE_COLOURS
    noise_rms: float = 0.03
    allow_overlap: bool = True
    trim_top_db: float = 40.0


@dataclass(frozen=True)
class EventSources:
    """Recorded material for streams: speech events and real backgrounds (both optional).

    Why: a "speech" class learnt from one synthesizer's words fires late or never on other voices,
    and coloured noise alone teaches nothing about music or rooms. `speech`: clips (at the stream
    rate) that speech events are drawn from instead of espeak-ng words, e.g. many engines' words
    and pieces of real speech. `backgrounds`: long recordings (e.g. music) laid under a stream with
    probability `background_p`, a random stretch of one at `background_db` relative to the
    coloured noise; they are background, never events, and the events' SNR is then over noise
    plus background. Loud backgrounds matter: music only ever heard faintly under the events was
    taken for speech when it played on its own (1365 false events per hour on a held-out track).
    """

    speech: tuple[FloatArray, ...] = ()
    backgrounds: tuple[FloatArray, ...] = ()
    background_p: float = 0.5
    background_db: tuple[float, float] = (-6.0, 20.0)


def background_stretch(recording: FloatArray, n: int, rng: np.random.Generator) -> FloatArray:
    """A random stretch of n samples of a recording (wrapping round when it is shorter)."""
    if recording.size == 0:
        raise ValueError("a background recording is empty")
    start = int(rng.integers(recording.size))
    return recording[(start + np.arange(n)) % recording.size].astype(np.float32)


def _with_background(audio: FloatArray, sources: EventSources, noise_rms: float,
                     rng: np.random.Generator) -> tuple[FloatArray, float]:
    """The noise with a background stretch added (maybe), and the power events are set above."""
    floor = noise_rms**2
    if not sources.backgrounds or rng.random() >= sources.background_p:
        return audio, floor
    rec = sources.backgrounds[int(rng.integers(len(sources.backgrounds)))]
    piece = background_stretch(rec, audio.size, rng)
    level = power(piece)
    if level <= 0:
        return audio, floor
    rms = noise_rms * 10.0 ** (rng.uniform(*sources.background_db) / 20.0)
    return audio + piece * np.float32(rms / np.sqrt(level)), floor + rms**2


def _event_clip(label: str, rng: np.random.Generator, sr: int,
                sources: EventSources | None) -> FloatArray:
    if label == "speech" and sources is not None and sources.speech:
        return _peak_normalised(sources.speech[int(rng.integers(len(sources.speech)))])
    return synth_event(label, rng, sr)


def make_event_stream(
    rng: np.random.Generator,
    options: EventStreamOptions | None = None,
    sources: EventSources | None = None,
) -> Stream:
    """A multi-label stream: events at random onsets over coloured noise, with true extents.

    Without `sources` every event is synthesised (speech by espeak-ng) over coloured noise only.
    """
    opts = options or EventStreamOptions()
    sr = opts.sample_rate
    n_total = round(opts.duration_s * sr)
    n_events = int(rng.integers(opts.n_events_range[0], opts.n_events_range[1] + 1))
    rounds = -(-n_events // len(opts.classes))
    order = [opts.classes[i] for _ in range(rounds) for i in rng.permutation(len(opts.classes))]
    colour = opts.noise_colours[int(rng.integers(len(opts.noise_colours)))]
    noise = coloured_noise(n_total, colour, rng) * np.float32(opts.noise_rms)
    floor = opts.noise_rms**2
    if sources is None:
        audio = noise.copy()
    else:
        audio, floor = _with_background(noise, sources, opts.noise_rms, rng)
    events: list[Event] = []
    for label in order[:n_events]:
        clip = _event_clip(label, rng, sr, sources)
        start, stop = active_extent(clip, sr, opts.trim_top_db)
        clip = clip[start:stop][:n_total]
        onset = _free_onset(clip.size, n_total, events, sr, opts.allow_overlap, rng)
        if onset is None:
            continue
        snr_db = float(rng.uniform(*opts.snr_db_range))
        clip_gain = np.sqrt(floor * 10.0 ** (snr_db / 10.0) / power(clip))
        audio[onset : onset + clip.size] += clip * np.float32(clip_gain)
        events.append(Event(label, onset / sr, (onset + clip.size) / sr))
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0.99:  # one common scale keeps every SNR
        audio *= np.float32(0.99 / peak)
    return Stream(audio, sr, sorted(events, key=lambda e: (e.onset_s, e.label)))


def _free_onset(
    n: int,
    n_total: int,
    events: Sequence[Event],
    sample_rate: int,
    allow_overlap: bool,
    rng: np.random.Generator,
) -> int | None:
    """A random onset sample for an n-sample event; None if no overlap-free slot was found."""
    for _ in range(1 if allow_overlap else MAX_PLACEMENT_TRIES):
        onset = int(rng.integers(n_total - n + 1))
        on_s, off_s = onset / sample_rate, (onset + n) / sample_rate
        if allow_overlap or all(off_s <= e.onset_s or on_s >= e.offset_s for e in events):
            return onset
    return None


def generate_event_set(
    out_dir: str | Path,
    n_streams: int,
    *,
    seed: int = 0,
    options: EventStreamOptions | None = None,
    sources: EventSources | None = None,
) -> list[Path]:
    """Write stream_NNNN.wav + stream_NNNN.tsv (DCASE) pairs; stream i is seeded by (seed, i)."""
    root = Path(out_dir)
    written = []
    for i in range(n_streams):
        stream = make_event_stream(np.random.default_rng([seed, i]), options, sources)
        wav, _ = stream.write(root / f"stream_{i:04d}.wav")
        written.append(wav)
    return written
