"""`hark enroll`: refit an embedding model's head on a few takes of the user's own voice.

The backbone is frozen, so a model of kind "embedding" is a small head over 8 embeddings: a few
takes per word, placed at several offsets inside head windows over noise, embedded once, plus
the synthetic windows the base model left beside itself (NAME.enroll.npz), are enough to fit a
softmax head (models.softmax_head) in seconds, no TensorFlow. New words (`words=`) get synthetic
takes from the synthesizers on this machine (flite, espeak-ng; never the voices held out for
evaluation) and every window of the base's set that is not silence becomes `_unknown_`.

The new model is written beside the old one (never over it) only after it loads through
hark.live.model like any model and its graph equals the numpy forward pass on the training
windows; the last take of each word is held out and scored by the base (for the words it has)
and by the new model, and that table goes into the card.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hark.live.backbone import embed_batch
from hark.live.card import (
    EMBEDDING_DIM,
    EMBEDDING_HOP,
    EMBEDDING_RATE,
    ModelCard,
    load_card,
)
from hark.live.errors import HarkError
from hark.live.model import OnnxModel
from hark.live.utterance import UtteranceOptions, speech_span
from hark.models.data.augment import Augmenter
from hark.models.softmax_head import (
    L2Choice,
    SoftmaxHead,
    choose_l2,
    fit_softmax,
    fold_normalisation,
)

SILENCE = "_silence_"
UNKNOWN = "_unknown_"
RATE = EMBEDDING_RATE
# held out of all training everywhere in hark: the stand-in users (never synthesised here)
HELD_OUT_VOICES: frozenset[tuple[str, str]] = frozenset(
    {("flite", "slt"), ("kokoro", "jf_nezumi*0.5+jm_kumo")})
# prosodies of the synthetic takes of a new word: (speed, pitch)
SYNTH_PROSODIES: tuple[tuple[float, float], ...] = ((0.9, 0.35), (1.0, 0.5), (1.15, 0.65))
Log = Callable[[str], None]


class EnrollError(HarkError):
    """Input `hark enroll` cannot use: not an embedding model, no takes, a silent take, ..."""


@dataclass(frozen=True)
class Take:
    """One recording of a word (mono float32 at 16 kHz) and where it came from."""

    word: str
    audio: np.ndarray
    source: str


@dataclass(frozen=True)
class EnrollOptions:
    """How takes become training windows and how the head is fitted.

    strips_per_take: augmented copies of each take (different noise, gain, position);
    windows_per_strip: head windows cut from each copy, the word at a different 80 ms offset in
    each (one embedding pass gives them all, as a stream sliding past the word would);
    user_weight: a user window counts this many synthetic windows of its class.
    """

    words: tuple[str, ...] | None = None  # new words; None: refit the base model's own words
    strips_per_take: int = 4
    windows_per_strip: int = 6
    partial_hops: int = 5  # hops each side of a strip: the word coming in and going out
    # a window holding part of a word, up to this share of its speech, is a word not yet (or no
    # longer) said: _unknown_, so that a stream does not fire "lights on" while "lights off" is
    # still coming; a window with none of it is the room: _silence_
    partial_max: float = 0.85
    user_weight: float = 5.0
    synth_strips_per_clip: int = 1
    espeak_voices: int = 12  # espeak-ng voices sampled (seeded) for each new word
    synthesize: bool = True
    l2_candidates: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1)
    default_l2: float = 1e-2
    seed: int = 0


@dataclass(frozen=True)
class HeldOutRow:
    """One held-out take: what the base model and the enrolled one called it."""

    word: str
    source: str
    in_base: bool  # the base model has this word (scored by it)
    base: str | None  # the base model's label (None: not scored, or no decision)
    enrolled: str | None


@dataclass
class EnrollResult:
    """What `hark enroll` wrote and measured."""

    onnx_path: Path
    card_path: Path
    labels: tuple[str, ...]
    rows: list[HeldOutRow]
    accuracy_before: float | None
    accuracy_after: float
    seconds: float
    l2: L2Choice
    parity_max_abs_diff: float
    synth_note: str
    n_windows: dict[str, int] = field(default_factory=dict)

    def table(self) -> str:
        """The before/after table the command prints."""
        cells = [(r.word, _mark(r.base, r.word) if r.in_base else "-",
                  _mark(r.enrolled, r.word), r.source) for r in self.rows]
        head = ("word", "base", "enrolled", "held-out take")
        widths = [max(len(c[i]) for c in [head, *cells]) for i in range(3)]
        lines = ["  ".join([*(f"{c:<{w}}" for c, w in zip(row[:3], widths, strict=True)),
                            row[3]]) for row in [head, *cells]]
        before = "-" if self.accuracy_before is None else f"{self.accuracy_before:.2f}"
        lines.append(f"accuracy on the held-out takes: base {before}, enrolled "
                     f"{self.accuracy_after:.2f}")
        return "\n".join(lines)


def _mark(label: str | None, word: str) -> str:
    got = label or "(none)"
    return f"ok {got}" if label == word else f"x {got}"


# ---- the base model ------------------------------------------------------------------------------
def check_base(model: OnnxModel) -> None:
    """An embedding model hark enroll can refit: one window input of 96-dim embeddings."""
    card = model.card
    kinds = {fe.kind for fe in card.frontends.values()}
    if kinds != {"embedding"} or card.backbone is None:
        raise EnrollError(
            f"{model.path.name} is not an embedding model (frontend {', '.join(sorted(kinds))}): "
            "hark enroll refits the head of a model on the speech-embedding backbone "
            "(hark train --frontend embedding)")
    if len(card.inputs) != 1 or card.inputs[0].role != "window" or card.state:
        raise EnrollError(f"{model.path.name}: hark enroll refits one-window heads, this model "
                          "has other inputs or state")
    inp = card.inputs[0]
    if (inp.layout != "frames_bins" or inp.flatten or inp.pool != "none"
            or inp.window_norm != "none" or inp.channels != 1):
        raise EnrollError(f"{model.path.name}: input {inp.name!r} is not a plain "
                          "(frames, 96) window")
    if inp.framing != "stream":
        raise EnrollError(f"{model.path.name}: input {inp.name!r} is framed per clip, not as "
                          "the stream's embeddings")
    if card.task != "multiclass":
        raise EnrollError(f"{model.path.name}: hark enroll refits multiclass heads")


def enroll_set_path(onnx_path: Path) -> Path:
    """NAME.enroll.npz beside NAME.onnx (written by hark train --frontend embedding)."""
    return onnx_path.with_suffix(".enroll.npz")


@dataclass(frozen=True)
class SyntheticSet:
    """The base's stored training windows (raw embeddings) with their label names."""

    x: np.ndarray  # (n, frames, 96) float32
    labels: tuple[str, ...]  # per window


