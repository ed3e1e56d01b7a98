"""The seed architectures as Keras builders, each from a small documented config.

| arch       | input                          | kind   | seed                                      |
|------------|--------------------------------|--------|-------------------------------------------|
| cnn        | 8 kHz log-spectrogram (99, 81) | window | Kaggle "light-weight CNN" (LB 0.74)       |
| rnn        | log-mel frames (None, 40)      | frames | per-frame LSTM/GRU event roll (causal)    |
| wave1d     | raw 16 kHz waveform (16000,)   | window | 1-D CNN study: Conv1D(5) + pool, DO 0.75  |
| fusion     | log-mel window (98, 40) twice  | window | CNN branch + LSTM branch + decision layer |
| wavception | raw 16 kHz waveform (16000,)   | window | WavCeption: 1-D Inception modules (small) |

Per-frame heads are a plain Dense on the last axis, never TimeDistributed (NOTES: tf2onnx turns a
TimeDistributed Dense over a dynamic time axis into a Loop that computes wrong answers).
Keras is imported inside the builders, so importing this module costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MULTICLASS = "multiclass"
MULTILABEL = "multilabel"


@dataclass(frozen=True)
class CnnConfig:
    """(a) The Kaggle light-weight 2-D CNN on the 8 kHz log-spectrogram.

    BN -> Conv(f0, k2) x2 -> pool -> Conv(f1, k3) x2 -> pool -> Conv(f2, k3) -> pool -> Dense + BN
    -> Dense + BN -> softmax, dropout after each pooling stage.
    """

    n_frames: int = 99
    n_bins: int = 81
    filters: tuple[int, int, int] = (8, 16, 32)
    dense_units: int = 128
    dropout: float = 0.2


@dataclass(frozen=True)
class RnnConfig:
    """(b) The per-frame recurrent event-roll model: posteriors for every 10 ms frame.

    Causal by construction (unidirectional recurrent layers, per-frame Dense layers), so it
    streams one frame at a time with its state carried. cell: "lstm" (native ONNX LSTM) or "gru"
    (Keras 3 GRU converts to a slower ONNX Loop, see NOTES). task: multiclass (softmax, one label
    per frame incl. background) or multilabel (independent sigmoids, overlapping events).
    """

    n_bins: int = 40
    cell: str = "lstm"
    input_dense: int = 64
    units: tuple[int, ...] = (96, 64)
    dropout: float = 0.1
    task: str = MULTICLASS


@dataclass(frozen=True)
class Wave1dConfig:
    """(c) 1-D CNN on the raw waveform: blocks of Conv1D(kernel 5, He init) + ReLU + MaxPool.

    channels[i] is block i's width (8 blocks: 16000 samples pooled by 4, 4, then 2s). The input is
    normalised per clip (zero mean, unit variance over the window) so the level does not matter.
    """

    n_samples: int = 16000
    kernel: int = 5
    channels: tuple[int, ...] = (16, 16, 32, 32, 64, 64, 128, 128)
    pools: tuple[int, ...] = (4, 4, 2, 2, 2, 2, 2, 2)
    dense_units: int = 128
    dropout: float = 0.75


@dataclass(frozen=True)
class FusionConfig:
    """(d) CNN + LSTM fusion on one log-mel window (both branches see the same frames).

    The spectrogram branch (Conv2D stack) and the frame branch (LSTM over the window's frames)
    each end in a Dense embedding; a final decision layer (Dense + softmax) sees both.
    """

    n_frames: int = 98
    n_bins: int = 40
    conv_filters: tuple[int, ...] = (16, 32, 64)
    lstm_units: int = 64
    embed_units: int = 64
    dropout: float = 0.3


@dataclass(frozen=True)
class WavceptionConfig:
    """(e) A small WavCeption: 1-D Inception modules (1/3/5/7 convs + max/avg pool branches).

    A strided stem shortens the waveform, then `stages` modules each followed by MaxPool(pool);
    module widths grow with `depths`. Global average pooling, Dense + BN, softmax.
    """

    n_samples: int = 16000
    stem_filters: int = 16
    stem_stride: int = 4
    depths: tuple[int, ...] = (1, 1, 2, 2, 3)
    pool: int = 4
    dense_units: int = 64
    dropout: float = 0.3


@dataclass(frozen=True)
class HeadConfig:
    """(f) A small head over the last n_frames speech embeddings (the frozen backbone's 96-dim).

    kind lr: Flatten -> softmax (logistic regression); dense: Flatten -> Dense(hidden, relu) ->
    softmax; conv: Conv1D(hidden, 3) x2 over embedding time -> global max -> softmax. Dropout
    before each Dense. Trained in minutes: the backbone is computed once per clip, not per epoch.
    """

    n_frames: int = 8
    n_bins: int = 96
    kind: str = "dense"
    hidden: int = 128
    dropout: float = 0.3
    l2: float = 1e-4


HEAD_ARCHS = ("lr", "dense", "conv")
ARCH_CONFIGS: dict[str, type] = {
    "cnn": CnnConfig,
    "rnn": RnnConfig,
    "wave1d": Wave1dConfig,
    "fusion": FusionConfig,
    "wavception": WavceptionConfig,
    **{name: HeadConfig for name in HEAD_ARCHS},
}


@dataclass(frozen=True)
class BuiltModel:
    """A Keras model plus what the trainer and exporter need to know about it."""

    model: Any
    arch: str
    task: str
    per_frame: bool
    input_names: tuple[str, ...]
    config: Any = field(repr=False, default=None)


def _keras() -> Any:
    import keras

    return keras


def build(arch: str, config: Any, n_classes: int, seed: int = 0) -> BuiltModel:
    """Build `arch` from its config with `n_classes` outputs; weights are seeded by `seed`."""
    keras = _keras()
    keras.utils.set_random_seed(seed)
    builders: dict[str, Any] = {
        "cnn": build_cnn,
        "rnn": build_rnn,
        "wave1d": build_wave1d,
        "fusion": build_fusion,
        "wavception": build_wavception,
        **{name: build_head for name in HEAD_ARCHS},
    }
    if arch not in builders:
        raise ValueError(f"unknown arch {arch!r} (known: {', '.join(builders)})")
    model = builders[arch](config, n_classes)
    task = config.task if arch == "rnn" else MULTICLASS
    names = tuple(t.name.split(":")[0] for t in model.inputs)
    return BuiltModel(model, arch, task, arch == "rnn", names, config)


def build_cnn(cfg: CnnConfig, n_classes: int) -> Any:
    """The Kaggle kernel's model, layer for layer (its binary_crossentropy loss is not kept)."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input((cfg.n_frames, cfg.n_bins, 1), name="spec")
    x = L.BatchNormalization()(inp)
    f0, f1, f2 = cfg.filters
    x = L.Conv2D(f0, 2, activation="relu")(x)
    x = L.Conv2D(f0, 2, activation="relu")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.Dropout(cfg.dropout)(x)
    x = L.Conv2D(f1, 3, activation="relu")(x)
    x = L.Conv2D(f1, 3, activation="relu")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.Dropout(cfg.dropout)(x)
    x = L.Conv2D(f2, 3, activation="relu")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.Dropout(cfg.dropout)(x)
    x = L.Flatten()(x)
    x = L.BatchNormalization()(L.Dense(cfg.dense_units, activation="relu")(x))
    x = L.BatchNormalization()(L.Dense(cfg.dense_units, activation="relu")(x))
    out = L.Dense(n_classes, activation="softmax", name="posteriors")(x)
    return keras.Model(inp, out, name="cnn")


def _recurrent(cell: str) -> Any:
    keras = _keras()
    if cell == "lstm":
        return keras.layers.LSTM
    if cell == "gru":
        return keras.layers.GRU
    raise ValueError(f"unknown recurrent cell {cell!r} (lstm or gru)")


def build_head(cfg: HeadConfig, n_classes: int) -> Any:
    """Embeddings (batch, n_frames, 96) -> softmax over the classes (a window model)."""
    keras = _keras()
    L = keras.layers
    reg = keras.regularizers.l2(cfg.l2) if cfg.l2 else None
    inp = keras.Input((cfg.n_frames, cfg.n_bins), name="embeddings")
    x = inp
    if cfg.kind == "conv":
        for i in range(2):
            x = L.Conv1D(cfg.hidden, 3, padding="same", activation="relu",
                         kernel_regularizer=reg, name=f"conv{i}")(x)
        x = L.GlobalMaxPooling1D(name="pool")(x)
    else:
        x = L.Flatten(name="flatten")(x)
        if cfg.kind == "dense":
            x = L.Dropout(cfg.dropout)(x)
            x = L.Dense(cfg.hidden, activation="relu", kernel_regularizer=reg, name="dense")(x)
        elif cfg.kind != "lr":
            raise ValueError(f"unknown head kind {cfg.kind!r} (lr, dense or conv)")
    x = L.Dropout(cfg.dropout)(x)
    out = L.Dense(n_classes, activation="softmax", kernel_regularizer=reg, name="posteriors")(x)
    return keras.Model(inp, out, name=f"head_{cfg.kind}")


def build_rnn(cfg: RnnConfig, n_classes: int) -> Any:
    """Frames (batch, T, bins) -> posteriors (batch, T, classes); every layer is causal."""
    keras = _keras()
    L = keras.layers
    if cfg.task not in (MULTICLASS, MULTILABEL):
        raise ValueError(f"unknown task {cfg.task!r}")
    inp = keras.Input((None, cfg.n_bins), name="frames")
    x = inp
    if cfg.input_dense:
        x = L.Dense(cfg.input_dense, activation="relu", name="frame_dense")(x)
    rnn = _recurrent(cfg.cell)
    for i, units in enumerate(cfg.units):
        x = rnn(units, return_sequences=True, name=f"rnn{i}")(x)
        if cfg.dropout:
            x = L.Dropout(cfg.dropout)(x)
    act = "softmax" if cfg.task == MULTICLASS else "sigmoid"
    out = L.Dense(n_classes, activation=act, name="posteriors")(x)  # plain Dense on the last axis
    return keras.Model(inp, out, name="rnn")


def _norm_wave(x: Any) -> Any:
    """Per-window standardisation of a (batch, samples, 1) waveform (level-independent input)."""
    keras = _keras()
    return keras.layers.LayerNormalization(
        axis=(1, 2), center=False, scale=False, epsilon=1e-6, name="wave_norm"
    )(x)


def build_wave1d(cfg: Wave1dConfig, n_classes: int) -> Any:
    """Stacked Conv1D(kernel 5, He init) + MaxPool blocks, Dropout 0.75, Dense head."""
    keras = _keras()
    L = keras.layers
    if len(cfg.channels) != len(cfg.pools):
        raise ValueError("channels and pools must have one entry per block")
    inp = keras.Input((cfg.n_samples, 1), name="wave")
    x = _norm_wave(inp)
    for ch, pool in zip(cfg.channels, cfg.pools, strict=True):
        x = L.Conv1D(ch, cfg.kernel, padding="same", activation="relu",
                     kernel_initializer="he_normal")(x)
        x = L.MaxPooling1D(pool)(x)
    x = L.Flatten()(x)
    x = L.Dropout(cfg.dropout)(x)
    x = L.Dense(cfg.dense_units, activation="relu", kernel_initializer="he_normal")(x)
    x = L.Dropout(cfg.dropout)(x)
    out = L.Dense(n_classes, activation="softmax", name="posteriors")(x)
    return keras.Model(inp, out, name="wave1d")


def build_fusion(cfg: FusionConfig, n_classes: int) -> Any:
    """Spectrogram CNN branch + frame LSTM branch, concatenated into a decision layer."""
    keras = _keras()
    L = keras.layers
    img = keras.Input((cfg.n_frames, cfg.n_bins, 1), name="melwin")
    seq = keras.Input((cfg.n_frames, cfg.n_bins), name="melseq")
    x = img
    for f in cfg.conv_filters:
        x = L.Conv2D(f, 3, padding="same", activation="relu")(x)
        x = L.BatchNormalization()(x)
        x = L.MaxPooling2D(2)(x)
    x = L.GlobalAveragePooling2D()(x)
    cnn_embed = L.Dense(cfg.embed_units, activation="relu", name="cnn_embed")(x)
    y = L.LSTM(cfg.lstm_units, name="lstm")(seq)
    lstm_embed = L.Dense(cfg.embed_units, activation="relu", name="lstm_embed")(y)
    z = L.Concatenate()([cnn_embed, lstm_embed])
    z = L.Dropout(cfg.dropout)(z)
    z = L.Dense(cfg.embed_units, activation="relu", name="decision")(z)
    out = L.Dense(n_classes, activation="softmax", name="posteriors")(z)
    return keras.Model([img, seq], out, name="fusion")


def _inception(x: Any, depth: int, name: str) -> Any:
    """One Inception-1D module (the kernel's eight branches, widths scaled by depth)."""
    keras = _keras()
    L = keras.layers

    def conv(t: Any, filters: int, k: int, tag: str) -> Any:
        t = L.Conv1D(filters, k, padding="same", use_bias=False, name=f"{name}_{tag}")(t)
        t = L.BatchNormalization(name=f"{name}_{tag}_bn")(t)
        return L.Activation("relu")(t)

    x = L.BatchNormalization(name=f"{name}_in_bn")(x)
    branches = [conv(x, 8 * depth, 1, "c1")]
    for k in (3, 5, 7):
        branches.append(conv(conv(x, 8, 1, f"r{k}"), 16 * depth, k, f"c{k}"))
    for pool, size in ((L.MaxPooling1D, 3), (L.MaxPooling1D, 5), (L.AveragePooling1D, 3),
                       (L.AveragePooling1D, 5)):
        tag = f"{'max' if pool is L.MaxPooling1D else 'avg'}{size}"
        p = pool(size, strides=1, padding="same")(x)
        branches.append(conv(p, 8, 1, tag))
    return L.Concatenate(name=f"{name}_cat")(branches)


def build_wavception(cfg: WavceptionConfig, n_classes: int) -> Any:
    """Strided stem, Inception-1D modules with max pooling between, GAP, Dense head."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input((cfg.n_samples, 1), name="wave")
    x = _norm_wave(inp)
    x = L.Conv1D(cfg.stem_filters, 9, strides=cfg.stem_stride, padding="same",
                 activation="relu", name="stem")(x)
    x = L.MaxPooling1D(cfg.pool)(x)
    for i, depth in enumerate(cfg.depths):
        x = _inception(x, depth, f"inc{i}")
        x = L.MaxPooling1D(cfg.pool if i < 2 else 2)(x)
    x = L.GlobalAveragePooling1D()(x)
    x = L.BatchNormalization()(x)
    x = L.Dense(cfg.dense_units, activation="relu")(x)
    x = L.Dropout(cfg.dropout)(x)
    out = L.Dense(n_classes, activation="softmax", name="posteriors")(x)
    return keras.Model(inp, out, name="wavception")
