"""The per-hop replay attributes stages and strides the way the engine runs them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hark.bench import stages
from hark.bench.audio import synth
from hark.live.engine import EngineOptions
from hark.live.model import OnnxModel


def test_per_decision_groups_hops_by_decision() -> None:
    feed = np.array([1.0, 1.0, 1.0, 5.0, 1.0, 1.0, 7.0, 2.0])
    decisions = np.array([0, 0, 0, 1, 0, 0, 1, 2])
    np.testing.assert_allclose(stages.per_decision(feed, decisions), [8.0, 9.0, 1.0, 1.0])
    ran = np.array([0, 0, 0, 1, 0, 0, 0, 1], dtype=bool)  # the second stride was gated
    np.testing.assert_allclose(stages.per_decision(feed, decisions, ran), [8.0, 1.0, 1.0])


def test_window_model_strides_are_the_cnn_hops(bench_models: dict[str, Path]) -> None:
    model = OnnxModel.load(bench_models["cnn"])  # 1 s window, 0.1 s stride, 8 kHz, no VAD
    x = synth(3.0, 8000)
    rep = stages.replay([model], x, 80, EngineOptions())
    ran = rep.calls[:, 0] > 0
    assert ran.sum() == 21 == rep.decisions[:, 0].sum()  # (3.0 - 1.0) / 0.1 + 1 windows
    first = int(np.flatnonzero(ran)[0])
    assert first == 99  # the hop that completes the first 1 s window
    assert np.all(np.diff(np.flatnonzero(ran)) == 10)
    summary = stages.summarize(rep, 0) | stages.summarize_window(rep, 0)
    assert summary["per_stride_us"]["feed"]["n"] == 21
    assert summary["other_hops_us"]["feed"]["n"] == len(rep.times) - 21
    assert summary["per_decision_us"]["n"] == 21
    assert np.all(rep.column("feed") >= rep.column("stages_sum"))


def test_frame_model_decides_every_hop(bench_models: dict[str, Path]) -> None:
    model = OnnxModel.load(bench_models["lstm"])
    rep = stages.replay([model], synth(1.0, 16000), 160, EngineOptions())
    # frames start once a 25 ms window is complete: hop 3 (480 samples) onwards, one per hop
    assert rep.decisions[:2, 0].tolist() == [0, 0]
    assert np.all(rep.decisions[2:, 0] == 1)
    s = stages.summarize(rep, 0)
    assert s["hops"] == 100 and s["decisions"] == 98 and s["rtf"] > 0


def test_bare_call_is_the_runners_own_call(bench_models: dict[str, Path]) -> None:
    """feed / bare call divides by the call the frame runner makes: the bound one on the CPU."""
    model = OnnxModel.load(bench_models["lstm"])
    bare = stages.bare_calls(model, synth(0.5, 16000), 40)
    assert bare["what"].startswith("run_with_iobinding on bound buffers")
    assert bare["wall"].shape == bare["cpu"].shape == (40,)
    assert np.all(bare["wall"] > 0)
    rep = stages.replay([model], synth(0.5, 16000), 160, EngineOptions())
    ov = stages.overhead(rep, bare)
    assert ov["what"] == bare["what"] and ov["feed_over_bare_wall"] > 0
