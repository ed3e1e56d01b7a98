"""The card side of an export: frontends per input, window/stride, normalisation, labels.

Also the smoothing and VAD defaults. Pure Python (no TensorFlow): resolved before conversion so
that a mismatch fails in a second, not after a conversion.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hark.export.analysis import KerasInput
from hark.export.errors import ExportError, FrontendMismatchError
from hark.export.layout import (
    LayoutOptions,
    Reading,
    feature_readings,
    frames_in,
    nice_window_s,
    read_input,
    stride_for,
    window_samples_for,
)
from hark.export.presets import PRESETS, FrontendChoice, Preset, parse_frontend_spec
from hark.live.card import CardError, FrontendSpec, Normalization, SmoothingSpec, VadSpec

VAD_RATES = (8000, 16000, 32000, 48000)
CLIP_SAMPLES = "clip_samples"  # the raw frontend that gives framing-clip inputs their samples

FrontendArg = str | FrontendSpec | Preset | FrontendChoice | None


@dataclass(frozen=True)
class FrontendPlan:
    """Frontends for the card and the window framing of window models."""

    sample_rate: int
    frontends: dict[str, FrontendSpec]
    input_frontend: dict[str, str]  # Keras input name -> frontend name
    presets: dict[str, str | None]  # frontend name -> preset it came from
    window_s: float | None
    stride_s: float | None
    readings: dict[str, Reading] = dataclasses.field(default_factory=dict)  # per Keras input
    layout: dict[str, LayoutOptions] = dataclasses.field(default_factory=dict)

    def input_fields(self, name: str) -> dict[str, Any]:
        """InputSpec fields (role, layout, ...) of Keras input `name`."""
        opts = self.layout.get(name, LayoutOptions())
        out = self.readings[name].fields(opts.window_norm)
        if opts.framing == "clip":
            out.update(framing="clip", clip_samples=CLIP_SAMPLES)
        return out


def read_labels(labels: str | Path | Sequence[str]) -> tuple[str, ...]:
    """Labels from a file (one per line), a comma-separated string, or a sequence."""
    if isinstance(labels, str | Path):
        p = Path(labels)
        if p.is_file():
            try:
                text = p.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise ExportError(f"cannot read labels file {p}: {e}") from None
            items = [line.strip() for line in text.splitlines()]
        elif isinstance(labels, str) and "," in labels:
            items = [s.strip() for s in labels.split(",")]
        else:
            raise ExportError(f"labels file not found: {p}")
    else:
        items = [str(s).strip() for s in labels]
    items = [s for s in items if s and not s.startswith("#")]
    if not items:
        raise ExportError("no labels given (the labels file is empty)")
    dupes = sorted({s for s in items if items.count(s) > 1})
    if dupes:
        raise ExportError(f"duplicate labels: {', '.join(dupes)}")
    return tuple(items)


# Labels that name the absence of a sound: an event of one says nothing was heard, so the card
# ignores them unless told otherwise. Compared after _label_key (case, spaces, dashes and
# surrounding underscores do not count). Not here: _unknown_ / other / unknown, which mark a
# sound that is present (a word outside the vocabulary): their events carry information.
BACKGROUND_LABELS = ("silence", "background", "background_noise", "noise", "none", "nothing")


def _label_key(label: str) -> str:
    return re.sub(r"[\s\-]+", "_", label.strip().lower()).strip("_")


@dataclass(frozen=True)
class IgnoredLabels:
    """The card's ignore_labels and where they came from (for the export summary)."""

    labels: tuple[str, ...]
    source: str  # "default" (silence-like labels) or "given"
    kept: tuple[str, ...] = ()  # silence-like labels the user kept as events


def resolve_ignore_labels(labels: Sequence[str], ignore: Sequence[str] | None,
                          keep: Sequence[str] = ()) -> IgnoredLabels:
    """The labels that never become events: every silence-like one, or exactly `ignore`.

    ignore None means the silence-like ones (BACKGROUND_LABELS); `keep` then takes labels back
    out. A name that is not a label is one clear error.
    """
    for what, names in (("--ignore-labels", ignore or ()), ("--keep-labels", keep)):
        unknown = [n for n in names if n not in labels]
        if unknown:
            raise ExportError(f"{what}: {', '.join(map(repr, unknown))} not among the labels "
                              f"({', '.join(labels)})")
    if ignore is None:
        chosen = [lb for lb in labels if _label_key(lb) in BACKGROUND_LABELS]
        source = "default"
    else:
        chosen = list(dict.fromkeys(ignore))
        source = "given"
    kept = tuple(lb for lb in chosen if lb in keep)
    return IgnoredLabels(tuple(lb for lb in chosen if lb not in keep), source, kept)


