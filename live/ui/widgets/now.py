"""'Now': the active label(s) in large type with confidence; 'Events': the latest finished ones."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from hark.live.ui.font import big_text, big_width
from hark.live.ui.state import Snapshot
from hark.live.ui.widgets.throttle import Throttled

ACTIVE_COLOR = "#ffbf3f"
CONF_UPDATE_S = 0.25  # confidences of open events repaint at most this often


class NowPanel(Throttled):
    """The most confident open event in large letters, the others on one line below."""

    DEFAULT_CSS = "NowPanel { height: 1fr; width: 1fr; }"

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 - textual's name
        super().__init__(id=id)
        self.snapshot: Snapshot | None = None
        self.border_title = "Now"
        self._key: tuple | None = None
        self._confs: tuple[float, ...] = ()

    def show(self, snapshot: Snapshot) -> None:
        """Repaint at once when events open or close; confidences at most 5 times a second."""
        key = (
            tuple((m.name, lb, round(on, 2))
                  for m in snapshot.models for lb, (on, _) in sorted(m.active.items())),
            snapshot.finished, snapshot.error, snapshot.source_kind,
        )
        confs = tuple(round(conf, 2) for m in snapshot.models for _, conf in m.active.values())
        self.snapshot = snapshot
        if key != self._key:
            self._key, self._confs = key, confs
            self.refresh_now()
        elif confs != self._confs:
            self._confs = confs
            self.refresh_at_most(CONF_UPDATE_S)

    def render(self) -> Text:
        s = self.snapshot
        if s is None:
            return Text("starting…", style="dim")
        several = len(s.models) > 1
        active = sorted(
            ((conf, label, onset, m.name) for m in s.models
             for label, (onset, conf) in m.active.items()),
            key=lambda a: (-a[0], a[1]),
        )
        out = Text(no_wrap=True, overflow="ellipsis")
        if not active:
            if s.error:
                out.append(f"error: {s.error}", style="bold red")
            elif s.finished:
                out.append("finished", style="dim")
                out.append(" · press q to quit, s to save", style="dim")
            else:
                out.append("listening…" if s.source_kind == "mic" else "playing…", style="dim")
            return out
        conf, label, onset, model = active[0]
        w, h = self.size.width, self.size.height
        scale = 2 if h >= 7 and big_width(label, 2) <= w else 1
        if big_width(label, scale) <= w:
            for line in big_text(label, scale):
                out.append(line + "\n", style=f"bold {ACTIVE_COLOR}")
        else:
            out.append(label + "\n", style=f"bold reverse {ACTIVE_COLOR}")
        out.append(f"{label} ", style="bold")
        out.append(f"{conf:.2f}", style=f"bold {ACTIVE_COLOR}")
        out.append(f" since {onset:.2f}s" + (f" ({model})" if several else ""), style="dim")
        for conf2, label2, _, model2 in active[1:]:
            out.append(f" · {label2} {conf2:.2f}" + (f" ({model2})" if several else ""))
        return out


class EventsPanel(Widget):
    """Finished events, newest first: onset–offset, label, peak confidence (and model)."""

    DEFAULT_CSS = "EventsPanel { height: 1fr; width: 1fr; }"

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 - textual's name
        super().__init__(id=id)
        self.snapshot: Snapshot | None = None
        self.border_title = "Events"

    def show(self, snapshot: Snapshot) -> None:
        """Repaint when an event finished."""
        changed = self.snapshot is None or (
            (snapshot.n_events, len(snapshot.models)) != (self.snapshot.n_events,
                                                          len(self.snapshot.models)))
        self.snapshot = snapshot
        if changed:
            self.border_title = f"Events ({snapshot.n_events})"
            self.refresh()

    def render(self) -> Text:
        s = self.snapshot
        out = Text(no_wrap=True, overflow="ellipsis")
        if s is None or not s.recent_events:
            out.append("no event yet", style="dim")
            return out
        several = len(s.models) > 1
        rows = max(1, self.size.height)
        recent = list(reversed(s.recent_events))[:rows]
        lw = min(12, max(len(e.label) for e in recent))
        for i, e in enumerate(recent):
            if i:
                out.append("\n")
            out.append(f"{e.onset_s:7.2f}–" + f"{e.offset_s:.2f}s".ljust(9), style="dim")
            out.append(f"{e.label[:lw]:<{lw}}", style="bold")
            out.append(f" {e.peak:.2f}")
            if several:
                out.append(f" {e.model}", style="dim")
        return out
