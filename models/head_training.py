"""`hark train --frontend embedding`: a small head on the frozen speech-embedding backbone.

The backbone (live.backbone) is frozen, so each training window is embedded once, not once per
epoch: the words of a Speech Commands tree are placed at random inside windows of the head's
length (8 embeddings = 1.38 s), over noise at a random SNR and gain, `windows_per_clip` times
each, real speech without the words (--negatives) joins as _unknown_, and the head trains on the
cached embeddings in seconds to minutes. It is exported like every hark model (Keras -> ONNX,
parity proved, card with the backbone pinned), tuned and scored by the code `hark eval` uses.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hark.live.backbone import embed_batch, window_seconds
from hark.live.card import EMBEDDING_WINDOW as EMBEDDING_WINDOW_SAMPLES
from hark.live.card import FrontendSpec, SmoothingSpec, VadSpec
from hark.live.features import normalize
from hark.models import architectures as A
from hark.models import assess
from hark.models.data.augment import Augmenter
from hark.models.data.speech_commands import UNKNOWN
from hark.models.datasets import fit_normalization, load_clips
from hark.models.options import TrainOptions

RATE = 16000
STRIDE_S = 0.08  # one decision per embedding
EMBEDDING_SPEC = FrontendSpec(kind="embedding")
HEAD_SMOOTHING = SmoothingSpec(median_frames=3, threshold_on=0.5, threshold_off=0.35,
                               min_on_ms=0.0, min_off_ms=100.0)


@dataclass
class WindowSet:
    """Embedded training windows: x (n, frames, 96) and label indices y (n,)."""

    x: np.ndarray
    y: np.ndarray


def window_samples(n_frames: int) -> int:
    """Samples of a head window holding n_frames embeddings."""
    return int(round(window_seconds(n_frames) * RATE))


def place(clips: np.ndarray, n: int, rng: np.random.Generator, aug: Augmenter) -> np.ndarray:
    """Each 1-D clip at a random offset in a window of n samples (zeros around), augmented.

    A clip longer than the window is cut at a random place. The augmenter's noise covers the
    whole window, so the word sits in continuous background as it does in a stream.
    """
    out = np.zeros((len(clips), n), dtype=np.float32)
    for i, c in enumerate(clips):
        c = np.asarray(c, dtype=np.float32)
        if c.size > n:
            s = int(rng.integers(0, c.size - n + 1))
            out[i] = c[s : s + n]
        else:
            s = int(rng.integers(0, n - c.size + 1))
            out[i, s : s + c.size] = c
        out[i] = aug(out[i], rng)
    return out


def _source_of(speaker: str) -> str:
    """The engine a synthetic speaker comes from (espeak, flite, kokoro; else the speaker)."""
    for engine in ("espeak", "flite", "kokoro"):
        if speaker.startswith(engine):
            return engine
    return speaker.split("-")[0]


def select_voices(speakers: tuple[str, ...], voices: str | None) -> np.ndarray:
    """Boolean mask of the clips whose voice id starts with one of `voices` (comma-separated)."""
    wanted = tuple(v.strip() for v in (voices or "").split(",") if v.strip())
    return np.array([bool(wanted) and s.startswith(wanted) for s in speakers], dtype=bool)


def select_sources(speakers: tuple[str, ...], sources: str | None) -> np.ndarray:
    """Boolean mask of the clips whose engine is in `sources` (comma-separated; None: all)."""
    keep = np.ones(len(speakers), dtype=bool)
    if not sources:
        return keep
    wanted = {s.strip() for s in sources.split(",") if s.strip()} | {"noise"}  # silence clips
    return np.array([_source_of(s) in wanted for s in speakers], dtype=bool)


STREAM_ONSET_SLACK_S = 0.1  # a word whose trimmed onset is this much before the window still counts
STREAM_OTHER_SHARE = 0.5  # of the windows that hold no whole word, this share is kept


def stream_window_labels(events: list[Any], n_windows: int, window_n: int, hop_n: int,
                         labels: tuple[str, ...]) -> np.ndarray:
    """The label index of each sliding window of a stream from its truth events.

    A command word lying whole in the window (onset up to STREAM_ONSET_SLACK_S before its start)
    names it (the latest one when two do); else _unknown_ when any speech overlaps it, else
    _silence_. So a half-heard word is _unknown_, as the head must treat it.
    """
    from hark.models.data.speech_commands import SILENCE

    index = {lb: i for i, lb in enumerate(labels)}
    y = np.full(n_windows, index[SILENCE], dtype=np.int64)
    starts = np.arange(n_windows) * hop_n / RATE
    ends = starts + window_n / RATE
    best_end = np.full(n_windows, -1.0)
    for ev in events:
        overlap = (ev.onset_s < ends) & (ev.offset_s > starts)
        y[overlap & (y == index[SILENCE])] = index[UNKNOWN]
        if ev.label in index and ev.label not in (UNKNOWN, SILENCE):
            whole = (ev.onset_s >= starts - STREAM_ONSET_SLACK_S) & (ev.offset_s <= ends)
            take = whole & (ev.offset_s > best_end)
            y[take] = index[ev.label]
            best_end[take] = ev.offset_s
    for ev in events:  # a partial word never leaves a window named by an earlier whole one
        if ev.label in index and ev.label not in (UNKNOWN, SILENCE):
            partial = (ev.onset_s < ends) & (ev.offset_s > ends) & (ev.offset_s > best_end)
            y[partial] = index[UNKNOWN]
    return y


def stream_windows(pool: list[tuple[np.ndarray, str]], n_streams: int, seed: int, n: int,
                   labels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Embedded sliding windows (k, frames, 96) and labels of n_streams 30 s word streams.

    Each stream goes through the streaming frontend once (compute_features); its windows are
    runs of consecutive embeddings, as the engine's window runner reads them. Windows without a
    whole word are thinned to STREAM_OTHER_SHARE (they outnumber the words many times).
    """
    from hark.live.card import EMBEDDING_HOP
    from hark.live.features import compute_features
    from hark.models.datasets import speech_streams

    frames = (n - EMBEDDING_WINDOW_SAMPLES) // EMBEDDING_HOP + 1
    rng = np.random.default_rng([seed, 24])
    xs, ys = [], []
    word_ids = {i for i, lb in enumerate(labels) if lb not in (UNKNOWN, "_silence_")}
    for st in speech_streams(pool, n_streams, seed=seed + 7000, duration_s=30.0):
        emb = compute_features(st.audio, EMBEDDING_SPEC, RATE)
        k = len(emb) - frames + 1
        if k <= 0:
            continue
        y = stream_window_labels(st.events, k, n, EMBEDDING_HOP, labels)
        keep = np.array([yi in word_ids for yi in y]) | (rng.random(k) < STREAM_OTHER_SHARE)
        view = np.lib.stride_tricks.sliding_window_view(emb, frames, axis=0)  # (k, 96, frames)
        xs.append(np.ascontiguousarray(view[keep].transpose(0, 2, 1)))
        ys.append(y[keep])
    return np.concatenate(xs), np.concatenate(ys)


