"""Rebuild a Keras model into the "twin" that tf2onnx converts, with the same Keras that loaded it.

Two rewrites, both weight-preserving where weights matter:
- `TimeDistributed(Dense)` (and other per-frame layers inside TimeDistributed) becomes the plain
  layer on the last axis: the same maths, while tf2onnx turns TimeDistributed over a variable time
  axis into a Loop that is wrong (T=1 crashes, batch 2 has the wrong shape, T=100 is off by 5e-2).
- every LSTM / GRU / SimpleRNN becomes a *stand-in* LSTM with the same units and marker weights.
  tf2onnx turns a plain LSTM into one native ONNX LSTM node; `export.onnx_rnn` then finds each
  stand-in node by its marker weights and puts the real node in its place, built from the
  original layer's weights (LSTM, GRU with either reset_after, SimpleRNN, any hard_sigmoid
  flavour), with the recurrent state wired to graph inputs/outputs for streaming models.
The twin's own outputs are meaningless where stand-ins sit; parity is always measured against
the original model.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hark.export.analysis import RNN_CLASSES, is_model, layer_kind
from hark.export.errors import ExportError, LayerError

# layers that act on the last axis alone: TimeDistributed(X) == X on (batch, T, ...)
_UNWRAP_TD = frozenset(
    {"Dense", "Activation", "Dropout", "ReLU", "LeakyReLU", "ELU", "Identity"}
)
_UNWRAP_TD_LAST_AXIS = frozenset({"Softmax", "BatchNormalization", "LayerNormalization"})


@dataclass
class RnnSite:
    """One recurrent layer of the original model and its stand-in in the twin."""

    layer: Any  # the original LSTM / GRU / SimpleRNN
    name: str  # unique: the layer name, or "bidirectional_name/forward|backward"
    get_standin: Callable[[], Any]
    marker: np.ndarray | None = None  # the stand-in's kernel, to find its ONNX node

    @property
    def kind(self) -> str:
        return layer_kind(self.layer)


@dataclass
class Twin:
    model: Any
    sites: list[RnnSite] = field(default_factory=list)
    rewrites: list[str] = field(default_factory=list)


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _attr(obj: Any, name: str) -> Callable[[], Any]:
    return lambda: getattr(obj, name)


def _td_unwrappable(layer: Any) -> bool:
    inner = layer.layer
    kind = layer_kind(inner)
    if kind in _UNWRAP_TD:
        return True
    if kind in _UNWRAP_TD_LAST_AXIS:
        axis = inner.get_config().get("axis", -1)
        if isinstance(axis, list | tuple):
            axis = axis[0] if len(axis) == 1 else None
        return axis == -1
    return False


def _standin(K: Any, layer: Any, name: str) -> Any:
    kind = layer_kind(layer)
    if layer.return_state and kind != "LSTM":
        raise LayerError(f"layer {layer.name!r} ({kind}): return_state=True is not supported")
    return K.layers.LSTM(
        layer.units,
        return_sequences=layer.return_sequences,
        return_state=layer.return_state,
        go_backwards=layer.go_backwards,
        name=name,
    )


def build_twin(K: Any, model: Any) -> Twin:
    """Clone `model` with the rewrites above; copy every other layer's weights."""
    twin = Twin(model=None)
    copies: list[tuple[Any, Any]] = []  # (original, clone): weights to copy

    def clone(layer: Any) -> Any:
        kind = layer_kind(layer)
        if is_model(layer):
            return _clone_model(K, layer, clone)
        if kind in RNN_CLASSES:
            new = _standin(K, layer, layer.name)
            twin.sites.append(RnnSite(layer, layer.name, _constant(new)))
            return new
        if kind == "Bidirectional":
            fwd, bwd = layer.forward_layer, layer.backward_layer
            if layer_kind(fwd) not in RNN_CLASSES or layer_kind(bwd) not in RNN_CLASSES:
                raise LayerError(f"layer {layer.name!r}: Bidirectional of an unsupported layer")
            new = K.layers.Bidirectional(
                _standin(K, fwd, "forward_" + fwd.name),
                backward_layer=_standin(K, bwd, "backward_" + bwd.name),
                merge_mode=layer.merge_mode,
                name=layer.name,
            )
            # Bidirectional may re-create the layers it is given: read them back after the clone
            twin.sites.append(RnnSite(fwd, f"{layer.name}/forward", _attr(new, "forward_layer")))
            twin.sites.append(RnnSite(bwd, f"{layer.name}/backward", _attr(new, "backward_layer")))
            return new
        if kind == "TimeDistributed" and _td_unwrappable(layer):
            inner = layer.layer
            new = inner.__class__.from_config(inner.get_config())
            copies.append((layer, new))
            kind = layer_kind(inner)
            twin.rewrites.append(
                f"TimeDistributed({kind}) {layer.name!r} -> {kind} on the last axis"
            )
            return new
        new = layer.__class__.from_config(layer.get_config())
        copies.append((layer, new))
        return new

    try:
        twin.model = _clone_model(K, model, clone)
    except ExportError:
        raise
    except Exception as e:
        from hark.export.loading import load_error_cause

        raise ExportError(
            f"could not rebuild the model for conversion: {load_error_cause(e)}"
        ) from None
    if isinstance(twin.model, K.Sequential):
        # tf2onnx reads output_names, which a Keras 3 Sequential names after a tensor
        twin.model = K.Model(twin.model.inputs, twin.model.outputs, name=twin.model.name)
    for orig, new in copies:
        try:
            new.set_weights(orig.get_weights())
        except ValueError as e:
            raise LayerError(f"layer {orig.name!r}: could not copy its weights: {e}") from None
    for i, site in enumerate(twin.sites):
        standin = site.get_standin()
        rng = np.random.default_rng(1000 + i)
        weights = [rng.standard_normal(w.shape).astype(np.float32) for w in standin.get_weights()]
        standin.set_weights(weights)
        site.marker = weights[0]
    if twin.sites:
        twin.rewrites.append(
            "recurrent layers "
            + ", ".join(f"{s.name!r} ({s.kind})" for s in twin.sites)
            + " -> native ONNX nodes built from their weights"
        )
    return twin


def _call_accepted(layer: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a cloned layer with only the keyword arguments its call() takes.

    A replacement layer may not take what the original did (Dense has no `mask`).
    """
    params = inspect.signature(layer.call).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return layer(*args, **kwargs)


def _clone_model(K: Any, model: Any, clone: Callable[[Any], Any]) -> Any:
    kwargs: dict[str, Any] = {"clone_function": clone}
    if K.__name__ == "keras":
        kwargs["recursive"] = False  # nested models go through `clone` (and so the rewrites)
        if not isinstance(model, K.Sequential):
            kwargs["call_function"] = _call_accepted
    return K.models.clone_model(model, **kwargs)
