"""The top line: running / paused, the source, stream time, event count, files saved."""

from __future__ import annotations

from rich.text import Text

from hark.live.ui.state import Snapshot
from hark.live.ui.widgets.throttle import Throttled

CLOCK_UPDATE_S = 0.25  # the stream clock repaints at most this often


def clock(t: float) -> str:
    """mm:ss.s of stream time (h:mm:ss past an hour)."""
    m, s = divmod(max(0.0, t), 60.0)
    if m >= 60:
        h, m = divmod(int(m), 60)
        return f"{h}:{m:02d}:{int(s):02d}"
    return f"{int(m):02d}:{s:04.1f}"


class StatusBar(Throttled):
    """One line; the pause state and event count stay live even while the display is paused."""

    DEFAULT_CSS = """
    StatusBar { height: 1; width: 1fr; background: $panel; }
    """

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 - textual's name
        super().__init__(id=id)
        self.snapshot: Snapshot | None = None
        self.paused = False
        self.n_events = 0
        self.finished = False

    def show(self, snapshot: Snapshot) -> None:
        """Repaint at once when the state, source, events or files change; the clock at 4 Hz."""
        old = self.snapshot
        self.snapshot = snapshot
        structural = (
            old is None
            or (old.source_index, len(old.files_written))
            != (snapshot.source_index, len(snapshot.files_written))
            or (self.n_events, self.finished) != (snapshot.n_events, snapshot.finished)
        )
        self.n_events = snapshot.n_events
        self.finished = snapshot.finished
        if structural:
            self.refresh_now()
        elif old is not None and round(old.time_s, 1) != round(snapshot.time_s, 1):
            self.refresh_at_most(CLOCK_UPDATE_S)

    def set_live(self, paused: bool, n_events: int, finished: bool) -> None:
        """What changes while the display is paused (cheap: no snapshot needed)."""
        if (paused, n_events, finished) != (self.paused, self.n_events, self.finished):
            self.paused, self.n_events, self.finished = paused, n_events, finished
            self.refresh_now()

    def render(self) -> Text:
        s = self.snapshot
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(" hark ", style="bold reverse")
        if self.paused:
            out.append(" ⏸ PAUSED ", style="bold black on yellow")
        elif self.finished:
            out.append(" ■ done ", style="bold")
        else:
            out.append(" ● live ", style="bold green")
        if s is None:
            return out
        name = s.source_name
        if s.source_count > 1:
            name += f" {s.source_index + 1}/{s.source_count}"
        out.append(f" {s.source_kind} {name} ", style="bold")
        when = clock(s.time_s)
        if s.duration_s is not None:
            when += f" / {clock(s.duration_s)}"
        out.append(when)
        out.append(f" · {self.n_events} event{'s' if self.n_events != 1 else ''}")
        if self.paused:
            out.append(" (still recording)", style="yellow")
        if s.files_written:
            out.append(f" · saved {len(s.files_written)} files", style="dim")
        return out
