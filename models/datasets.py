"""Training arrays from models.data: clip features, speech streams, sound-event streams.

Every feature here comes from live.features.compute_features with the frontend the exported card
will name, so training and serving run the same code. Nothing is cached on disk: clips decode in
under a second per thousand and a 30 s stream is built and featurised in ~50 ms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hark.export.presets import PRESETS
from hark.live.card import FrontendSpec, Normalization
from hark.live.events import Event, read_events_tsv
from hark.live.features import compute_features
from hark.models.data.augment import Augmenter
from hark.models.data.events import Stream, frame_targets
from hark.models.data.sound_events import (
    EVENT_CLASSES,
    EventSources,
    EventStreamOptions,
    make_event_stream,
)
from hark.models.data.speech_commands import (
    LABELS_12,
    SILENCE,
    UNKNOWN,
    SpeechCommandsSet,
    Split,
    load_speech_commands,
)
from hark.models.data.streams import SpeechStreamOptions, make_speech_stream

# arch -> the export preset naming its frontend and sample rate
ARCH_PRESET: dict[str, str] = {
    "cnn": "kaggle-specgram",
    "rnn": "logmel40",
    "fusion": "logmel40",
    "wave1d": "raw16k",
    "wavception": "raw16k",
}
SOUND_LABELS: tuple[str, ...] = EVENT_CLASSES
COMMAND_FRAME_LABELS: tuple[str, ...] = LABELS_12  # 10 words, _silence_ (background), _unknown_


def sub_seed(seed: int, kind: int, index: int) -> int:
    """A derived integer seed, distinct for every (seed, kind, index).

    Data of one purpose (a training epoch, validation, test) never shares draws with another.
    """
    return int(np.random.default_rng([seed, kind, index]).integers(2**31))


def arch_frontend(arch: str) -> tuple[FrontendSpec, int]:
    """(frontend, sample_rate) an architecture is trained and served with."""
    preset = PRESETS[ARCH_PRESET[arch]]
    return preset.frontend, preset.sample_rate


# ---- normalisation ---------------------------------------------------------------------------
def fit_normalization(frames: np.ndarray) -> Normalization:
    """Per-bin mean/std over (..., bins) training frames; a floor keeps flat bins finite."""
    flat = frames.reshape(-1, frames.shape[-1]).astype(np.float64)
    mean = flat.mean(axis=0)
    std = np.maximum(flat.std(axis=0), 1e-3)
    return Normalization(mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std))


def clip_features(
    audio: np.ndarray, spec: FrontendSpec, sample_rate: int, norm: Normalization | None = None
) -> np.ndarray:
    """(N, samples) clips -> (N, frames, bins) features (raw: (N, samples, 1))."""
    if spec.kind == "raw":
        return audio[..., None].astype(np.float32)
    return np.stack([compute_features(a, spec, sample_rate, norm) for a in audio])


def model_inputs(arch: str, feats: np.ndarray) -> np.ndarray | list[np.ndarray]:
    """Arrange (N, frames, bins) features (or (N, samples, 1) waves) as the Keras model's inputs."""
    if arch == "cnn":
        return feats[..., None]
    if arch == "fusion":
        return [feats[..., None], feats]
    return feats


# ---- clip data (Speech Commands layout) ------------------------------------------------------
@dataclass
class ClipSplit:
    """Decoded fixed-length clips of one split and their label indices."""

    audio: np.ndarray
    y: np.ndarray
    speakers: tuple[str, ...] = ()


@dataclass
class ClipData:
    """The three splits of a Speech Commands tree at one rate, plus its noise recordings."""

    labels: tuple[str, ...]
    sample_rate: int
    splits: dict[str, ClipSplit]
    noise: tuple[np.ndarray, ...] = ()
    source: SpeechCommandsSet | None = field(default=None, repr=False)


def load_clips(
    root: str | Path,
    sample_rate: int,
    clip_s: float = 1.0,
    seed: int = 0,
    splits: Sequence[Split] = ("train", "validation", "test"),
) -> ClipData:
    """Decode a Speech Commands tree (12-class protocol) into arrays per split."""
    sc = load_speech_commands(root, sample_rate, clip_s, seed=seed)
    out: dict[str, ClipSplit] = {}
    for split in splits:
        x, y = sc.arrays(split)
        out[split] = ClipSplit(x, y, tuple(c.speaker for c in sc.splits[split]))
    return ClipData(sc.labels, sample_rate, out, tuple(sc.background_noise()), sc)


def augmenter(sample_rate: int, noise: Sequence[np.ndarray] = ()) -> Augmenter:
    """The training augmentation: shift 100 ms, coloured/recorded noise at 0-25 dB, gain +-6 dB."""
    return Augmenter(sample_rate=sample_rate, noise_bank=tuple(noise))