def load_enroll_set(model: OnnxModel) -> SyntheticSet:
    """The base model's NAME.enroll.npz, checked against its card."""
    path = enroll_set_path(model.path)
    if not path.is_file():
        raise EnrollError(
            f"{model.path.name} has no {path.name} beside it (the training windows hark enroll "
            "adds to the takes): re-train it with this hark (hark train --frontend embedding)")
    try:
        with np.load(path, allow_pickle=False) as z:
            x = np.asarray(z["x"], dtype=np.float32)
            y = np.asarray(z["y"], dtype=np.int64)
            names = tuple(str(v) for v in z["labels"])
    except (OSError, KeyError, ValueError) as e:
        raise EnrollError(f"{path}: not an enrolment set ({e})") from None
    frames = _frames(model.card)
    if x.ndim != 3 or x.shape[1:] != (frames, EMBEDDING_DIM) or len(y) != len(x):
        raise EnrollError(f"{path}: windows of shape {x.shape[1:]}, the model takes "
                          f"({frames}, {EMBEDDING_DIM})")
    if names != model.card.labels or (len(y) and (y.min() < 0 or y.max() >= len(names))):
        raise EnrollError(f"{path}: its labels do not match {model.path.name}'s card")
    return SyntheticSet(x, tuple(names[i] for i in y))


def _frames(card: ModelCard) -> int:
    shape = card.inputs[0].shape
    n = shape[1]
    if not isinstance(n, int):
        raise EnrollError(f"{card.name}: input {card.inputs[0].name!r} has no fixed frame count")
    return n


