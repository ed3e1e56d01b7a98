"""`convert`: a Keras model file -> NAME.onnx + NAME.json (the model card), verified.

Steps: load with the Keras that wrote the file (export.loading) -> inspect inputs, roles, output
and causality (export.analysis) -> plan the card's frontends (export.modelcard) -> rebuild the
twin (export.rewrite) -> tf2onnx, in process -> native recurrent nodes and streaming state
(export.onnx_edit) -> parity against the original Keras model (export.parity) -> write the card
and the graph -> optionally an int8 twin (export.quantize).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import platform
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hark.export import analysis, heads, modelcard
from hark.export.errors import ExportError, FrontendMismatchError, LayerError
from hark.export.loading import LoadedModel, load, require_toolchain
from hark.export.presets import FrontendChoice
from hark.live.card import InputSpec, ModelCard, SmoothingSpec, StateSpec, VadSpec

DEFAULT_TOLERANCE = 1e-4
DEFAULT_OPSET = 17
OUTPUT_NAME = "posteriors"


@dataclass
class ExportResult:
    """What `convert` wrote and measured."""

    onnx_path: Path
    card_path: Path
    card: ModelCard
    parity: dict[str, Any]
    op_types: tuple[str, ...]
    onnx_bytes: int
    source_bytes: int
    input_names: dict[str, str]  # Keras input name -> ONNX input name
    rewrites: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    quantization: dict[str, Any] | None = None
    int8_onnx_path: Path | None = None
    int8_card_path: Path | None = None
    evaluation: dict[str, Any] = field(default_factory=dict)
    streaming_split: Any = None  # the card's StreamingSplit for a window model (None: not tried)
    seconds: float = 0.0

    @property
    def max_abs_diff(self) -> float:
        return float(self.parity["max_abs_diff"])


def _hark_version() -> str:
    try:
        from importlib.metadata import version

        return version("hark")
    except Exception:
        return "unknown"


class _TfOnnxErrors(logging.Handler):
    """Collects tf2onnx's "op is not supported" complaints to name the layer behind them."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _to_onnx(twin_model: Any, inputs: Sequence[analysis.KerasInput], opset: int) -> Any:
    import tensorflow as tf
    import tf2onnx

    sig = []
    for inp in inputs:
        shape: tuple[int | None, ...] = (None, *inp.shape)
        sig.append(tf.TensorSpec(shape, tf.float32, name=inp.name))
    catcher = _TfOnnxErrors()
    log = logging.getLogger("tf2onnx")
    log.addHandler(catcher)
    try:
        proto, _ = tf2onnx.convert.from_keras(twin_model, input_signature=sig, opset=opset)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise ExportError(f"tf2onnx could not convert the model: {first}") from None
    finally:
        log.removeHandler(catcher)
    unsupported = [m for m in catcher.messages if "not supported" in m or "Failed to convert" in m]
    if unsupported:
        raise LayerError(_unsupported_message(unsupported[0], twin_model))
    return proto


def _unsupported_message(message: str, model: Any) -> str:
    names = sorted({layer.name for layer in analysis.walk_layers(model)}, key=len, reverse=True)
    m = re.search(r"op \[(?P<node>[^:\]]+): (?P<op>[^\]]+)\]", message)
    node = m.group("node") if m else message
    layer = next((n for n in names if re.search(rf"(^|/){re.escape(n)}(_\d+)?/", node)), None)
    where = f"layer {layer!r}" if layer else "a layer"
    if m:
        return (f"{where} cannot be converted to ONNX: it uses the TensorFlow op "
                f"{m.group('op')}, which tf2onnx cannot convert")
    return f"{where} cannot be converted to ONNX: {message.strip()[:300]}"


def _backbone(frontends: Mapping[str, Any]) -> Any:
    """The pin of the shipped speech-embedding backbone when a frontend is of kind embedding."""
    if not any(fe.kind == "embedding" for fe in frontends.values()):
        return None
    from hark.live.backbone import backbone_info

    return backbone_info().ref()


