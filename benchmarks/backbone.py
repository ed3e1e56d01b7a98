"""What the speech-embedding backbone costs, against today's `commands`, in one run.

    python -m benchmarks.backbone [--seconds 20] [--streams 32] [--models commands commands-emb]
                                  [--json benchmarks/results/backbone.json]

Prints, on the same audio, interleaved passes, medians (CPU time of this process):
- the embedding graph per window at batch sizes 1..64 (what batching across streams can save);
- per second of audio, one stream in 10 ms blocks: the engine with each model (Engine.feed:
  backbone, VAD off so every decision runs), and the backbone frontend alone;
- many streams: N EmbeddingFrontends one by one vs one EmbeddingBank (all streams' due
  embeddings in one graph call), per stream-second;
- streams per core these imply (1 s of compute per audio second).
Ratios from one run are what to quote: these machines differ several-fold in speed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from hark.bench.audio import synth
from hark.live.backbone import EmbeddingBank, EmbeddingFrontend, graphs
from hark.live.card import FrontendSpec
from hark.live.engine import Engine, EngineOptions
from hark.live.model import OnnxModel

RATE = 16000
BLOCK = 160


def cpu() -> float:
    return time.process_time()


def per_window(batch: int, reps: int) -> float:
    """CPU seconds per embedding window at this batch size (median of reps)."""
    g = graphs()
    w = np.random.default_rng(batch).standard_normal((batch, 76, 32)).astype(np.float32)
    g.embed(w)
    times = []
    for _ in range(reps):
        t0 = cpu()
        g.embed(w)
        times.append((cpu() - t0) / batch)
    return float(np.median(times))


def engine_cost(model: OnnxModel, audio: np.ndarray) -> float:
    """CPU seconds per audio second of Engine.feed in 10 ms blocks, VAD off."""
    eng = Engine([model], EngineOptions(vad=False))
    t0 = cpu()
    for i in range(0, audio.size, BLOCK):
        eng.feed(audio[i : i + BLOCK])
    return (cpu() - t0) / (audio.size / RATE)


def frontend_cost(audio: np.ndarray) -> float:
    fe = EmbeddingFrontend(FrontendSpec(kind="embedding"), RATE)
    t0 = cpu()
    for i in range(0, audio.size, BLOCK):
        fe.push(audio[i : i + BLOCK])
    return (cpu() - t0) / (audio.size / RATE)


def streams_cost(audio: np.ndarray, n: int, banked: bool) -> float:
    """CPU seconds per stream-second for n streams of the same audio (offset per stream)."""
    signals = [np.roll(audio, 997 * i) for i in range(n)]
    t0 = cpu()
    if banked:
        bank = EmbeddingBank(n)
        for i in range(0, audio.size, BLOCK):
            bank.push([s[i : i + BLOCK] for s in signals])
    else:
        fes = [EmbeddingFrontend(FrontendSpec(kind="embedding"), RATE) for _ in range(n)]
        for i in range(0, audio.size, BLOCK):
            for fe, s in zip(fes, signals, strict=True):
                fe.push(s[i : i + BLOCK])
    return (cpu() - t0) / (n * audio.size / RATE)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--streams", type=int, default=32)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--models", nargs="+", default=["commands", "commands-emb"])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    audio = synth(args.seconds, RATE, seed=0)  # the cost does not depend on what is said
    models = {m: OnnxModel.load(m) for m in args.models}
    res: dict[str, Any] = {"seconds": args.seconds, "streams": args.streams,
                           "clock": "process CPU time", "passes": args.passes}
    batches = (1, 4, 16, 64)
    win: dict[int, list[float]] = {b: [] for b in batches}
    eng: dict[str, list[float]] = {m: [] for m in models}
    front, single, bank = [], [], []
    for _ in range(args.passes):  # interleaved: every figure sees the same machine minutes
        for b in batches:
            win[b].append(per_window(b, max(3, 64 // b)))
        for name, model in models.items():
            eng[name].append(engine_cost(model, audio))
        front.append(frontend_cost(audio))
        short = audio[: int(min(args.seconds, 6.0) * RATE)]
        single.append(streams_cost(short, args.streams, banked=False))
        bank.append(streams_cost(short, args.streams, banked=True))
    med = {k: float(np.median(v)) for k, v in {
        **{f"window_b{b}": win[b] for b in batches}, **{f"engine_{m}": eng[m] for m in models},
        "frontend": front, "streams_single": single, "streams_bank": bank}.items()}
    res["median_cpu_s"] = med
    print("embedding graph, CPU per window:  "
          + "  ".join(f"batch {b}: {med[f'window_b{b}'] * 1e3:.2f} ms" for b in batches))
    print("per second of audio, one stream, 10 ms blocks, VAD off (CPU):")
    for m in models:
        print(f"  engine with {m:14s} {med[f'engine_{m}'] * 1e3:7.2f} ms  "
              f"(RTF {med[f'engine_{m}']:.4f}; {1 / med[f'engine_{m}']:.0f} streams per core)")
    print(f"  backbone frontend alone    {med['frontend'] * 1e3:7.2f} ms")
    print(f"{args.streams} streams, backbone per stream-second (CPU): one by one "
          f"{med['streams_single'] * 1e3:.2f} ms, one bank {med['streams_bank'] * 1e3:.2f} ms "
          f"({med['streams_single'] / med['streams_bank']:.2f}x); "
          f"{1 / med['streams_bank']:.0f} backbone streams per core banked")
    if len(models) >= 2:
        a, b = list(models)[:2]
        ratio = med[f"engine_{b}"] / med[f"engine_{a}"]
        res["ratio"] = {f"{b}/{a}": ratio}
        print(f"{b} costs {ratio:.2f}x {a} per second of audio (target <= 3x)")
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