def window_samples(card: ModelCard) -> int:
    """Samples of the model's window (window_s at 16 kHz)."""
    assert card.window_s is not None
    return int(round(card.window_s * RATE))


# ---- takes -> windows ----------------------------------------------------------------------------
def trim(take: Take, options: UtteranceOptions | None = None) -> np.ndarray:
    """The take cut to its speech; EnrollError naming the take when it holds none."""
    span = speech_span(take.audio, options)
    if span is None:
        raise EnrollError(f"{take.source}: no speech in it (a take of silence or noise only)")
    return np.asarray(take.audio[span[0] : span[1]], dtype=np.float32)


@dataclass(frozen=True)
class Strips:
    """Augmented copies of clips, each inside a strip of audio a stream's window slides over."""

    audio: np.ndarray  # (m, samples)
    clip: np.ndarray  # (m,) the clip each strip holds
    offset: np.ndarray  # (m,) where its speech starts in the strip
    length: np.ndarray  # (m,) samples of speech


def strips(speech: Sequence[np.ndarray], window_n: int, k: int, copies: int,
           rng: np.random.Generator, aug: Augmenter, pad_hops: int = 0) -> Strips:
    """Each clip `copies` times in a strip of window_n + (k - 1 + 2 pad_hops) hops, augmented.

    The clip sits where at least k_eff of the windows (one per 80 ms hop) hold all of it: k_eff
    = k when the clip leaves room for k - 1 hops of slack in a window, fewer for a longer clip (a
    clip longer than the window is cut to its middle). pad_hops more hops each side give the
    windows a stream sees while the word comes in and goes out (strip_windows). Noise covers
    the whole strip, as a stream's background.
    """
    n = window_n + (k - 1 + 2 * pad_hops) * EMBEDDING_HOP
    m = len(speech) * copies
    out = np.zeros((m, n), dtype=np.float32)
    offset = np.zeros(m, dtype=np.int64)
    length = np.zeros(m, dtype=np.int64)
    row = 0
    for clip in speech:
        c = np.asarray(clip, dtype=np.float32)
        if c.size > window_n:
            s = (c.size - window_n) // 2
            c = c[s : s + window_n]
        ke = min(k, (window_n - c.size) // EMBEDDING_HOP + 1)
        for _ in range(copies):
            lo, hi = (ke - 1) * EMBEDDING_HOP, window_n - c.size
            at = pad_hops * EMBEDDING_HOP + int(rng.integers(lo, hi + 1))
            out[row, at : at + c.size] = c
            out[row] = aug(out[row], rng)
            offset[row], length[row] = at, c.size
            row += 1
    return Strips(out, np.repeat(np.arange(len(speech)), copies), offset, length)


@dataclass(frozen=True)
class StripWindows:
    """The head windows cut from embedded strips: whole words, and words coming or going."""

    x: np.ndarray  # (w, frames, 96)
    clip: np.ndarray  # (w,) the clip (strips' `clip`) each window holds
    share: np.ndarray  # (w,) of the word's speech inside: 1 whole, 0 none (room noise only)

    @property
    def whole(self) -> np.ndarray:
        return np.asarray(self.share >= 1.0)


def strip_windows(st: Strips, frames: int, window_n: int, partial_max: float = 0.85
                  ) -> StripWindows:
    """Embed the strips at once; keep every window but those nearly holding the whole word.

    A window with more than partial_max of the word's speech but not all of it is too close to
    the word to call it anything else (EnrollOptions.partial_max), and left out.
    """
    if not len(st.audio):
        return StripWindows(np.zeros((0, frames, EMBEDDING_DIM), np.float32),
                            np.zeros(0, np.int64), np.zeros(0))
    emb = embed_batch(st.audio)
    xs, owner, shares = [], [], []
    for i in range(len(st.audio)):
        a, b = int(st.offset[i]), int(st.offset[i] + st.length[i])
        for j in range(emb.shape[1] - frames + 1):
            w0 = j * EMBEDDING_HOP
            share = max(0, min(b, w0 + window_n) - max(a, w0)) / max(1, b - a)
            if share >= 1.0 or share <= partial_max:
                xs.append(emb[i, j : j + frames])
                owner.append(i)
                shares.append(min(share, 1.0))
    return StripWindows(np.stack(xs).astype(np.float32), st.clip[np.asarray(owner, np.int64)],
                        np.asarray(shares))


# ---- synthetic takes of new words ----------------------------------------------------------------
def synth_voices(options: EnrollOptions, log: Log) -> tuple[list[Any], str]:
    """The voices this machine can synthesise new words with (none held out), and a note."""
    from hark.models.data import tts

    voices: list[Any] = []
    have = []
    try:
        fl = [v for v in tts.flite_voices() if ("flite", v.name) not in HELD_OUT_VOICES]
        voices += fl
        have.append(f"flite {len(fl)} voices")
    except RuntimeError:
        pass
    try:
        es = list(tts.espeak_voices())
        rng = np.random.default_rng([options.seed, 31])
        pick = rng.choice(len(es), size=min(options.espeak_voices, len(es)), replace=False)
        voices += [es[int(i)] for i in sorted(pick)]
        have.append(f"espeak-ng {len(pick)} voices")
    except RuntimeError:
        pass
    if not voices:
        return [], ("no synthesizer installed (flite, espeak-ng): the new words are learnt from "
                    "your takes only")
    return voices, "synthetic takes: " + ", ".join(have) + f" x {len(SYNTH_PROSODIES)} prosodies"


def synth_takes(words: Sequence[str], options: EnrollOptions, log: Log
                ) -> tuple[dict[str, list[np.ndarray]], str]:
    """Synthetic clips of each word, trimmed to speech, from every voice and prosody.

    The synthesizers are subprocesses: a few run at once (threads wait on them), in a fixed
    order of results, so the clips are the same however many run.
    """
    from concurrent.futures import ThreadPoolExecutor

    from hark.models.data.tts import Prosody, synth_clip

    if not options.synthesize:
        return {w: [] for w in words}, ("synthesis off: the new words are learnt from your "
                                        "takes only")
    voices, note = synth_voices(options, log)
    jobs = [(w, v, Prosody(speed, pitch)) for w in words for v in voices
            for speed, pitch in SYNTH_PROSODIES]

    def one(job: tuple[str, Any, Any]) -> np.ndarray | None:
        word, voice, prosody = job
        try:
            clip = synth_clip(word, voice, RATE, prosody)
        except RuntimeError:  # a voice that cannot say it: the others still do
            return None
        span = speech_span(clip)
        return None if span is None else clip[span[0] : span[1]]

    out: dict[str, list[np.ndarray]] = {w: [] for w in words}
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for (word, _, _), clip in zip(jobs, pool.map(one, jobs), strict=True):
            if clip is not None:
                out[word].append(clip)
    return out, note


# ---- the fit -------------------------------------------------------------------------------------
@dataclass
class TrainingWindows:
    """Everything the head is fitted on: raw windows, labels, weights, take groups."""

    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    group: np.ndarray  # take index of a user window, -1 for synthetic ones
    counts: dict[str, int]


def class_labels(base: ModelCard, words: tuple[str, ...] | None) -> tuple[str, ...]:
    """The new model's labels: the base's, or the new words + _silence_ + _unknown_."""
    if words is None:
        return base.labels
    return (*words, SILENCE, UNKNOWN)


def relabel(names: Sequence[str], labels: tuple[str, ...]) -> np.ndarray:
    """Label indices of the synthetic windows in the new label set.

    A word the new model does not have becomes _unknown_ (silence stays silence).
    """
    index = {lb: i for i, lb in enumerate(labels)}
    other = index.get(UNKNOWN)
    missing = sorted({n for n in names if n not in index})
    if missing and other is None:
        raise EnrollError(f"the synthetic set has {', '.join(missing)}, which the new labels "
                          "lack, and there is no _unknown_ to put them in")
    return np.array([index.get(n, other) for n in names], dtype=np.int64)


def balanced_weights(y: np.ndarray, is_user: np.ndarray, n_classes: int,
                     user_weight: float) -> np.ndarray:
    """Sample weights: each class weighs the same in total.

    Inside a class a user window weighs user_weight synthetic ones, so that three takes are not
    drowned by sixty synthetic windows.
    """
    w = np.where(is_user, user_weight, 1.0).astype(np.float64)
    for c in range(n_classes):
        m = y == c
        if m.any():
            w[m] /= w[m].sum()
    return w * len(y) / w.sum()


def fit_head(tw: TrainingWindows, n_classes: int, options: EnrollOptions
             ) -> tuple[SoftmaxHead, L2Choice]:
    """Normalise per bin, choose L2 by leave-one-take-out, fit, fold the normalisation in."""
    frames = tw.x.shape[1]
    flat = tw.x.reshape(-1, tw.x.shape[-1]).astype(np.float64)
    mean = flat.mean(axis=0)
    std = np.maximum(flat.std(axis=0), 1e-3)
    xn = ((tw.x - mean) / std).reshape(len(tw.x), -1)
    choice = choose_l2(xn, tw.y, tw.weight, tw.group, n_classes, options.l2_candidates,
                       options.default_l2)
    fit = fit_softmax(xn, tw.y, tw.weight, n_classes, choice.l2, choice.start)
    return fold_normalisation(fit, mean, std, frames), choice


def training_windows(base: OnnxModel, labels: tuple[str, ...], train: dict[str, list[Take]],
                     options: EnrollOptions, log: Log) -> tuple[TrainingWindows, str]:
    """User takes + the base's synthetic set (+ synthetic takes of new words), embedded."""
    card = base.card
    frames = _frames(card)
    window_n = window_samples(card)
    rng = np.random.default_rng([options.seed, 11])
    aug = Augmenter(sample_rate=RATE, shift_max_s=0.0)
    syn = load_enroll_set(base)
    xs = [syn.x]
    ys = [relabel(syn.labels, labels)]
    groups = [np.full(len(syn.x), -1, dtype=np.int64)]
    users = [np.zeros(len(syn.x), dtype=bool)]
    parts = [np.zeros(len(syn.x), dtype=bool)]
    index = {lb: i for i, lb in enumerate(labels)}
    unknown, silence = index.get(UNKNOWN, -1), index.get(SILENCE, -1)

    def add(sw: StripWindows, y: np.ndarray, group: np.ndarray, user: bool) -> None:
        """Add windows: whole words under their label (user ones weighed up).

        Parts of a word become _unknown_, windows with none of it _silence_ (when the labels
        have them).
        """
        label = np.where(sw.whole, y, np.where(sw.share > 0, unknown, silence))
        keep = label >= 0
        xs.append(sw.x[keep])
        ys.append(label[keep])
        groups.append(group[keep])
        users.append((sw.whole & user)[keep])
        parts.append(~sw.whole[keep])

    note = "synthetic set: the base model's stored windows"
    new_words = [w for w in train if w not in set(syn.labels)]
    if new_words:
        t0 = time.perf_counter()
        clips, synth_note = synth_takes(new_words, options, log)
        note += "; " + synth_note
        sp = [c for w in new_words for c in clips[w]]
        log(f"{len(sp)} synthetic takes of {len(new_words)} new word(s) in "
            f"{time.perf_counter() - t0:.1f} s")
        wy = np.asarray([index[w] for w in new_words for _ in clips[w]], dtype=np.int64)
        if sp:
            sw = strip_windows(strips(sp, window_n, options.windows_per_strip,
                                      options.synth_strips_per_clip, rng, aug,
                                      options.partial_hops), frames, window_n,
                               options.partial_max)
            add(sw, wy[sw.clip], np.full(len(sw.x), -1, dtype=np.int64), user=False)
    speech, sy, sg = [], [], []
    for word, takes in train.items():
        for k, take in enumerate(takes):
            speech.append(trim(take))
            sy.append(index[word])
            sg.append(k)
    st = strips(speech, window_n, options.windows_per_strip, options.strips_per_take, rng, aug,
                options.partial_hops)
    t0 = time.perf_counter()
    sw = strip_windows(st, frames, window_n, options.partial_max)
    log(f"your {len(speech)} takes embedded ({len(st.audio)} augmented copies) in "
        f"{time.perf_counter() - t0:.1f} s")
    add(sw, np.asarray(sy, dtype=np.int64)[sw.clip], np.asarray(sg, dtype=np.int64)[sw.clip],
        user=True)
    y = np.concatenate(ys)
    is_user = np.concatenate(users)
    is_part = np.concatenate(parts)
    tw = TrainingWindows(
        x=np.concatenate(xs).astype(np.float32), y=y,
        weight=balanced_weights(y, is_user, len(labels), options.user_weight),
        group=np.concatenate(groups),
        counts={"user": int(is_user.sum()), "around": int(is_part.sum()),
                "synthetic": int((~is_user & ~is_part).sum())},
    )
    return tw, note


# ---- held-out scoring ----------------------------------------------------------------------------
def scoring_clip(take: Take, window_n: int) -> np.ndarray:
    """The held-out take as the model should hear it: its speech centred in window + 2 hops.

    Three decisions; the audio around the speech is the take's own (its room noise), zeros only
    where the take is shorter.

    A window model decides per window and classify_clip keeps the most confident one: a long
    take would give many windows of room noise a vote, a clip shorter than the window none.
    """
    span = speech_span(take.audio)
    if span is None:
        raise EnrollError(f"{take.source}: no speech in it (a take of silence or noise only)")
    a, b = span
    n = max(window_n + 2 * EMBEDDING_HOP, b - a + 2 * EMBEDDING_HOP)
    start = (a + b) // 2 - n // 2
    out = np.zeros(n, dtype=np.float32)
    lo, hi = max(0, start), min(take.audio.size, start + n)
    out[lo - start : hi - start] = take.audio[lo:hi]
    return out


def score(model: OnnxModel, clips: Sequence[np.ndarray]) -> list[str | None]:
    """classify_clip's label for each clip (the card's decision, VAD off)."""
    from hark.models.evaluation import classify_clip

    return [classify_clip(model, c)[0] for c in clips]


# ---- writing -------------------------------------------------------------------------------------
def default_output(spec: str, onnx_path: Path, bundled: bool) -> Path:
    """DIR/NAME-enrolled.onnx beside a model file; ./NAME-enrolled.onnx for a bundled name."""
    name = f"{onnx_path.stem}-enrolled.onnx"
    return Path.cwd() / name if bundled else onnx_path.with_name(name)


def new_card(base: ModelCard, name: str, labels: tuple[str, ...], output: str,
             provenance: dict[str, Any], evaluation: dict[str, Any]) -> ModelCard:
    """The base card with the new labels and head.

    Same frontend, window, smoothing, gate and backbone; no normalisation (it is folded into the
    graph); no streaming split (a Gemm head has nothing to split).
    """
    return replace(
        base, name=name, labels=labels, output=output, normalization={},
        ignore_labels=tuple(lb for lb in (SILENCE, UNKNOWN) if lb in labels),
        provenance=provenance, evaluation=evaluation, streaming_split=None,
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def enroll(base: OnnxModel, takes: Sequence[Take], out_path: Path,
           options: EnrollOptions | None = None, log: Log = print) -> EnrollResult:
    """Fit, write and check the enrolled model (see the module docstring).

    The last take of each word is held out. Raises EnrollError for input it cannot use; writes
    nothing unless the new model loads and passes parity.
    """
    options = options or EnrollOptions()
    t0 = time.perf_counter()
    check_base(base)
    card = base.card
    out_path = Path(out_path)
    if out_path.suffix != ".onnx":
        raise EnrollError(f"--out {out_path}: give a NAME.onnx path")
    if out_path.resolve() == base.path.resolve():
        raise EnrollError(f"--out {out_path} is the base model: it is never overwritten")
    words = tuple(options.words) if options.words is not None else None
    labels = class_labels(card, words)
    wanted = words if words is not None else card.event_labels
    by_word: dict[str, list[Take]] = {}
    for t in takes:
        if t.word not in wanted:
            raise EnrollError(f"{t.source}: {t.word!r} is not a word of this enrolment "
                              f"({', '.join(wanted)})")
        by_word.setdefault(t.word, []).append(t)
    if not by_word:
        raise EnrollError("no takes: nothing to enrol")
    if words is not None and set(by_word) != set(words):
        missing = [w for w in words if w not in by_word]
        raise EnrollError(f"no takes of {', '.join(map(repr, missing))}: a new word needs takes")
    short = [w for w, ts in by_word.items() if len(ts) < 2]
    if short:
        raise EnrollError(f"{', '.join(map(repr, short))}: at least 2 takes per word (the last is "
                          "held out to score the new model)")
    train = {w: ts[:-1] for w, ts in by_word.items()}
    held = [ts[-1] for ts in by_word.values()]
    window_n = window_samples(card)
    held_clips = [scoring_clip(t, window_n) for t in held]  # a silent held-out take fails here
    tw, note = training_windows(base, labels, train, options, log)
    log(f"{tw.counts['user']} windows of your takes, {tw.counts['around']} of words coming "
        f"or going and the room around them, {tw.counts['synthetic']} synthetic; {note}")
    t1 = time.perf_counter()
    head, choice = fit_head(tw, len(labels), options)
    log(f"head fitted in {time.perf_counter() - t1:.1f} s: L2 {choice.l2:g} ({choice.rule})")
    fit_s = time.perf_counter() - t0

    inp = card.inputs[0]
    output = card.output or "posteriors"
    base_has = [t.word in card.labels for t in held]
    before = score(base, [c for c, has in zip(held_clips, base_has, strict=True) if has])
    before_iter = iter(before)
    base_labels = [next(before_iter) if has else None for has in base_has]

    folder = out_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{out_path.stem}.tmp{os.getpid()}.onnx"
    tmp_card = tmp.with_suffix(".json")
    try:
        import onnx

        onnx.save(head.to_onnx(inp.name, output), str(tmp))
        provenance = {
            "trained_by": "hark enroll",
            "base": {"name": card.name, "file": base.path.name, "sha256": _sha256(base.path)},
            "backbone": card.provenance.get("backbone"),
            "frontend": "embedding",
        }
        new_card(card, out_path.stem, labels, output, provenance, {}).save(tmp_card)
        model = OnnxModel.load(tmp)  # the runtime's own checks: card vs graph, a dry run
        ort_out = np.asarray(model.run({inp.name: tw.x})[0], dtype=np.float64)
        parity = float(np.max(np.abs(ort_out - head.forward(tw.x))))
        if not parity <= 1e-5:
            raise EnrollError(f"the written graph differs from the fitted head by {parity:.2e} "
                              "(> 1e-5): nothing written")
        after = score(model, held_clips)
        rows = [HeldOutRow(t.word, t.source, has, b, a)
                for t, has, b, a in zip(held, base_has, base_labels, after, strict=True)]
        scored = [r for r in rows if r.in_base]
        acc_before = (float(np.mean([r.base == r.word for r in scored])) if scored else None)
        acc_after = float(np.mean([r.enrolled == r.word for r in rows]))
        seconds = time.perf_counter() - t0
        provenance["enrolled"] = {
            "words": list(by_word),
            "new_words": words is not None,
            "takes_per_word": {w: len(ts) for w, ts in train.items()},
            "held_out_per_word": 1,
            "seconds": round(seconds, 1),
            "fit_seconds": round(fit_s, 1),
            "accuracy_before": acc_before,
            "accuracy_after": acc_after,
            "windows": tw.counts,
            "synthetic": note,
            "l2": choice.l2,
            "l2_rule": choice.rule,
            "l2_scores": {f"{k:g}": round(v, 4) for k, v in choice.scores.items()},
            "options": {"strips_per_take": options.strips_per_take,
                        "windows_per_strip": options.windows_per_strip,
                        "user_weight": options.user_weight, "seed": options.seed},
        }
        provenance["parity"] = {"max_abs_diff": parity, "tolerance": 1e-5,
                                "against": "numpy forward pass of the fitted head",
                                "windows": len(tw.x), "passed": True}
        evaluation = {"enroll": {
            "held_out": [{"word": r.word, "take": r.source, "base": r.base,
                          "enrolled": r.enrolled} for r in rows],
            "accuracy_before": acc_before, "accuracy_after": acc_after,
            "before_scored_on": [r.word for r in scored],
        }}
        final = new_card(card, out_path.stem, labels, output, provenance, evaluation)
        final.save(tmp_card)
        load_card(tmp_card)
        os.replace(tmp, out_path)
        os.replace(tmp_card, out_path.with_suffix(".json"))
    finally:
        for p in (tmp, tmp_card):
            p.unlink(missing_ok=True)
    return EnrollResult(out_path, out_path.with_suffix(".json"), labels, rows, acc_before,
                        acc_after, seconds, choice, parity, note, tw.counts)