def _with_extra(tr: Any, extra: Path, labels: tuple[str, ...], seed: int, log: Any) -> Any:
    """The training split plus every clip of another tree (same labels)."""
    from hark.models.datasets import ClipSplit

    more = load_clips(extra, RATE, 1.0, seed=seed)
    if more.labels != labels:
        raise ValueError(f"--extra-data {extra} has labels {more.labels}, not {labels}")
    parts = [more.splits[s] for s in ("train", "validation", "test") if len(more.splits[s].y)]
    log(f"extra training clips: {sum(len(p.y) for p in parts)} from {extra}")
    return ClipSplit(np.concatenate([tr.audio, *(p.audio for p in parts)]),
                     np.concatenate([tr.y, *(p.y for p in parts)]),
                     tr.speakers + tuple(s for p in parts for s in p.speakers))


def _cache_key(opts: TrainOptions, tree: Path, n: int, what: str) -> str:
    key: dict[str, Any] = {"tree": str(tree.resolve()), "seed": opts.seed, "n": n, "what": what}
    if what == "train":  # every source is embedded: --sources picks from the cached windows
        key.update(k=opts.windows_per_clip, extra=str(opts.extra_data) if opts.extra_data else None,
                   negatives=str(opts.negatives) if opts.negatives else None,
                   negative_share=opts.negative_share)
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def embedded(opts: TrainOptions, tree: Path, what: str, n: int,
             build: Any, log: Any) -> WindowSet:
    """The embedded windows of `what`, from OUT/embeddings/ when the same data was embedded."""
    folder = opts.embed_cache or opts.out / "embeddings"
    path = folder / f"{what}-{_cache_key(opts, tree, n, what)}.npz"
    if path.is_file():
        with np.load(path) as z:
            log(f"{what}: {len(z['y'])} embedded windows from {path}")
            return WindowSet(z["x"], z["y"])
    audio, y = build()
    t0 = time.perf_counter()
    x = embed_batch(audio)
    dt = time.perf_counter() - t0
    log(f"{what}: {len(y)} windows embedded in {dt:.0f} s "
        f"({dt / max(len(y), 1) * 1000:.1f} ms per {n / RATE:.2f} s window)")
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=x, y=y)
    return WindowSet(x, y)


