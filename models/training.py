"""`hark train`: build an architecture, train it on synthetic (or given) data, export, evaluate.

Two recipes:
- clip models (cnn, wave1d, fusion, wavception): 12-class Speech Commands clips, re-augmented
  every epoch (shift, coloured/recorded noise, gain), sqrt-balanced class weights;
- per-frame models (rnn): long streams with frame targets, fresh streams every epoch, random
  crops that start from a zero state. task "commands": words among unknown words and noise,
  softmax over the 10 words + _silence_ + _unknown_; task "sounds": clap/whistle/beep/knock/
  speech, independent sigmoids.
Both stop early on validation loss (best weights restored), are seeded (numpy, Python, Keras,
TF op determinism), export through models.exporting, tune the card's smoothing on validation
streams, and score the exported ONNX model on held-out test data with the code `hark eval` uses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hark.live.card import SmoothingSpec, VadSpec
from hark.live.features import n_frames_for
from hark.models import architectures as A
from hark.models import assess
from hark.models.data.events import Stream
from hark.models.data.speech_commands import UNKNOWN
from hark.models.data.streams import under_background
from hark.models.datasets import (
    COMMAND_FRAME_LABELS,
    SOUND_LABELS,
    arch_frontend,
    augmenter,
    clip_features,
    crops,
    fit_normalization,
    load_clips,
    model_inputs,
    only_unknown,
    read_streams,
    sound_streams,
    spec_augment,
    speech_pool,
    speech_streams,
    stream_frames,
    sub_seed,
    voice_augment,
)
from hark.models.options import TrainOptions
from hark.models.prefetch import EpochData
from hark.models.synth import ensure_tree

Log = Callable[[str], None]
TASKS = ("commands", "sounds")
ARCHS = tuple(A.ARCH_CONFIGS)
DEFAULT_SMOOTHING = SmoothingSpec(median_frames=5, threshold_on=0.5, threshold_off=0.35,
                                  min_on_ms=60.0, min_off_ms=100.0)


@dataclass
class TrainResult:
    """Where the model went and what it scored."""

    onnx_path: Path
    history: list[dict[str, float]]
    evaluation: dict[str, Any]
    seconds: float


def setup_tensorflow(seed: int, threads: int) -> Any:
    """Quiet TF, pin its thread pools, seed every generator, ask for deterministic ops."""
    from hark.export.loading import require_toolchain

    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # tf.data's C++ warnings on every fit
    require_toolchain()
    import keras
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialised in this process (tests): keep its pools
    keras.utils.set_random_seed(seed)
    with contextlib.suppress(AttributeError, RuntimeError):
        tf.config.experimental.enable_op_determinism()
    return keras


def make_config(arch: str, overrides: dict[str, Any], **fixed: Any) -> Any:
    """The arch's config dataclass with `fixed` fields, then user overrides (lists -> tuples)."""
    cls = A.ARCH_CONFIGS[arch]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(
            f"unknown {arch} config field(s) {sorted(unknown)}; fields: {sorted(names)}"
        )
    values = {k: v for k, v in fixed.items() if k in names}
    values.update({k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
    return cls(**values)


def fit(
    model: Any,
    make_train: Callable[[int], tuple[Any, Any, Any]],
    val: tuple[Any, Any],
    opts: TrainOptions,
    log: Log,
) -> list[dict[str, float]]:
    """Epoch loop with fresh training data per epoch; the best weights are kept.

    The learning rate halves after every 2 epochs without a better validation loss; training
    stops after `patience` such epochs. With opts.prefetch the next epoch's data is built in a
    worker process while this one trains (models.prefetch); it is the same data either way.
    """
    verbose = opts.verbose if opts.verbose is not None else (1 if sys.stdout.isatty() else 2)
    data = EpochData(make_train, opts.epochs, ahead=opts.prefetch)
    with data:
        history = _epochs(model, data, val, opts, log, verbose)
    return history


def _epochs(model: Any, data: EpochData[tuple[Any, Any, Any]], val: tuple[Any, Any],
            opts: TrainOptions, log: Log, verbose: int) -> list[dict[str, float]]:
    best, best_weights, wait = math.inf, model.get_weights(), 0
    lr = opts.learning_rate
    history: list[dict[str, float]] = []
    t_start = time.perf_counter()
    for epoch in range(opts.epochs):
        t0 = time.perf_counter()
        x, y, w = data.get(epoch)
        t_data = time.perf_counter() - t0
        model.optimizer.learning_rate.assign(lr)
        h = model.fit(x, y, sample_weight=w, batch_size=opts.batch_size, epochs=1,
                      validation_data=val, shuffle=True, verbose=verbose)
        rec = {k: float(v[-1]) for k, v in h.history.items()}
        rec.update(epoch=epoch + 1, lr=lr, seconds=round(time.perf_counter() - t0, 1),
                   data_seconds=round(t_data, 1))
        history.append(rec)
        improved = rec["val_loss"] < best - 1e-4
        if improved:
            best, best_weights, wait = rec["val_loss"], model.get_weights(), 0
        else:
            wait += 1
            if wait % 2 == 0:
                lr *= 0.5
        log(f"epoch {epoch + 1}/{opts.epochs}: loss {rec['loss']:.4f} val_loss "
            f"{rec['val_loss']:.4f}{' (best)' if improved else ''}  "
            + "  ".join(f"{k} {v:.4f}" for k, v in rec.items() if "acc" in k)
            + f"  [{rec['seconds']:.0f} s, {t_data:.0f} s of it waiting for data]")
        if wait >= opts.patience:
            log(f"early stop: no val_loss improvement for {opts.patience} epochs")
            break
        spent = (time.perf_counter() - t_start) / 60.0
        if opts.max_minutes is not None and epoch + 1 < opts.epochs and spent >= opts.max_minutes:
            log(f"time budget: {spent:.1f} min of fitting >= --max-minutes {opts.max_minutes:g}; "
                f"stopping after epoch {epoch + 1} with the best weights")
            break
    model.set_weights(best_weights)
    return history


def _resolve_tree(opts: TrainOptions, log: Log) -> Path:
    if opts.data is not None:
        return opts.data
    if not opts.synth:
        raise ValueError("give --data DIR or --synth N")
    root = opts.out / "data" / f"espeak-n{opts.synth}-s{opts.seed}"
    log(f"synthesising a Speech Commands tree ({opts.synth} clips per word, espeak-ng) in {root}")
    t0 = time.perf_counter()
    ensure_tree(root, opts.synth, seed=opts.seed)
    log(f"tree ready in {time.perf_counter() - t0:.0f} s")
    return root


def _sqrt_balanced(y: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.sqrt(counts.sum() / (n_classes * np.maximum(counts, 1)))
    return (w / w[y].mean())[y].astype(np.float32)


def train(opts: TrainOptions, log: Log = print) -> TrainResult:
    """Run one training job end to end; see the module docstring."""
    if opts.arch not in ARCHS:
        raise ValueError(f"unknown arch {opts.arch!r} (known: {', '.join(ARCHS)})")
    if opts.task not in TASKS:
        raise ValueError(f"unknown task {opts.task!r} (known: {', '.join(TASKS)})")
    if (opts.frontend == "embedding") != (opts.arch in A.HEAD_ARCHS):
        raise ValueError("--arch lr, dense and conv are heads for --frontend embedding, which "
                         "trains only them")
    if opts.task == "sounds" and opts.arch != "rnn":
        raise ValueError("the sounds task (per-frame multi-label events) needs --arch rnn")
    if opts.task != "sounds" and (opts.speech_tree or opts.speech_real):
        raise ValueError("--speech-tree / --speech-real are for --task sounds (a commands "
                         "model takes its words from --data and real speech from --negatives)")
    if (opts.music is not None or opts.channels > 0) and opts.arch != "rnn":
        raise ValueError("--music and --channels apply to the rnn's training streams")
    if opts.task == "sounds" and opts.data is not None and (opts.speech_tree or opts.speech_real
                                                            or opts.music):
        raise ValueError("--speech-tree / --speech-real / --music build sound streams: use "
                         "them with --synth N, not with --data")
    if not 0.0 <= opts.music_share <= 1.0:
        raise ValueError(f"--music-share must be in [0, 1], got {opts.music_share}")
    t_start = time.perf_counter()
    opts.out.mkdir(parents=True, exist_ok=True)
    keras = setup_tensorflow(opts.seed, opts.threads)
    if opts.frontend == "embedding":
        from hark.models.head_training import train_head

        result = train_head(opts, keras, log)
    elif opts.arch == "rnn":
        result = _train_frames(opts, keras, log)
    else:
        result = _train_clips(opts, keras, log)
    result.seconds = round(time.perf_counter() - t_start, 1)
    _finish(opts, result, log)
    return result


# ---- clip models -----------------------------------------------------------------------------
def _train_clips(opts: TrainOptions, keras: Any, log: Log) -> TrainResult:
    from hark.models.exporting import ExportRequest, export_model

    spec, sr = arch_frontend(opts.arch)
    voice = _voice_augment_on(opts)
    if voice and spec.kind == "raw":  # refused before any data is loaded
        raise ValueError(f"--freq-warp / --tilt-db act on spectra; {opts.arch} takes raw audio")
    tree = _resolve_tree(opts, log)
    data = load_clips(tree, sr, 1.0, seed=opts.seed)
    labels = data.labels
    tr, va = data.splits["train"], data.splits["validation"]
    log(f"clips: train {len(tr.y)}, validation {len(va.y)}, test {len(data.splits['test'].y)} "
        f"at {sr} Hz; labels {', '.join(labels)}")
    bank = tuple(n[: int(0.8 * n.size)] for n in data.noise)  # the training region only
    aug = augmenter(sr, bank)
    start = warm_start(opts, labels)
    norm = start.norm if start is not None else None
    if spec.kind != "raw" and start is None:
        first = clip_features(aug.batch(tr.audio, np.random.default_rng([opts.seed, 0])), spec, sr)
        norm = fit_normalization(first)
    val_audio = aug.batch(va.audio, np.random.default_rng([opts.seed, 99]))
    val_x = model_inputs(opts.arch, clip_features(val_audio, spec, sr, norm))
    weights = _sqrt_balanced(tr.y, len(labels))

    def make_train(epoch: int) -> tuple[Any, Any, Any]:
        rng = np.random.default_rng([opts.seed, 1, epoch])
        feats = clip_features(aug.batch(tr.audio, rng), spec, sr, norm)
        if voice:
            feats = voice_augment(feats, np.random.default_rng([opts.seed, 3, epoch]), norm,
                                  warp=opts.freq_warp, tilt_db=opts.tilt_db)
        return model_inputs(opts.arch, feats), tr.y, weights

    fixed: dict[str, Any] = {"n_samples": sr}
    if spec.kind != "raw":
        fixed.update(n_frames=n_frames_for(sr, spec, sr), n_bins=spec.n_bins(sr))
    cfg = make_config(opts.arch, _config_overrides(opts, start), **fixed)
    built = A.build(opts.arch, cfg, len(labels), seed=opts.seed)
    if start is not None:
        start.load_into(built.model, keras, log)
    built.model.compile(keras.optimizers.Adam(opts.learning_rate),
                        "sparse_categorical_crossentropy", metrics=["accuracy"])
    log(f"{opts.arch}: {built.model.count_params()} parameters; config {cfg}")
    history = fit(built.model, make_train, (val_x, va.y), opts, log)
    req = ExportRequest(
        name=opts.model_name,
        labels=labels,
        sample_rate=sr,
        frontend=spec,
        normalization=norm,
        ignore_labels=("_silence_", "_unknown_"),
        smoothing=replace_smoothing(DEFAULT_SMOOTHING, median_frames=3, min_on_ms=0.0,
                                    min_off_ms=100.0),
        vad=VadSpec(enabled=True),
        window_s=1.0,
        stride_s=0.1,
        provenance={**_provenance(opts, cfg, tree), **_voice_provenance(opts),
                    **_start_provenance(start)},
    )
    onnx_path = export_model(built, req, opts.out)
    log(f"exported {onnx_path}")
    evaluation = assess.clip_model(opts, onnx_path, tree, data, log)
    return TrainResult(onnx_path, history, evaluation, 0.0)


@dataclass(frozen=True)
class WarmStart:
    """A trained model to go on from (--init-from): its weights, normalisation and config.

    The features must be normalised as the weights learnt them, so the card's normalisation is
    kept rather than refitted, and the architecture is the card's (--set may only repeat it).
    """

    keras_path: Path
    norm: Any
    config: dict[str, Any]

    def load_into(self, model: Any, keras: Any, log: Log) -> None:
        """Copy the trained weights into the freshly built model (same shapes or an error)."""
        src = keras.models.load_model(self.keras_path, compile=False)
        want = [w.shape for w in model.get_weights()]
        got = [w.shape for w in src.get_weights()]
        if want != got:
            raise ValueError(f"--init-from {self.keras_path}: its weights do not fit this "
                             f"architecture ({len(got)} arrays, {len(want)} expected)")
        model.set_weights(src.get_weights())
        log(f"weights from {self.keras_path} (normalisation and config from its card)")


def warm_start(opts: TrainOptions, labels: tuple[str, ...]) -> WarmStart | None:
    """The --init-from model, checked against this run: same architecture, same labels."""
    if opts.init_from is None:
        return None
    from hark.live.card import CardError, load_card

    keras_path = opts.init_from.with_suffix(".keras")
    card_path = opts.init_from.with_suffix(".json")
    for f in (keras_path, card_path):
        if not f.is_file():
            raise FileNotFoundError(f"--init-from {opts.init_from}: no {f.name} beside it "
                                    "(hark train writes NAME.keras with NAME.onnx and NAME.json)")
    try:
        card = load_card(card_path)
    except CardError as e:
        raise ValueError(f"--init-from {card_path}: {e}") from None
    arch = card.provenance.get("arch")
    if arch != opts.arch:
        raise ValueError(f"--init-from {opts.init_from}: a {arch} model, not --arch {opts.arch}")
    if tuple(card.labels) != tuple(labels):
        raise ValueError(f"--init-from {opts.init_from}: labels {', '.join(card.labels)} differ "
                         f"from this data's {', '.join(labels)}")
    norm = card.normalization.get(card.inputs[0].frontend) if card.normalization else None
    config = dict(card.provenance.get("config") or {})
    clash = {k: v for k, v in opts.overrides.items()
             if k in config and _as_config(v) != _as_config(config[k])}
    if clash:
        raise ValueError(f"--init-from {opts.init_from}: --set {sorted(clash)} differ from the "
                         "trained model's architecture")
    return WarmStart(keras_path, norm, config)


def _as_config(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _config_overrides(opts: TrainOptions, start: WarmStart | None) -> dict[str, Any]:
    return {**start.config, **opts.overrides} if start is not None else opts.overrides


def _start_provenance(start: WarmStart | None) -> dict[str, Any]:
    return {"init_from": str(start.keras_path)} if start is not None else {}


def _voice_augment_on(opts: TrainOptions) -> bool:
    return opts.freq_warp > 0 or opts.tilt_db > 0


def _voice_provenance(opts: TrainOptions) -> dict[str, float]:
    """The voice augmentation in the card, only when it was on (older cards stay as they were)."""
    return {"freq_warp": opts.freq_warp, "tilt_db": opts.tilt_db} if _voice_augment_on(opts) \
        else {}


def replace_smoothing(spec: SmoothingSpec, **changes: Any) -> SmoothingSpec:
    """dataclasses.replace for a SmoothingSpec (named for readability at call sites)."""
    return dataclasses.replace(spec, **changes)


def _train_frames(opts: TrainOptions, keras: Any, log: Log) -> TrainResult:
    from hark.models.exporting import ExportRequest, export_model

    spec, sr = arch_frontend("rnn")
    multilabel = opts.task == "sounds"
    labels = SOUND_LABELS if multilabel else COMMAND_FRAME_LABELS
    delay = 0.0 if multilabel else opts.target_delay_ms / 1000.0
    tail = 0.0 if multilabel else opts.target_tail_ms / 1000.0
    at_onset = 0.0 if multilabel else opts.onset_crops
    tree: Path | None = None
    data = None
    if multilabel:
        if opts.data is not None:
            given = read_streams(opts.data)
            if len(given) < 3:
                raise ValueError(f"{opts.data}: need at least 3 wav+tsv streams")
            n_val = max(1, len(given) // 10)
            train_given, val_given = given[: -2 * n_val], given[-2 * n_val : -n_val]
            per_epoch = opts.streams_per_epoch or len(train_given)

            def train_streams(epoch: int) -> list[Any]:
                rng = np.random.default_rng([opts.seed, 1, epoch])
                return [train_given[i] for i in rng.permutation(len(train_given))[:per_epoch]]

            val_list = val_given
        else:
            per_epoch = opts.streams_per_epoch or (opts.synth or 400)
            sources, val_sources = _sound_sources(opts, sr, log)
            channel = _channel_augmenter(opts, sr, log)

            def train_streams(epoch: int) -> list[Any]:
                streams = sound_streams(per_epoch, seed=sub_seed(opts.seed, 1, epoch),
                                        sources=sources)
                return _through_channels(streams, channel, opts, epoch)

            val_list = sound_streams(opts.val_streams, seed=sub_seed(opts.seed, 2, 0),
                                     sources=val_sources)
    else:
        tree = _resolve_tree(opts, log)
        data = load_clips(tree, sr, 1.0, seed=opts.seed)
        labels = data.labels  # the tree's own words (words.txt) + _silence_, _unknown_
        pool = speech_pool(data, "train")
        val_pool = speech_pool(data, "validation")
        per_epoch = opts.streams_per_epoch or max(4, math.ceil(1.5 * len(pool) / 28))
        log(f"word pool: train {len(pool)} clips ({len(only_unknown(pool))} unknown), validation "
            f"{len(val_pool)}; {per_epoch} streams of 30 s per epoch")
        if opts.negatives is not None:
            pool = pool + _real_speech(opts, len(only_unknown(pool)), sr, log)
        channel = _channel_augmenter(opts, sr, log)
        music = _music(opts, sr, log)

        def train_streams(epoch: int) -> list[Any]:
            streams = speech_streams(pool, per_epoch, seed=sub_seed(opts.seed, 1, epoch))
            if music:
                rng = np.random.default_rng([opts.seed, 11, epoch])
                streams = [under_background(s, music, rng) if rng.random() < opts.music_share
                           else s for s in streams]
            return _through_channels(streams, channel, opts, epoch)

        n_val = max(2, opts.val_streams // 2)
        val_list = speech_streams(val_pool, n_val, seed=sub_seed(opts.seed, 2, 0))

    first = train_streams(0)
    start = warm_start(opts, labels)
    norm = start.norm if start is not None else fit_normalization(np.concatenate(
        stream_frames(first[:50], labels, multilabel, spec, sr).feats))
    val_set = stream_frames(val_list, labels, multilabel, spec, sr, norm, delay, tail_s=tail)
    val_x, val_y = crops(val_set, min(3000, max(len(f) for f in val_set.feats)),
                         np.random.default_rng(0), per_stream=1)

    def make_train(epoch: int) -> tuple[Any, Any, Any]:
        streams = first if epoch == 0 else train_streams(epoch)
        fs = stream_frames(streams, labels, multilabel, spec, sr, norm, delay, tail_s=tail)
        rng = np.random.default_rng([opts.seed, 3, epoch])
        x, y = crops(fs, opts.seq_frames, rng, at_onset=at_onset)
        if opts.spec_augment:
            x = spec_augment(x, rng, norm)
        if _voice_augment_on(opts):
            x = voice_augment(x, rng, norm, warp=opts.freq_warp, tilt_db=opts.tilt_db)
        return x, y, None

    cfg = make_config("rnn", _config_overrides(opts, start), n_bins=spec.n_bins(sr),
                      task=A.MULTILABEL if multilabel else A.MULTICLASS)
    built = A.build("rnn", cfg, len(labels), seed=opts.seed)
    if start is not None:
        start.load_into(built.model, keras, log)
    loss = "binary_crossentropy" if multilabel else "sparse_categorical_crossentropy"
    metric = keras.metrics.BinaryAccuracy(name="frame_acc") if multilabel else \
        keras.metrics.SparseCategoricalAccuracy(name="frame_acc")
    built.model.compile(keras.optimizers.Adam(opts.learning_rate), loss, metrics=[metric])
    log(f"rnn ({opts.task}): {built.model.count_params()} parameters; config {cfg}")
    history = fit(built.model, make_train, (val_x, val_y), opts, log)
    req = ExportRequest(
        name=opts.model_name,
        labels=labels,
        sample_rate=sr,
        frontend=spec,
        normalization=norm,
        ignore_labels=() if multilabel else ("_silence_", "_unknown_"),
        smoothing=DEFAULT_SMOOTHING,
        vad=VadSpec(enabled=not multilabel),
        provenance={**_provenance(opts, cfg, tree), "target_delay_ms": 1000 * delay,
                    "target_tail_ms": 1000 * tail, "onset_crops": at_onset,
                    "spec_augment": opts.spec_augment, **_voice_provenance(opts),
                    **_start_provenance(start)},
    )
    onnx_path = export_model(built, req, opts.out)
    log(f"exported {onnx_path}")
    if multilabel:
        evaluation = assess.sounds_model(opts, onnx_path, val_list, log)
    else:
        evaluation = assess.commands_model(opts, onnx_path, tree, data, log)  # type: ignore[arg-type]
    return TrainResult(onnx_path, history, evaluation, 0.0)


# ---- bookkeeping ---------------------------------------------------------------------------------
def _real_speech(opts: TrainOptions, n_unknown: int, sr: int, log: Log) -> list[Any]:
    """Pieces of real speech (opts.negatives) as _unknown_ words of the training pool."""
    from hark.models.data.real_speech import speech_pieces

    assert opts.negatives is not None
    n = max(1, round(opts.negative_share * n_unknown))
    try:
        pieces = speech_pieces(opts.negatives, sr, n, np.random.default_rng([opts.seed, 9]))
    except (FileNotFoundError, ValueError) as e:
        raise ValueError(f"--negatives: {e}") from None
    log(f"real speech: {len(pieces)} pieces of {opts.negatives} added as _unknown_ "
        f"({sum(p.size for p in pieces) / sr / 60:.1f} min)")
    return [(p, UNKNOWN) for p in pieces]


def _through_channels(streams: list[Any], channel: Any, opts: TrainOptions,
                      epoch: int) -> list[Any]:
    """opts.channels of the streams played through a room, microphone and channel."""
    if channel is None:
        return streams
    rng = np.random.default_rng([opts.seed, 10, epoch])
    return [Stream(channel(s.audio, rng), s.sample_rate, s.events)
            if rng.random() < opts.channels else s for s in streams]


def _music(opts: TrainOptions, sr: int, log: Log) -> list[np.ndarray]:
    """The --music background recordings, decoded once (empty without --music)."""
    if opts.music is None:
        return []
    from hark.models.data.real_speech import recordings

    try:
        music = recordings(opts.music, sr)
    except (FileNotFoundError, ValueError) as e:
        raise ValueError(f"--music: {e}") from None
    log(f"music: {len(music)} recordings of {opts.music} "
        f"({sum(m.size for m in music) / sr / 60:.1f} min) under {opts.music_share:.0%} of the "
        "training streams")
    return music


def _sound_sources(opts: TrainOptions, sr: int, log: Log) -> tuple[Any, Any]:
    """EventSources for training and validation sound streams (None, None: all synthesised)."""
    from hark.models.data.real_speech import speech_pieces
    from hark.models.data.sound_events import EventSources
    from hark.models.datasets import tree_speech

    music = _music(opts, sr, log)
    if opts.speech_tree is None and opts.speech_real is None and not music:
        return None, None
    made = []
    for i, split in enumerate(("train", "validation")):
        rng = np.random.default_rng([opts.seed, 12, i])
        n = opts.speech_clips if split == "train" else max(50, opts.speech_clips // 10)
        speech: list[np.ndarray] = []
        if opts.speech_tree is not None:
            speech += tree_speech(opts.speech_tree, split, n, sr, rng)
        if opts.speech_real is not None:
            try:
                speech += speech_pieces(opts.speech_real, sr, n // 2, rng)
            except (FileNotFoundError, ValueError) as e:
                raise ValueError(f"--speech-real: {e}") from None
        log(f"sound streams ({split}): {len(speech)} speech clips"
            f"{' of ' + str(opts.speech_tree) if opts.speech_tree else ''}"
            f"{' + real speech of ' + str(opts.speech_real) if opts.speech_real else ''}")
        made.append(EventSources(speech=tuple(speech), backgrounds=tuple(music),
                                 background_p=opts.music_share))
    return made[0], made[1]


def _channel_augmenter(opts: TrainOptions, sr: int, log: Log) -> Any:
    """Rooms, microphones and channels for opts.channels of the training streams (or None)."""
    if opts.channels <= 0:
        return None
    from hark.models.data.rooms import ChannelAugmenter, room_bank

    bank = room_bank(opts.rir_cache, sample_rate=sr)
    log(f"channels: {opts.channels:.0%} of the training streams through a room ({bank}), "
        "microphone and channel")
    return ChannelAugmenter(sr, bank)


def _provenance(opts: TrainOptions, cfg: Any, tree: Path | None) -> dict[str, Any]:
    if tree is not None:
        data = str(tree)
    else:
        data = f"streams in {opts.data}" if opts.data else f"synthetic streams ({opts.synth})"
    return {
        "trained_by": "hark train",
        "arch": opts.arch,
        "task": opts.task,
        "config": {k: list(v) if isinstance(v, tuple) else v
                   for k, v in dataclasses.asdict(cfg).items()},
        "seed": opts.seed,
        "data": data,
        "synth_per_word": opts.synth,
        "epochs_max": opts.epochs,
        **({"channels": opts.channels} if opts.channels > 0 else {}),
        **({"music": str(opts.music), "music_share": opts.music_share}
           if opts.music is not None else {}),
        **({"speech_tree": str(opts.speech_tree)} if opts.speech_tree is not None else {}),
        **({"speech_real": str(opts.speech_real)} if opts.speech_real is not None else {}),
        **({"speech_clips": opts.speech_clips} if opts.speech_tree or opts.speech_real else {}),
        **({"max_minutes": opts.max_minutes} if opts.max_minutes is not None else {}),
        **({"real_speech_negatives": str(opts.negatives), "negative_share": opts.negative_share}
           if opts.negatives is not None else {}),
    }


def _finish(opts: TrainOptions, result: TrainResult, log: Log) -> None:
    from hark.live.card import load_card
    from hark.models.reports import write_json

    card_path = result.onnx_path.with_suffix(".json")
    card = load_card(card_path)
    prov = dict(card.provenance)
    prov.update(train_seconds=result.seconds, epochs_run=len(result.history),
                best_val_loss=round(min(h["val_loss"] for h in result.history), 5))
    ev = dict(card.evaluation)
    ev.update(result.evaluation)
    dataclasses.replace(card, provenance=prov, evaluation=ev).save(card_path)
    write_json(opts.out / "report" / "history.json", {"history": result.history})
    write_json(opts.out / "report" / "summary.json",
               {"model": str(result.onnx_path), "train_seconds": result.seconds,
                "evaluation": ev, "command": " ".join(sys.argv)})
    size = result.onnx_path.stat().st_size
    log(f"done in {result.seconds:.0f} s: {result.onnx_path} ({size / 1e6:.2f} MB); "
        f"try: hark replay --model {result.onnx_path} FILE.wav")