def _card_shape(shape: tuple[Any, ...]) -> tuple[int | None, ...]:
    return tuple(d if isinstance(d, int) else None for d in shape)


@dataclass
class _Inspection:
    """What the Keras model is, before any conversion."""

    inputs: list[analysis.KerasInput]
    streaming: bool  # a frames model with a variable time axis: state is exposed
    task: str
    act_layer: str
    activation: str
    head: str | None = None  # softmax / sigmoid appended to a logits output


@dataclass
class _Graph:
    """The converted, edited and loadable ONNX graph."""

    proto: Any
    data: bytes
    session: Any
    states: list[Any]
    input_names: dict[str, str]
    op_types: list[str]
    rewrites: list[str]


def convert(
    model_path: str | Path,
    labels: str | Path | Sequence[str],
    *,
    frontend: Any = None,
    sample_rate: int | None = None,
    name: str | None = None,
    out_dir: str | Path = ".",
    window_s: float | None = None,
    stride_s: float | None = None,
    normalization: Any = None,
    task: str | None = None,
    ignore_labels: Sequence[str] | None = None,
    keep_labels: Sequence[str] = (),
    smoothing: SmoothingSpec | Mapping[str, Any] | None = None,
    vad: bool | VadSpec | Mapping[str, Any] | None = None,
    quantize: str | None = None,
    eval_npz: str | Path | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    opset: int = DEFAULT_OPSET,
    custom_objects: Mapping[str, Any] | str | Path | None = None,
    architecture: Any = None,
    output_activation: str | None = None,
    layout: Any = None,
    reference_features: Any = None,
    fit_features: bool = False,
    reference_tolerance: float = 1e-3,
    streaming_split: bool = True,
) -> ExportResult:
    """Export a Keras model file to `out_dir/NAME.onnx` + `out_dir/NAME.json`, verified.

    frontend: a preset name ("kaggle-specgram", "logmel40", "mfcc13", "raw16k"), a spec string
    ("logmel40,n_mels=64" / "kind=logmel,n_mels=64"), a FrontendSpec, or a mapping from Keras
    input name to one of those ("*" for the rest) for multi-input models.
    normalization: an .npz/.json path or a Normalization (one frontend), or a mapping from
    frontend name to one. smoothing / vad: a spec or a dict of fields to override.
    quantize="int8" also writes NAME-int8.onnx/.json; eval_npz (arrays x, y) adds accuracies.
    custom_objects: the names the model was saved with (a dict, or a .py file defining
    `custom_objects`). architecture: for a weights-only file (model.save_weights), "FILE.py:FUNC"
    or a function returning the uncompiled model the weights are loaded into.
    output_activation: "softmax" / "sigmoid" appends that head to a model that ends in logits
    (a linear last layer); "none" keeps the logits. layout: a LayoutOptions
    (or a dict of its fields; a mapping from Keras input name to one for several inputs) picking
    how a fixed input shape is read when more than one reading fits (export.layout).
    ignore_labels: the classes that never become events; None: every silence-like label
    (modelcard.BACKGROUND_LABELS: silence, _background_noise_, ...), () for none; keep_labels
    takes labels back out of either.
    reference_features: "FILE.py:FUNC" or a callable FUNC(audio, sample_rate) returning the
    model input for one window (the user's feature code): hark's runtime tensors are compared
    with it on probe audio (export.reference) and the export fails above reference_tolerance.
    fit_features: first search the frontend/layout options that match it, and use them.
    streaming_split: a window model also gets NAME.front.onnx + NAME.head.onnx (each column
    computed once at run time, export.streaming_split) with their parity in the card, or the
    reason it cannot be split.
    Raises an ExportError subclass (a HarkError) for anything the user can fix; nothing is
    written unless Keras and onnxruntime agree within `tolerance`.
    """
    t0 = time.perf_counter()
    warnings: list[str] = []
    label_list = modelcard.read_labels(labels)
    ignored = modelcard.resolve_ignore_labels(label_list, ignore_labels, keep_labels)
    if quantize is not None and quantize not in ("int8",):
        raise ExportError(f"unknown quantization {quantize!r} (supported: int8)")
    if task is not None and task not in ("multiclass", "multilabel"):
        raise ExportError(f"unknown task {task!r} (expected multiclass or multilabel)")
    versions = require_toolchain()
    loaded = load(model_path, custom_objects, architecture)
    warnings.extend(loaded.notes)
    model = loaded.model
    info = _inspect(model, label_list, task, warnings, output_activation)
    in_graph = analysis.frontend_layers(model)

    if fit_features and reference_features is None:
        raise ExportError("--fit-features needs --reference-features FILE.py:FUNC")
    fn = None
    if reference_features is not None:
        from hark.export import reference

        fn = reference.load_reference(reference_features)
    # the card's frontends are cheap to check: fail before converting. --fit-features searches
    # first: the options as given may not fit the model's shape at all
    fit_record: dict[str, Any] | None = None
    if fit_features:
        plan, fit_record = _fit_plan(info.inputs, label_list, frontend, sample_rate, window_s,
                                     stride_s, layout, fn, reference_tolerance)
    else:
        plan = modelcard.plan_frontends(
            info.inputs, frontend, sample_rate=sample_rate, window_s=window_s,
            stride_s=stride_s, layout=layout,
        )
    info.inputs = [dataclasses.replace(i, role=plan.readings[i.name].role) for i in info.inputs]
    norms = modelcard.resolve_normalization(normalization, plan.frontends)
    smooth = modelcard.resolve_smoothing(smoothing)
    vad_spec = modelcard.resolve_vad(vad, plan.sample_rate, warnings)

    from hark.export import onnx_edit, parity

    graph = _build_graph(loaded, info, opset, warnings)
    ins, outs = onnx_edit.io_shapes(graph.proto)
    name = name or Path(model_path).stem
    provenance: dict[str, Any] = {
        "source": _source_info(loaded),
        "tools": {**versions, "python": platform.python_version(), "hark": _hark_version()},
        "exported_at": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "onnx": {"opset": opset, "op_types": graph.op_types, "bytes": len(graph.data),
                 "inputs": graph.input_names},
        "final_activation": {"layer": info.act_layer, "activation": info.activation},
        "output_head": info.head,
        "frontend_in_graph": in_graph,
        "custom_objects": sorted(k for k in loaded.custom_objects if "Kapre>" not in k
                                 and k not in analysis.KAPRE_NAMES),
        "rewrites": graph.rewrites,
        "presets": plan.presets,
        "ignore_labels": {"labels": list(ignored.labels), "source": ignored.source,
                          "kept": list(ignored.kept)},
    }
    def build_card(p: modelcard.FrontendPlan) -> ModelCard:
        return ModelCard(
            name=str(name),
            labels=label_list,
            sample_rate=p.sample_rate,
            frontends=p.frontends,
            inputs=tuple(
                InputSpec(
                    name=graph.input_names[inp.name],
                    shape=_card_shape(ins[graph.input_names[inp.name]]),
                    frontend=p.input_frontend[inp.name],
                    **p.input_fields(inp.name),
                )
                for inp in info.inputs
            ),
            task=info.task,
            output=OUTPUT_NAME,
            state=tuple(StateSpec(s.input, s.output, s.shape) for s in graph.states),
            window_s=p.window_s,
            stride_s=p.stride_s,
            normalization=norms,
            ignore_labels=ignored.labels,
            smoothing=smooth,
            vad=vad_spec,
            provenance=provenance,
            backbone=_backbone(p.frontends),
        )

    card = build_card(plan)
    card.validate()
    card.check_against_model(ins, outs)

    # parity: always, against the original Keras model
    checker = parity.Parity(model, info.inputs,
                            [graph.input_names[i.name] for i in info.inputs], OUTPUT_NAME,
                            graph.states, head=info.head)
    par = checker.measure(graph.session)
    parity.check(par, tolerance)
    provenance["parity"] = par

    if fit_record is not None:
        provenance["fit_features"] = fit_record
    if fn is not None:
        from hark.export import reference

        provenance["reference_parity"] = reference.measure(
            card, graph.session, fn, feature_tolerance=reference_tolerance,
            posterior_tolerance=reference_tolerance)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = ExportResult(
        onnx_path=out / f"{name}.onnx",
        card_path=out / f"{name}.json",
        card=card,
        parity=par,
        op_types=tuple(graph.op_types),
        onnx_bytes=len(graph.data),
        source_bytes=loaded.path.stat().st_size,
        input_names=graph.input_names,
        rewrites=list(graph.rewrites),
        warnings=warnings,
    )
    runners = {"onnx": graph.session}
    int8_proto = None
    if quantize == "int8":
        result.int8_onnx_path = out / f"{name}-int8.onnx"
        result.quantization, runners["int8"], int8_proto = _quantize(
            graph, info, checker, ins, result.int8_onnx_path
        )
    if eval_npz is not None:
        result.evaluation = _evaluate(Path(eval_npz), checker, runners, info.inputs, info.task)
        if result.quantization is not None:
            result.quantization["accuracy_change"] = round(
                result.evaluation["accuracy_int8"] - result.evaluation["accuracy_onnx"], 6
            )
    result.card = dataclasses.replace(card, evaluation=result.evaluation)
    result.onnx_path.write_bytes(graph.data)
    result.card.save(result.card_path)
    if result.quantization is not None and int8_proto is not None:
        qcard = dataclasses.replace(
            result.card,
            name=f"{name}-int8",
            provenance={**provenance, "quantization": result.quantization,
                        "float_model": result.onnx_path.name},
        )
        ins8, outs8 = onnx_edit.io_shapes(int8_proto)
        qcard.check_against_model(ins8, outs8)
        result.int8_card_path = out / f"{name}-int8.json"
        qcard.save(result.int8_card_path)
    if streaming_split and not result.card.streaming:
        from hark.export.streaming_split import split_model

        split = split_model(result.onnx_path)
        result.card, result.streaming_split = split.card, split.split
    result.seconds = round(time.perf_counter() - t0, 2)
    return result