def _as_choice(value: Any) -> FrontendChoice:
    if isinstance(value, FrontendChoice):
        return value
    if isinstance(value, Preset):
        return FrontendChoice(value.name)
    if isinstance(value, FrontendSpec):
        return FrontendChoice(None, dataclasses.asdict(value))
    if isinstance(value, str):
        return parse_frontend_spec(value)
    raise ExportError(f"cannot use {value!r} as a frontend (give a preset name or a FrontendSpec)")


def _suggest(inp: KerasInput) -> str:
    fits = []
    for p in PRESETS.values():
        fe = p.frontend
        if fe.kind == "raw":
            ok = len([d for d in inp.shape if d != 1]) == 1 and inp.role != "frames"
        elif inp.role == "frames":
            ok = inp.shape[-1] == fe.n_bins(p.sample_rate)
        else:
            ok = bool(feature_readings(inp.shape, fe.n_bins(p.sample_rate)))
        if ok:
            fits.append(p.name)
    return f" ({', '.join(fits)} would fit input {inp.name!r})" if fits else ""


def input_choices(inputs: Sequence[KerasInput],
                  frontend: FrontendArg | Mapping[str, FrontendArg]) -> dict[str, FrontendChoice]:
    """The frontend each Keras input asked for ("*" in a mapping: the rest), or one clear error."""
    if isinstance(frontend, Mapping):
        default = frontend.get("*")
        unknown = set(frontend) - {"*"} - {i.name for i in inputs}
        if unknown:
            raise ExportError(
                f"frontend given for unknown input(s) {sorted(unknown)} "
                f"(model inputs: {', '.join(i.name for i in inputs)})"
            )
        per_input = {i.name: frontend.get(i.name, default) for i in inputs}
    else:
        per_input = {i.name: frontend for i in inputs}
    choices: dict[str, FrontendChoice] = {}
    for inp in inputs:
        value = per_input[inp.name]
        if value is None:
            raise ExportError(
                f"no frontend for Keras input {inp.describe()}: give --preset "
                f"{{{','.join(PRESETS)}}} or --kind ...{_suggest(inp)}"
            )
        choices[inp.name] = _as_choice(value)
    return choices


def plan_sample_rate(resolved: Iterable[tuple[FrontendSpec, Preset | None]],
                     sample_rate: int | None) -> int:
    """The sample rate given, else the one every preset runs at."""
    if sample_rate is not None:
        return int(sample_rate)
    rates = {p.sample_rate for _, p in resolved if p is not None}
    if len(rates) > 1:
        raise ExportError(
            f"the presets run at different sample rates ({sorted(rates)}): give --sample-rate"
        )
    if not rates:
        raise ExportError("no preset gives the sample rate: give --sample-rate")
    return rates.pop()


def input_layouts(inputs: Sequence[KerasInput],
                  layout: LayoutOptions | Mapping[str, Any] | None) -> dict[str, LayoutOptions]:
    """The layout options of each Keras input: one set for all, or a mapping by input name."""
    option_names = {f.name for f in dataclasses.fields(LayoutOptions)}
    if isinstance(layout, Mapping) and not set(layout) <= option_names:
        lay_default = LayoutOptions.of(layout.get("*"))
        return {i.name: LayoutOptions.of(layout.get(i.name, lay_default)) for i in inputs}
    return {i.name: LayoutOptions.of(layout) for i in inputs}


