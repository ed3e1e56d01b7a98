"""Load-time checks: the card's schema and caps, the card against the graph by a dry run, NaN.

Every case is one line naming the card (or model) file and the field, raised before anything
is allocated or run; the CLI turns it into `hark: error: ...` and exit 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import soundfile as sf
from onnx import TensorProto, helper, numpy_helper

from hark.live.card import CardError, InputSpec, ModelCard, SmoothingSpec, StateSpec, VadSpec
from hark.live.model import OnnxModel
from tests import onnx_models
from tests.onnx_models import LOGMEL

RATE = 16000


def _dense_model(
    out_dir: Path,
    name: str = "dense",
    labels: tuple[str, ...] = ("a", "b", "c"),
    in_type: int = TensorProto.FLOAT,
    frames_dims: list[Any] | None = None,
    out_dims: list[Any] | None = None,
    classes: int | None = None,
    flatten: bool = False,
) -> Path:
    """frames (1, T, 40) -> MatMul -> Softmax; the input type and declared dims can lie."""
    c = classes or len(labels)
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Cast", ["frames"], ["f32"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["f32", "W"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["p" if flatten else "posteriors"], axis=-1),
    ]
    inits = [numpy_helper.from_array(rng.normal(0, 0.1, (40, c)).astype(np.float32), "W")]
    if flatten:  # (1, T, c) -> (1, 1, T * c): the width is unknown until the graph runs
        nodes.append(helper.make_node("Reshape", ["p", "flat"], ["posteriors"]))
        inits.append(numpy_helper.from_array(np.array([1, 1, -1], np.int64), "flat"))
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("frames", in_type, frames_dims or [1, "T", 40])],
        [helper.make_tensor_value_info("posteriors", TensorProto.FLOAT, out_dims or [1, "T", c])],
        inits,
    )
    card = ModelCard(name=name, labels=labels, sample_rate=RATE, frontends={"main": LOGMEL},
                     inputs=(InputSpec("frames", "frames", (1, None, 40)),),
                     vad=VadSpec(enabled=False))
    return _save(graph, card, out_dir)


def _save(graph: onnx.GraphProto, card: ModelCard, out_dir: Path, **save: Any) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{card.name}.onnx"
    onnx.save(model, str(path), **save)
    card.save(path.with_suffix(".json"))
    return path


def _one_line_error(path: Path, kind: type[Exception] = CardError) -> str:
    with pytest.raises(kind) as e:
        OnnxModel.load(path)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def _edit_card(path: Path, change: Callable[[dict], object]) -> Path:
    card = path.with_suffix(".json")
    d = json.loads(card.read_text())
    change(d)
    card.write_text(json.dumps(d))
    return path


def _hark(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hark.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.fixture()
def lstm(tmp_path: Path) -> Path:
    return onnx_models.lstm_frame_model(tmp_path / "lstm")


# ---- 1. the schema: JSON types, NaN, unknown fields --------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["frontends"]["main"].update(hop_ms="10"),
         "frontends.main.hop_ms: input should be a valid number (got \"10\")"),
        (lambda d: d.update(labels="abc"), "labels: input should be a valid array"),
        (lambda d: d["vad"].update(enabled="false"),
         "vad.enabled: input should be a valid boolean"),
        (lambda d: d.update(smoothng=d["smoothing"]),
         "unknown field 'smoothng' (did you mean 'smoothing'?)"),
        (lambda d: d["frontends"]["main"].update(hop_mss=10),
         "unknown field 'hop_mss' in frontends.main (did you mean 'hop_ms'?)"),
        (lambda d: d["state"][0].update(shap=[1, 1, 8]),
         "unknown field 'shap' in state[0] (did you mean 'shape'?)"),
        (lambda d: d["frontends"]["main"].update(n_fft=512.5), "frontends.main.n_fft: input should "
         "be a valid integer"),
        (lambda d: d["inputs"][0].update(shape=[1, "T", 40]), "inputs[0].shape[1]"),
        (lambda d: d.update(normalization={"main": {"mean": [float("nan")] * 40,
                                                    "std": [1.0] * 40}}),
         "normalization.main.mean[0]: input should be a finite number"),
        (lambda d: d["smoothing"].update(threshold_on=float("inf")),
         "smoothing.threshold_on: input should be a finite number"),
        (lambda d: d["smoothing"].update(method="mean"), "smoothing.method: input should be"),
        (lambda d: d.pop("sample_rate"), "sample_rate: required field missing"),
        (lambda d: d.update(schema="1"), "card schema 1 is not supported"),
    ],
)
def test_schema_errors_name_the_card_and_the_field(lstm: Path, change: Callable, message: str
                                                   ) -> None:
    msg = _one_line_error(_edit_card(lstm, change))
    assert msg.startswith(f"{lstm.with_suffix('.json')}: ")
    assert message in msg


def test_normalization_nan_in_a_card_built_in_python_is_refused(lstm: Path) -> None:
    from dataclasses import replace

    from hark.live.card import Normalization, load_card

    card = load_card(lstm.with_suffix(".json"))
    bad = replace(card, normalization={"main": Normalization((float("nan"),) * 40, (1.0,) * 40)})
    with pytest.raises(CardError, match="normalization 'main' holds NaN or infinity"):
        bad.validate()


def test_several_faults_report_the_first_and_count_the_rest(lstm: Path) -> None:
    msg = _one_line_error(_edit_card(lstm, lambda d: d.update(labels="abc", sample_rate="16000")))
    assert "(and 1 more)" in msg


# ---- 2. resource caps ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["frontends"]["main"].update(n_fft=10**9),
         "frontends.main.n_fft: 1e+09 is outside 1..16384"),
        (lambda d: d["frontends"]["main"].update(window_ms=1e6),
         "frontends.main.window_ms: 1e+06 is outside 0.1..1000"),
        (lambda d: (d.update(sample_rate=48000), d["frontends"]["main"].update(window_ms=900.0)),
         "frontends.main.window_ms: 900.0 ms is 43200 samples at 48000 Hz (at most 16384)"),
        (lambda d: d["frontends"]["main"].update(hop_ms=0.0625), "frontends.main.hop_ms: 0.0625"),
        (lambda d: d["smoothing"].update(median_frames=10**9),
         "smoothing.median_frames: 1e+09 is outside 1..999"),
        (lambda d: d["smoothing"].update(min_on_ms=1e12), "smoothing.min_on_ms"),
        (lambda d: d.update(sample_rate=10**9), "sample_rate: 1e+09 is outside 1000..192000"),
        (lambda d: [s.update(shape=[1, 1, 10**7]) for s in d["state"]],
         "state[0].shape: [1, 1, 10000000] holds more than"),
        (lambda d: d["state"][0].update(shape=[1, 0, 8]), "state[0].shape: [1, 0, 8] has a dim"),
        (lambda d: d.update(labels=[f"l{i}" for i in range(20000)]), "labels: 20000 labels"),
    ],
)
def test_caps_are_checked_before_anything_is_allocated(lstm: Path, change: Callable, message: str
                                                       ) -> None:
    msg = _one_line_error(_edit_card(lstm, change))
    assert message in msg, msg


def test_window_model_caps(tmp_path: Path) -> None:
    path = onnx_models.conv_window_model(tmp_path)
    msg = _one_line_error(_edit_card(path, lambda d: d.update(window_s=1e7)))
    assert "window_s: 1e+07 is outside 0.01..10" in msg
    msg = _one_line_error(_edit_card(path, lambda d: d.update(window_s=1.0, stride_s=1e-5)))
    assert "stride_s: 1e-05 is outside" in msg


def test_cli_refuses_a_huge_median_filter_quickly(lstm: Path) -> None:
    _edit_card(lstm, lambda d: d["smoothing"].update(median_frames=10**9))
    r = _hark("replay", "--no-ui", "--model", lstm)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"hark: error: {lstm.with_suffix('.json')}: smoothing.median_frames: 1e+09 is outside "
        "1..999 (median filter length (frames))"]
    assert r.stdout == ""


def test_cli_names_the_typo(lstm: Path) -> None:
    _edit_card(lstm, lambda d: d.update(smoothng=d.pop("smoothing")))
    r = _hark("replay", "--no-ui", "--model", lstm)
    assert r.returncode == 2
    assert r.stderr.strip() == (f"hark: error: {lstm.with_suffix('.json')}: unknown field "
                                "'smoothng' (did you mean 'smoothing'?)")


# ---- 3. the card against the graph --------------------------------------------------------------
def test_int64_and_double_inputs_are_one_line(tmp_path: Path) -> None:
    for t, word in ((TensorProto.INT64, "int64"), (TensorProto.DOUBLE, "float64 (double)")):
        path = _dense_model(tmp_path / word.split()[0], in_type=t)
        msg = _one_line_error(path)
        assert f"input 'frames' is {word} in the model; hark feeds float32" in msg
        assert msg.startswith(f"{path} does not match its card: ")


def test_state_shape_that_differs_from_the_graph(lstm: Path) -> None:
    msg = _one_line_error(_edit_card(lstm, lambda d: [s.update(shape=[1, 1, 16])
                                                      for s in d["state"]]))
    assert "state 'h_in' is [1, 1, 16] in the card but [1, 1, 8] in the model" in msg


def test_state_shape_against_dynamic_graph_dims_is_caught_by_the_dry_run(tmp_path: Path) -> None:
    """The graph declares its state (1, batch, hidden) with names only: the dry run decides."""
    path = onnx_models.lstm_frame_model(tmp_path)
    m = onnx.load(str(path))
    for vi in [*m.graph.input, *m.graph.output]:
        if vi.name != "frames" and vi.name != "posteriors":
            for k, name in ((1, "batch"), (2, "hidden")):
                dim = vi.type.tensor_type.shape.dim[k]
                dim.Clear()
                dim.dim_param = name
    onnx.save(m, str(path))
    OnnxModel.load(path)  # the card's (1, 1, 8) fits
    msg = _one_line_error(_edit_card(path, lambda d: [s.update(shape=[1, 1, 16])
                                                      for s in d["state"]]))
    assert "a dry run with the card's shapes fails:" in msg


def test_dynamic_output_width_of_the_wrong_size(tmp_path: Path) -> None:
    """Declared (1, 1, C) with C a name: only running it shows it gives 3 values for 2 labels."""
    path = _dense_model(tmp_path, labels=("a", "b"), classes=3, out_dims=[1, 1, "C"],
                        flatten=True)
    msg = _one_line_error(path)
    assert "output 'posteriors' is [1, 1, 3] for one frame: the card has 2 labels" in msg


def test_a_fixed_time_axis_the_runner_cannot_feed(tmp_path: Path) -> None:
    path = _dense_model(tmp_path, frames_dims=[1, 5, 40], out_dims=[1, 5, 3])
    msg = _one_line_error(path)
    assert "a dry run with the card's shapes fails:" in msg


def test_the_dry_run_feeds_what_the_runners_feed(tmp_path: Path) -> None:
    """Every kind of test model loads: frames + state, windows (rank 4), raw, two inputs."""
    for build in (onnx_models.lstm_frame_model, onnx_models.conv_window_model,
                  onnx_models.raw_window_model, onnx_models.fusion_model):
        OnnxModel.load(build(tmp_path / build.__name__))


def _nan_model(out_dir: Path) -> Path:
    """The band detector, but loud high-band input makes every output NaN (sqrt of < 0)."""
    sel, nodes = onnx_models.band_detector_nodes("p")
    nodes += [
        # high band above its threshold: d[..., 1] > 0, sqrt(-d) = NaN, NaN * 0 = NaN everywhere
        helper.make_node("Gather", ["d", "one"], ["d_high"], axis=2),
        helper.make_node("Neg", ["d_high"], ["neg"]),
        helper.make_node("Add", ["neg", "bias"], ["neg_b"]),
        helper.make_node("Sqrt", ["neg_b"], ["root"]),
        helper.make_node("Mul", ["root", "zero"], ["poison"]),
        helper.make_node("Add", ["p", "poison"], ["posteriors"]),
    ]
    inits = [
        numpy_helper.from_array(sel, "sel"),
        numpy_helper.from_array(np.array([-2.0, -6.0], np.float32), "thr"),
        numpy_helper.from_array(np.array([4.0], np.float32), "gain"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
        numpy_helper.from_array(np.array([0.0], np.float32), "bias"),
        numpy_helper.from_array(np.array([0.0], np.float32), "zero"),
    ]
    graph = helper.make_graph(
        nodes, "nanny",
        [helper.make_tensor_value_info("frames", TensorProto.FLOAT, [1, "T", 40])],
        [helper.make_tensor_value_info("posteriors", TensorProto.FLOAT, [1, "T", 2])],
        inits,
    )
    card = ModelCard(name="nanny", labels=("low", "high"), task="multilabel", sample_rate=RATE,
                     frontends={"main": LOGMEL}, inputs=(InputSpec("frames", "frames",
                                                                   (1, None, 40)),),
                     smoothing=SmoothingSpec(method="none", threshold_on=0.5, threshold_off=0.5,
                                             min_on_ms=0.0, min_off_ms=0.0),
                     vad=VadSpec(enabled=False))
    return _save(graph, card, out_dir)


def _tone(hz: float, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_nan_output_at_run_time_is_one_line_and_keeps_written_events(tmp_path: Path) -> None:
    model = _nan_model(tmp_path)
    quiet = np.zeros(int(0.5 * RATE), np.float32)
    # a low tone (an event that finishes), silence, then a loud high tone (NaN from the model)
    audio = np.concatenate([quiet, _tone(200, 0.5), quiet, _tone(7000, 0.5, 0.9), quiet])
    wav = tmp_path / "in.wav"
    sf.write(wav, audio, RATE)
    out = tmp_path / "events.jsonl"
    r = _hark("replay", "--no-ui", "--model", model, wav, "--out", out)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hark: error: model 'nanny' output NaN")
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["label"] for e in kept] == ["low"]
    assert 0.4 < kept[0]["onset"] < 0.6 and kept[0]["offset"] < 1.1


def _sqrt_wave_model(out_dir: Path) -> Path:
    """A raw-window model on sqrt(samples): fine on silence (the dry run), NaN on any tone."""
    n = 8000
    nodes = [
        helper.make_node("Sqrt", ["wave"], ["root"]),
        helper.make_node("ReduceMean", ["root"], ["m"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["m", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["posteriors"], axis=-1),
    ]
    inits = [numpy_helper.from_array(np.array([[1.0, -1.0]], np.float32), "w")]
    graph = helper.make_graph(
        nodes, "sqrtwave",
        [helper.make_tensor_value_info("wave", TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info("posteriors", TensorProto.FLOAT, [1, 2])],
        inits,
    )
    card = ModelCard(name="sqrtwave", labels=("u", "v"), sample_rate=RATE,
                     frontends={"main": onnx_models.RAW}, inputs=(InputSpec("wave", "raw",
                                                                            (1, n)),),
                     window_s=0.5, stride_s=0.05, vad=VadSpec(enabled=False))
    return _save(graph, card, out_dir)


def test_nan_check_covers_window_models(tmp_path: Path) -> None:
    """WindowRunner checks all decisions of a step at once."""
    from hark.live.engine import Engine, EngineOptions
    from hark.live.model import ModelOutputError

    engine = Engine([OnnxModel.load(_sqrt_wave_model(tmp_path))], EngineOptions(vad=False))
    engine.feed(np.zeros(RATE, np.float32))  # silence: sqrt(0) = 0, decisions are made
    with pytest.raises(ModelOutputError, match="model 'sqrtwave' output NaN or infinity"):
        engine.feed(_tone(300, 1.0))


def test_state_spec_dataclasses_still_round_trip(lstm: Path) -> None:
    """Tuples stay tuples after the schema: frozen dataclasses stay hashable (the engine keys on
    frontend specs)."""
    from hark.live.card import load_card

    card = load_card(lstm.with_suffix(".json"))
    assert isinstance(card.state[0], StateSpec) and isinstance(card.state[0].shape, tuple)
    assert hash(card.frontends["main"]) == hash(LOGMEL)


@pytest.mark.parametrize("size", [12, 4000])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_finite_finds_one_bad_value_in_a_row_or_a_window(size: int, bad: float) -> None:
    """The hop's row (summed as Python floats) and a long output (numpy's sum) alike."""
    from hark.live.model import ModelOutputError, check_finite

    post = np.full((1, size), 3e38, dtype=np.float32)  # huge but finite: never an error alone
    if size <= 64:
        check_finite(post, "m")
    post[0, size // 2] = bad
    with pytest.raises(ModelOutputError, match="'m' output NaN or infinity"):
        check_finite(post, "m")
