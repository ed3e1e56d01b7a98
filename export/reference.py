"""Parity from raw audio: the user's own feature code against what hark's runtime would feed.

`--reference-features FILE.py:FUNC` names FUNC(audio, sample_rate) -> the model's input for one
window (the notebook's feature code). On seeded probe audio (speech-like harmonic sounds with
moving formants, noise, a short burst in silence) hark runs its streaming frontend and the
runtime's own window assembly (the live engine's WindowRunner, the exact tensor it would hand
onnxruntime) and the reference runs FUNC; both tensors then go through the exported graph.
The feature and posterior differences go into the card; above tolerance the export fails,
naming the option that differs when the numbers show it (a 4.34x ratio is dB against ln).

`fit_features` searches frontend and layout options against the reference and returns the
options that match, as a command line.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hark.export.errors import ExportError, ReferenceMismatchError
from hark.export.layout import LayoutOptions
from hark.live.card import FrontendSpec, InputSpec, ModelCard

FEATURE_TOLERANCE = 1e-3  # max |hark - reference| / max |reference| over the probes
POSTERIOR_TOLERANCE = 1e-3  # max |posterior difference|

ReferenceFn = Callable[[np.ndarray, int], Any]


def load_reference(spec: str | ReferenceFn) -> ReferenceFn:
    """FILE.py:FUNC -> the function (a callable is returned as it is)."""
    if callable(spec):
        return spec
    path, sep, func = str(spec).rpartition(":")
    if not sep or not path or not func:
        raise ExportError(f"--reference-features {spec!r}: expected FILE.py:FUNC")
    p = Path(path)
    if not p.is_file() or p.suffix != ".py":
        raise ExportError(f"--reference-features: {p} is not a Python file")
    from hark.export.loading import import_user_file

    module = import_user_file(p, "_hark_reference", ExportError, "--reference-features: ", "",
                              str)
    fn = getattr(module, func, None)
    if not callable(fn):
        raise ExportError(f"--reference-features: {p.name} has no function {func!r}")
    return fn


def probe_signals(sample_rate: int, n: int, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Seeded probe windows of n samples: voiced sounds of several lengths, and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sample_rate
    out: list[tuple[str, np.ndarray]] = []

    def voiced(f0: float, length: int, start: int) -> np.ndarray:
        x = np.zeros(n)
        tt = t[:length]
        pitch = f0 * (1 + 0.1 * np.sin(2 * np.pi * 3 * tt))
        phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
        formants = (500 + 300 * np.sin(2 * np.pi * 2 * tt), 1500 + 500 * np.cos(2 * np.pi * tt))
        sig = np.zeros(length)
        for h in range(1, 30):
            fh = h * pitch
            amp = sum(np.exp(-(((fh - f) / 150.0) ** 2)) for f in formants) / h
            sig += amp * np.sin(h * phase) * (fh < sample_rate / 2)
        env = np.hanning(length) if length > 2 else np.ones(length)
        x[start : start + length] = sig * env
        return x

    out.append(("voiced, the whole window", 0.3 * voiced(120.0, n, 0)))
    out.append(("voiced, half the window", 0.2 * voiced(210.0, n // 2, n // 4)))
    out.append(("burst of 20% in silence",
                0.3 * voiced(160.0, max(8, n // 5), n // 3) + 1e-4 * rng.standard_normal(n)))
    out.append(("white noise", 0.1 * rng.standard_normal(n)))
    pink = np.cumsum(rng.standard_normal(n))
    pink -= np.convolve(pink, np.ones(64) / 64, mode="same")
    out.append(("low-passed noise", 0.05 * pink / (np.std(pink) + 1e-12)))
    return [(name, x.astype(np.float32)) for name, x in out]


class _Recorder:
    """An onnxruntime session that remembers the feeds the runtime hands it."""

    def __init__(self, session: Any, outputs: int) -> None:
        self.session = session
        self.outputs = outputs
        self.feeds: list[dict[str, np.ndarray]] = []

    def run(self, names: Sequence[str], feeds: Mapping[str, np.ndarray]) -> list[Any]:
        self.feeds.append({k: np.array(v) for k, v in feeds.items()})
        if self.session is None:  # searching: only the tensors matter
            return [np.zeros((1, self.outputs), dtype=np.float32) for _ in names]
        return list(self.session.run(list(names), dict(feeds)))

    def get_inputs(self) -> Any:
        return self.session.get_inputs() if self.session is not None else []


def runtime_tensor(card: ModelCard, session: Any, audio: np.ndarray) -> dict[str, np.ndarray]:
    """The tensors hark's live engine feeds for the first window of `audio` (then silence)."""
    sr = card.sample_rate
    extra = 0
    for inp in card.inputs:
        fe = card.frontends[inp.frontend]
        extra = max(extra, fe.frame_extent(sr) if fe.kind != "raw" else 0)
    stream = np.concatenate((audio.astype(np.float32),
                             np.zeros(extra + 2 * int(round(sr * (card.stride_s or 0.1))),
                                      np.float32)))
    feeds = runtime_tensors(card, session, stream)
    if not feeds:
        raise ExportError("the runtime produced no window from the probe audio")
    return feeds[0]


