"""The capacity search always terminates, and finds the threshold when there is one."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from hark.bench import capacity
from hark.bench.audio import synth
from hark.bench.timing import Dist
from hark.live.engine import EngineOptions
from hark.live.model import OnnxModel


def _trial(n: int, per_stream_us: float, jitter: float = 0.0) -> capacity.Trial:
    cost = n * per_stream_us + jitter
    d = Dist(10, cost, cost, cost, cost, cost)
    return capacity.Trial(n, "fake", 10, d, d, {}, 10_000.0, 0.0)


def test_finds_the_threshold() -> None:
    s = capacity.search(lambda n: _trial(n, 10_000.0 / 37.5), max_n=4096, budget_s=60)
    assert s.best_n == 37 and s.first_fail_n == 38
    assert s.stopped_by == "resolution reached"
    ns = [t.n for t in s.trials]
    assert ns[:6] == [1, 2, 4, 8, 16, 32] and len(ns) < 20


def test_stops_at_max_n_and_when_nothing_passes() -> None:
    s = capacity.search(lambda n: _trial(n, 1.0), max_n=64, budget_s=60)
    assert s.best_n == 64 and s.first_fail_n is None and "max_n" in s.stopped_by
    s = capacity.search(lambda n: _trial(n, 20_000.0), max_n=64, budget_s=60)
    assert s.best_n == 0 and s.first_fail_n == 1 and len(s.trials) == 1


def test_stops_on_the_time_budget() -> None:
    clock = itertools.count(0.0, 7.0)  # every reading of the clock: 7 s later
    s = capacity.search(lambda n: _trial(n, 1.0), max_n=10**9, budget_s=60,
                        now=lambda: float(next(clock)))
    assert s.stopped_by == "time budget" and len(s.trials) < 10


def test_noisy_non_monotonic_measurements_terminate() -> None:
    rng = np.random.default_rng(0)
    s = capacity.search(lambda n: _trial(n, 100.0, jitter=float(rng.uniform(0, 9000))),
                        max_n=4096, budget_s=60)
    assert len(s.trials) < 30
    assert s.first_fail_n is None or s.best_n < s.first_fail_n


@pytest.mark.parametrize("mode", ["unbatched", "batched"])
def test_real_trials_run(bench_models: dict[str, Path], mode: str) -> None:
    model = OnnxModel.load(bench_models["stack"])
    audio = synth(2.0, 16000, seed=3)
    fn = capacity.measure_unbatched if mode == "unbatched" else capacity.measure_batched
    t = fn(model, 3, audio, 160, 20, EngineOptions())
    j = t.to_json()
    assert j["n"] == 3 and j["hops"] == 20 and j["mode"] == mode
    assert j["per_hop_us"]["p50"] > 0 and j["per_hop_cpu_us"]["p99"] > 0
    assert set(j["stages_p50_us"]) == {"vad", "features", "inference", "smoothing"}
