"""Load test of `hark serve`: N concurrent loopback clients streaming real-time audio.

    python -m benchmarks.serve_load                  both block sizes, search the largest N
    python -m benchmarks.serve_load --blocks 100 --n 200   one trial
    nice -n 10 python -m benchmarks.serve_load       as the README's figures were taken

The server runs in a subprocess (`hark serve --port 0 --quiet --model commands`); the clients
run in this process (asyncio, one task each), every one streaming the first --seconds of the
bundled demo as a microphone would: one block every block_ms, sent when its audio has "ended",
starts spread over one block period. Latency of a block = from its send to the first ack whose
`samples` covers it (the server sends an ack after each batch it processed: `"acks": true` in the
hello), i.e. block sent -> its results (events, opens, scores of that audio) are out.

A trial "stays real time" when no audio was dropped, every stream's events equal `hark replay`
of the same clip, and the p99 latency is at most --p99-ms (100 ms: the target). Server CPU is
psutil's cpu_times over the trial (cores busy); RSS per stream is (RSS with N streams open -
RSS idle) / N. The clients share the 2 cores with the server: their own lateness is reported
(send lag), so a client-bound trial shows as such. Results: a table on stdout and
benchmarks/results/serve.json. Never fails on the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "serve.json"
TARGET_N, TARGET_P99_MS = 200, 100.0


@dataclass
class Trial:
    """One load level: n streams of block_ms blocks."""

    n: int
    block_ms: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    dropped_s: float
    events_equal: int  # streams whose events equal hark replay
    failed: int  # streams that did not finish (error, refused, no summary)
    server_cores: float  # CPU seconds per wall second during the trial
    rss_per_stream_mb: float
    rss_mb: float
    send_lag_p99_ms: float  # how late the clients themselves sent (client-bound if large)
    wall_s: float

    @property
    def real_time(self) -> bool:
        return (self.failed == 0 and self.dropped_s == 0 and self.events_equal == self.n
                and self.p99_ms <= TARGET_P99_MS)


def _clip(seconds: float, d: Path) -> tuple[Path, np.ndarray, int]:
    import soundfile as sf

    x, rate = sf.read(str(REPO / "models" / "bundled" / "demo.wav"), dtype="int16")
    x = x[: int(seconds * rate)]
    path = d / "clip.wav"
    sf.write(str(path), x, rate, subtype="PCM_16")
    return path, x, int(rate)


def _replay(path: Path) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "hark.cli", "replay", str(path), "--format",
                          "jsonl", "--no-ui"], capture_output=True, text=True, env=env,
                         check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def _start_server() -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "hark.cli", "serve", "--port", "0", "--quiet",
                             "--model", "commands", "--max-streams", "5000"],
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    m = re.search(r"ws://127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line}")
    return proc, int(m.group(1))


def _key(e: dict[str, Any]) -> tuple[Any, ...]:
    return (e["label"], e["onset"], e["offset"], e["peak"], e["mean"], e["model"])


async def _client(url: str, pcm: np.ndarray, rate: int, block_ms: float, t0: float,
                  lat: list[float], lag: list[float]) -> tuple[list[dict[str, Any]], float, bool]:
    from websockets.asyncio.client import connect

    block = round(block_ms / 1000 * rate)
    ends = list(range(block, pcm.size + block, block))
    sent_at: list[float] = []
    events: list[dict[str, Any]] = []
    dropped = 0.0
    summary = False
    loop = asyncio.get_running_loop()
    async with connect(url, max_size=None, open_timeout=60, close_timeout=10) as ws:
        await ws.send(json.dumps({"type": "hello", "sample_rate": rate, "format": "s16le",
                                  "channels": 1, "acks": True, "models": ["commands"]}))
        ready = json.loads(await ws.recv())
        if ready.get("type") != "ready":
            return [], 0.0, False

        async def receive() -> None:
            nonlocal dropped, summary
            k = 0
            async for text in ws:
                msg = json.loads(text)
                kind = msg["type"]
                if kind == "ack":
                    now = loop.time()
                    while k < len(sent_at) and msg["samples"] >= min(ends[k], pcm.size):
                        lat.append(now - sent_at[k])
                        k += 1
                elif kind == "event":
                    events.append(msg)
                elif kind == "dropped":
                    dropped = msg["total_seconds"]
                elif kind == "summary":
                    summary = True

        rx = asyncio.create_task(receive())
        for i, end in enumerate(ends):
            due = t0 + (i + 1) * block_ms / 1000
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = loop.time()
            lag.append(max(0.0, now - due))
            sent_at.append(now)
            await ws.send(pcm[end - block : end].tobytes())
        await ws.send('{"type":"end"}')
        await rx
    return events, dropped, summary


async def _trial_clients(url: str, n: int, pcm: np.ndarray, rate: int, block_ms: float,
                         ) -> tuple[list[Any], list[float], list[float]]:
    loop = asyncio.get_running_loop()
    start = loop.time() + 1.0 + n * 0.002  # time to open every connection first
    rng = np.random.default_rng(n)
    offsets = rng.uniform(0, block_ms / 1000, n)
    lat: list[float] = []
    lag: list[float] = []
    tasks = [asyncio.create_task(_client(url, pcm, rate, block_ms, start + float(o), lat, lag))
             for o in offsets]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return results, lat, lag


def trial(port: int, server: Any, n: int, block_ms: float, pcm: np.ndarray, rate: int,
          want: list[dict[str, Any]]) -> Trial:
    import psutil

    proc = psutil.Process(server.pid)
    rss0 = proc.memory_info().rss
    cpu0 = sum(proc.cpu_times()[:2])
    peak_rss = [rss0]
    w0 = time.monotonic()

    async def run() -> tuple[list[Any], list[float], list[float]]:
        async def sample() -> None:
            while True:
                await asyncio.sleep(0.5)
                peak_rss[0] = max(peak_rss[0], proc.memory_info().rss)

        s = asyncio.create_task(sample())
        try:
            return await _trial_clients(f"ws://127.0.0.1:{port}", n, pcm, rate, block_ms)
        finally:
            s.cancel()

    results, lat, lag = asyncio.run(run())
    wall = time.monotonic() - w0
    cpu = sum(proc.cpu_times()[:2]) - cpu0
    wanted = [_key(e) for e in want]
    equal = failed = 0
    dropped = 0.0
    for r in results:
        if isinstance(r, BaseException) or not r[2]:
            failed += 1
            continue
        events, d, _ = r
        dropped += d
        equal += [_key(e) for e in events] == wanted
    a = np.asarray(lat) * 1000 if lat else np.asarray([np.nan])
    g = np.asarray(lag) * 1000 if lag else np.asarray([0.0])
    return Trial(n, block_ms, float(np.percentile(a, 50)), float(np.percentile(a, 99)),
                 float(a.max()), round(dropped, 3), equal, failed, round(cpu / wall, 3),
                 round((peak_rss[0] - rss0) / max(n, 1) / 2**20, 3), round(peak_rss[0] / 2**20, 1),
                 float(np.percentile(g, 99)), round(wall, 1))


def _row(t: Trial) -> str:
    return (f"{t.block_ms:>5g} {t.n:>5} {t.p50_ms:>8.1f} {t.p99_ms:>8.1f} {t.max_ms:>8.1f} "
            f"{t.dropped_s:>8.2f} {t.events_equal:>5}/{t.n:<5} {t.failed:>4} "
            f"{t.server_cores:>6.2f} {t.rss_per_stream_mb:>8.3f} {t.send_lag_p99_ms:>8.1f}  "
            f"{'yes' if t.real_time else 'no'}")


HEADER = (f"{'block':>5} {'N':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'drop s':>8} "
          f"{'events ok':>11} {'fail':>4} {'cores':>6} {'MB/strm':>8} {'lag99ms':>8}  real time")


def search(port: int, server: Any, block_ms: float, start: int, limit: int, pcm: np.ndarray,
           rate: int, want: list[dict[str, Any]], trials: list[Trial]) -> int:
    """Grow N (x1.5) until a trial is not real time, then bisect twice; the largest N that is."""
    good, bad = 0, None
    n = start
    while n <= limit:
        t = trial(port, server, n, block_ms, pcm, rate, want)
        trials.append(t)
        print(_row(t), flush=True)
        if not t.real_time:
            bad = n
            break
        good = n
        n = int(n * 1.5)
    for _ in range(2):
        if bad is None or bad - good <= max(10, good // 10):
            break
        mid = (good + bad) // 2
        t = trial(port, server, mid, block_ms, pcm, rate, want)
        trials.append(t)
        print(_row(t), flush=True)
        if t.real_time:
            good = mid
        else:
            bad = mid
    return good


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--blocks", type=float, nargs="+", default=[100.0, 20.0],
                    help="block sizes in ms (default 100 20)")
    ap.add_argument("--n", type=int, default=None, help="one trial with N streams (no search)")
    ap.add_argument("--start", type=int, default=50, help="first N of the search")
    ap.add_argument("--limit", type=int, default=2000, help="largest N tried")
    ap.add_argument("--seconds", type=float, default=8.0, help="audio per stream (demo clip)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hark-serve-load-") as d:
        path, pcm, rate = _clip(args.seconds, Path(d))
        want = _replay(path)
    pcm = np.ascontiguousarray(pcm.astype("<i2"))
    server, port = _start_server()
    trials: list[Trial] = []
    best: dict[str, int] = {}
    try:
        print(f"hark serve load test: commands, {args.seconds:g} s clip ({len(want)} events), "
              f"{os.cpu_count()} CPUs, real time = no drops, events equal, p99 <= "
              f"{TARGET_P99_MS:g} ms", flush=True)
        print(HEADER, flush=True)
        for b in args.blocks:
            if args.n is not None:
                t = trial(port, server, args.n, b, pcm, rate, want)
                trials.append(t)
                print(_row(t), flush=True)
                best[f"{b:g}"] = args.n if t.real_time else 0
            else:
                best[f"{b:g}"] = search(port, server, b, args.start, args.limit, pcm, rate, want,
                                        trials)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    at100 = [t for t in trials if t.block_ms == 100 and t.n >= TARGET_N and t.real_time]
    met = bool(at100)
    for b, n in best.items():
        print(f"largest real-time N with {b} ms blocks: {n}")
    print(f"target >= {TARGET_N} streams of commands in 100 ms blocks with p99 <= "
          f"{TARGET_P99_MS:g} ms: {'met' if met else 'MISSED'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "config": {"model": "commands", "seconds": args.seconds, "events": len(want),
                   "cpus": os.cpu_count(), "p99_target_ms": TARGET_P99_MS,
                   "load_average": os.getloadavg()},
        "largest_real_time_n": best, "target_met": met,
        "trials": [{**asdict(t), "real_time": t.real_time} for t in trials]}, indent=2) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
