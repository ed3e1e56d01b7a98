"""What the UI costs: run the real `hark replay --realtime` under tmux and measure with psutil.

    .venv/bin/python -m tests.ui.bench_redraw [--seconds 20] [--size 120x40]
    .venv/bin/python -m tests.ui.bench_redraw --file models/bundled/demo.wav \
        --model commands --model sounds          # real speech and sounds, bundled models

Prints the CPU share (of one core) of the UI thread (the process's main thread: textual's loop,
all redraws), of the other threads (the audio worker with onnxruntime), and of the process,
sampled over the steady part of a paced replay. Also the screen's own latency line. A benchmark:
it prints numbers and never fails on them.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from tests.ui.fixtures import FREQS, RATE, band_model, tones


def _hark_pid(shell_pid: int) -> int:
    """The python process running hark under the tmux pane's shell."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for child in psutil.Process(shell_pid).children(recursive=True):
            if "hark" in " ".join(child.cmdline()):
                return child.pid
        time.sleep(0.05)
    raise RuntimeError("hark did not start")


def _thread_times(proc: psutil.Process) -> tuple[float, float]:
    """(main thread CPU s, other threads CPU s)."""
    main = other = 0.0
    for t in proc.threads():
        if t.id == proc.pid:
            main += t.user_time + t.system_time
        else:
            other += t.user_time + t.system_time
    return main, other


def measure(seconds: float, size: str, warmup_s: float = 3.0, file: Path | None = None,
            models: list[str] | None = None, no_ui: bool = False) -> dict[str, float]:
    tmux = shutil.which("tmux")
    if tmux is None:
        raise SystemExit("tmux is not installed")
    width, height = (int(v) for v in size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        segs: list[tuple[float, float, float]] = []
        t = 0.5
        while t < seconds - 1:  # alternate tones all along: events keep changing the screen
            segs.append((FREQS["low" if len(segs) % 2 == 0 else "high"], t, t + 0.7))
            t += 1.0
        import soundfile as sf

        sf.write(d / "long.wav", tones(segs, seconds), RATE, subtype="PCM_16")
        wav = file.resolve() if file is not None else d / "long.wav"
        model_args = " ".join(f"--model {m}" for m in (models or [str(band_model(d))]))
        hark = Path(sys.executable).parent / "hark"
        sock = f"hark-bench-{int(time.time() * 1000)}"
        cmd = (f"{hark} replay {wav} {model_args} --realtime"
               f"{' --no-ui > /dev/null' if no_ui else ''}; sleep 60")
        subprocess.run([tmux, "-L", sock, "new-session", "-d", "-x", str(width), "-y",
                        str(height), "-s", "bench", cmd], check=True)
        socket_path = subprocess.run(
            [tmux, "-L", sock, "display-message", "-p", "#{socket_path}"],
            check=True, capture_output=True, text=True).stdout.strip()
        try:
            pane_pid = int(subprocess.run(
                [tmux, "-L", sock, "display-message", "-p", "-t", "bench", "#{pane_pid}"],
                check=True, capture_output=True, text=True).stdout)
            proc = psutil.Process(_hark_pid(pane_pid))
            time.sleep(warmup_s)
            m0, o0 = _thread_times(proc)
            proc.cpu_percent(None)
            w0 = time.monotonic()
            time.sleep(max(1.0, seconds - warmup_s - 1.5))
            m1, o1 = _thread_times(proc)
            total = proc.cpu_percent(None)
            dt = time.monotonic() - w0
            screen = subprocess.run([tmux, "-L", sock, "capture-pane", "-p", "-t", "bench"],
                                    check=True, capture_output=True, text=True).stdout
        finally:
            subprocess.run([tmux, "-L", sock, "kill-server"], check=False)
            Path(socket_path).unlink(missing_ok=True)
    lat = next((ln for ln in screen.splitlines() if "e2e" in ln), "")
    result = {"ui_thread_pct": 100 * (m1 - m0) / dt, "other_threads_pct": 100 * (o1 - o0) / dt,
              "process_pct": total, "window_s": dt}
    if no_ui:
        print(f"--no-ui baseline: process {total:.1f}% of a core (psutil, {dt:.1f} s)")
        return result
    print(f"{size}: UI thread {result['ui_thread_pct']:.1f}% of a core, other threads (audio "
          f"worker, textual's input/output) {result['other_threads_pct']:.1f}%, process "
          f"{total:.1f}% (psutil, {dt:.1f} s)")
    print(f"  screen: {lat.strip()}")
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--size", action="append", default=None, help="WIDTHxHEIGHT (repeatable)")
    p.add_argument("--file", type=Path, default=None, help="a recording (default: tones)")
    p.add_argument("--model", action="append", default=None,
                   help="bundled name or path (default: the tone band model)")
    args = p.parse_args()
    measure(args.seconds, "80x24", file=args.file, models=args.model, no_ui=True)
    for size in args.size or ["80x24", "120x40"]:
        measure(args.seconds, size, file=args.file, models=args.model)


if __name__ == "__main__":
    main()
