"""`hark bench` end to end in its short mode: the table, JSON with every field, a PNG, Markdown.

Never asserts an absolute time: the machine is shared. Only that the numbers exist and are sane.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hark.bench.stages import COLUMNS
from hark.bench.timing import STAT_FIELDS
from hark.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TOP = {"schema", "tool", "created", "machine", "config", "models", "together", "capacity",
       "loopback", "startup", "targets", "wall_s", "gate", "decision_latency"}
MACHINE = {"cpu", "cpu_count", "load_avg_1m", "platform", "python", "numpy", "onnxruntime"}
CONFIG = {"models", "audio", "block_ms", "threads", "vad", "quick", "baselines"}
RUN = {"hops", "block_samples", "audio_s", "compute_s", "compute_cpu_s", "rtf", "rtf_cpu",
       "audio_s_per_compute_s", "events", "per_hop_us"}
MODEL = RUN | {"name", "path", "kind", "sample_rate", "labels", "vad", "decision_hop_s",
               "window_s", "stride_s", "algorithmic_latency_s", "hops_with_inference",
               "decisions", "per_decision_us", "per_decision_cpu_us", "per_decision_all_us",
               "baselines", "ratios"}
BASELINE = {"what", "window_s", "per_decision_us", "per_decision_cpu_us"}
TRIAL = {"n", "mode", "hops", "per_hop_us", "per_hop_cpu_us", "per_stream_p50_us",
         "stages_p50_us", "clock", "p99_over_hop", "realtime", "realtime_wall", "wall_s",
         "bare_call_cpu_us", "over_bare_call"}
SEARCH = {"mode", "max_realtime_streams", "first_failing_n", "stopped_by", "trials"}
TARGET = {"target", "model", "goal", "measured", "unit", "met"}


def _dist(d: dict[str, Any], allow_empty: bool = False) -> None:
    assert set(d) == set(STAT_FIELDS)
    if not allow_empty or d["n"]:
        assert d["n"] > 0 and 0 <= d["p50"] <= d["p95"] <= d["p99"] <= d["max"]


def _stage_dists(d: dict[str, Any]) -> None:
    assert set(d) == set(COLUMNS)
    for v in d.values():
        _dist(v, allow_empty=True)


@pytest.fixture(scope="module")
def run(bench_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
        ) -> tuple[dict[str, Any], Path, str]:
    out = tmp_path_factory.mktemp("bench")
    capture = pytest.MonkeyPatch()
    import io
    import sys

    buf = io.StringIO()
    capture.setattr(sys, "stdout", buf)
    try:
        code = main(["bench", "--model", str(bench_models["stack"]), "--model",
                     str(bench_models["cnn"]), "--synth", "3", "--quick", "--baselines", "onnx",
                     "--streams", "max", "--streams-budget", "2", "--json", str(out / "b.json"),
                     "--plot", str(out / "b.png"), "--markdown", str(out / "b.md")])
    finally:
        capture.undo()
    assert code == 0
    return json.loads((out / "b.json").read_text()), out, buf.getvalue()


def test_json_has_every_field(run: tuple[dict[str, Any], Path, str]) -> None:
    r, _, _ = run
    assert set(r) == TOP
    assert set(r["machine"]) == MACHINE and set(r["config"]) >= CONFIG
    assert r["config"]["audio"]["source"] == "synth" and r["config"]["audio"]["duration_s"] == 3.0
    kinds = {m["name"]: m["kind"] for m in r["models"]}
    assert kinds == {"stack": "frame", "cnn": "window"}
    for m in r["models"]:
        assert set(m) - {"per_stride_us", "other_hops_us", "per_inference_hop_us",
                         "overhead"} == MODEL
        _stage_dists(m["per_hop_us"])
        _dist(m["per_decision_us"])
        _dist(m["per_decision_cpu_us"])
        assert m["hops"] == 300 and 0 < m["rtf"] < 1 and m["audio_s_per_compute_s"] > 1
        assert m["algorithmic_latency_s"] > m["decision_hop_s"] > 0
        assert set(m["baselines"]) == {"onnx_window"}
        assert set(m["baselines"]["onnx_window"]) == BASELINE
        _dist(m["baselines"]["onnx_window"]["per_decision_us"])
        assert m["ratios"]["onnx_window_over_engine"] > 0
        if m["kind"] == "frame":
            _stage_dists(m["per_inference_hop_us"])
            assert m["per_inference_hop_us"]["feed"]["n"] == m["hops_with_inference"]
            ov = m["overhead"]
            _dist(ov["bare_call_us"])
            _dist(ov["model_call_in_feed_us"])
            # feed contains the model's call, so it costs more than the call timed inside it
            assert ov["feed_over_model_call_in_feed"] > 1 and ov["feed_over_bare_cpu"] > 0
            assert m["per_hop_us"]["model_call"]["p50"] <= m["per_hop_us"]["inference"]["p50"]
        if m["kind"] == "window":
            _stage_dists(m["per_stride_us"])
            _stage_dists(m["other_hops_us"])
            assert m["per_stride_us"]["feed"]["n"] == m["hops_with_inference"] == 21
    assert r["together"]["models"] == ["stack", "cnn"]
    assert set(r["together"]) == RUN | {"models"}
    _stage_dists(r["together"]["per_hop_us"])
    cap = r["capacity"]
    assert {"pinned_cpu", "hop_us", "criterion", "clock", "models"} <= set(cap)
    by = {c["model"]: c for c in cap["models"]}
    assert by["stack"]["batching"]["ok"] and by["stack"]["batching"]["max_abs_diff"] <= 1e-5
    assert not by["cnn"]["batching"]["ok"] and by["cnn"]["search"]["batched"] is None
    for c in cap["models"]:
        for s in c["search"].values():
            if s is None:
                continue
            assert set(s) == SEARCH and s["trials"]
            for t in s["trials"]:
                assert set(t) == TRIAL
    assert r["loopback"] is None and r["startup"] is None
    names = {t["target"] for t in r["targets"]}
    assert "per-hop compute p50" in names and "compute per stride p50" in names
    assert "concurrent real-time streams, one core" in names
    for t in r["targets"]:
        assert set(t) == TARGET and t["met"] in (True, False, None)


def test_table_is_printed(run: tuple[dict[str, Any], Path, str]) -> None:
    _, _, text = run
    for needle in ("stack  (frame model", "cnn  (window model", "per stride (CNN hop)",
                   "feed (total, wall)", "all models on one engine", "streams on one core",
                   "targets (measured, not asserted)", "(b) ONNX whole window"):
        assert needle in text


def test_plot_is_a_png(run: tuple[dict[str, Any], Path, str]) -> None:
    import matplotlib.image

    _, out, _ = run
    data = (out / "b.png").read_bytes()
    assert data[:8] == PNG_SIGNATURE
    img = matplotlib.image.imread(out / "b.png")
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 400


def test_markdown_for_the_readme(run: tuple[dict[str, Any], Path, str]) -> None:
    _, out, _ = run
    md = (out / "b.md").read_text()
    assert "| model | stage | p50 us |" in md and "| stack (per hop) | feed (total, wall) |" in md
    assert "| target | model | goal | measured | met |" in md


def test_streams_at_n_and_bad_flags(bench_models: dict[str, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "n.json"
    assert main(["bench", "--model", str(bench_models["stack_fixed"]), "--synth", "1",
                 "--quick", "--baselines", "none", "--streams", "3", "--json", str(out)]) == 0
    cap = json.loads(out.read_text())["capacity"]["models"][0]
    assert cap["search"] is None and cap["at_n"]["unbatched"]["n"] == 3
    assert cap["at_n"]["batched"] is None
    assert "fixes the batch axis at 1" in cap["batching"]["reason"]
    assert main(["bench", "--model", str(bench_models["stack_fixed"]), "--synth", "1",
                 "--quick", "--baselines", "none", "--streams", "3", "--relax-batch",
                 "--json", str(out)]) == 0
    cap = json.loads(out.read_text())["capacity"]["models"][0]
    assert cap["batching"]["relaxed"] and cap["at_n"]["batched"]["n"] == 3
    capsys.readouterr()
    assert main(["bench", "--model", str(bench_models["lstm"]), "--synth", "1", "--quick",
                 "--baselines", "none", "--streams", "lots"]) != 0
    assert "--streams takes" in capsys.readouterr().err
    assert main(["bench", "--model", str(bench_models["lstm"]), "--synth", "0"]) != 0
    assert "--synth needs" in capsys.readouterr().err
