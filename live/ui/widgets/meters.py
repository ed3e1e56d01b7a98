"""Input and latency panels.

Input: level meter in dBFS with a clipping mark, VAD, source, rates, models. Latency: per-stage
p50/p99, end to end, dropped blocks and CPU share.
"""

from __future__ import annotations

from rich.text import Text

from hark.live.ui.state import Snapshot
from hark.live.ui.widgets.throttle import Throttled

FLOOR_DB = -60.0  # left end of the level bar
UPDATE_S = 0.5  # latency numbers repaint at most this often
LEVEL_UPDATE_S = 0.2  # the level meter repaints at most this often


def level_bar(db: float, width: int) -> Text:
    """A bar from FLOOR_DB to 0 dBFS: green, yellow above -12, red above -3."""
    width = max(4, width)
    frac = (min(0.0, max(FLOOR_DB, db)) - FLOOR_DB) / -FLOOR_DB
    filled = int(round(frac * width))
    text = Text()
    for i in range(width):
        at_db = FLOOR_DB + (i + 0.5) / width * -FLOOR_DB
        if i < filled:
            color = "red" if at_db > -3 else "yellow" if at_db > -12 else "green"
            text.append("█", style=color)
        else:
            text.append("░", style="#30363d")
    return text


def _rate(hz: int | None) -> str:
    if hz is None:
        return "?"
    return f"{hz / 1000:g} kHz"


class InputPanel(Throttled):
    """Level, clipping, VAD, source and rates, models."""

    DEFAULT_CSS = "InputPanel { height: 1fr; width: 1fr; }"

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 - textual's name
        super().__init__(id=id)
        self.snapshot: Snapshot | None = None
        self.border_title = "Input"
        self._key: tuple | None = None
        self._level = 0

    def show(self, snapshot: Snapshot) -> None:
        """Repaint at once on clipping, gate or source changes; the level at most at 5 Hz."""
        key = (snapshot.clipping, snapshot.vad_open, snapshot.source_index, snapshot.source_name)
        level = round(snapshot.level_dbfs)
        self.snapshot = snapshot
        if key != self._key:
            self._key, self._level = key, level
            self.refresh_now()
        elif level != self._level:
            self._level = level
            self.refresh_at_most(LEVEL_UPDATE_S)

    def render(self) -> Text:
        s = self.snapshot
        if s is None:
            return Text("starting…", style="dim")
        w = self.size.width
        db = f" {s.level_dbfs:4.0f} dBFS " if s.level_dbfs > -119 else " -inf dBFS "
        clip = (Text(" CLIP ", style="bold white on red") if s.clipping
                else Text(" clip ", style="dim"))
        bar_w = max(4, w - len("level ") - len(db) - len(" clip "))
        out = Text("level ", style="bold")
        out.append_text(level_bar(s.level_dbfs, bar_w))
        out.append(db)
        out.append_text(clip)
        out.append("\nVAD   ", style="bold")
        if s.vad_open is None:
            out.append("off (no model gated)", style="dim")
        elif s.vad_open:
            out.append("● speech", style="bold green")
        else:
            out.append("○ silence", style="dim")
        kind = "mic " if s.source_kind == "mic" else "file"
        out.append(f"\n{kind}  ", style="bold")
        name = s.source_name
        if s.source_count > 1:
            name += f" ({s.source_index + 1}/{s.source_count})"
        out.append(name)
        out.append(f"  {_rate(s.input_rate)} → {_rate(s.sample_rate)}", style="dim")
        models = ", ".join(f"{m.name} ({_rate(m.sample_rate)})" for m in s.models)
        out.append("\nmodel ", style="bold")
        out.append(models)
        out.no_wrap = True
        out.overflow = "ellipsis"
        return out


def _ms(v: float) -> str:
    """Five columns for any latency: 0.02, 12.3, 250."""
    if v < 10:
        return f"{v:5.2f}"
    if v < 100:
        return f"{v:5.1f}"
    return f"{v:5.0f}"


_ROWS = (("vad", "vad"), ("features", "feat"), ("inference", "infer"), ("smoothing", "smooth"))


class LatencyPanel(Throttled):
    """Per stage and end to end p50/p99 (ms), drops, CPU share of the process and the UI."""

    DEFAULT_CSS = "LatencyPanel { height: 1fr; width: 1fr; }"

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 - textual's name
        super().__init__(id=id)
        self.snapshot: Snapshot | None = None
        self.cpu_process = 0.0  # percent of one core
        self.cpu_ui = 0.0
        self.border_title = "Latency ms p50/p99"

    def show(self, snapshot: Snapshot) -> None:
        """Numbers that change every block are unreadable at 20 Hz: repaint at most 2 Hz."""
        self.snapshot = snapshot
        title = f"Latency ms p50/p99, last {snapshot.latency.window_s:g} s"
        if title != self.border_title:  # setting it, even unchanged, repaints the screen
            self.border_title = title
        self.refresh_at_most(UPDATE_S)

    def set_cpu(self, process_pct: float, ui_pct: float) -> None:
        self.cpu_process, self.cpu_ui = process_pct, ui_pct
        self.refresh_at_most(UPDATE_S)

    def render(self) -> Text:
        s = self.snapshot
        if s is None:
            return Text("starting…", style="dim")
        lat = s.latency
        algo_ms = max((m.algorithmic_latency_s for m in s.models), default=0.0) * 1000
        cells = [(short, lat.p50_ms[key], lat.p99_ms[key]) for key, short in _ROWS]
        cells.append(("e2e", lat.p50_ms["e2e"], lat.p99_ms["e2e"]))

        def cell(name: str, p50: float, p99: float) -> Text:
            t = Text(f"{name:<6}", style="bold")
            t.append(f"{_ms(p50)} {_ms(p99)}")
            return t

        out = Text()
        two_cols = self.size.width >= 36
        parts = [cell(*c) for c in cells]
        algo = Text("algo  ", style="bold")
        algo.append(f"{algo_ms:5.0f}")
        parts.append(algo)
        if two_cols:
            for i in range(0, len(parts), 2):
                out.append_text(parts[i])
                if i + 1 < len(parts):
                    out.append("  ")
                    out.append_text(parts[i + 1])
                out.append("\n")
        else:
            for p in parts:
                out.append_text(p)
                out.append("\n")
        drops = Text(f"drop {s.dropped_blocks} ovf {s.overflows}",
                     style="bold red" if s.dropped_blocks or s.overflows else "")
        out.append_text(drops)
        out.append(f" · cpu {self.cpu_process:.0f}% (eng {s.engine_cpu * 100:.0f}% "
                   f"ui {self.cpu_ui:.0f}%)")
        out.no_wrap = True
        out.overflow = "ellipsis"
        return out
