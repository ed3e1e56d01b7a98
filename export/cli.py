"""`hark export`: a Keras model file -> NAME.onnx + NAME.json, with parity proof.

Imports nothing heavy at import time: TensorFlow is loaded inside `run`.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import types
import typing
from typing import Any

from hark.export.errors import ExportError
from hark.export.modelcard import BACKGROUND_LABELS
from hark.export.presets import (
    FRONTEND_FIELDS,
    PRESETS,
    FrontendChoice,
    convert_field,
    parse_frontend_spec,
)
from hark.live.card import (
    _CHOICES,
    _INPUT_CHOICES,
    FRONTEND_KINDS,
    FrontendSpec,
    SmoothingSpec,
    VadSpec,
)
from hark.live.cli_options import _comments, add_fields, values

EXAMPLES = """\
examples:
  # a CNN trained on the Kaggle speech-commands log-specgram (8 kHz, 99x81 per second)
  hark export kws_cnn.keras --labels labels.txt --preset kaggle-specgram --out models/

  # a per-frame LSTM on 40 log-mels with normalisation stats, streaming state exposed
  hark export vad_lstm.h5 --labels labels.txt --preset logmel40 --normalization stats.npz \\
      --ignore-labels _silence_,_unknown_ --threshold-on 0.7 --threshold-off 0.4

  # 64 mels instead of 40, a 1.5 s window every 250 ms
  hark export big.keras --labels labels.txt --preset logmel40 --n-mels 64 \\
      --window-s 1.5 --stride-s 0.25

  # a two-input fusion model: each Keras input gets its own frontend
  hark export fusion.keras --labels labels.txt --preset kaggle-specgram \\
      --frontend seq=kind=logmel,window_ms=25,n_fft=256,n_mels=40

  # int8 weights, with the accuracy change measured on an evaluation set (x, y arrays)
  hark export kws_cnn.keras --labels labels.txt --preset kaggle-specgram \\
      --quantize int8 --eval-npz val.npz

presets:
""" + "\n".join(f"  {p.name:16s} {p.description}" for p in PRESETS.values())


# help for the FrontendSpec fields that carry no comment of their own in live/card.py
_FIELD_HELP = {
    "kind": "what a frame is (the FrontendSpec docstring in live/card.py says how each is made)",
    "window_ms": "analysis window (ms); win_length sets it in samples",
    "hop_ms": "hop between frames (ms); hop_length sets it in samples",
    "n_mels": "mel bands (logmel, mfcc)",
    "fmin": "lowest mel frequency (Hz)",
    "fmax": "highest mel frequency (Hz; none: sample_rate / 2)",
    "n_mfcc": "cepstral coefficients kept (mfcc)",
    "pad_mode": "how center=True pads the stream's start: zeros or librosa's reflection",
    "mel_scale": "the mel scale of librosa's filterbank",
    "mel_norm": "librosa's filter normalisation (slaney: equal area) or none",
    "dct_norm": "the DCT's normalisation (see dct_type)",
    "lifter_style": "where the lifter counts n from (see lifter)",
    "delta_order": "delta orders appended to each frame (see delta_width)",
}


def _value_word(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _allowed_words(hint: Any) -> list[str]:
    """The values a FrontendSpec annotation allows, as words: literals, type names, none."""
    if typing.get_origin(hint) is typing.Literal:
        return [_value_word(v) for v in typing.get_args(hint)]
    if hint is type(None):
        return ["none"]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [w for arg in typing.get_args(hint) for w in _allowed_words(arg)]
    if hint is bool:
        return ["true", "false"]
    return [getattr(hint, "__name__", str(hint))]


def frontend_field_values(name: str) -> list[str]:
    """Allowed values of one FrontendSpec field: live.card's _CHOICES, else its annotation."""
    if name == "kind":
        return list(FRONTEND_KINDS)
    if name in _CHOICES:
        return [_value_word(v) for v in _CHOICES[name]]
    return list(dict.fromkeys(_allowed_words(typing.get_type_hints(FrontendSpec)[name])))