# ---- speech streams (per-frame command model) ------------------------------------------------
def speech_pool(data: ClipData, split: str) -> list[tuple[np.ndarray, str]]:
    """(clip, label) for every word clip of a split.

    Command words keep their name, others are _unknown_; noise-only _silence_ clips are left out
    (streams bring their own noise).
    """
    s = data.splits[split]
    pool = []
    for clip, yi in zip(s.audio, s.y, strict=True):
        label = data.labels[int(yi)]
        if label != SILENCE and np.any(clip):
            pool.append((clip, label))
    return pool


def only_unknown(pool: Sequence[tuple[np.ndarray, str]]) -> list[tuple[np.ndarray, str]]:
    """The _unknown_ words of a pool (streams with nothing a command model should report)."""
    return [(c, lb) for c, lb in pool if lb == UNKNOWN]


def speech_streams(
    pool: Sequence[tuple[np.ndarray, str]],
    n: int,
    seed: int,
    duration_s: float = 30.0,
    snr_db_range: tuple[float, float] | None = (5.0, 30.0),
) -> list[Stream]:
    """N streams of words with gaps over coloured noise; stream i is seeded by (seed, i)."""
    opts = SpeechStreamOptions(duration_s=duration_s, snr_db_range=snr_db_range)
    return [make_speech_stream(pool, np.random.default_rng([seed, i]), opts) for i in range(n)]


def sound_streams(
    n: int,
    seed: int,
    duration_s: float = 10.0,
    snr_db_range: tuple[float, float] = (0.0, 20.0),
    sources: EventSources | None = None,
) -> list[Stream]:
    """N multi-label sound-event streams; stream i is seeded by (seed, i)."""
    opts = EventStreamOptions(duration_s=duration_s, snr_db_range=snr_db_range)
    return [make_event_stream(np.random.default_rng([seed, i]), opts, sources) for i in range(n)]


def tree_speech(root: str | Path, split: str, n: int, sample_rate: int,
                rng: np.random.Generator) -> list[np.ndarray]:
    """Up to n word clips (any word, no _silence_) of one split of a tree: speech events.

    Drawn without replacement; only the drawn clips are decoded.
    """
    from hark.models.data.audio import read_audio

    sc = load_speech_commands(root, sample_rate, silence_per_split=0)
    if split not in sc.splits:
        raise ValueError(f"no split {split!r} (known: {sorted(sc.splits)})")
    clips = [c for c in sc.splits[split] if c.label != SILENCE]
    if not clips:
        raise ValueError(f"{root}: no word clips in the {split} split")
    picked = rng.permutation(len(clips))[:n]
    out = [read_audio(clips[int(i)].path, sample_rate) for i in picked]
    return [x for x in out if np.any(x)]


def read_streams(folder: str | Path) -> list[Stream]:
    """Every X.wav with an X.tsv beside it in a folder (sorted), e.g. from generate_event_set."""
    from hark.models.data.audio import read_audio

    streams = []
    for wav in sorted(Path(folder).glob("*.wav")):
        tsv = wav.with_suffix(".tsv")
        if tsv.is_file():
            streams.append(Stream(read_audio(wav, 16000), 16000, read_events_tsv(tsv)))
    return streams


def delayed(events: Sequence[Event], delay_s: float, tail_s: float = 0.0) -> list[Event]:
    """Targets a causal model can meet.

    Each span starts delay_s later (the model has heard more by then) and ends delay_s + tail_s
    later (it may hold its decision a little after the word).
    """
    return [Event(e.label, e.onset_s + delay_s, e.offset_s + delay_s + tail_s) for e in events]


@dataclass
class FrameSet:
    """Per-frame features and targets of whole streams (lists: streams differ in length)."""

    feats: list[np.ndarray]
    targets: list[np.ndarray]
    onsets: list[np.ndarray] = field(default_factory=list)  # first frame of each event

    @property
    def n_frames(self) -> int:
        """Frames over all streams."""
        return sum(len(f) for f in self.feats)


def stream_frames(
    streams: Sequence[Stream],
    labels: Sequence[str],
    multilabel: bool,
    spec: FrontendSpec,
    sample_rate: int,
    norm: Normalization | None = None,
    delay_s: float = 0.0,
    background: str | None = SILENCE,
    tail_s: float = 0.0,
) -> FrameSet:
    """Features and frame targets (class index, or multi-hot when multilabel) per stream."""
    hop_s, win_s = spec.hop_ms / 1000.0, spec.window_ms / 1000.0
    feats, targets, onsets = [], [], []
    for st in streams:
        f = compute_features(st.audio, spec, sample_rate, norm)
        onsets.append(np.array([int(round((e.onset_s - win_s / 2) / hop_s)) for e in st.events],
                               dtype=np.int64))
        t = frame_targets(
            delayed(st.events, delay_s, tail_s),
            len(f),
            hop_s,
            win_s,
            labels,
            multilabel=multilabel,
            background=None if multilabel else background,
        )
        feats.append(f)
        targets.append(t)
    return FrameSet(feats, targets, onsets)


