"""The `hark enroll` screen: the word to say, take k/N, a level meter, r / s / q.

A thread worker runs live.takes.record (source -> utterance detector -> session); a 20 Hz timer
on the UI thread reads the session and the meter and repaints what changed. Keys act on the
session through its lock: r discards the last take kept (it is prompted again), s skips the
word, q stops without writing anything. The app's result: 0 every take recorded, 1 quit,
2 the audio failed (`error` says why).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol

import numpy as np
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Footer, Static

from hark.live.errors import HarkError
from hark.live.takes import Meter, TakeSession, record
from hark.live.ui.font import big_text, big_width
from hark.live.ui.widgets.meters import level_bar
from hark.live.utterance import UtteranceDetector, UtteranceOptions

REFRESH_HZ = 20.0
METER_WIDTH = 40


class BlockSource(Protocol):
    """What the screen records from: live.sources.MicSource, or a test's stand-in."""

    def blocks(self) -> Iterator[np.ndarray]: ...

    def close(self) -> None: ...


class RecordingFinished(Message):
    """The worker's record() returned (every take, quit) or raised (error set)."""


class EnrollApp(App[int]):
    """Prompt, takes so far, level meter; keys r (re-take), s (skip word), q (quit)."""

    TITLE = "hark enroll"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    Screen { layout: vertical; }
    #word { height: auto; min-height: 4; padding: 1 2 0 2; text-style: bold; }
    #prompt { height: 1; padding: 0 2; }
    #takes { height: auto; padding: 1 2 0 2; }
    #meter { height: 2; padding: 1 2 0 2; }
    #status { height: 2; padding: 1 2 0 2; color: $text-muted; }
    """
    BINDINGS = [
        Binding("r", "retake", "Re-take the last"),
        Binding("s", "skip", "Skip word"),
        Binding("q", "quit_enroll", "Quit (write nothing)"),
        Binding("ctrl+c", "quit_enroll", "Quit", show=False, priority=True),
    ]

    def __init__(self, session: TakeSession, source: BlockSource, sample_rate: int = 16000,
                 options: UtteranceOptions | None = None, refresh_hz: float = REFRESH_HZ,
                 run_audio: bool = True) -> None:
        super().__init__()
        self.session = session
        self.source = source
        self.sample_rate = sample_rate
        self.detector = UtteranceDetector(options or UtteranceOptions(sample_rate=sample_rate))
        self.meter = Meter()
        self.refresh_hz = min(float(refresh_hz), REFRESH_HZ)
        self.run_audio = run_audio
        self.error: str | None = None
        self.meter_updates = 0  # repaints of the meter (tests: it moves with the audio)
        self._stop = threading.Event()
        self._shown: tuple[object, ...] | None = None
        self._shown_level: tuple[int, bool] | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="word")
        yield Static(id="prompt")
        yield Static(id="takes")
        yield Static(id="meter")
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(1.0 / self.refresh_hz, self._tick)
        if self.run_audio:
            self._record()
        self._tick()

    def on_unmount(self) -> None:
        self._stop_audio()

    def _stop_audio(self) -> None:
        """End the worker: the flag for between blocks, close() for a source waiting for one."""
        self._stop.set()
        self.source.close()

    # ---- the audio worker ------------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, name="takes", group="takes")
    def _record(self) -> None:
        """Fill the session from the source (never on the UI thread)."""
        try:
            record(self.session, self.source.blocks(), self.sample_rate, self.detector,
                   self.meter, stop=self._stop)
        except HarkError as e:
            self.error = str(e)
        finally:
            self.source.close()
            self.post_message(RecordingFinished())

    def on_recording_finished(self, message: RecordingFinished) -> None:
        if self.error is not None:
            self.exit(2)
        elif self.session.quit_requested or not self.session.done:
            self.exit(1)
        else:
            self.exit(0)

    # ---- keys ------------------------------------------------------------------------------------
    def action_retake(self) -> None:
        self.session.retake()
        self._tick()

    def action_skip(self) -> None:
        self.session.skip_word()
        self._tick()

    def action_quit_enroll(self) -> None:
        self.session.quit()
        self._stop_audio()
        self.exit(1)

    # ---- drawing ---------------------------------------------------------------------------------
    def _tick(self) -> None:
        try:
            word_w = self.query_one("#word", Static)
        except NoMatches:  # timers still fire while the app closes
            return
        p = self.session.prompt
        key = (p, self.session.version)
        if key != self._shown:
            self._shown = key
            if p is None:
                word_w.update("done" if not self.session.quit_requested else "quit")
                self.query_one("#prompt", Static).update("")
            else:
                width = max(20, self.size.width - 4)
                big = "\n".join(big_text(p.word)) if big_width(p.word) <= width else p.word
                word_w.update(big)
                self.query_one("#prompt", Static).update(p.text())
            self.query_one("#takes", Static).update(self._takes_text())
            self.query_one("#status", Static).update(self.session.last_event)
        level = round(self.meter.level_db)
        if (level, self.meter.in_speech) != self._shown_level:
            self._shown_level = (level, self.meter.in_speech)
            self.meter_updates += 1
            bar = Text("level ")
            bar.append_text(level_bar(self.meter.level_db, METER_WIDTH))
            state = "speech" if self.meter.in_speech else "listening"
            bar.append(f" {max(level, -99):>4d} dBFS  {state}")
            self.query_one("#meter", Static).update(bar)

    def _takes_text(self) -> Text:
        """One line per word: a dot per take kept, a ring per take to go."""
        kept: dict[str, int] = {}
        for t in self.session.takes():
            kept[t.word] = kept.get(t.word, 0) + 1
        width = max(len(w) for w in self.session.words)
        text = Text()
        for w in self.session.words:
            n = kept.get(w, 0)
            text.append(f"{w:<{width}}  ")
            if w in self.session.skipped:
                text.append("skipped\n", style="dim")
                continue
            text.append("●" * n, style="green")
            text.append("○" * (self.session.takes_per_word - n) + "\n", style="dim")
        return text


def run_enroll_ui(session: TakeSession, source: BlockSource, sample_rate: int = 16000) -> tuple[
        int, str | None]:
    """Run the screen until every take is recorded or the user quits: (code, error)."""
    app = EnrollApp(session, source, sample_rate)
    code = app.run()
    return (1 if code is None else int(code)), app.error