def add_frontend_fields(group: Any) -> list[str]:
    """One --FIELD VALUE option per FrontendSpec field, generated so it cannot drift.

    Values are parsed as `--frontend field=value` parses them; the help lists the allowed
    values (live.card's _CHOICES, else the annotation) and the field's comment in live/card.py.
    Returns the flags added.
    """
    notes = _comments(FrontendSpec)
    flags = []
    for f in dataclasses.fields(FrontendSpec):
        flag = "--" + f.name.replace("_", "-")
        words = frontend_field_values(f.name)
        literal = all(w not in ("int", "float", "str") for w in words)
        note = notes.get(f.name) or _FIELD_HELP.get(f.name, "")
        default = f.default if f.default is not dataclasses.MISSING else None
        # kind has no default: a frontend is a preset or a kind
        given = "" if f.name == "kind" else f" (default {_value_word(default)})"
        text = (f"{note}; " if note else "") + " | ".join(words) + given
        metavar = ("{" + ",".join(words) + "}" if literal else
                   "|".join(w.upper() if w in ("int", "float", "str") else w for w in words))
        group.add_argument(flag, dest=f.name, metavar=metavar,
                           type=functools.partial(_field_value, f.name),
                           help=text.replace("%", "%%"))
        flags.append(flag)
    return flags