def _fit_plan(inputs: Sequence[analysis.KerasInput], labels: Sequence[str], frontend: Any,
              sample_rate: int | None, window_s: float | None, stride_s: float | None,
              layout: Any, fn: Any, tolerance: float) -> tuple[modelcard.FrontendPlan,
                                                               dict[str, Any]]:
    """--fit-features: the plan whose frontend and layout match the reference best.

    Runs before the options as given are checked against the shape (a frame count read as a
    bin count must not stop the search that finds the pooling). Candidate cards are built from
    the Keras shapes; only their tensors are compared here, the export's measure then verifies
    the chosen one through the real graph.
    """
    from hark.export import reference
    from hark.export.errors import ReferenceMismatchError
    from hark.live.card import CardError

    if len(inputs) != 1:
        raise ExportError("--fit-features needs a single-input model")
    inp = inputs[0]
    choice = modelcard.input_choices(inputs, frontend)[inp.name]
    base, preset = choice.resolve()
    sr = modelcard.plan_sample_rate([(base, preset)], sample_rate)
    given = modelcard.input_layouts(inputs, layout)[inp.name]

    def plan_for(spec: Any, opts: Any) -> modelcard.FrontendPlan:
        diff = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)
                if getattr(spec, f.name) != getattr(base, f.name)}
        want = FrontendChoice(choice.preset, {**choice.overrides, **diff})
        return modelcard.plan_frontends(inputs, want, sample_rate=sr, window_s=window_s,
                                        stride_s=stride_s, layout=opts)

    def make_card(spec: Any, opts: Any) -> ModelCard | None:
        try:
            p = plan_for(spec, opts)
            c = ModelCard(
                name="fit", labels=tuple(labels), sample_rate=p.sample_rate,
                frontends=p.frontends, window_s=p.window_s, stride_s=p.stride_s,
                inputs=(InputSpec(name=inp.name, shape=_card_shape((None, *inp.shape)),
                                  frontend=p.input_frontend[inp.name],
                                  **p.input_fields(inp.name)),),
                vad=VadSpec(enabled=False), backbone=_backbone(p.frontends))
            c.validate()
        except (ExportError, CardError):
            return None
        return c

    try:
        fit = reference.fit_features(base, reference.layout_candidates(given), make_card, fn,
                                     sample_rate=sr)
    except ExportError as e:
        try:  # say why the options as given do not fit, if they do not
            plan_for(base, given)
        except ExportError as why:
            raise ExportError(f"{e}; as given: {why}") from None
        raise
    if given.framing is None and fit.spec.center:
        _fit_framing(fit, make_card, fn)
    if fit.feature_rel > tolerance:
        raise ReferenceMismatchError(
            f"--fit-features tried {fit.tried} frontend/layout combinations (varying "
            f"{', '.join(reference.SEARCH_SPACE)}, the layout and the pooling); the closest "
            f"({fit.command_line() or 'the frontend as given'}) still differs by "
            f"{fit.feature_rel:.2e} of your features' range: your pipeline differs in "
            "something else (sample rate, n_fft, hop, mel count, normalisation?)"
        )
    record = {"changed": dict(fit.changed), "feature_max_rel_diff": fit.feature_rel,
              "candidates_tried": fit.tried, "command_line": fit.command_line()}
    return plan_for(fit.spec, fit.layout), record


