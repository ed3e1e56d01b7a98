"""The live path, hop by hop: Engine.feed on one mic-sized block at a time, every stage timed.

Exactly what `hark mic` does with each block (Engine.feed), nothing added inside the timed region:
`feed` is the wall time of the call, the four stages are engine.last_times (the engine's own
perf_counter marks). `feed` minus the stage sum is the engine's bookkeeping (level meter, NaN
check, resampling for models at another rate). The onnxruntime sessions are warmed on a throwaway
engine first, as they are in a process that has been listening for a while; cold start is
measured by `startup`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hark.bench.timing import Dist

STAGES = ("vad", "features", "inference", "smoothing")
COLUMNS = (*STAGES, "stages_sum", "feed", "feed_cpu", "model_call")


@dataclass
class Replay:
    """Per-hop measurements of one engine over one signal.

    times: (hops, 8) seconds, columns COLUMNS (feed_cpu: the process's CPU time in the call,
    which leaves out the time other processes held the core: on a shared machine feed's p99 is
    mostly other people's work, feed_cpu's is ours; model_call: the part of inference spent
    inside onnxruntime's session.run, frame models only). calls / decisions: (hops, models) how many
    onnxruntime calls each model's runner made and how many posterior rows its smoother got.
    """

    names: list[str]
    audio_s: float
    block: int
    sample_rate: int
    times: np.ndarray
    calls: np.ndarray
    decisions: np.ndarray
    events: int

    def column(self, name: str) -> np.ndarray:
        return self.times[:, COLUMNS.index(name)]


def warm_up(models: Sequence[Any], options: Any) -> None:
    """Run every session a few times on a throwaway engine (first calls allocate)."""
    from hark.bench.audio import synth
    from hark.live.engine import Engine

    longest = max(float(m.card.window_s or 0.0) for m in models) + 0.3
    rate = models[0].card.sample_rate
    engine = Engine(list(models), options, sample_rate=models[0].card.sample_rate)
    engine.feed(synth(longest, rate, seed=99))


def replay(models: Sequence[Any], audio: np.ndarray, block: int, options: Any) -> Replay:
    """Feed `audio` to a fresh Engine(models) in blocks of `block` samples; time every feed."""
    from hark.live.engine import Engine

    engine = Engine(list(models), options, sample_rate=models[0].card.sample_rate)
    streams = engine.streams
    n_hops = -(-audio.size // block)
    times = np.zeros((n_hops, len(COLUMNS)))
    calls = np.zeros((n_hops, len(streams)), dtype=np.int64)
    decisions = np.zeros((n_hops, len(streams)), dtype=np.int64)
    prev_calls = [s.runner.calls for s in streams]
    prev_dec = [s.smoother.n_frames for s in streams]
    events = 0
    perf, cpu = time.perf_counter, time.process_time
    for i in range(n_hops):
        b = audio[i * block : (i + 1) * block]
        c0 = cpu()
        t0 = perf()
        out = engine.feed(b)
        t1 = perf()
        c1 = cpu()
        lt = engine.last_times
        times[i] = (lt.vad, lt.features, lt.inference, lt.smoothing, lt.total, t1 - t0, c1 - c0,
                    lt.model)
        events += len(out)
        for j, s in enumerate(streams):
            c, d = s.runner.calls, s.smoother.n_frames
            calls[i, j], decisions[i, j] = c - prev_calls[j], d - prev_dec[j]
            prev_calls[j], prev_dec[j] = c, d
    events += len(engine.close())
    return Replay(
        names=[s.card.name for s in streams],
        audio_s=audio.size / engine.sample_rate,
        block=block,
        sample_rate=engine.sample_rate,
        times=times,
        calls=calls,
        decisions=decisions,
        events=events,
    )


def _dists(times: np.ndarray) -> dict[str, dict[str, Any]]:
    return {name: Dist.of(times[:, k]).to_json() for k, name in enumerate(COLUMNS)}


def per_decision(feed_s: np.ndarray, decisions: np.ndarray, ran: np.ndarray | None = None
                 ) -> np.ndarray:
    """Compute per decision: the feed time since the previous decision.

    Shared by the decisions the hop produced; for a window model that is a whole stride: the CNN
    hop plus the cheap hops before it. With `ran`, only decisions whose hop ran the model count
    (a decision taken with the speech gate shut is a row of zeros that costs no inference; the
    baselines always run the model, so this is the like-for-like figure).
    """
    out: list[float] = []
    acc = 0.0
    flags = ran.tolist() if ran is not None else [True] * len(feed_s)
    for t, d, r in zip(feed_s.tolist(), decisions.tolist(), flags, strict=True):
        acc += t
        if d > 0:
            if r:
                out.extend([acc / d] * d)
            acc = 0.0
    return np.asarray(out)


def summarize(rep: Replay, index: int | None = 0) -> dict[str, Any]:
    """JSON summary of a replay.

    `index` is the model whose runner defines decisions and strides (None for an engine with
    several models: stages only).
    """
    feed = rep.column("feed")
    feed_cpu = rep.column("feed_cpu")
    compute_s = float(feed.sum())
    cpu_s = float(feed_cpu.sum())
    out: dict[str, Any] = {
        "hops": int(len(feed)),
        "block_samples": rep.block,
        "audio_s": rep.audio_s,
        "compute_s": compute_s,
        "compute_cpu_s": cpu_s,
        "rtf": compute_s / rep.audio_s if rep.audio_s else None,
        "rtf_cpu": cpu_s / rep.audio_s if rep.audio_s else None,
        "audio_s_per_compute_s": rep.audio_s / compute_s if compute_s else None,
        "events": rep.events,
        "per_hop_us": _dists(rep.times),
    }
    if index is None:
        return out
    ran = rep.calls[:, index] > 0
    decisions = rep.decisions[:, index]
    out["hops_with_inference"] = int(ran.sum())
    out["decisions"] = int(decisions.sum())
    # decisions where the model ran (the gate was open): what the baselines are compared with
    out["per_decision_us"] = Dist.of(per_decision(feed, decisions, ran)).to_json()
    out["per_decision_cpu_us"] = Dist.of(per_decision(feed_cpu, decisions, ran)).to_json()
    out["per_decision_all_us"] = Dist.of(per_decision(feed, decisions)).to_json()
    return out


def summarize_frame(rep: Replay, index: int = 0) -> dict[str, Any]:
    """For frame models: the hops where the model ran (speech gate open), apart.

    With the gate shut a hop skips inference, so on audio with pauses the all-hops percentiles
    mix two populations; these are the hops that decide the real-time budget.
    """
    ran = rep.calls[:, index] > 0
    return {"per_inference_hop_us": _dists(rep.times[ran])}


def summarize_window(rep: Replay, index: int = 0) -> dict[str, Any]:
    """For window models: the hops where the CNN ran (per stride) apart from all the others."""
    ran = rep.calls[:, index] > 0
    return {
        "per_stride_us": _dists(rep.times[ran]),
        "other_hops_us": _dists(rep.times[~ran]),
    }


def bare_calls(model: Any, audio: np.ndarray, n: int) -> dict[str, Any]:
    """The model's own cost per hop: one call on one frame, state carried, nothing around it.

    The frames are the audio's own (computed offline, normalised as the card says), fed one per
    call in order, exactly the call the engine's frame runner makes (on bound buffers,
    live.bound_step, where the runner binds; else session.run), in a tight loop: the figure
    `feed` is compared with (feed / bare call: what the pipeline costs on top of the model).
    """
    from hark.live.bound_step import bind_after
    from hark.live.features import compute_features

    card = model.card
    inp = card.inputs[0]
    frames = compute_features(audio, card.frontends[inp.frontend], card.sample_rate,
                              card.normalization.get(inp.frontend)).astype(np.float32)
    if not len(frames):
        frames = np.zeros((1, card.frontends[inp.frontend].n_bins(card.sample_rate)), np.float32)
    shape = (1, 1, frames.shape[1], 1) if len(inp.shape) == 4 else (1, 1, frames.shape[1])
    state = {s.input: np.zeros(s.shape, dtype=np.float32) for s in card.state}
    outputs = [model.output, *(s.output for s in card.state)]
    session, name = model.session, inp.name
    first = session.run(outputs, {name: frames[0].reshape(shape), **state})
    step = bind_after(session, name, np.zeros(shape, np.float32), model.output,
                      [(s.input, s.output) for s in card.state], first)
    wall = np.zeros(n)
    cpu = np.zeros(n)
    perf, ptime = time.perf_counter, time.process_time
    for i in range(n):
        frame = frames[i % len(frames)].reshape(shape)
        if step is not None:
            np.copyto(step.frame, frame)
            c0 = ptime()
            t0 = perf()
            step.run()
            wall[i] = perf() - t0
            cpu[i] = ptime() - c0
            continue
        feeds = {name: frame, **state}
        c0 = ptime()
        t0 = perf()
        out = session.run(outputs, feeds)
        wall[i] = perf() - t0
        cpu[i] = ptime() - c0
        for spec, value in zip(card.state, out[1:], strict=True):
            state[spec.input] = value
    how = "run_with_iobinding on bound buffers" if step is not None else \
        "session.run(outputs, {frame, *state})"
    return {
        "what": f"{how} on the audio's own frames, state carried, in a tight loop (half before "
        "the replay, half after)",
        "wall": wall,
        "cpu": cpu,
    }


def overhead(rep: Replay, bare: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """Engine.feed per hop against the bare call: the pipeline's cost on top of the model's."""
    ran = rep.calls[:, index] > 0
    feed = Dist.of(rep.column("feed")[ran])
    feed_cpu = Dist.of(rep.column("feed_cpu")[ran])
    call = Dist.of(rep.column("model_call")[ran])
    b_wall, b_cpu = Dist.of(bare["wall"]), Dist.of(bare["cpu"])

    def r(a: float, b: float) -> float | None:
        return a / b if b and a == a and b == b else None

    return {
        "what": bare["what"],
        "bare_call_us": b_wall.to_json(),
        "bare_call_cpu_us": b_cpu.to_json(),
        "feed_over_bare_cpu": r(feed_cpu.p50, b_cpu.p50),
        "feed_over_bare_wall": r(feed.p50, b_wall.p50),
        # the same session.run timed inside the engine: slower than in the tight loop (the
        # pipeline's own work between calls cools the caches the model's weights sit in)
        "model_call_in_feed_us": call.to_json(),
        "feed_over_model_call_in_feed": r(feed.p50, call.p50),
    }