def _field_value(name: str, text: str) -> object:
    try:
        return convert_field(name, text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} (allowed: {', '.join(frontend_field_values(name))})") from None


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="convert a Keras model (.keras / .h5) to ONNX + model card, with parity proof",
        description="Convert a trained Keras model (.keras, or .h5 from Keras 3 or legacy Keras "
        "2.x / tf.keras) to NAME.onnx plus its model card NAME.json. Parity against Keras is "
        "always measured and written into the card; above the tolerance nothing is written and "
        "the command fails. Needs the [export] extra: pip install 'hark[export]'.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="the Keras model file (.keras or .h5)")
    p.add_argument("--labels", required=True, metavar="FILE",
                   help="class labels, one per line, in output order (or a,b,c)")
    p.add_argument("--name", help="model name: writes NAME.onnx and NAME.json (default: file stem)")
    p.add_argument("--out", default=".", metavar="DIR", help="output directory (default: .)")
    p.add_argument("--custom-objects", metavar="FILE.py",
                   help="a Python file defining custom_objects = {name: object} (custom "
                   "activations or layers the model was saved with); kapre layers are built in")
    p.add_argument("--architecture", metavar="FILE.py:FUNC",
                   help="MODEL is a weights-only file (model.save_weights): FUNC() in FILE.py "
                   "returns the uncompiled Keras model the weights are loaded into")

    fe = p.add_argument_group(
        "frontend (what feeds the model)",
        "A --preset, then any field below to change it (--FIELD VALUE is --frontend\n"
        "FIELD=VALUE); without a preset, --kind and the fields. These are every field of the\n"
        "model card's frontend (FrontendSpec in live/card.py), with their allowed values.")
    fe.add_argument("--preset", choices=sorted(PRESETS), help="a named frontend (see below)")
    fe.add_argument("--frontend", action="append", default=[], metavar="[INPUT=]SPEC",
                    help="PRESET[,field=value...] or field=value,... with the fields below "
                    "(kind=stft,window_fn=hann_symmetric,power=1,log=none); with INPUT= for one "
                    "Keras input of a multi-input model (repeatable)")
    fe.add_argument("--sample-rate", type=int, metavar="HZ", help="model sample rate")
    add_frontend_fields(fe)
    fe.add_argument("--window-s", type=float,
                    help="window model: seconds of audio per decision (default: from the model)")
    fe.add_argument("--stride-s", type=float,
                    help="window model: seconds between decisions (default 0.1)")
    fe.add_argument("--normalization", action="append", default=[], metavar="[FRONTEND=]FILE",
                    help="per-bin mean/std: .npz (arrays mean, std) or .json")

    lay = p.add_argument_group(
        "input layout (inferred from the Keras input shape when only one reading fits)")
    lay.add_argument("--layout", choices=_INPUT_CHOICES["layout"],
                     help="frames x bins, or bins x frames (coefficient-first, as librosa "
                     "returns it); given alone it settles the order of a flattened vector")
    lay.add_argument("--flatten", action=argparse.BooleanOptionalAction, default=None,
                     help="the window is one row-major vector (with --layout: which order); "
                     "--no-flatten: it is not")
    lay.add_argument("--pool", choices=_INPUT_CHOICES["pool"],
                     help="mean, mean_std: the mean (then std) of each bin over the window's "
                     "frames, (bins,); bins_mean: the mean over the bins of each frame, one "
                     "value per frame, (frames,) (np.mean(librosa.feature.mfcc(...), axis=0)); "
                     "never inferred: a frame count fits any vector")
    lay.add_argument("--channels", type=int, metavar="N",
                     help="N stacked copies on a channel axis (3 for an ImageNet CNN)")
    lay.add_argument("--channel-axis", choices=_INPUT_CHOICES["channel_axis"])
    lay.add_argument("--framing", choices=_INPUT_CHOICES["framing"],
                     help="clip: frame each window as the clip the model was trained on "
                     "(librosa center=True pads each clip at both ends; the stream has real "
                     "audio there): its few edge frames are recomputed from the window's own "
                     "samples. Default stream: the stream's frames as they are")
    lay.add_argument("--window-norm", choices=_INPUT_CHOICES["window_norm"],
                     help="standardise each window (x - mean) / std, per bin or over all values")

    card = p.add_argument_group("card defaults")
    card.add_argument("--task", choices=("multiclass", "multilabel"),
                      help="default: softmax -> multiclass, sigmoid -> multilabel")
    card.add_argument("--output-activation", choices=("softmax", "sigmoid", "none"),
                      help="a model ending in logits (linear last layer): append softmax or "
                      "sigmoid in the ONNX graph (parity is measured after it), or keep them")
    card.add_argument("--ignore-labels", action="append", default=None, metavar="L[,L...]",
                      help="classes that never become events (_silence_,_unknown_); replaces "
                      "the default, which is every label that names an absence of sound: "
                      f"{', '.join(BACKGROUND_LABELS)}, in any case, with or without surrounding "
                      "underscores (_background_noise_, Silence); --ignore-labels '' ignores none")
    card.add_argument("--keep-labels", action="append", default=[], metavar="L[,L...]",
                      help="labels that do become events although ignored by default "
                      "(--keep-labels silence)")
    # the card's smoothing and VAD fields, generated from live.card's dataclasses
    smoothing_flags = add_fields(card, SmoothingSpec, [
        ("method", "--smoothing"), "median_frames", "ema_alpha", "threshold_on", "threshold_off",
        "min_on_ms", "min_off_ms", "threshold_rise", "offset_advance_ms"], overrides=True)
    vad_flags = add_fields(card, VadSpec, [
        ("enabled", "--vad"), "mode", "frame_ms", "hangover_ms", "reset_after_ms"],
        prefix="vad-", overrides=True, choices={"mode": (0, 1, 2, 3), "frame_ms": (10, 20, 30)},
        extra_help={"enabled": "gate the model with webrtcvad"})

    chk = p.add_argument_group("verification and size")
    chk.add_argument("--quantize", choices=("int8",),
                     help="also write NAME-int8.onnx/.json (onnxruntime dynamic quantization)")
    chk.add_argument("--eval-npz", metavar="FILE",
                     help="evaluation set (arrays x, y; x_INPUT per input) for accuracy numbers")
    chk.add_argument("--tolerance", type=float, default=1e-4,
                     help="max |Keras - onnxruntime| allowed (default 1e-4)")
    chk.add_argument("--reference-features", metavar="FILE.py:FUNC",
                     help="your own feature code: FUNC(audio, sample_rate) returns the model "
                     "input for one window; hark's runtime features are compared with it on "
                     "probe audio and the export fails if they differ")
    chk.add_argument("--fit-features", action="store_true",
                     help="with --reference-features: search the frontend, layout and pooling "
                     "options that match it (the options given need not fit the model), "
                     "export with them and print the command line")
    chk.add_argument("--reference-tolerance", type=float, default=1e-3,
                     help="max relative feature / absolute posterior difference against the "
                     "reference (default 1e-3)")
    chk.add_argument("--no-streaming-split", dest="streaming_split", action="store_false",
                     help="do not write the streaming pair NAME.front.onnx + NAME.head.onnx "
                     "for a window CNN (written by default when the graph can be split)")
    chk.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    chk.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run, smoothing_flags=smoothing_flags, vad_flags=vad_flags)