def _fit_framing(fit: Any, make_card: Any, fn: Any) -> None:
    """A centred frontend: stream or clip framing, whichever matches mid-stream windows better.

    The search compares a stream's first window, where both framings agree; only windows in the
    middle of a stream tell a clip pipeline (librosa center=True) from a streaming one.
    """
    from hark.export import reference

    scores = {}
    for framing in ("stream", "clip"):
        card = make_card(fit.spec, dataclasses.replace(fit.layout, framing=framing))
        if card is None:
            return
        n = int(round((card.window_s or 0.0) * card.sample_rate))
        probes = reference.probe_signals(card.sample_rate, n)
        scores[framing] = reference.compare_mid_stream(card, fn, probes).feature_rel
    if scores["clip"] < scores["stream"]:
        fit.layout = dataclasses.replace(fit.layout, framing="clip")
        fit.changed["framing"] = "clip"


def _inspect(model: Any, labels: Sequence[str], task: str | None,
             warnings: list[str], output_activation: str | None = None) -> _Inspection:
    """Inputs and their roles, output shape, causality, label count, task, unsupported layers."""
    inputs = analysis.model_inputs(model)
    out_shape = analysis.output_shape(model)
    frames = [i for i in inputs if i.role == "frames"]
    if frames:
        if len(inputs) != 1:
            raise ExportError(
                f"input {frames[0].describe()} has a variable time axis (a frames input) but the "
                "model has other inputs: a frames model takes exactly one input"
            )
        if len(out_shape) != 3:
            raise ExportError(
                f"input {frames[0].describe()} has a variable time axis (a per-frame model) but "
                f"the model outputs {out_shape}: a per-frame model must output (batch, T, "
                "classes); give a window model a fixed number of frames"
            )
        analysis.check_causal(model)
    elif len(out_shape) != 2:
        raise ExportError(
            f"the model outputs {out_shape}: a window model must output (batch, classes)"
        )
    if out_shape[-1] != len(labels):
        raise FrontendMismatchError(
            f"{len(labels)} labels given but the model outputs {out_shape[-1]} classes"
        )
    act_layer, activation = analysis.final_activation(model)
    head, head_task = heads.choose_head(act_layer, activation, output_activation, task,
                                        int(out_shape[-1] or 0))
    inferred = head_task or analysis.task_from_activation(activation)
    if task is None:
        if inferred is None and output_activation == "none":
            raise ExportError(
                f"--output-activation none keeps the logits of {act_layer!r}: give --task "
                "multiclass or multilabel"
            )
        if inferred is None:
            raise ExportError(
                f"the output layer {act_layer!r} has activation {activation!r}: hark needs "
                "posteriors (softmax -> multiclass, sigmoid -> multilabel); add the activation "
                "or give --task"
            )
        task = inferred
    elif inferred is None and output_activation == "none":
        warnings.append(f"output layer {act_layer!r} is linear and --output-activation none "
                        "keeps its logits: thresholds act on raw scores")
    elif inferred is None:
        warnings.append(
            f"output layer {act_layer!r} has activation {activation!r}: thresholds assume "
            "probabilities"
        )
    elif inferred != task:
        warnings.append(f"task {task} given, but the final activation {activation} suggests "
                        f"{inferred}")
    stateful = [layer.name for layer in analysis.rnn_layers(model)
                if getattr(layer, "stateful", False)]
    if stateful:
        raise LayerError(
            f"layer {stateful[0]!r} is stateful=True: save the model with stateful=False and a "
            "(None, bins) input; hark carries the recurrent state itself"
        )
    streaming = bool(frames) and frames[0].length is None
    return _Inspection(inputs, streaming, task, act_layer, activation, head)


