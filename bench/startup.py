"""Start-up: from spawning `hark mic` (or `hark replay`) to its first processed block; peak RSS.

The child is `python -m hark.bench.first_block mic --no-ui ...`, i.e. `hark mic` with
HARK_TRACE_FIRST_BLOCK=1 (a line when the first Engine.feed returns) and its peak RSS written at
exit. start_to_first_block = marker time -
time.monotonic() just before the spawn: interpreter start, imports, model load (onnxruntime
session, card checks), frontend set-up (mel filterbank), opening the device, the first block's
10 ms of audio and its processing. Peak RSS is the child's VmHWM, written by the wrapper at exit
(getrusage's ru_maxrss is not usable: Linux carries the spawning process's own peak, here the
bench's, across fork + exec into the child's figure).

With a microphone (the loopback's private PulseAudio, a silent player keeping its sink awake):
`hark mic`. Without one: `hark replay FILE` (reported as such: no device open, a file decoded).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hark.bench.first_block import PEAK
from hark.bench.timing import Dist

HOOK = "hark: first block processed at monotonic="


def run_child(hark_args: list[str], env: dict[str, str] | None = None, timeout_s: float = 60.0
              ) -> dict[str, Any]:
    """Spawn hark with the first-block marker; return start-to-first-block and peak RSS."""
    cmd = [sys.executable, "-m", "hark.bench.first_block", *hark_args]
    t_spawn = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    first: float | None = None
    peak_kb: float | None = None
    lines: list[str] = []
    deadline = t_spawn + timeout_s
    for line in proc.stderr:  # the child ends by itself (--seconds, or the end of the file)
        if line.startswith(HOOK) and first is None:  # live/cli.py's HARK_TRACE_FIRST_BLOCK
            first = float(line.rsplit("=", 1)[1])
        elif line.startswith(PEAK):
            peak_kb = float(line.split()[1])
        else:
            lines.append(line.rstrip())
        if time.monotonic() > deadline:
            proc.kill()
            break
    proc.wait()
    return {
        "command": "hark " + " ".join(hark_args),
        "exit_code": proc.returncode,
        "start_to_first_block_s": None if first is None else first - t_spawn,
        "peak_rss_mb": None if peak_kb is None else peak_kb / 1024.0,
        "stderr_tail": lines[-3:],
    }


def measure(model_args: list[str], repeats: int, mic_env: dict[str, str] | None,
            audio: Path | None) -> dict[str, Any]:
    """`repeats` cold starts of hark mic (mic_env given) or hark replay (audio given)."""
    if mic_env is not None:
        mode = "mic"
        args = ["mic", "--no-ui", "--seconds", "1.0", *model_args]
        env = mic_env
        note = "hark mic on the private PulseAudio virtual microphone"
    elif audio is not None:
        mode = "replay"
        args = ["replay", str(audio), *model_args]
        env = dict(os.environ)
        note = ("no microphone: hark replay of a file instead (no device opened; decoding the "
                "file replaces waiting for the first 10 ms of audio)")
    else:
        return {"skipped": "neither a microphone nor an audio file to start on"}
    return {"mode": mode, "note": note, **_runs(args, env, repeats)}


def _runs(args: list[str], env: dict[str, str], repeats: int) -> dict[str, Any]:
    runs = [run_child(args, env) for _ in range(max(1, repeats))]
    ok = [r for r in runs if r["start_to_first_block_s"] is not None]
    return {
        "runs": runs,
        "start_to_first_block_us": Dist.of([r["start_to_first_block_s"] for r in ok]).to_json(),
        "peak_rss_mb_max": max((r["peak_rss_mb"] for r in runs if r["peak_rss_mb"]), default=None),
        "failures": len(runs) - len(ok),
    }
