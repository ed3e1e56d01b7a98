"""Corpus-scale replay: files/s and audio hours per second, serial vs --jobs vs --ray.

    python -m benchmarks.corpus                      40 files x 30 s, bundled `commands`
    python -m benchmarks.corpus --files 8 --seconds 10 --model sounds

The corpus is generated from the bundled demo recording (words and sounds): each file is the demo
from a seeded offset, looped to length, at a seeded gain, over seeded noise, written as FLAC
(nothing is downloaded). Every mode is a real `hark replay FILES... --out` subprocess, so each
figure includes its start-up (Ray's several seconds too: it is what a user waits for). CPU s is the
CPU time of the run's reaped processes (Ray's workers may escape it); load is the 1-minute load
average before the run (other work on a shared machine takes cores from the workers). The events
written must be identical in every mode (checked, and said in the table). Prints a table and writes
benchmarks/results/corpus.json. Never fails on absolute times.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
MODES: tuple[tuple[str, list[str]], ...] = (
    ("serial", []),
    ("--jobs 1", ["--jobs", "1"]),
    ("--jobs 2", ["--jobs", "2"]),
    ("--ray, 1 worker", ["--ray", "--jobs", "1"]),
    ("--ray, 2 workers", ["--ray", "--jobs", "2"]),
)


def make_corpus(folder: Path, n_files: int, seconds: float, seed: int = 0) -> list[Path]:
    from hark.live.model import bundled_dir

    x, rate = sf.read(bundled_dir() / "demo.wav", dtype="float32")
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    reps = int(np.ceil((n + len(x)) / len(x)))
    looped = np.tile(x, reps)
    out = []
    for i in range(n_files):
        start = int(rng.integers(0, len(x)))
        y = looped[start:start + n] * np.float32(rng.uniform(0.4, 1.0))
        y = y + np.float32(rng.uniform(0.002, 0.02)) * rng.standard_normal(n).astype(np.float32)
        p = folder / f"c{i:03d}.flac"
        sf.write(p, np.clip(y, -1, 1), rate)
        out.append(p)
    return out


def run_mode(files: list[Path], model: str, extra: list[str], out: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "hark.cli", "replay", *map(str, files), "--model", model,
           "--out", str(out), *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       timeout=3600)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    data = out.read_bytes() if out.exists() else b""
    return {"exit": r.returncode, "wall_s": round(wall, 3), "cpu_s": round(cpu, 2),
            "load_before": round(load, 2), "stderr": r.stderr.strip()[-500:],
            "events": data.count(b"\n"), "sha256": hashlib.sha256(data).hexdigest()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--model", default="commands")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray rows")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "corpus.json")
    args = ap.parse_args(argv)
    modes = [m for m in MODES if not (args.no_ray and "--ray" in m[1])]
    with tempfile.TemporaryDirectory(prefix="hark-corpus-") as tmp:
        d = Path(tmp)
        files = make_corpus(d, args.files, args.seconds)
        audio_s = args.files * args.seconds
        rows: list[dict[str, Any]] = []
        for name, extra in modes:
            res = run_mode(files, args.model, extra, d / f"out-{len(rows)}.jsonl")
            wall = float(res["wall_s"])
            res.update(mode=name, files_per_s=round(args.files / wall, 3),
                       audio_hours_per_s=round(audio_s / 3600 / wall, 5),
                       x_real_time=round(audio_s / wall, 1))
            rows.append(res)
            print(f"{name:18s} {wall:7.2f} s  exit {res['exit']}", file=sys.stderr, flush=True)
    same = len({r["sha256"] for r in rows}) == 1 and all(r["exit"] == 0 for r in rows)
    base = float(rows[0]["wall_s"])
    print(f"{args.files} files x {args.seconds:g} s ({audio_s / 3600:.3f} h) of audio, model "
          f"{args.model}, {os.cpu_count()} CPUs; wall time includes start-up")
    print(f"{'mode':18s} {'wall s':>8s} {'files/s':>8s} {'audio h/s':>10s} {'x real time':>12s} "
          f"{'vs serial':>10s} {'CPU s':>7s} {'load':>5s} {'events':>7s}")
    for r in rows:
        print(f"{r['mode']!s:18s} {r['wall_s']:8.2f} {r['files_per_s']:8.2f} "
              f"{r['audio_hours_per_s']:10.4f} {r['x_real_time']:12.1f} "
              f"{base / float(r['wall_s']):9.2f}x {r['cpu_s']:7.1f} {r['load_before']:5.2f} "
              f"{r['events']:7d}")
    print(f"events identical in every mode: {'yes' if same else 'NO'}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "config": {"files": args.files, "seconds": args.seconds, "model": args.model,
                   "cpus": os.cpu_count(), "python": platform.python_version()},
        "identical": same, "rows": rows}, indent=1) + "\n")
    print(f"written {args.json}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