def _build_graph(loaded: LoadedModel, info: _Inspection, opset: int,
                 warnings: list[str]) -> _Graph:
    """Twin -> tf2onnx -> native recurrent nodes (+ state) -> names -> a loadable session."""
    import onnx

    from hark.export import onnx_edit, parity, rewrite, tidy

    # a clone serialises custom functions under their __name__, not the key they were given
    scope = {**{getattr(v, "__name__", k): v for k, v in loaded.custom_objects.items()},
             **loaded.custom_objects}
    with loaded.keras.utils.custom_object_scope(scope):
        twin = rewrite.build_twin(loaded.keras, loaded.model)
    proto = _to_onnx(twin.model, info.inputs, opset)
    editor = onnx_edit.GraphEditor(proto)
    states = (
        onnx_edit.replace_standins(editor, twin.sites, expose_state=info.streaming)
        if twin.sites
        else []
    )
    ins, outs = onnx_edit.io_shapes(proto)
    feature_inputs = [n for n in ins if n not in {s.input for s in states}]
    if len(feature_inputs) != len(info.inputs):
        raise ExportError(
            f"the ONNX graph has inputs {feature_inputs}, the Keras model "
            f"{[i.name for i in info.inputs]}"
        )
    input_names = {k.name: o for k, o in zip(info.inputs, feature_inputs, strict=True)}
    main_out = [n for n in outs if n not in {s.output for s in states}]
    if len(main_out) != 1:
        raise ExportError(f"the ONNX graph has outputs {main_out}: expected one posterior output")
    editor.rename(main_out[0], OUTPUT_NAME)
    if info.head is not None:
        heads.append_head(editor, OUTPUT_NAME, info.head)
    dims: dict[str, list[int | str | None]] = {}
    for inp in info.inputs:
        dims[input_names[inp.name]] = ["batch", "time" if info.streaming else None]
    dims[OUTPUT_NAME] = ["batch", "time"] if info.streaming else ["batch"]
    onnx_edit.set_io_dims(editor, dims)
    rewrites = list(twin.rewrites)
    tidied, note = tidy.tidy_proved(proto)
    if tidied is not None:
        proto = tidied
        editor = onnx_edit.GraphEditor(proto)
        rewrites.append(note)
    elif note:
        warnings.append(note)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as e:
        first = str(e).splitlines()[0]
        raise ExportError(f"the converted graph is not valid ONNX: {first}") from None
    ops = editor.op_types()
    if twin.sites and {"Loop", "Scan"} & set(ops):
        raise LayerError(
            "the recurrent layers did not all become native ONNX nodes (the graph still has a "
            f"Loop): {', '.join(ops)}"
        )
    if "Loop" in ops:
        warnings.append("the graph contains an ONNX Loop (slow): check the layers around it")
    data = proto.SerializeToString()
    try:
        sess = parity.session(data)
    except Exception as e:  # onnxruntime raises its own types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise ExportError(f"onnxruntime cannot run the converted graph: {first}") from None
    return _Graph(proto, data, sess, states, input_names, ops, rewrites)