def _frontend_arg(args: argparse.Namespace) -> dict[str, FrontendChoice | None]:
    flags = {f: getattr(args, f) for f in FRONTEND_FIELDS if getattr(args, f, None) is not None}
    global_choice = FrontendChoice(args.preset, {}) if args.preset else None
    per_input: dict[str, FrontendChoice | None] = {}
    for text in args.frontend:
        head = text.split(",", 1)[0]
        key = head.split("=", 1)[0].strip().replace("-", "_") if "=" in head else None
        if key is not None and key not in FRONTEND_FIELDS:
            per_input[key] = parse_frontend_spec(text.split("=", 1)[1])
            continue
        spec = parse_frontend_spec(text)
        if global_choice is not None and spec.preset and spec.preset != global_choice.preset:
            raise ExportError(f"--preset {global_choice.preset} and --frontend {text} disagree")
        base = global_choice or FrontendChoice()
        global_choice = FrontendChoice(spec.preset or base.preset,
                                       {**base.overrides, **spec.overrides})
    if flags:
        base = global_choice or FrontendChoice()
        global_choice = FrontendChoice(base.preset, {**base.overrides, **flags})
    return {"*": global_choice, **per_input}


def _layout_arg(args: argparse.Namespace) -> dict[str, Any]:
    names = ("layout", "flatten", "pool", "channels", "channel_axis", "window_norm", "framing")
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _keyed(values: list[str]) -> Any:
    if not values:
        return None
    out: dict[str, str] = {}
    for v in values:
        key, sep, rest = v.partition("=")
        if sep and not rest.startswith("="):
            out[key] = rest
        else:
            out[""] = v
    return out


def run(args: argparse.Namespace) -> int:
    from hark.export.convert import convert

    smoothing = values(args, args.smoothing_flags) or None
    vad: Any = values(args, args.vad_flags) or None
    ignore = (None if args.ignore_labels is None else
              [s.strip() for v in args.ignore_labels for s in v.split(",") if s.strip()])
    keep = [s.strip() for v in args.keep_labels for s in v.split(",") if s.strip()]
    result = convert(
        args.model,
        args.labels,
        frontend=_frontend_arg(args),
        sample_rate=args.sample_rate,
        name=args.name,
        out_dir=args.out,
        window_s=args.window_s,
        stride_s=args.stride_s,
        normalization=_keyed(args.normalization),
        task=args.task,
        ignore_labels=ignore,
        keep_labels=keep,
        smoothing=smoothing,
        vad=vad,
        quantize=args.quantize,
        eval_npz=args.eval_npz,
        tolerance=args.tolerance,
        opset=args.opset,
        custom_objects=args.custom_objects,
        architecture=args.architecture,
        layout=_layout_arg(args),
        reference_features=args.reference_features,
        fit_features=args.fit_features,
        reference_tolerance=args.reference_tolerance,
        output_activation=args.output_activation,
        streaming_split=args.streaming_split,
    )
    if args.json:
        print(json.dumps(summary_dict(result), indent=1, default=str))
    else:
        print(summary_text(result))
    return 0


def summary_dict(result: Any) -> dict[str, Any]:
    return {
        "onnx": str(result.onnx_path),
        "card": str(result.card_path),
        "max_abs_diff": result.max_abs_diff,
        "parity": result.parity,
        "op_types": list(result.op_types),
        "onnx_bytes": result.onnx_bytes,
        "source_bytes": result.source_bytes,
        "inputs": result.input_names,
        "ignore_labels": list(result.card.ignore_labels),
        "state": [[s.input, s.output, list(s.shape)] for s in result.card.state],
        "rewrites": result.rewrites,
        "warnings": result.warnings,
        "quantization": result.quantization,
        "int8_onnx": str(result.int8_onnx_path) if result.int8_onnx_path else None,
        "evaluation": result.evaluation,
        "streaming_split": (dataclasses.asdict(result.streaming_split)
                            if result.streaming_split is not None else None),
        "seconds": result.seconds,
    }


def ignored_text(ignored: tuple[str, ...], how: dict[str, Any] | None) -> str:
    """Which labels never become events, and why: the summary says it so nobody is surprised."""
    how = how or {}
    kept = list(how.get("kept", ()))
    if not ignored:
        text = "every label can become an event"
        if how.get("source") == "default":
            text += " (no silence-like label" + (f"; kept: {', '.join(kept)})" if kept else ")")
        return text
    names = ", ".join(ignored)
    if how.get("source") == "default":
        return (f"never events (silence-like, by default): {names}"
                + (f"; kept: {', '.join(kept)}" if kept else "")
                + f" (--keep-labels {ignored[0]} or --ignore-labels '' to make them events)")
    return f"never events (--ignore-labels): {names}"


