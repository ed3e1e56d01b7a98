"""`python -m hark.bench.player JOB.json`: play a timeline into pacat on an absolute schedule.

A process of its own, not a thread of the bench: a thread shares the interpreter lock with the
engine it is timing, and a player held back past pacat's 10 ms buffer makes the sink play
silence in the middle of a probe. Chunks of `chunk` samples (1 ms) are written at
start + k * chunk / rate; the time.monotonic() just before the write of each chunk listed in
`marks` is recorded. A chunk of silence that is already late is skipped instead of written (the
sink has played silence in its place; writing it late would delay all that follows). SIGTERM
ends the playback early. The result (write times, late chunks,
blocked writes) is written as JSON to job["out"].
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import numpy as np


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    pcm = np.load(job["pcm"]).astype("<i2")
    chunk, rate, marks = int(job["chunk"]), int(job["rate"]), set(job["marks"])
    stop = False

    def on_term(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    proc = subprocess.Popen(job["pacat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    fd = proc.stdin.fileno()
    period = chunk / rate
    times: dict[int, float] = {}
    late = blocked = skipped = 0
    max_write = 0.0
    start = time.monotonic()
    try:
        for k in range(-(-pcm.size // chunk)):
            if stop:
                break
            delay = start + k * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -2 * period:
                late += 1
                if k not in marks and not pcm[k * chunk : (k + 1) * chunk].any():
                    # late on silence: skip it rather than queue it. pacat has run dry and the
                    # sink already played silence for it; writing it now would push every later
                    # sample back by the delay for the rest of the run (a standing queue)
                    skipped += 1
                    continue
            data = pcm[k * chunk : (k + 1) * chunk].tobytes()
            t = time.monotonic()
            os.write(fd, data)
            dt = time.monotonic() - t
            max_write = max(max_write, dt)
            blocked += dt > 0.005
            if k in marks:
                times[k] = t
    finally:
        proc.stdin.close()
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        Path(job["out"]).write_text(json.dumps({
            "write_times": {str(k): v for k, v in times.items()},
            "late_chunks": late,
            "skipped_silent_chunks": skipped,
            "blocked_writes": blocked,
            "max_write_ms": max_write * 1e3,
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