def _quantize(graph: _Graph, info: _Inspection, checker: Any,
              ins: Mapping[str, tuple[Any, ...]],
              path: Path) -> tuple[dict[str, Any], Any, Any]:
    """Write the int8 model; return its report (size, speed, differences), session, graph."""
    import onnx

    from hark.export import onnx_edit, parity
    from hark.export import quantize as q

    roles = {graph.input_names[i.name]: i.role for i in info.inputs}
    feeds = q.call_feeds(ins, roles, {s.input: s.shape for s in graph.states})
    float_speed = q.speed(graph.data, feeds, OUTPUT_NAME)
    notes, int8_speed = q.quantize_int8(graph.proto, path, feeds, OUTPUT_NAME)
    data = path.read_bytes()
    sess = parity.session(data)
    int8_par = checker.measure(sess)
    proto = onnx.load_from_string(data)
    report = {
        "method": "onnxruntime dynamic quantization, int8 weights",
        "notes": notes,
        "bytes_float": len(graph.data),
        "bytes_int8": len(data),
        "size_ratio": round(len(data) / len(graph.data), 3),
        "latency_float": float_speed,
        "latency_int8": int8_speed,
        "speedup": round(float_speed["median_us"] / max(int8_speed["median_us"], 1e-9), 2),
        "call": "one frame + state" if info.streaming else "one window",
        "max_abs_diff_vs_keras": int8_par["max_abs_diff"],
        "parity": int8_par,
        "op_types": onnx_edit.GraphEditor(proto).op_types(),
    }
    return report, sess, proto


