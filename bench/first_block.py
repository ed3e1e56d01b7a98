"""`python -m hark.bench.first_block ARGS...` runs `hark ARGS...` and reports its peak RSS.

It sets HARK_TRACE_FIRST_BLOCK=1, so live/cli.py writes `hark: first block processed at
monotonic=T` once the first block is processed (monotonic is system-wide on Linux, so the parent
subtracts its own spawn time), and writes the process's own peak RSS at exit.
"""

from __future__ import annotations

import sys

PEAK = "HARK_PEAK_RSS_KB"


def _report_peak() -> None:
    """Write VmHWM, the peak RSS of this program's own address space (fresh at exec).

    getrusage's ru_maxrss is no good here: Linux carries the spawning process's peak across
    fork + exec.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    sys.stderr.write(f"{PEAK} {line.split()[1]}\n")
                    sys.stderr.flush()
    except OSError:
        pass


def main(argv: list[str]) -> int:
    import atexit
    import os

    atexit.register(_report_peak)
    os.environ["HARK_TRACE_FIRST_BLOCK"] = "1"  # live/cli.py writes the first-block line
    from hark.cli import main as hark_main

    return hark_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
