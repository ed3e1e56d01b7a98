"""`hark bench`: flags only; nothing heavy is imported until the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """\
examples:
  hark bench                                 bundled models on the bundled demo (or 10 s synth)
  hark bench --model commands --synth 30 --json bench.json --plot bench.png
  hark bench --model ./my.onnx --streams max how many streams of my model one core keeps real time
  hark bench --streams 256                   256 streams, batched and unbatched
  hark bench --loopback                      end-to-end latency through a private PulseAudio
  hark bench --startup                       hark mic start to first processed block, peak RSS
  hark bench --all --json out.json           everything (as benchmarks/suite.py runs it)
  hark bench --synth 3 --quick               seconds, not minutes (CI)

what is timed: Engine.feed on one 10 ms block at a time, exactly as `hark mic` does, per stage
(engine.last_times) and in total (the wall time of the call). Absolute times depend on the
machine and its load; the ratios against the naive baselines are the portable numbers.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="per-stage latency, real-time factor, stream capacity, end-to-end latency",
        description="Replay audio through the live engine path one hop at a time and report "
        "compute per stage (p50/p95/p99/max), real-time factor, compute per decision against "
        "the naive loops, and optionally stream capacity, end-to-end latency through a virtual "
        "microphone, and start-up time / memory.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", action="append", default=None, metavar="NAME|PATH",
                   help="bundled model name or .onnx path (repeat; default: every bundled model)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--audio", type=Path, default=None, metavar="FILE",
                     help="audio to replay (default: the bundled demo.wav, else --synth 10)")
    src.add_argument("--synth", type=float, default=None, metavar="SECONDS",
                     help="replay SECONDS of deterministic synthetic speech-like audio")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    p.add_argument("--block-ms", type=float, default=10.0,
                   help="block size fed per call, as the mic delivers it (default 10)")
    p.add_argument("--vad", choices=("card", "on", "off"), default="card",
                   help="speech gate: as each card says (default), forced on, or off")
    p.add_argument("--gate-s", type=float, default=60.0, metavar="SECONDS",
                   help="speech-gate savings: inference compute gated (webrtc, silero) vs "
                   "ungated on SECONDS of 80%% room noise + 20%% words, per frame model "
                   "(default 60; 0 skips)")
    p.add_argument("--latency-streams", type=int, default=None, metavar="N",
                   help="decision latency offline for every label on N held-out 30 s streams "
                   "per model (default 4, --quick 1; 0 skips)")
    p.add_argument("--baselines", choices=("all", "onnx", "none"), default="all",
                   help="naive baselines: (a) Keras + (b) ONNX whole window, only (b), or none")
    p.add_argument("--streams", default=None, metavar="N|max",
                   help="N streams on one core, batched and unbatched; 'max': search the "
                   "largest N that stays real time")
    p.add_argument("--relax-batch", action="store_true",
                   help="if the ONNX graph fixes batch at 1, declare it dynamic in memory (after "
                   "checking batched == unbatched) to measure batched streams anyway")
    p.add_argument("--streams-clock", choices=("cpu", "wall"), default="cpu",
                   help="judge real time on the process's CPU time per hop (default: immune to "
                   "other processes taking the core) or on wall time")
    p.add_argument("--streams-budget", type=float, default=None, metavar="SECONDS",
                   help="time budget per capacity search (default 45, --quick 6)")
    p.add_argument("--loopback", action="store_true",
                   help="end-to-end latency through a private PulseAudio virtual microphone")
    p.add_argument("--probe", default="auto", metavar="SPEC",
                   help="loopback probe: auto (every label the model has that can be "
                   "synthesised, else one probe it detects), labels, beep[:HZ[:MS]], say:WORD, "
                   "event:CLASS or a .wav")
    p.add_argument("--probe-label", default=None, metavar="LABEL",
                   help="label the probe must cause (default: from the probe)")
    p.add_argument("--probes", type=int, default=None,
                   help="loopback probes per label (auto/labels: default 3, --quick 1), or of "
                   "the one probe (default 10, --quick 3)")
    p.add_argument("--startup", action="store_true",
                   help="time hark mic (or hark replay without a mic) to its first block")
    p.add_argument("--all", action="store_true",
                   help="everything: --streams max --loopback --startup")
    p.add_argument("--quick", action="store_true",
                   help="fewer repetitions and tight budgets (for CI); same fields")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write results as JSON")
    p.add_argument("--plot", type=Path, default=None, metavar="OUT.png",
                   help="latency histogram + per-stage bars")
    p.add_argument("--markdown", type=Path, default=None, metavar="OUT.md",
                   help="Markdown tables (for the README)")
    p.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    from hark.bench.run import run

    return run(args)