def crops(
    data: FrameSet,
    seq_frames: int,
    rng: np.random.Generator,
    per_stream: int | None = None,
    at_onset: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Random fixed-length crops (B, seq_frames, bins) and their targets, zero state at each start.

    Starting anywhere (even mid-word) teaches the model to recover from a state reset. A fraction
    `at_onset` of the crops starts within -30..+50 ms of an event's onset instead: after a silence
    the engine resets the state and its VAD gate opens just as speech begins, so the model must
    also know words it hears from a clean state. per_stream defaults to covering each stream once.
    """
    xs, ys = [], []
    for i, (f, t) in enumerate(zip(data.feats, data.targets, strict=True)):
        n = len(f)
        if n <= seq_frames:
            pad = seq_frames - n
            xs.append(np.pad(f, ((0, pad), (0, 0)), mode="edge"))
            ys.append(np.pad(t, ((0, pad),) + ((0, 0),) * (t.ndim - 1), mode="edge"))
            continue
        k = per_stream or max(1, int(round(n / seq_frames)))
        onsets = data.onsets[i] if i < len(data.onsets) else np.zeros(0, dtype=np.int64)
        for _ in range(k):
            if onsets.size and rng.random() < at_onset:
                start = int(rng.choice(onsets)) + int(rng.integers(-3, 6))
            else:
                start = int(rng.integers(0, n - seq_frames + 1))
            start = min(max(start, 0), n - seq_frames)
            xs.append(f[start : start + seq_frames])
            ys.append(t[start : start + seq_frames])
    return np.stack(xs).astype(np.float32), np.stack(ys)


def voice_augment(
    x: np.ndarray,
    rng: np.random.Generator,
    norm: Normalization | None,
    warp: float = 0.1,
    tilt_db: float = 6.0,
) -> np.ndarray:
    """Per crop, a different "voice and microphone" for normalised log-mel crops (B, T, bins).

    - warp: the mel axis is stretched by a factor in [1 - warp, 1 + warp] (bin k takes the value
      at k / factor, linearly interpolated): formants move as with a longer or shorter vocal
      tract (VTLP-style), which one synthesizer's voices cover poorly.
    - tilt_db: a smooth random EQ across the bands, a linear tilt of up to +-tilt_db end to end
      plus a bump of up to +-tilt_db / 2 in the middle: another microphone, another timbre.
    Works on log power (the normalisation is undone, then redone); returns a new array.
    """
    b, _, bins = x.shape
    mean = np.asarray(norm.mean, np.float32) if norm is not None else np.zeros(bins, np.float32)
    std = np.asarray(norm.std, np.float32) if norm is not None else np.ones(bins, np.float32)
    z = x * std + mean
    k = np.arange(bins, dtype=np.float64)
    u = k / max(bins - 1, 1) - 0.5  # -0.5 .. 0.5 across the band
    out = np.empty_like(z)
    for i in range(b):
        factor = rng.uniform(1.0 - warp, 1.0 + warp) if warp > 0 else 1.0
        src = np.clip(k / factor, 0.0, bins - 1.0)
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(lo + 1, bins - 1)
        frac = (src - lo).astype(np.float32)
        zi = z[i]
        out[i] = zi[:, lo] * (1.0 - frac) + zi[:, hi] * frac
        if tilt_db > 0:
            slope, bump = rng.uniform(-tilt_db, tilt_db), rng.uniform(-tilt_db / 2, tilt_db / 2)
            curve_db = slope * u + bump * np.cos(np.pi * u)
            out[i] += (curve_db * np.log(10.0) / 10.0).astype(np.float32)
    return ((out - mean) / std).astype(np.float32)


def spec_augment(
    x: np.ndarray,
    rng: np.random.Generator,
    norm: Normalization | None,
    max_mask_bins: int = 5,
    mask_prob: float = 0.5,
    gain_db: float = 6.0,
) -> np.ndarray:
    """Feature-space augmentation of normalised log-mel crops (B, T, bins), in place.

    A random level change of +-gain_db per crop (an additive constant in log power, divided by the
    per-bin std as the normalisation would), and with mask_prob one band of up to max_mask_bins
    adjacent bins set to the mean (0 after normalisation), as SpecAugment's frequency masks:
    both push the model towards cues that survive other microphones and voices.
    """
    b, _, bins = x.shape
    std = np.asarray(norm.std, dtype=np.float32) if norm is not None else np.ones(bins, np.float32)
    gain_ln = np.asarray(rng.uniform(-gain_db, gain_db, size=b), np.float32) * np.log(10) / 10
    gain = gain_ln.astype(np.float32)
    x += gain[:, None, None] / std[None, None, :]
    for i in np.flatnonzero(rng.random(b) < mask_prob):
        width = int(rng.integers(1, max_mask_bins + 1))
        start = int(rng.integers(0, bins - width + 1))
        x[i, :, start : start + width] = 0.0
    return x