def _source_info(loaded: LoadedModel) -> dict[str, Any]:
    info = {
        "file": loaded.path.name,
        "path": str(loaded.path.resolve()),
        "sha256": loaded.sha256,
        "bytes": loaded.path.stat().st_size,
        "container": loaded.container,
        "written_by_keras": loaded.keras_version or "unknown",
        "loaded_with": f"{loaded.keras.__name__} {loaded.keras.__version__}",
    }
    if loaded.architecture is not None:
        info["architecture"] = loaded.architecture
    return info


def _accuracy(pred: np.ndarray, y: np.ndarray, task: str) -> float:
    if task == "multilabel":
        if y.shape != pred.shape:
            raise ExportError(f"eval y has shape {y.shape}, the model outputs {pred.shape}")
        return float(np.mean((pred >= 0.5) == (y >= 0.5)))
    want = np.argmax(y, axis=-1) if y.shape == pred.shape else y.astype(np.int64)
    got = np.argmax(pred, axis=-1)
    if want.shape != got.shape:
        raise ExportError(f"eval y has shape {y.shape}; expected {got.shape} class indices "
                          f"or {pred.shape} one-hot")
    return float(np.mean(got == want))


def _evaluate(path: Path, checker: Any, runners: Mapping[str, Any],
              inputs: Sequence[analysis.KerasInput], task: str) -> dict[str, Any]:
    if not path.is_file():
        raise ExportError(f"evaluation file not found: {path}")
    try:
        with np.load(path) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ExportError(f"cannot read {path.name} as .npz: {e}") from None
    if "y" not in data:
        raise ExportError(f"{path.name} needs an array 'y' (labels)")
    xs = []
    for inp in inputs:
        key = "x" if len(inputs) == 1 and "x" in data else f"x_{inp.name}"
        if key not in data:
            raise ExportError(f"{path.name} needs an array {key!r} for input {inp.name!r}")
        x = data[key].astype(np.float32)
        if x.ndim == len(inp.shape) and inp.shape[-1] == 1:  # (N, T, F) for (T, F, 1)
            x = x[..., None]
        xs.append(x)
    y = data["y"]
    n = len(y)
    preds: dict[str, list[np.ndarray]] = {"keras": []}
    for k in runners:
        preds[k] = []
    step = 64
    for start in range(0, n, step):
        chunk = [x[start : start + step] for x in xs]
        preds["keras"].append(checker.ref(chunk))
        for k, sess in runners.items():
            preds[k].append(checker.run(sess, chunk))
    out: dict[str, Any] = {"eval_npz": path.name, "examples": int(n)}
    for k, parts in preds.items():
        out[f"accuracy_{k}"] = round(_accuracy(np.concatenate(parts), y, task), 6)
    return out
