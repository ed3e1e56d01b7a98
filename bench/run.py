"""`hark bench` from parsed flags to printed table and written files."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from hark.bench import audio as bench_audio
from hark.bench import report
from hark.bench.timing import machine_info, ratio
from hark.live.errors import HarkError

SCHEMA = 1


@dataclass(frozen=True)
class Effort:
    """How hard each part tries: --quick or the full run."""

    onnx_decisions: int
    keras_decisions: int
    capacity_hops: int
    capacity_budget_s: float
    max_streams: int
    probes: int
    startup_repeats: int
    latency_streams: int
    probes_per_label: int


FULL = Effort(200, 30, 300, 45.0, 2048, 10, 3, 4, 3)
QUICK = Effort(20, 5, 40, 6.0, 256, 3, 1, 1, 1)


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Limit numpy's BLAS to n threads while timing (as onnxruntime is at --threads).

    Left alone, OpenBLAS wakes a second thread for a 98 x 257 matmul (one second of features);
    on a loaded machine that wake-up can cost a 4 ms scheduler tick: baseline (b) measured
    0.5 ms in one run and 8 ms in the next. The live per-hop matmuls are too small to thread.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=n):
        yield


def _engine_options(vad: str) -> Any:
    from hark.live.engine import EngineOptions

    return EngineOptions(vad={"card": None, "on": True, "off": False}[vad])


def _load_models(specs: list[str] | None, threads: int) -> list[Any]:
    from hark.live.model import OnnxModel, RuntimeOptions, bundled_names

    if not specs:
        specs = bundled_names()
        if not specs:
            raise HarkError("no bundled models installed (models/bundled/*.onnx); "
                            "give one with --model PATH.onnx")
    if threads < 1:
        raise HarkError("--threads must be at least 1")
    models = [OnnxModel.load(s, options=RuntimeOptions(threads=threads)) for s in specs]
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise HarkError(f"the same model is given twice: {', '.join(names)}")
    return models


def _block(rate: int, block_ms: float) -> int:
    n = block_ms * rate / 1000
    if n < 1 or abs(n - round(n)) > 1e-9:
        raise HarkError(f"--block-ms {block_ms} is not a whole number of samples at {rate} Hz")
    return int(round(n))


def _model_result(model: Any, samples: np.ndarray, args: argparse.Namespace, effort: Effort,
                  options: Any) -> tuple[dict[str, Any], Any]:
    from hark.bench import baselines, stages

    card = model.card
    block = _block(card.sample_rate, args.block_ms)
    bare: dict[str, Any] | None = None
    with blas_threads(args.threads):
        stages.warm_up([model], options)
        if card.streaming:
            n_bare = max(50, min(2000, samples.size // block // 2))
            before = stages.bare_calls(model, samples, n_bare)
        rep = stages.replay([model], samples, block, options)
        if card.streaming:
            after = stages.bare_calls(model, samples, n_bare)
            bare = {"what": before["what"], "wall": np.concatenate((before["wall"], after["wall"])),
                    "cpu": np.concatenate((before["cpu"], after["cpu"]))}
    kind = "frame" if card.streaming else "window"
    out: dict[str, Any] = {
        "name": card.name,
        "path": str(model.path),
        "kind": kind,
        "sample_rate": card.sample_rate,
        "labels": len(card.labels),
        "vad": bool(card.vad.enabled if options.vad is None else options.vad),
        "decision_hop_s": card.decision_hop_s(),
        "window_s": card.window_s,
        "stride_s": card.stride_s,
        "algorithmic_latency_s": card.algorithmic_latency_s(),
        **stages.summarize(rep, 0),
    }
    if kind == "window":
        out.update(stages.summarize_window(rep, 0))
    else:
        out.update(stages.summarize_frame(rep, 0))
    if bare is not None:
        out["overhead"] = stages.overhead(rep, bare, 0)
    base: dict[str, Any] = {}
    if args.baselines in ("all", "onnx"):
        with blas_threads(args.threads):
            base["onnx_window"] = baselines.onnx_window(model, samples, effort.onnx_decisions)
    if args.baselines == "all":
        base["keras_naive"] = baselines.keras_naive(model, samples, effort.keras_decisions,
                                                    args.threads)
    out["baselines"] = base
    # compute per decision, p50 over p50; CPU time (robust to a shared machine) and wall time
    eng, eng_wall = out["per_decision_cpu_us"]["p50"], out["per_decision_us"]["p50"]
    out["ratios"] = {}
    for k, v in base.items():
        out["ratios"][f"{k}_over_engine"] = ratio(
            (v.get("per_decision_cpu_us") or {}).get("p50"), eng)
        out["ratios"][f"{k}_over_engine_wall"] = ratio(
            (v.get("per_decision_us") or {}).get("p50"), eng_wall)
    return out, rep


def _capacity(models: list[Any], args: argparse.Namespace, effort: Effort, options: Any
              ) -> dict[str, Any]:
    from hark.bench import capacity
    from hark.live import batched

    spec = str(args.streams).strip().lower()
    if spec != "max" and not (spec.isdigit() and int(spec) > 0):
        raise HarkError(f"--streams takes a positive number or 'max', not {args.streams!r}")
    budget = args.streams_budget or effort.capacity_budget_s
    cpu = capacity.least_busy_cpu()
    result: dict[str, Any] = {
        "audio": "synthetic speech-like mix, each stream at its own offset (gate open ~99%)",
        "criterion": f"p99 of the per-hop {args.streams_clock} time for all streams < the hop",
        "clock": args.streams_clock,
        "hops_per_trial": effort.capacity_hops,
        "budget_s_per_search": budget,
        "models": [],
    }
    if args.threads != 1:  # capacity is per core: one intra-op thread, whatever --threads says
        from hark.live.model import OnnxModel, RuntimeOptions

        models = [OnnxModel.load(m.path, options=RuntimeOptions(threads=1)) for m in models]
    with capacity.one_core(cpu) as pin:
        result["pinned_cpu"] = pin["cpu"]
        result["blas_threads_limited"] = pin["blas_threads_limited"]
        for model in models:
            card = model.card
            block = _block(card.sample_rate, args.block_ms)
            result["hop_us"] = block / card.sample_rate * 1e6
            samples = bench_audio.synth(20.0, card.sample_rate, seed=11)
            check = batched.check_batch(model)
            session = model.session if check.ok else None
            bat: dict[str, Any] = {"ok": check.ok, "reason": check.reason, "relaxed": False}
            if not check.ok and args.relax_batch and card.streaming:
                session = batched.relaxed_session(model)
                bat["max_abs_diff"] = batched.verify_batching(model, session)
                bat.update(ok=True, relaxed=True, reason=check.reason + "; relaxed in memory "
                           f"(--relax-batch), batched == unbatched to {bat['max_abs_diff']:.1e}")
            elif check.ok:
                bat["max_abs_diff"] = batched.verify_batching(model, session)
            hops, clock = effort.capacity_hops, args.streams_clock
            modes: dict[str, Any] = {"unbatched": functools.partial(
                capacity.measure_unbatched, model, audio=samples, block=block, hops=hops,
                options=options, clock=clock)}
            if bat["ok"]:
                modes["batched"] = functools.partial(
                    capacity.measure_batched, model, audio=samples, block=block, hops=hops,
                    options=options, session=session, clock=clock)
            entry: dict[str, Any] = {"model": card.name,
                                     "kind": "frame" if card.streaming else "window",
                                     "batching": bat, "at_n": None, "search": None}
            if spec == "max":
                entry["search"] = {
                    mode: capacity.search(fn, effort.max_streams, budget, mode=mode).to_json()
                    for mode, fn in modes.items()
                }
                for mode in ("unbatched", "batched"):
                    entry["search"].setdefault(mode, None)
            else:
                entry["at_n"] = {mode: fn(int(spec)).to_json() for mode, fn in modes.items()}
                entry["at_n"].setdefault("batched", None)
            result["models"].append(entry)
            print(f"hark bench: streams done for {card.name}", file=sys.stderr)
    return result


def _loopback(models: list[Any], args: argparse.Namespace, effort: Effort, options: Any
              ) -> dict[str, Any]:
    from hark.bench import loopback

    missing = loopback.missing_tools()
    if missing:
        raise HarkError(f"--loopback needs {', '.join(missing)}: {loopback.INSTALL_HINT}")
    out: dict[str, Any] = {
        "daemon": "private pulseaudio started by hark bench (null sink at the model rate, "
        "stopped by PID)",
        "models": [],
    }
    for model in models:
        probe: Any
        try:
            probe = None
            if args.probe in ("auto", "labels"):  # every label, several probes each
                per_label = args.probes or effort.probes_per_label
                probe = loopback.label_probes(model, per_label) or None
                if probe is None and args.probe == "labels":
                    raise HarkError("no label of this model can be synthesised here")
            if probe is None and args.probe == "auto":
                probe = loopback.auto_probe(model)
            elif probe is None:
                probe = loopback.make_probe(args.probe, model.card, args.probe_label)
        except HarkError as e:
            out["models"].append({"model": model.name, "skipped": str(e)})
            continue
        res = loopback.run_loopback(model, probe, n_probes=args.probes or effort.probes,
                                    block_ms=args.block_ms, options=options)
        out["models"].append(res)
        print(f"hark bench: loopback done for {model.name}", file=sys.stderr)
    return out


def _startup(models: list[Any], args: argparse.Namespace, effort: Effort,
             audio_path: Any) -> dict[str, Any]:
    import tempfile
    from pathlib import Path

    from hark.bench import loopback, startup

    model_args = [a for m in models for a in ("--model", str(m.path))]
    if not loopback.missing_tools():
        rate = models[0].card.sample_rate
        with loopback.PulseDaemon(rate) as pa:
            pa.keep_awake()
            return startup.measure(model_args, effort.startup_repeats, pa.child_env(), None)
    with tempfile.TemporaryDirectory(prefix="hark-bench-") as d:
        path = audio_path
        if path is None:
            import soundfile as sf

            path = Path(d) / "synth.wav"
            rate = models[0].card.sample_rate
            sf.write(path, bench_audio.synth(3.0, rate), rate)
        return startup.measure(model_args, effort.startup_repeats, None, Path(path))


def run(args: argparse.Namespace) -> int:
    t_start = time.monotonic()
    effort = QUICK if args.quick else FULL
    if args.all:
        args.streams = args.streams or "max"
        args.loopback = args.startup = True
    models = _load_models(args.model, args.threads)
    if args.audio is not None:
        spec = bench_audio.AudioSpec(path=args.audio)
    elif args.synth is not None:
        if args.synth <= 0:
            raise HarkError("--synth needs a positive number of seconds")
        spec = bench_audio.AudioSpec(synth_s=args.synth)
    else:
        spec = bench_audio.default_audio()
    options = _engine_options(args.vad)
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "tool": "hark bench",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "config": {
            "models": [str(m.path) for m in models],
            "audio": spec.describe(),
            "block_ms": args.block_ms,
            "threads": args.threads,
            "vad": args.vad,
            "quick": bool(args.quick),
            "baselines": args.baselines,
        },
        "models": [],
        "together": None,
        "capacity": None,
        "loopback": None,
        "startup": None,
    }
    cache: dict[int, np.ndarray] = {}

    def samples_at(rate: int) -> np.ndarray:
        if rate not in cache:
            cache[rate] = bench_audio.load(spec, rate)
        return cache[rate]

    replays: dict[str, Any] = {}
    for model in models:
        x = samples_at(model.card.sample_rate)
        if x.size < model.card.sample_rate * 0.5:
            raise HarkError(f"the audio is too short ({x.size / model.card.sample_rate:.2f} s); "
                            "give at least 0.5 s")
        res, rep = _model_result(model, x, args, effort, options)
        result["models"].append(res)
        replays[model.name] = rep
        print(f"hark bench: {model.name} done", file=sys.stderr)
    result["config"]["audio"]["duration_s"] = result["models"][0]["audio_s"]
    if len(models) > 1:
        from hark.bench import stages

        rate = models[0].card.sample_rate
        with blas_threads(args.threads):
            stages.warm_up(models, options)
            rep = stages.replay(models, samples_at(rate), _block(rate, args.block_ms), options)
        result["together"] = {"models": [m.name for m in models], **stages.summarize(rep, None)}
        replays["all together"] = rep
    gate_s = min(args.gate_s, 20.0) if args.quick else args.gate_s
    if gate_s > 0:
        from hark.bench import gate

        with blas_threads(args.threads):
            result["gate"] = [gate.measure(m, gate_s, args.block_ms) for m in models
                              if m.card.streaming]
    n_lat = args.latency_streams if args.latency_streams is not None else effort.latency_streams
    result["decision_latency"] = None
    if n_lat > 0:
        from hark.bench import decision

        result["decision_latency"] = [decision.measure(m, n_lat) for m in models]
        print("hark bench: offline decision latency done", file=sys.stderr)
    if args.streams:
        result["capacity"] = _capacity(models, args, effort, options)
    if args.loopback:
        result["loopback"] = _loopback(models, args, effort, options)
    if args.startup:
        result["startup"] = _startup(models, args, effort, spec.path)
    result["targets"] = report.judge_targets(result)
    result["wall_s"] = time.monotonic() - t_start
    print(report.text_table(result))
    if result.get("decision_latency"):
        from hark.bench import decision

        print()
        print("decision latency offline (held-out streams; first decision >= threshold_on "
              "after the true onset), ms")
        for r in result["decision_latency"]:
            print("\n".join(decision.format_lines(r)))
    if result.get("gate"):
        from hark.bench import gate

        print()
        for g in result["gate"]:
            print("\n".join(gate.format_lines(g)))
    if args.json is not None:
        report.write_json(result, args.json)
    if args.markdown is not None:
        args.markdown.write_text(report.markdown(result) + "\n")
    if args.plot is not None:
        report.plot(result, replays, args.plot)
    return 0