def plan_frontends(
    inputs: Sequence[KerasInput],
    frontend: FrontendArg | Mapping[str, FrontendArg],
    *,
    sample_rate: int | None = None,
    window_s: float | None = None,
    stride_s: float | None = None,
    layout: LayoutOptions | Mapping[str, Any] | None = None,
) -> FrontendPlan:
    """Match every Keras input to a frontend and check it can feed it."""
    choices = input_choices(inputs, frontend)
    resolved = {name: c.resolve() for name, c in choices.items()}
    sr = plan_sample_rate(resolved.values(), sample_rate)
    lay = input_layouts(inputs, layout)

    by_input = {i.name: i for i in inputs}
    readings: dict[str, Reading] = {}
    for name, (spec, preset) in resolved.items():
        inp = by_input[name]
        label = preset.name if preset and preset.frontend == spec else spec.kind
        try:
            spec.validate(sr)
        except CardError as e:
            raise ExportError(f"frontend for input {name!r}: {e}") from None
        if inp.role == "frames" and spec.kind == "raw":
            raise FrontendMismatchError(
                f"Keras input {inp.describe()} takes a sequence of feature frames but the "
                f"frontend gives raw samples{_suggest(inp)}"
            )
        readings[name] = read_input(name, inp.shape, inp.role == "frames", spec, sr, lay[name],
                                    label, window_s)

    # name the distinct frontends: "main" when all inputs share one
    distinct: list[FrontendSpec] = []
    for spec, _ in resolved.values():
        if spec not in distinct:
            distinct.append(spec)
    frontends: dict[str, FrontendSpec] = {}
    presets: dict[str, str | None] = {}
    input_frontend: dict[str, str] = {}
    for inp in inputs:
        spec, preset = resolved[inp.name]
        if len(distinct) == 1:
            fname = "main"
        else:
            fname = next((k for k, v in frontends.items() if v == spec), None) or _safe(inp.name)
        frontends[fname] = spec
        presets[fname] = preset.name if preset else None
        input_frontend[inp.name] = fname

    for inp in inputs:
        if lay[inp.name].framing == "clip":
            spec = frontends[input_frontend[inp.name]]
            if readings[inp.name].role != "window" or spec.kind in ("raw", "embedding"):
                raise FrontendMismatchError(
                    f"Keras input {inp.describe()}: --framing clip re-frames the edges of a "
                    "window of feature frames; this input is "
                    + ("a frame sequence" if readings[inp.name].role == "frames" else
                       f"fed by a {spec.kind} frontend"))
            frontends[CLIP_SAMPLES] = FrontendSpec(kind="raw")  # the window's samples
            presets[CLIP_SAMPLES] = None

    window_inputs = [i for i in inputs if readings[i.name].role != "frames"]
    if not window_inputs:
        return FrontendPlan(sr, frontends, input_frontend, presets, None, None, readings, lay)

    def spec_of(inp: KerasInput) -> FrontendSpec:
        return frontends[input_frontend[inp.name]]

    def misfit(w: float) -> KerasInput | None:
        n = int(round(w * sr))
        for inp in window_inputs:
            want = readings[inp.name].frames
            got = frames_in(n, spec_of(inp), sr)
            if (want is not None and got != want) or got < 1:
                return inp
        return None

    first_preset = next((p for _, p in resolved.values() if p is not None), None)
    sized = [i for i in window_inputs if readings[i.name].frames is not None]
    if window_s is not None:
        bad = misfit(window_s)
        if bad:
            spec = spec_of(bad)
            want = readings[bad.name].frames
            got = frames_in(int(round(window_s * sr)), spec, sr)
            unit = "samples" if spec.kind == "raw" else "frames"
            fix = (f": use --window-s {nice_window_s(want, spec, sr):g}" if want is not None
                   else ": give a longer --window-s")
            raise FrontendMismatchError(
                f"Keras input {bad.describe()} takes {want or 'at least 1'} {unit} but "
                f"window_s={window_s} gives {got} at {sr} Hz{fix}"
            )
    else:
        prefer = (first_preset.window_s,) if first_preset is not None else ()
        if not sized:
            window_s = prefer[0] if prefer else 1.0
        else:
            first = sized[0]
            want = readings[first.name].frames
            assert want is not None
            window_s = nice_window_s(want, spec_of(first), sr, prefer + (1.0,))
            if misfit(window_s) is not None:
                # several inputs: try every exact length of the first one
                lo, hi = window_samples_for(want, spec_of(first), sr)
                window_s = next((n / sr for n in range(lo, hi + 1) if misfit(n / sr) is None),
                                None)
                if window_s is None:
                    raise FrontendMismatchError(
                        "the window inputs "
                        + ", ".join(i.describe() for i in window_inputs)
                        + " do not span the same duration with these frontends: give --window-s"
                    )
        if misfit(window_s) is not None:
            raise FrontendMismatchError(
                f"a {window_s:g} s window gives no frame with these frontends: give --window-s"
            )
    if stride_s is None:
        feature = [spec_of(i) for i in window_inputs if spec_of(i).kind != "raw"]
        hop_spec = feature[0] if feature else spec_of(window_inputs[0])
        wanted = first_preset.stride_s if first_preset is not None else 0.1
        stride_s = stride_for(hop_spec, sr, wanted)
    return FrontendPlan(sr, frontends, input_frontend, presets, window_s, stride_s, readings,
                        lay)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "frontend"


