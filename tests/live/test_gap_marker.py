"""Where the input lost audio, the event output says so: a _gap_ line in every format."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from hark.live.engine import Engine, EngineOptions
from hark.live.events import GAP_LABEL
from hark.live.model import OnnxModel
from hark.live.pipeline import run
from hark.live.sinks import TextSink


@dataclass
class _Stats:
    gaps: list[tuple[float, float]] = field(default_factory=list)


class _LossySource:
    """Silence in 100 ms blocks; after block 5 it reports 1.5 s lost (as a starved mic does)."""

    name = "lossy"

    def __init__(self) -> None:
        self.stats = _Stats()

    def blocks(self) -> Iterator[np.ndarray]:
        for i in range(12):
            if i == 6:
                self.stats.gaps.append((0.6, 1.5))
            yield np.zeros(1600, np.float32)


def test_gap_marker_line_in_each_format() -> None:
    model = OnnxModel.load("commands")
    outs = {fmt: io.StringIO() for fmt in ("jsonl", "csv", "tsv")}
    sinks = [TextSink(fmt, s, fmt) for fmt, s in outs.items()]
    lines: list[str] = []
    result = run([_LossySource()], Engine([model], EngineOptions(vad=False)), sinks,
                 signals=False, report=lines.append)
    assert result.gaps == [(0.6, 1.5)]
    assert any("1.50 s of input lost at 0.60 s" in x for x in lines)
    [rec] = [json.loads(x) for x in outs["jsonl"].getvalue().splitlines()]
    assert rec["label"] == GAP_LABEL and rec["onset"] == 0.6 and rec["offset"] == 2.1
    assert rec["model"] == "hark"
    csv_lines = outs["csv"].getvalue().splitlines()
    assert len(csv_lines) == 2 and f",{GAP_LABEL}," in csv_lines[1]
    tsv = outs["tsv"].getvalue().splitlines()
    assert tsv[1].split("\t") == ["0.600", "2.100", GAP_LABEL]
    assert all(s.count == 0 for s in sinks)  # a marker, not an event
