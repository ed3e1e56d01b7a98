"""The benchmark suite: every `hark bench` measurement on the bundled models, written to files.

    python -m benchmarks.suite                   full run (several minutes), results in
                                                 benchmarks/results/: bench.json, bench.png,
                                                 bench.md, bench.txt
    python -m benchmarks.suite --short           the CI mode: 3 s of audio, tight budgets
    python -m benchmarks.suite --no-loopback     without the PulseAudio parts (no pulseaudio)

Models: the bundled ones (models/bundled/*.onnx) when installed. Until they are, stand-ins from
the test helpers, written to a temp dir: `stack` (a 2-layer LSTM(96, 64) frame model on 40
log-mels, batch axis dynamic, the shape of `commands`), `cnn` (a window CNN on the Kaggle 8 kHz
spectrogram, the shape of `commands-cnn`), and for the loopback `bands` (a deterministic band-energy
detector a 6 kHz beep triggers). The JSON's config.models says which were used.

Never fails on absolute times: the numbers are printed and saved, targets are judged in the
output ("met" / "MISSED"), not asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def stand_in_models() -> Iterator[tuple[list[str], list[str]]]:
    """(bench model args, loopback args) for models built by the test helpers."""
    sys.path.insert(0, str(REPO))
    from tests import onnx_models
    from tests.bench.stream_models import lstm_stack_model

    d = Path(tempfile.mkdtemp(prefix="hark-suite-"))
    try:
        stack = lstm_stack_model(d, units=(96, 64), labels=tuple(f"w{i}" for i in range(12)),
                                 vad=True, name="stack")
        cnn = onnx_models.conv_window_model(d)
        bands = onnx_models.band_energy_model(d, (-2.0, -6.0))
        yield (["--model", str(stack), "--model", str(cnn)],
               ["--model", str(bands), "--probe", "beep:6000", "--probe-label", "high"])
    finally:
        shutil.rmtree(d, ignore_errors=True)


class _Tee:
    """stdout to the terminal and to a file (the printed table is a result too)."""

    def __init__(self, path: Path) -> None:
        self._out, self._file = sys.stdout, open(path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, s: str) -> int:
        self._file.write(s)
        return self._out.write(s)

    def flush(self) -> None:
        self._file.flush()
        self._out.flush()

    def close(self) -> None:
        self._file.close()


def _bench(argv: list[str], table: Path) -> int:
    from hark.cli import main

    tee = _Tee(table)
    try:
        with contextlib.redirect_stdout(tee):
            print("$ hark " + " ".join(argv), flush=True)
            return main(argv)
    finally:
        tee.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.suite", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", action="store_true", help="CI mode: seconds, not minutes")
    ap.add_argument("--no-loopback", action="store_true",
                    help="skip the end-to-end (PulseAudio) latency and the mic start-up")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--stand-ins", action="store_true",
                    help="use the test stand-in models even if bundled models are installed")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    table = args.out / "bench.txt"
    table.write_text("")
    from hark.live.model import bundled_dir, bundled_names

    common = ["--synth", "3", "--quick", "--streams-budget", "3"] if args.short else []
    if not args.short and not (bundled_dir() / "demo.wav").is_file():
        common += ["--synth", "30"]
    files = ["--json", str(args.out / "bench.json"), "--plot", str(args.out / "bench.png"),
             "--markdown", str(args.out / "bench.md")]
    streams = ["--streams", "max"]
    if bundled_names() and not args.stand_ins:
        extra = [] if args.no_loopback else ["--loopback", "--startup"]
        return _bench(["bench", *common, *streams, *extra, *files], table)
    with stand_in_models() as (models, probe_models):
        code = _bench(["bench", *models, *common, *streams, *files], table)
        if code or args.no_loopback:
            return code
        loop_files = ["--json", str(args.out / "loopback.json")]
        return _bench(["bench", *probe_models, *common, "--baselines", "none", "--loopback",
                       "--startup", *loop_files], table)


if __name__ == "__main__":
    sys.exit(main())
