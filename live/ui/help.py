"""The '?' screen: what each key does and how to read the roll."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP_TEXT = """\
[b]Keys[/b]
  [b]q[/b]        quit: open events are closed and written, a summary is printed
  [b]space[/b]    pause / resume the display (audio and event writing go on)
  [b]r[/b]        reset the models' recurrent state
  [b]↑ / ↓[/b]    select a class
  [b]+ / -[/b]    raise / lower its on threshold (off follows, same gap)
  [b]s[/b]        save all events so far and a PNG of the event roll
  [b]?[/b]        this help (escape or ? closes it)

[b]Event roll[/b]: one row per class, newest on the right. A cell's bar height is the \
smoothed posterior; orange cells are inside an event. The number after a label is its on \
threshold. The axis is stream time in seconds.

[b]Latency[/b]: per block, p50/p99 in ms: VAD, features, inference, smoothing. e2e is \
queueing + compute for the newest sample of a block; algo is what a model must hear before \
it can decide (window + hop + median filter delay).
"""


class HelpScreen(ModalScreen[None]):
    """A centred box over the UI; the UI keeps running underneath."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "hark · help"
            yield Static(HELP_TEXT, id="help-text")

    def action_close(self) -> None:
        self.dismiss()