def _norm_from_obj(obj: Any, where: str) -> Normalization:
    try:
        mean = np.asarray(obj["mean"], dtype=np.float64).reshape(-1)
        std = np.asarray(obj["std"], dtype=np.float64).reshape(-1)
    except (KeyError, TypeError, ValueError) as e:
        raise ExportError(f"{where}: needs 'mean' and 'std' arrays ({e})") from None
    return Normalization(mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std))


def load_normalization(path: str | Path, frontend: str | None = None) -> Normalization:
    """Per-bin mean/std from an .npz (arrays `mean`, `std`) or a .json file.

    JSON: {"mean": [...], "std": [...]}, optionally keyed by frontend name.
    """
    p = Path(path)
    if not p.is_file():
        raise ExportError(f"normalization file not found: {p}")
    if p.suffix.lower() == ".npz":
        try:
            with np.load(p) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise ExportError(f"cannot read {p.name} as .npz: {e}") from None
        if frontend and f"{frontend}/mean" in data:
            data = {"mean": data[f"{frontend}/mean"], "std": data[f"{frontend}/std"]}
        return _norm_from_obj(data, p.name)
    try:
        obj = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ExportError(f"cannot read {p.name} as JSON: {e}") from None
    if isinstance(obj, dict) and "mean" not in obj and frontend and frontend in obj:
        obj = obj[frontend]
    return _norm_from_obj(obj, p.name)


NormArg = str | Path | Normalization | None


def resolve_normalization(
    value: NormArg | Mapping[str, NormArg], frontends: Mapping[str, FrontendSpec]
) -> dict[str, Normalization]:
    if value is None:
        return {}
    items = dict(value) if isinstance(value, Mapping) else {"": value}
    out: dict[str, Normalization] = {}
    for key, v in items.items():
        if v is None:
            continue
        name = key
        if not name:
            if len(frontends) != 1:
                raise ExportError(
                    f"the card has several frontends ({', '.join(frontends)}): give the "
                    "normalization per frontend (NAME=FILE)"
                )
            name = next(iter(frontends))
        if name not in frontends:
            raise ExportError(
                f"normalization for unknown frontend {name!r} (frontends: {', '.join(frontends)})"
            )
        out[name] = v if isinstance(v, Normalization) else load_normalization(v, name)
    return out


def resolve_smoothing(value: SmoothingSpec | Mapping[str, Any] | None) -> SmoothingSpec:
    if value is None:
        return SmoothingSpec()
    if isinstance(value, SmoothingSpec):
        return value
    try:
        return dataclasses.replace(SmoothingSpec(), **dict(value))
    except TypeError as e:
        raise ExportError(f"bad smoothing setting: {e}") from None


def resolve_vad(
    value: bool | VadSpec | Mapping[str, Any] | None, sample_rate: int, warnings: list[str]
) -> VadSpec:
    if isinstance(value, VadSpec):
        return value
    if isinstance(value, bool):
        return VadSpec(enabled=value)
    if value is None:
        if sample_rate not in VAD_RATES:
            warnings.append(f"VAD off: webrtcvad cannot run at {sample_rate} Hz")
            return VadSpec(enabled=False)
        return VadSpec()
    try:
        return dataclasses.replace(VadSpec(), **dict(value))
    except TypeError as e:
        raise ExportError(f"bad VAD setting: {e}") from None