def summary_text(result: Any) -> str:
    from hark.export.parity import summary

    card = result.card
    src = card.provenance.get("source", {})
    lines = [
        f"wrote {result.onnx_path} ({result.onnx_bytes / 1024:.1f} kB) and {result.card_path}",
        f"  source   {src.get('file')} (Keras {src.get('written_by_keras')}, loaded with "
        f"{src.get('loaded_with')}, sha256 {str(src.get('sha256'))[:12]})",
        f"  task     {card.task}, {len(card.labels)} labels, {card.sample_rate} Hz",
        "  labels   " + ignored_text(card.ignore_labels, card.provenance.get("ignore_labels")),
    ]
    if src.get("architecture"):
        lines.insert(2, f"  built by {src['architecture']['builder']}, weights loaded from "
                        f"{src.get('file')}")
    for inp in card.inputs:
        fe = card.frontends[inp.frontend]
        sr = card.sample_rate
        framing = "" if fe.kind == "raw" else (
            f" {fe.window_samples(sr)}/{fe.hop_samples(sr)} samples"
            + (", centred" if fe.center else ""))
        layout = ""
        if inp.role == "window":
            layout = (f", pool {inp.pool}" if inp.pool != "none" else f", {inp.layout}"
                      + (" flattened" if inp.flatten else "")
                      + (f" x{inp.channels} {inp.channel_axis}" if inp.channels > 1 else ""))
        if inp.framing == "clip":
            layout += ", framed per clip"
        lines.append(f"  input    {inp.name} {list(inp.shape)} role {inp.role}{layout}, frontend "
                     f"{inp.frontend} ({fe.kind}{framing})")
    if card.window_s:
        lines.append(f"  window   {card.window_s:g} s every {card.stride_s:g} s")
    for st in card.state:
        lines.append(f"  state    {st.input} -> {st.output} {list(st.shape)}")
    lines.append(f"  ops      {', '.join(result.op_types)}")
    if card.provenance.get("output_head"):
        lines.append(f"  head     {card.provenance['output_head']} appended to the logits")
    for what in card.provenance.get("frontend_in_graph", []):
        lines.append(f"  in graph {what}: the input is raw audio")
    fit = card.provenance.get("fit_features")
    if fit:
        lines.append(f"  fit      matched the reference with: {fit['command_line'] or '(as given)'}"
                     f" (features within {fit['feature_max_rel_diff']:.1e})")
    ref = card.provenance.get("reference_parity")
    if ref:
        mid = sum(str(p["probe"]).startswith("mid-stream") for p in ref["probes"])
        lines.append(f"  features vs your reference: {ref['feature_max_rel_diff']:.1e} of range, "
                     f"posteriors {ref['posterior_max_abs_diff']:.1e} on "
                     f"{len(ref['probes']) - mid} probes as a stream's first window and {mid} "
                     "windows in the middle of a stream")
    for r in result.rewrites:
        lines.append(f"  rewrite  {r}")
    lines.append(f"  parity   max |Keras - onnxruntime| {result.max_abs_diff:.1e} "
                 f"(tolerance {result.parity['tolerance']:.0e}): {summary(result.parity)}")
    q = result.quantization
    if q:
        lines.append(
            f"  int8     {result.int8_onnx_path}: {q['bytes_int8'] / 1024:.1f} kB "
            f"({q['size_ratio']:.2f}x), {q['latency_int8']['median_us']:.0f} us vs "
            f"{q['latency_float']['median_us']:.0f} us per call ({q['call']}), max diff vs "
            f"Keras {q['max_abs_diff_vs_keras']:.1e}"
            + (f", accuracy change {q['accuracy_change']:+.4f}" if "accuracy_change" in q else "")
        )
        for note in q.get("notes", []):
            lines.append(f"  int8     {note}")
    if result.evaluation:
        accs = ", ".join(f"{k[9:]} {v:.4f}" for k, v in result.evaluation.items()
                         if k.startswith("accuracy_"))
        lines.append(f"  eval     {result.evaluation['examples']} examples: accuracy {accs}")
    sp = result.streaming_split
    if sp is not None and sp.ok:
        lines.append(f"  stream   {sp.front} + {sp.head}: {sp.columns} columns of "
                     f"{sp.receptive_field} frames every {sp.time_stride}, each computed once; "
                     f"parity {sp.parity['max_abs_diff']:.1e} over {sp.parity['decisions']} "
                     "decisions")
    elif sp is not None:
        lines.append(f"  stream   whole windows: {sp.reason}")
    for w in result.warnings:
        lines.append(f"  warning  {w}")
    lines.append(f"  took     {result.seconds:.1f} s")
    return "\n".join(lines)