def runtime_tensors(card: ModelCard, session: Any,
                    stream: np.ndarray) -> list[dict[str, np.ndarray]]:
    """The tensors hark's live engine feeds for every decision of `stream`, in order."""
    from hark.live.engine import Engine, EngineOptions
    from hark.live.model import OnnxModel

    rec = _Recorder(session, len(card.labels))
    model = OnnxModel(Path(f"{card.name}.onnx"), card, rec, card.output or "posteriors")
    engine = Engine([model], EngineOptions(vad=False))
    try:
        engine.feed(stream.astype(np.float32))
    except ExportError:
        raise
    except Exception as e:  # the runtime cannot build this input: say so in one line
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise ExportError(
            f"hark's runtime could not build the input {card.inputs[0].name!r} "
            f"({type(e).__name__}: {first})"
        ) from None
    return rec.feeds


# where the mid-stream windows start, in window lengths: each straddles a probe boundary
MID_STREAM_STARTS = (0.5, 1.4, 2.75)


def compare_mid_stream(card: ModelCard, fn: ReferenceFn,
                       probes: Sequence[tuple[str, np.ndarray]]) -> Comparison:
    """Windows in the middle of one continuous stream of the probes against fn on their audio.

    A stream's first window is padded at its start as a clip is; a window in the middle has
    real audio around it, which clip-framed features (librosa center=True) never see.
    """
    inp = card.inputs[0]
    sr = card.sample_rate
    n = int(round((card.window_s or 0.0) * sr))
    stride = int(round((card.stride_s or 0.1) * sr))
    stream = np.concatenate([x for _, x in probes]).astype(np.float32)
    ks = sorted({int(f * n) // stride for f in MID_STREAM_STARTS
                 if (int(f * n) // stride) * stride + n <= stream.size})
    if not ks:
        return Comparison([], [], [])
    fe = card.frontends[inp.frontend]
    extra = fe.frame_extent(sr) if fe.kind != "raw" else 0
    end = ks[-1] * stride + n + extra + stride
    feeds = runtime_tensors(card, None, stream[:end])
    out = Comparison([], [], [])
    for k in ks:
        if k >= len(feeds):
            raise ExportError(f"the runtime produced {len(feeds)} windows of a stream that has "
                              f"{k + 1}")
        h = feeds[k][inp.name][0]
        clip = stream[k * stride : k * stride + n]
        out.names.append(f"mid-stream window at {k * stride / sr:.2f} s")
        out.hark.append(h)
        out.reference.append(_fit_shape(_reference_array(fn, clip, sr), h.shape))
    return out


def _reference_array(fn: ReferenceFn, audio: np.ndarray, sr: int) -> np.ndarray:
    try:
        return np.asarray(fn(audio.astype(np.float32).copy(), sr), dtype=np.float32)
    except Exception as e:  # the user's code
        raise ExportError(f"--reference-features raised {type(e).__name__}: {e}") from None


def _fit_shape(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The reference's array as the model input's shape, or why it cannot be."""
    if int(np.prod(x.shape)) != int(np.prod(shape)):
        raise ReferenceMismatchError(
            f"the reference features have shape {x.shape} ({x.size} values) but the model "
            f"input is {shape}: it must return the input for one window"
        )
    return x.reshape(shape)


@dataclass
class Comparison:
    """hark's tensors and the reference's on each probe, and how far apart they are."""

    names: list[str]
    hark: list[np.ndarray]
    reference: list[np.ndarray]

    @property
    def feature_rel(self) -> float:
        worst = 0.0
        for h, r in zip(self.hark, self.reference, strict=True):
            scale = max(float(np.max(np.abs(r))), 1e-12)
            worst = max(worst, float(np.max(np.abs(h - r))) / scale)
        return worst

    @property
    def feature_abs(self) -> float:
        return max(float(np.max(np.abs(h - r)))
                   for h, r in zip(self.hark, self.reference, strict=True))


def compare(card: ModelCard, session: Any, fn: ReferenceFn,
            probes: Sequence[tuple[str, np.ndarray]],
            cache: dict[tuple[str, int], np.ndarray] | None = None) -> Comparison:
    """Both tensors for each probe window (single-input window models).

    cache keeps the reference's answers by (probe, length): a search calls it once per probe.
    """
    if len(card.inputs) != 1 or card.inputs[0].role == "frames":
        raise ExportError("--reference-features needs a single-input window (or raw) model")
    inp = card.inputs[0]
    out = Comparison([], [], [])
    for name, audio in probes:
        feeds = runtime_tensor(card, session, audio)
        h = feeds[inp.name][0]
        out.names.append(name)
        out.hark.append(h)
        key = (name, audio.size)
        if cache is None or key not in cache:
            ref = _reference_array(fn, audio, card.sample_rate)
            if cache is not None:
                cache[key] = ref
        else:
            ref = cache[key]
        out.reference.append(_fit_shape(ref, h.shape))
    return out


def diagnose(cmp: Comparison, inp: InputSpec, spec: FrontendSpec) -> str:
    """The option that differs, when the numbers show it; else where they differ."""
    h = np.concatenate([x.reshape(-1) for x in cmp.hark]).astype(np.float64)
    r = np.concatenate([x.reshape(-1) for x in cmp.reference]).astype(np.float64)
    ln10 = np.log(10.0)
    logs = {"ln": 1.0, "log10": 1 / ln10, "db": 10 / ln10, "db_amplitude": 20 / ln10}
    if spec.log in logs and spec.kind != "specgram":
        big = np.abs(h) > 1e-3 * max(np.max(np.abs(h)), 1e-12)
        if big.any():
            ratio = float(np.median(r[big] / h[big]))
            for name, scale in logs.items():
                if name != spec.log and abs(ratio - scale / logs[spec.log]) < 0.02 * abs(
                    scale / logs[spec.log]
                ):
                    return (f"your features are {_log_word(name)}, hark's are "
                            f"{_log_word(spec.log)}: add --frontend ...,log={name} "
                            f"(features {ratio:.3g}x hark's)")
    if spec.log != "none" and np.all(r >= 0) and np.allclose(np.log(r + 1e-12), h, atol=0.1):
        return "your features are linear (no log), hark's are logs: add log=none"
    if spec.log == "none" and np.allclose(np.log(np.maximum(h, 1e-12)), r, atol=0.1):
        return "your features are ln, hark's are linear: add log=ln"
    ha, ra = cmp.hark[0], cmp.reference[0]
    if ha.ndim >= 2 and ha.shape[0] != ha.shape[1]:
        swapped = np.swapaxes(ha, 0, 1)
        if swapped.size == ra.size:
            other = "bins_frames" if inp.layout == "frames_bins" else "frames_bins"
            try:
                if np.allclose(swapped.reshape(ra.shape), ra, rtol=1e-3,
                               atol=1e-3 * np.max(np.abs(ra))):
                    return f"your features are transposed: add --layout {other}"
            except ValueError:
                pass
    d = r - h
    spread = max(float(np.std(r)), 1e-12)
    if np.std(d) < 1e-3 * spread and abs(np.mean(d)) > 1e-3 * np.max(np.abs(r)):
        return (f"your features are hark's plus a constant {np.mean(d):.4g} (a dB reference, "
                "log floor or normalisation differs)")
    worst = int(np.argmax([np.max(np.abs(a - b)) for a, b in
                           zip(cmp.hark, cmp.reference, strict=True)]))
    diff = np.abs(cmp.hark[worst] - cmp.reference[worst])
    where = np.unravel_index(int(np.argmax(diff)), diff.shape)
    return (f"the largest difference is on probe '{cmp.names[worst]}' at index "
            f"{tuple(int(i) for i in where)} of {diff.shape}: hark "
            f"{cmp.hark[worst][where]:.5g}, yours {cmp.reference[worst][where]:.5g}; try "
            "--fit-features")


def _log_word(name: str) -> str:
    return {"ln": "ln (natural log)", "log10": "log10", "db": "10*log10 (dB of power)",
            "db_amplitude": "20*log10 (dB of amplitude)", "none": "linear"}.get(name, name)


def measure(card: ModelCard, session: Any, fn: ReferenceFn, *,
            feature_tolerance: float = FEATURE_TOLERANCE,
            posterior_tolerance: float = POSTERIOR_TOLERANCE,
            seed: int = 0) -> dict[str, Any]:
    """The card's reference_parity entry; raises ReferenceMismatchError above tolerance."""
    inp = card.inputs[0]
    n = int(round((card.window_s or 0.0) * card.sample_rate))
    probes = probe_signals(card.sample_rate, n, seed)
    first = compare(card, session, fn, probes)
    mid = compare_mid_stream(card, fn, probes)
    cmp = Comparison(first.names + mid.names, first.hark + mid.hark,
                     first.reference + mid.reference)
    output = card.output or "posteriors"
    post = []
    for h, r in zip(cmp.hark, cmp.reference, strict=True):
        ph = session.run([output], {inp.name: h[None]})[0]  # what the runner fed
        pr = session.run([output], {inp.name: r[None]})[0]
        post.append(float(np.max(np.abs(np.asarray(ph) - np.asarray(pr)))))
    result = {
        "probes": [{"probe": name, "feature_max_abs_diff": float(np.max(np.abs(h - r))),
                    "feature_max_abs": float(np.max(np.abs(r))), "posterior_max_abs_diff": p}
                   for name, h, r, p in zip(cmp.names, cmp.hark, cmp.reference, post,
                                            strict=True)],
        "feature_max_rel_diff": cmp.feature_rel,
        "first_window_feature_max_rel_diff": first.feature_rel,
        "mid_stream_feature_max_rel_diff": mid.feature_rel if mid.names else None,
        "framing": inp.framing,
        "posterior_max_abs_diff": max(post),
        "feature_tolerance": feature_tolerance,
        "posterior_tolerance": posterior_tolerance,
        "window_samples": n,
        "seed": seed,
    }
    result["passed"] = bool(cmp.feature_rel <= feature_tolerance
                            and max(post) <= posterior_tolerance)
    if not result["passed"]:
        fe = card.frontends[inp.frontend]
        n_first = len(first.names)
        if first.feature_rel <= feature_tolerance and max(post[:n_first]) <= posterior_tolerance:
            why = ("a stream's first window matches, windows in the middle of a stream do not")
            if fe.center and inp.framing != "clip":
                why += (": your features frame each clip on its own (center=True pads both "
                        "ends of the clip), hark's edge frames see the audio around the window; "
                        "add --framing clip")
            else:
                why += f"; {diagnose(mid, inp, fe)}"
        else:
            why = diagnose(cmp, inp, fe)
        raise ReferenceMismatchError(
            f"hark's features differ from your reference features: up to "
            f"{cmp.feature_rel:.2e} of their range (tolerance {feature_tolerance:.0e}), "
            f"posteriors up to {max(post):.2e} (tolerance {posterior_tolerance:.0e}); {why}"
        )
    return result


# ---- the search ----------------------------------------------------------------------------
# frontend fields tried, in order; the base spec's own value is always tried first
SEARCH_SPACE: dict[str, tuple[Any, ...]] = {
    "log": ("ln", "db", "log10", "db_amplitude", "none"),
    "center": (False, True),
    "power": (2.0, 1.0),
    "top_db": (None, 80.0),
    "floor_mode": ("add", "max"),
    "mel_scale": ("slaney", "htk"),
}
# layout options tried on top of what the user gave (an option given is never changed)
LAYOUT_SPACE: tuple[dict[str, Any], ...] = (
    {"layout": "frames_bins"}, {"layout": "bins_frames"},
    {"pool": "mean"}, {"pool": "mean_std"}, {"pool": "bins_mean"},
)
_LAYOUT_FLAGS = {"layout": "--layout", "pool": "--pool", "channels": "--channels",
                 "channel_axis": "--channel-axis", "window_norm": "--window-norm",
                 "framing": "--framing"}


def layout_candidates(given: LayoutOptions) -> list[LayoutOptions]:
    """The user's layout options, then each of LAYOUT_SPACE with the user's options kept."""
    fixed = {k: v for k, v in dataclasses.asdict(given).items() if v is not None}
    out = [given]
    for extra in LAYOUT_SPACE:
        cand = LayoutOptions(**{**extra, **fixed})
        if cand not in out:
            out.append(cand)
    return out


@dataclass
class Fit:
    """The best frontend/layout found and how close it came."""

    spec: FrontendSpec
    layout: LayoutOptions
    feature_rel: float
    changed: dict[str, Any]  # frontend fields and layout options that differ from the given
    tried: int

    def command_line(self) -> str:
        layout_fields = {f.name for f in dataclasses.fields(LayoutOptions)}
        parts = []
        fe = ",".join(f"{k}={_fmt(v)}" for k, v in self.changed.items()
                      if k not in layout_fields)
        if fe:
            parts.append(f"--frontend {fe}")
        for k, v in self.changed.items():
            if k == "flatten":
                parts.append("--flatten" if v else "--no-flatten")
            elif k in layout_fields:
                parts.append(f"{_LAYOUT_FLAGS[k]} {v}")
        return " ".join(parts)


def _fmt(v: Any) -> str:
    return "none" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))


def fit_features(base: FrontendSpec, layouts: Sequence[LayoutOptions],
                 make_card: Callable[[FrontendSpec, LayoutOptions], ModelCard | None],
                 fn: ReferenceFn, *, sample_rate: int, seed: int = 0,
                 fields: Iterable[str] | None = None,
                 tolerance: float = FEATURE_TOLERANCE) -> Fit:
    """Search SEARCH_SPACE x layouts for the options whose tensors match the reference.

    make_card(spec, layout) gives the card for one candidate (None when it cannot feed the
    model); layouts[0] is what the user gave. The runtime's window assembly runs with a
    recording stand-in for the model: only the tensors are compared (the reference is called
    once per probe and window length); the chosen candidate is then verified end to end by
    `measure`.
    """
    names = [f for f in (fields or SEARCH_SPACE) if f in SEARCH_SPACE]
    axes = [tuple(dict.fromkeys((getattr(base, f), *SEARCH_SPACE[f]))) for f in names]
    probes: dict[int, list[tuple[str, np.ndarray]]] = {}
    answers: dict[tuple[str, int], np.ndarray] = {}
    best: Fit | None = None
    tried = 0
    given = layouts[0]
    for values in itertools.product(*axes):
        try:
            spec = dataclasses.replace(base, **dict(zip(names, values, strict=True)))
            spec.validate(sample_rate)
        except Exception:  # an invalid combination (e.g. top_db without dB)
            continue
        for layout in layouts:
            cand = make_card(spec, layout)
            if cand is None:
                continue
            tried += 1
            n = int(round((cand.window_s or 0.0) * cand.sample_rate))
            if n not in probes:
                probes[n] = probe_signals(cand.sample_rate, n, seed)[:2]
            try:
                cmp = compare(cand, None, fn, probes[n], answers)
            except ReferenceMismatchError:
                continue
            rel = cmp.feature_rel
            if best is None or rel < best.feature_rel:
                changed: dict[str, Any] = {f: v for f, v in zip(names, values, strict=True)
                                           if getattr(base, f) != v}
                changed.update({k: v for k, v in dataclasses.asdict(layout).items()
                                if v != getattr(given, k)})
                best = Fit(spec, layout, rel, changed, tried)
            if rel <= tolerance * 1e-2:
                break
        if best is not None and best.feature_rel <= tolerance * 1e-2:
            break
    if best is None:
        raise ExportError("--fit-features found no frontend and layout option that can feed "
                          "this model")
    best.tried = tried
    return best
