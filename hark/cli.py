"""The `hark` command: one entry point, a subcommand per job.

Each package contributes its subcommands through a `register(subparsers)` function in its own
`cli` module; those modules import nothing heavy at import time, so `hark mic` never pays for
TensorFlow. A HarkError anywhere becomes one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence

# numpy's OpenBLAS wakes a second thread for a matmul the size of one second of features; on a
# busy machine that wake-up costs a scheduler tick (4 ms) per call (measured by hark bench). hark
# runs one thread per stream stage: keep BLAS at one thread unless the user says otherwise.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from hark.live.errors import HarkError  # noqa: E402 - after the BLAS setting, before numpy loads

# (module, what it adds) in the order --help lists them
_COMMAND_MODULES = ("hark.live.cli", "hark.export.cli", "hark.models.cli",
                    "hark.models.enroll_cli", "hark.bench.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hark",
        description="Real-time audio recognition from a microphone with Keras models run on ONNX.",
        epilog="Run 'hark COMMAND --help' for examples. With no command, 'hark replay' of the "
        "bundled demo.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # a package not written yet: its commands are simply absent
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from hark.live.sinks import reserve_std_fds

    # a closed stdout must not hand fd 1 to the --out file; a file size limit is an error on the
    # write (reported, the other outputs go on), not a signal that kills the process
    reserve_std_fds()
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        args = parser.parse_args(["replay", *(argv or [])])
    try:
        return int(args.func(args) or 0)
    except HarkError as e:
        print(f"hark: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("hark: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # downstream closed (e.g. `hark replay | head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
