"""How many independent streams one process on one core keeps real time (--streams).

A trial runs n simulated microphones in lockstep: every hop, each stream gets its own next block
(the same synthetic speech-like audio, each stream at its own offset, so the speech gate is open
~99% of the time: the worst case, every stream talking). Per hop, the time to process all n
blocks is recorded, both as wall time and as the process's CPU time. Real time means: p99 of that
per-hop time < the hop (10 ms blocks: 10 ms). The criterion uses CPU time by default: on a shared
machine, wall-time p99 measures whoever else got the core (one 20 ms preemption in a hundred hops
fails any n); CPU time is what one core must give per hop, which on a dedicated core is the wall
time. `clock="wall"` judges wall time instead; both are always reported.

unbatched: n live Engines (exactly the `hark mic` path, one per stream) fed one after the other.
batched: hark.live.batched.BatchedEngine: one onnxruntime call per hop for all streams.

The process is pinned to the least busy CPU and BLAS/OpenMP pools are limited to one thread
(threadpoolctl) for the duration, with onnxruntime at one intra-op thread: "one core" is literal.
The search doubles n from 1 until a trial fails, then bisects to within 5%, and stops early when
the next trial would not fit in the time budget: it always terminates.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hark.bench.timing import Dist

WARMUP_HOPS = 30  # 0.3 s: frames start, states and smoothers fill


@dataclass
class Trial:
    """One measurement of n streams."""

    n: int
    mode: str
    hops: int
    per_hop: Dist  # wall time
    per_hop_cpu: Dist  # the process's CPU time
    stages_p50_us: dict[str, float]
    hop_us: float
    wall_s: float
    clock: str = "cpu"
    bare_cpu: Dist | None = None  # batched: the bare batched session.run alone, per hop

    @property
    def judged(self) -> Dist:
        return self.per_hop_cpu if self.clock == "cpu" else self.per_hop

    @property
    def realtime(self) -> bool:
        return self.judged.p99 < self.hop_us

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mode": self.mode,
            "hops": self.hops,
            "per_hop_us": self.per_hop.to_json(),
            "per_hop_cpu_us": self.per_hop_cpu.to_json(),
            "per_stream_p50_us": self.judged.p50 / self.n,
            "stages_p50_us": self.stages_p50_us,
            "clock": self.clock,
            "p99_over_hop": self.judged.p99 / self.hop_us,
            "realtime": self.realtime,
            "realtime_wall": self.per_hop.p99 < self.hop_us,
            "wall_s": self.wall_s,
            "bare_call_cpu_us": None if self.bare_cpu is None else self.bare_cpu.to_json(),
            # per hop, all streams: the batched engine vs its bare batched call (target <= 1.5)
            "over_bare_call": (None if self.bare_cpu is None or not self.bare_cpu.p50
                               else self.per_hop_cpu.p50 / self.bare_cpu.p50),
        }


@dataclass
class Search:
    """Result of a capacity search: the largest n that passed and how the search went."""

    mode: str
    best_n: int
    first_fail_n: int | None
    stopped_by: str
    trials: list[Trial] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "max_realtime_streams": self.best_n,
            "first_failing_n": self.first_fail_n,
            "stopped_by": self.stopped_by,
            "trials": [t.to_json() for t in self.trials],
        }


def search(
    measure: Callable[[int], Trial],
    max_n: int = 2048,
    budget_s: float = 60.0,
    tol: float = 0.05,
    mode: str = "",
    now: Callable[[], float] = time.monotonic,
) -> Search:
    """Largest n with measure(n).realtime: doubling, then bisection to within tol; bounded time."""
    t_end = now() + budget_s
    trials: list[Trial] = []
    lo, hi = 0, None
    stopped = "resolution reached"
    cost_per_stream = 0.0  # seconds of trial wall time per stream, from the largest trial yet

    def fits(n: int) -> bool:
        return now() + cost_per_stream * n <= t_end

    def run(n: int) -> bool:
        nonlocal cost_per_stream
        t0 = now()
        trial = measure(n)
        if not trials or n >= max(t.n for t in trials):  # fixed costs dominate small trials
            cost_per_stream = (now() - t0) / n
        trials.append(trial)
        return trial.realtime

    n = 1
    while True:
        if n > max_n:
            stopped = f"max_n {max_n} reached"
            break
        if trials and not fits(n):
            stopped = "time budget"
            break
        if run(n):
            lo = n
            n *= 2
        else:
            hi = n
            break
    if hi is not None:
        while hi - lo > max(1, int(lo * tol)):
            mid = (lo + hi) // 2
            if not fits(mid):
                stopped = "time budget"
                break
            if run(mid):
                lo = mid
            else:
                hi = mid
    return Search(mode, lo, hi, stopped, trials)


def stream_blocks(audio: np.ndarray, n: int, block: int, hops: int, start_hop: int = 0
                  ) -> Iterator[np.ndarray]:
    """(n, block) per hop; stream i reads `audio` circularly from its own offset."""
    offsets = (np.arange(n, dtype=np.int64) * 7919 * block) % audio.size
    within = np.arange(block)
    for h in range(start_hop, start_hop + hops):
        yield audio[(offsets[:, None] + h * block + within) % audio.size]


def _stage_p50(stages: np.ndarray) -> dict[str, float]:
    names = ("vad", "features", "inference", "smoothing")
    return {k: float(np.median(stages[:, i]) * 1e6) for i, k in enumerate(names)}


def measure_unbatched(model: Any, n: int, audio: np.ndarray, block: int, hops: int,
                      options: Any, clock: str = "cpu") -> Trial:
    """N live Engines sharing one session (state lives in each engine's runner)."""
    from hark.live.engine import Engine

    t_start = time.perf_counter()
    engines = [Engine([model], options) for _ in range(n)]
    card = model.card
    stagger = 1
    if not card.streaming:  # window models: spread the strides as independent mics would be
        stagger = max(1, int(round(card.decision_hop_s() * card.sample_rate / block)))
    for h, x in enumerate(stream_blocks(audio, n, block, WARMUP_HOPS + stagger)):
        for i, e in enumerate(engines):
            if h >= i % stagger:
                e.feed(x[i])
    per_hop = np.zeros(hops)
    per_cpu = np.zeros(hops)
    stages = np.zeros((hops, 4))
    perf, cpu = time.perf_counter, time.process_time
    for h, x in enumerate(stream_blocks(audio, n, block, hops, WARMUP_HOPS + stagger)):
        c0 = cpu()
        t0 = perf()
        for i, e in enumerate(engines):
            e.feed(x[i])
        per_hop[h] = perf() - t0
        per_cpu[h] = cpu() - c0
        st = [e.last_times for e in engines]
        stages[h] = (sum(s.vad for s in st), sum(s.features for s in st),
                     sum(s.inference for s in st), sum(s.smoothing for s in st))
    hop_us = block / card.sample_rate * 1e6
    return Trial(n, "unbatched", hops, Dist.of(per_hop), Dist.of(per_cpu), _stage_p50(stages),
                 hop_us, time.perf_counter() - t_start, clock)


def measure_batched(model: Any, n: int, audio: np.ndarray, block: int, hops: int,
                    options: Any, session: Any = None, clock: str = "cpu") -> Trial:
    """N streams in one BatchedEngine (hark.live): one onnxruntime call per hop."""
    from hark.live.batched import BatchedEngine

    t_start = time.perf_counter()
    streams = BatchedEngine(model, options, session=session)
    ids = [streams.add_stream() for _ in range(n)]
    for x in stream_blocks(audio, n, block, WARMUP_HOPS):
        streams.feed_all(dict(zip(ids, x, strict=True)))
    per_hop = np.zeros(hops)
    per_cpu = np.zeros(hops)
    stages = np.zeros((hops, 4))
    perf, cpu = time.perf_counter, time.process_time
    for h, x in enumerate(stream_blocks(audio, n, block, hops, WARMUP_HOPS)):
        c0 = cpu()
        t0 = perf()
        streams.feed_all(dict(zip(ids, x, strict=True)))
        per_hop[h] = perf() - t0
        per_cpu[h] = cpu() - c0
        stages[h] = streams.last_times
    hop_us = block / model.card.sample_rate * 1e6
    bare = _bare_batched(model, session or model.session, n, hops)
    return Trial(n, "batched", hops, Dist.of(per_hop), Dist.of(per_cpu), _stage_p50(stages),
                 hop_us, time.perf_counter() - t_start, clock, bare)


def _bare_batched(model: Any, session: Any, n: int, hops: int) -> Dist:
    """CPU time of the one batched session.run per hop alone: n frames, n states carried."""
    from hark.live.batched import state_batch_axis

    card = model.card
    inp = card.inputs[0]
    bins = card.frontends[inp.frontend].n_bins(card.sample_rate)
    rng = np.random.default_rng(0)
    shape = (n, 1, bins, 1) if len(inp.shape) == 4 else (n, 1, bins)
    state = {s.input: np.repeat(np.zeros(s.shape, np.float32), n, axis=state_batch_axis(s.shape))
             for s in card.state}
    outputs = [model.output, *(s.output for s in card.state)]
    cpu = np.zeros(hops)
    for h in range(hops):
        feeds = {inp.name: rng.standard_normal(shape).astype(np.float32), **state}
        c0 = time.process_time()
        out = session.run(outputs, feeds)
        cpu[h] = time.process_time() - c0
        for spec, value in zip(card.state, out[1:], strict=True):
            state[spec.input] = value
    return Dist.of(cpu)


def least_busy_cpu(sample_s: float = 0.3) -> int | None:
    """The allowed CPU with the lowest utilisation over sample_s (None if unknown)."""
    try:
        import psutil

        allowed = sorted(os.sched_getaffinity(0))
        busy = psutil.cpu_percent(interval=sample_s, percpu=True)
        return min(allowed, key=lambda c: busy[c] if c < len(busy) else 100.0)
    except (ImportError, AttributeError, OSError):
        return None


@contextlib.contextmanager
def one_core(cpu: int | None) -> Iterator[dict[str, Any]]:
    """Pin this process to `cpu` and limit BLAS/OpenMP pools to one thread; restore after."""
    info: dict[str, Any] = {"cpu": cpu, "blas_threads_limited": False}
    saved = None
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        saved = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpu})
    limiter: Any = contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=1)
        info["blas_threads_limited"] = True
    except ImportError:
        pass
    try:
        with limiter:
            yield info
    finally:
        if saved is not None:
            os.sched_setaffinity(0, saved)