ENROLL_PER_CLASS = 60  # embedded training windows per class kept for `hark enroll`


def write_enroll_set(path: Path, windows: WindowSet, labels: tuple[str, ...],
                     rng: np.random.Generator, per_class: int = ENROLL_PER_CLASS) -> None:
    """A small seeded sample of the training windows beside the model, for `hark enroll`.

    Enrolment refits the head on the user's takes plus these (raw embeddings, float16: ~1 MB
    for 12 classes), so the new model still knows the synthetic voices and the negatives.
    """
    pick = []
    for c in range(len(labels)):
        idx = np.flatnonzero(windows.y == c)
        if idx.size:
            pick.append(rng.choice(idx, size=min(per_class, idx.size), replace=False))
    sel = np.sort(np.concatenate(pick)) if pick else np.zeros(0, dtype=np.int64)
    np.savez_compressed(path, x=windows.x[sel].astype(np.float16), y=windows.y[sel],
                        labels=np.array(labels))


def train_head(opts: TrainOptions, keras: Any, log: Any) -> Any:
    """Train, export, tune and score a head (see the module docstring)."""
    from hark.models.exporting import ExportRequest, export_model
    from hark.models.training import (
        DEFAULT_SMOOTHING,
        TrainResult,
        _provenance,
        _real_speech,
        _resolve_tree,
        _sqrt_balanced,
        fit,
        make_config,
    )

    if opts.arch not in A.HEAD_ARCHS:
        raise ValueError(f"--frontend embedding trains a head: --arch {', '.join(A.HEAD_ARCHS)}")
    if opts.task != "commands":
        raise ValueError("--frontend embedding trains commands heads (--task commands)")
    if opts.windows_per_clip < 1:
        raise ValueError("--windows-per-clip must be at least 1")
    assert DEFAULT_SMOOTHING is not None
    cfg = make_config(opts.arch, opts.overrides, kind=opts.arch)
    n = window_samples(cfg.n_frames)
    tree = _resolve_tree(opts, log)
    data = load_clips(tree, RATE, 1.0, seed=opts.seed)
    labels = data.labels
    unknown = labels.index(UNKNOWN)
    tr, va = data.splits["train"], data.splits["validation"]
    if opts.extra_data is not None:
        tr = _with_extra(tr, opts.extra_data, labels, opts.seed, log)
    held = select_voices(tr.speakers, opts.val_voices)
    keep = select_sources(tr.speakers, opts.sources) & ~held
    if not (keep & (tr.y != labels.index("_silence_"))).any():
        raise ValueError(f"--sources {opts.sources}: no training clip is from these engines")
    log(f"clips: train {int(keep.sum())} (of {len(tr.y)}; sources {opts.sources or 'all'}), "
        f"validation {len(va.y)}; window {n / RATE:.3f} s = {cfg.n_frames} embeddings")
    bank = tuple(b[: int(0.8 * b.size)] for b in data.noise)
    aug = Augmenter(sample_rate=RATE, shift_max_s=0.0, noise_bank=bank)
    negatives: list[Any] = []
    if opts.negatives is not None:
        n_unknown = int((tr.y == unknown).sum())
        negatives = [p for p, _ in _real_speech(opts, n_unknown, RATE, log)]

    def build_train() -> tuple[np.ndarray, np.ndarray]:
        # every clip of every source, embedded once; --sources selects from the cache
        rng = np.random.default_rng([opts.seed, 21])
        clips = list(tr.audio) * opts.windows_per_clip + negatives
        y = np.concatenate((np.tile(tr.y, opts.windows_per_clip),
                            np.full(len(negatives), unknown, dtype=tr.y.dtype)))
        return place(np.asarray(clips, dtype=object), n, rng, aug), y

    def build_val() -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([opts.seed, 22])
        return place(va.audio, n, rng, aug), va.y

    t0 = time.perf_counter()
    full = embedded(opts, tree, "train", n, build_train, log)
    chosen = np.concatenate((np.tile(keep, opts.windows_per_clip),
                             np.ones(len(full.y) - opts.windows_per_clip * len(keep), bool)))
    train_set = WindowSet(full.x[chosen], full.y[chosen])
    if opts.head_streams > 0:
        pool = [(c, labels[int(yi)]) for c, yi in zip(tr.audio[keep], tr.y[keep], strict=True)
                if labels[int(yi)] != "_silence_" and np.any(c)]
        pool += [(p, UNKNOWN) for p in negatives]
        t_s = time.perf_counter()
        sx, sy = stream_windows(pool, opts.head_streams, opts.seed, n, labels)
        words = [i for i, w in enumerate(labels) if w not in (UNKNOWN, "_silence_")]
        log(f"streams: {opts.head_streams} x 30 s -> {len(sy)} windows "
            f"({int(np.isin(sy, words).sum())} with a whole word) in "
            f"{time.perf_counter() - t_s:.0f} s")
        train_set = WindowSet(np.concatenate((train_set.x, sx)),
                              np.concatenate((train_set.y, sy)))
    val_split = embedded(opts, tree, "validation", n, build_val, log)
    first = np.concatenate((held, np.zeros(len(full.y) - len(held), bool)))  # one placement
    val_parts = {"validation split": val_split,
                 **({f"held voices {opts.val_voices}": WindowSet(full.x[first], full.y[first])}
                    if held.any() else {})}
    val_set = WindowSet(np.concatenate([v.x for v in val_parts.values()]),
                        np.concatenate([v.y for v in val_parts.values()]))
    embed_s = time.perf_counter() - t0
    norm = fit_normalization(train_set.x)
    x_tr = normalize(train_set.x, norm).astype(np.float32)
    x_va = normalize(val_set.x, norm).astype(np.float32)
    weights = _sqrt_balanced(train_set.y, len(labels))
    built = A.build(opts.arch, cfg, len(labels), seed=opts.seed)
    built.model.compile(keras.optimizers.Adam(opts.learning_rate),
                        "sparse_categorical_crossentropy", metrics=["accuracy"])
    log(f"head {opts.arch}: {built.model.count_params()} parameters; config {cfg}")
    t1 = time.perf_counter()
    history = fit(built.model, lambda epoch: (x_tr, train_set.y, weights), (x_va, val_set.y),
                  opts, log)
    fit_s = time.perf_counter() - t1
    log(f"head fitted in {fit_s:.0f} s ({len(history)} epochs); windows embedded in "
        f"{embed_s:.0f} s")
    val_acc = {}
    for what, part in val_parts.items():
        pred = built.model.predict(normalize(part.x, norm).astype(np.float32), verbose=0)
        val_acc[what] = round(float(np.mean(np.argmax(pred, axis=1) == part.y)), 4)
        log(f"window accuracy on {what}: {val_acc[what]:.4f} ({len(part.y)} windows)")
    from hark.live.backbone import backbone_info

    info = backbone_info()
    req = ExportRequest(
        name=opts.model_name,
        labels=labels,
        sample_rate=RATE,
        frontend=EMBEDDING_SPEC,
        normalization=norm,
        ignore_labels=("_silence_", "_unknown_"),
        smoothing=HEAD_SMOOTHING,
        vad=VadSpec(enabled=True),
        window_s=window_seconds(cfg.n_frames),
        stride_s=STRIDE_S,
        provenance={**_provenance(opts, cfg, tree), "frontend": "embedding",
                    "backbone": {"name": info.name, "source": info.source,
                                 "licence": info.licence, "attribution": info.attribution},
                    "windows_per_clip": opts.windows_per_clip,
                    **({"sources": opts.sources} if opts.sources else {}),
                    **({"val_voices": opts.val_voices} if opts.val_voices else {}),
                    **({"head_streams": opts.head_streams} if opts.head_streams else {}),
                    "validation_window_accuracy": val_acc,
                    "embed_seconds": round(embed_s, 1), "fit_seconds": round(fit_s, 1)},
    )
    onnx_path = export_model(built, req, opts.out)
    write_enroll_set(onnx_path.with_suffix(".enroll.npz"), train_set, labels,
                     np.random.default_rng([opts.seed, 23]))
    log(f"exported {onnx_path}")
    evaluation = assess.clip_model(opts, onnx_path, tree, data, log)
    return TrainResult(onnx_path, history, evaluation, 0.0)
