"""Distribution summaries of measured durations (seconds in, microseconds out)."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

STAT_FIELDS = ("n", "mean", "p50", "p95", "p99", "max")


@dataclass(frozen=True)
class Dist:
    """Summary of n durations, in microseconds (nan when n == 0)."""

    n: int
    mean: float
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, seconds: Any) -> Dist:
        """Summarise durations given in seconds."""
        x = np.asarray(seconds, dtype=np.float64).reshape(-1) * 1e6
        if x.size == 0:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan, nan)
        p50, p95, p99 = np.percentile(x, [50, 95, 99])
        return cls(int(x.size), float(x.mean()), float(p50), float(p95), float(p99), float(x.max()))

    def to_json(self) -> dict[str, float | int | None]:
        """Plain dict; nan becomes None so the JSON stays standard."""
        d = asdict(self)
        return {k: (None if isinstance(v, float) and v != v else v) for k, v in d.items()}


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on: they mean little without it."""
    import onnxruntime

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def ratio(a: float | None, b: float | None) -> float | None:
    """A / b, None when either is missing or b is 0."""
    if a is None or b is None or b == 0 or a != a or b != b:
        return None
    return float(a) / float(b)
