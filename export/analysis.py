"""What a loaded Keras model is: inputs, roles, output, final activation, recurrent layers.

Also whether a per-frame model can run causally (one frame at a time).

Works on Keras 3 and tf_keras models alike (layers are told apart by class name).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hark.export.errors import ExportError, LayerError

RNN_CLASSES = ("LSTM", "GRU", "SimpleRNN")
KAPRE_NAMES = ("STFT", "Magnitude", "ApplyFilterbank", "MagnitudeToDecibel")

# Layers that act on each frame on its own (the last axis), at inference time.
_PER_FRAME = frozenset(
    {
        "InputLayer", "Dense", "Activation", "Dropout", "GaussianNoise", "GaussianDropout",
        "AlphaDropout", "SpatialDropout1D", "ReLU", "LeakyReLU", "PReLU", "ELU",
        "ThresholdedReLU", "Identity", "Add", "Subtract", "Multiply", "Average", "Maximum",
        "Minimum", "ActivityRegularization", "Rescaling", "UnitNormalization",
    }
)
# Layers that are per-frame when they work on the last axis.
_LAST_AXIS = frozenset(
    {"BatchNormalization", "LayerNormalization", "Softmax", "Concatenate", "Normalization"}
)


@dataclass(frozen=True)
class KerasInput:
    """One Keras model input: its name, shape (no batch axis) and role.

    role is "frames" for a sequence fed as it arrives, "window" for any fixed shape until the
    frontend is known (export.layout then reads it), and "raw" once a raw frontend feeds it.
    """

    name: str
    shape: tuple[int | None, ...]
    role: str  # frames | window | raw

    @property
    def bins(self) -> int | None:
        """Feature width of a frames input."""
        return self.shape[-1] if self.role == "frames" else None

    @property
    def length(self) -> int | None:
        """Frames (frames role) or samples (raw); None for a variable time axis."""
        return self.shape[0]

    def describe(self) -> str:
        return f"{self.name!r} {tuple(self.shape)}"


def layer_kind(layer: Any) -> str:
    return type(layer).__name__


def is_model(layer: Any) -> bool:
    return hasattr(layer, "layers") and hasattr(layer, "inputs") and hasattr(layer, "outputs")


def walk_layers(model: Any) -> Iterator[Any]:
    """Every layer, nested models opened (InputLayers included)."""
    for layer in model.layers:
        if is_model(layer):
            yield from walk_layers(layer)
        else:
            yield layer


def input_role(shape: tuple[int | None, ...], name: str, out_rank: int = 2) -> str:
    """Frames for (None, F), or (1, F) when the model outputs (batch, T, classes); else window.

    A fixed shape is read against its frontend later (export.layout): raw samples, frames x
    bins, bins x frames, flattened, pooled.
    """
    where = f"Keras input {name!r} with shape {tuple(shape)}"
    if len(shape) == 2 and shape[0] is None:
        if shape[1] is None:
            raise ExportError(f"{where}: the feature axis must have a fixed size")
        return "frames"
    if len(shape) == 2 and shape[0] == 1 and out_rank == 3:
        return "frames"
    if any(d is None for d in shape):
        raise ExportError(
            f"{where}: only a (None, bins) sequence input may have a variable axis; a window "
            "input needs a fixed shape"
        )
    if not 1 <= len(shape) <= 3:
        raise ExportError(f"{where}: hark feeds inputs of rank 1 to 3 (no batch axis)")
    return "window"


def model_inputs(model: Any) -> list[KerasInput]:
    out_rank = len(model.outputs[0].shape) if len(model.outputs) == 1 else 2
    out = []
    for t in model.inputs:
        name = t._keras_history[0].name
        shape = tuple(None if d is None else int(d) for d in tuple(t.shape)[1:])
        out.append(KerasInput(name, shape, input_role(shape, name, out_rank)))
    return out


def output_shape(model: Any) -> tuple[int | None, ...]:
    if len(model.outputs) != 1:
        raise ExportError(
            f"the model has {len(model.outputs)} outputs: hark needs one posterior output"
        )
    return tuple(None if d is None else int(d) for d in tuple(model.outputs[0].shape))


def output_layer(model: Any) -> Any:
    layer = model.outputs[0]._keras_history[0]
    while is_model(layer):
        layer = layer.outputs[0]._keras_history[0]
    return layer


def final_activation(model: Any) -> tuple[str, str]:
    """(layer name, activation name) of the layer that produces the output."""
    layer = output_layer(model)
    inner = getattr(layer, "layer", None) if layer_kind(layer) in ("TimeDistributed",) else None
    target = inner if inner is not None else layer
    kind = layer_kind(target)
    if kind == "Softmax":
        return layer.name, "softmax"
    act = target.get_config().get("activation") if hasattr(target, "get_config") else None
    if isinstance(act, dict):  # a serialised function object
        act = act.get("config", act.get("class_name"))
    return layer.name, str(act) if act is not None else "linear"


def task_from_activation(activation: str) -> str | None:
    return {"softmax": "multiclass", "sigmoid": "multilabel"}.get(activation)


def activation_name(layer: Any, attr: str) -> str:
    value = layer.get_config().get(attr)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        inner = value.get("config")
        if isinstance(inner, str):
            return inner
    raise LayerError(
        f"layer {layer.name!r} ({layer_kind(layer)}): {attr} {value!r} is not a built-in Keras "
        "activation, so it has no ONNX RNN equivalent"
    )


def rnn_layers(model: Any) -> list[Any]:
    """Recurrent layers (LSTM/GRU/SimpleRNN), those inside Bidirectional included."""
    found = []
    for layer in walk_layers(model):
        kind = layer_kind(layer)
        if kind in RNN_CLASSES:
            found.append(layer)
        elif kind == "Bidirectional":
            found += [layer.forward_layer, layer.backward_layer]
        elif kind == "TimeDistributed" and layer_kind(layer.layer) in RNN_CLASSES + (
            "Bidirectional",
        ):
            raise LayerError(
                f"layer {layer.name!r}: a recurrent layer inside TimeDistributed is not supported"
            )
        elif kind == "RNN" or kind.endswith("RNN") or kind in ("ConvLSTM1D", "ConvLSTM2D"):
            raise LayerError(
                f"layer {layer.name!r} ({kind}): only LSTM, GRU and SimpleRNN convert to native "
                "ONNX recurrent nodes"
            )
    return found


def _axis_is_last(layer: Any) -> bool:
    cfg = layer.get_config()
    axis = cfg.get("axis", -1)
    if isinstance(axis, list | tuple):
        axis = axis[0] if len(axis) == 1 else None
    return axis in (-1, 2)


def check_causal(model: Any) -> None:
    """Raise LayerError naming the first layer that mixes frames (a frames model must stream)."""
    for layer in walk_layers(model):
        kind = layer_kind(layer)
        why = _why_not_causal(layer, kind)
        if why:
            raise LayerError(f"layer {layer.name!r} ({kind}) cannot stream: {why}")


def _why_not_causal(layer: Any, kind: str) -> str | None:
    if kind in _PER_FRAME or kind == "TimeDistributed":
        return None  # TimeDistributed applies its layer to each frame on its own
    if kind in _LAST_AXIS:
        return None if _axis_is_last(layer) else "it works across the time axis"
    if kind == "Bidirectional":
        return "a Bidirectional RNN reads the sequence backwards, so it cannot run causally"
    if kind in RNN_CLASSES:
        if layer.go_backwards:
            return "go_backwards=True reads the sequence backwards, so it cannot run causally"
        if not layer.return_sequences:
            return (
                "return_sequences=False gives one vector per sequence; a per-frame model needs "
                "return_sequences=True"
            )
        if layer.return_state:
            return "return_state=True is not supported inside a streaming model"
        return None
    if kind in ("Conv1D", "SeparableConv1D", "DepthwiseConv1D"):
        cfg = layer.get_config()
        k = cfg.get("kernel_size", (1,))
        k = k[0] if isinstance(k, list | tuple) else k
        s = cfg.get("strides", (1,))
        s = s[0] if isinstance(s, list | tuple) else s
        if k == 1 and s == 1:
            return None
        if s != 1:
            return f"strides={s} changes the frame rate"
        pad = cfg.get("padding")
        if pad == "causal":
            return (
                f"a causal Conv1D with kernel_size={k} needs a buffer of past frames, which hark "
                "cannot carry as state yet"
            )
        if pad == "same":
            return f"padding='same' with kernel_size={k} mixes future frames into each output"
        return f"padding='{pad}' with kernel_size={k} uses frames after the output frame"
    if "Pooling" in kind or kind in ("Flatten", "Reshape", "Permute", "RepeatVector"):
        return "it mixes or reshapes frames across the time axis"
    if "Attention" in kind:
        return "attention looks at the whole sequence"
    return "it is not known to work on each frame on its own"


def _consumers(model: Any) -> dict[str, list[tuple[str, str]]]:
    """Layer name -> [(consumer name, consumer class)], from the model config (both Kerases)."""
    import json

    cfg = model.get_config()
    layers = cfg.get("layers", [])
    out: dict[str, list[tuple[str, str]]] = {}
    if not any("inbound_nodes" in lc for lc in layers):  # Sequential: a chain
        names = [(lc.get("config", {}).get("name", ""), lc.get("class_name", "")) for lc in layers]
        for (a, _), b in zip(names, names[1:], strict=False):
            out.setdefault(a, []).append(b)
        return out
    for lc in layers:
        inbound = json.dumps(lc.get("inbound_nodes", []))
        me = (lc.get("name") or lc.get("config", {}).get("name", ""), lc.get("class_name", ""))
        for other in layers:
            name = other.get("name") or other.get("config", {}).get("name", "")
            if name and f'"{name}"' in inbound:
                out.setdefault(name, []).append(me)
    return out


def frontend_layers(model: Any) -> list[str]:
    """The kapre layers inside the model (the frontend is in the graph), checked for use hark knows.

    hark's stand-in STFT carries (real, imaginary) on an extra axis that only Magnitude reads.
    """
    found = [layer for layer in walk_layers(model) if layer_kind(layer) in KAPRE_NAMES]
    if not found:
        return []
    consumers = _consumers(model)
    out = []
    for layer in found:
        if layer_kind(layer) == "STFT":
            bad = [(n, k) for n, k in consumers.get(layer.name, []) if k != "Magnitude"]
            if bad:
                raise LayerError(
                    f"layer {bad[0][0]!r} ({bad[0][1]}) reads the complex output of kapre STFT "
                    f"{layer.name!r}: hark's kapre layers support STFT -> Magnitude only (ONNX "
                    "has no complex tensors)"
                )
            cfg = layer.get_config()
            out.append(f"kapre STFT(n_fft {cfg['n_fft']}, win {cfg['win_length']}, hop "
                       f"{cfg['hop_length']}, pad_end {cfg['pad_end']})")
        elif layer_kind(layer) == "ApplyFilterbank":
            kw = layer.get_config()["filterbank_kwargs"]
            out.append(f"kapre ApplyFilterbank(mel {kw.get('n_mels')}, htk {kw.get('htk')}, "
                       f"norm {kw.get('norm')})")
        elif layer_kind(layer) == "MagnitudeToDecibel":
            cfg = layer.get_config()
            out.append(f"kapre MagnitudeToDecibel(amin {cfg['amin']}, dynamic_range "
                       f"{cfg['dynamic_range']})")
        else:
            out.append(f"kapre {layer_kind(layer)}")
    return out
