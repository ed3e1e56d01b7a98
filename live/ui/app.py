"""The textual app and `run_ui`, the entry point `hark mic` / `hark replay --realtime` call.

HarkApp draws a UISession: a thread worker runs `session.run()` (drains the source, feeds the
engine, writes events), and a 20 Hz timer on the UI thread takes a snapshot only when something
changed and hands it to the widgets. Keys act on the session through its lock-protected commands.
`frozen=True` freezes every timing number (latency, CPU) for deterministic screenshots;
`run_engine=False` leaves the worker to the caller (tests that ran the session beforehand);
`freeze_gc=True` (run_ui) keeps full garbage collections from stalling the audio thread.
Cost, measured by tests/ui/bench_redraw.py (real `hark replay --realtime` in tmux, psutil per
thread): the UI thread takes ~5% of a core at 80x24 and ~6.5% at 120x40, because every widget
repaints only when what it shows changed (and the latency numbers at most twice a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.geometry import Region
from textual.message import Message
from textual.widgets import Footer

from hark.live.ui.help import HelpScreen
from hark.live.ui.session import UISession
from hark.live.ui.state import Snapshot
from hark.live.ui.widgets.meters import InputPanel, LatencyPanel
from hark.live.ui.widgets.now import EventsPanel, NowPanel
from hark.live.ui.widgets.roll import LABEL_MAX, RollSection
from hark.live.ui.widgets.status import StatusBar

REFRESH_HZ = 20.0  # redraws per second at most
DEFAULT_ROLL_S = 10.0
THRESHOLD_STEP = 0.05
BOTTOM_ROWS = 5  # input / latency panels (title + 4 lines)
MIN_MIDDLE_ROWS = 5  # now / events panels at least (title + big type + a line)
MAX_ROW_LINES = 8  # lines per class in the roll when there is room
ROLL_SHARE = 0.55  # of the lines between the status bar and the bottom panels
SWITCH_INTERVAL_S = 0.0005  # GIL switch interval while the UI runs (see run_ui)
HANGUP_GRACE_S = 5.0  # after SIGHUP and the events are written: how long a normal exit may take
FROZEN_CPU = (12.0, 4.0)  # process %, UI thread % shown in frozen (snapshot test) mode


class AudioFinished(Message):
    """The session's run() returned: end of the sources, stop(), --seconds, or an error."""


class Saved(Message):
    """The 's' key's files are written (or failed)."""

    def __init__(self, paths: Sequence[Path], error: str | None = None) -> None:
        super().__init__()
        self.paths = list(paths)
        self.error = error


class RollContainer(VerticalScroll, can_focus=False):
    """The roll sections, one per model; scrolls if there are more classes than lines."""


class HarkApp(App[int]):
    """Event roll, now, events, input, latency; keys in the footer."""

    TITLE = "hark"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    Screen { layout: vertical; }
    RollContainer { height: 6; scrollbar-size-vertical: 1; }
    #middle { height: 1fr; min-height: 5; }
    #bottom { height: 5; }
    NowPanel, EventsPanel, InputPanel, LatencyPanel {
        border-top: solid $primary-darken-1;
        border-title-color: $text;
        border-title-style: bold;
        padding: 0 0 0 1;
    }
    EventsPanel, LatencyPanel { margin-left: 1; }
    """
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("space", "pause", "Pause"),
        Binding("r", "reset", "Reset"),
        Binding("up", "select(-1)", "Class", key_display="↑↓"),
        Binding("down", "select(1)", "Class", show=False),
        Binding("plus,equals_sign", "threshold(1)", "Threshold", key_display="+-"),
        Binding("minus,underscore", "threshold(-1)", "Threshold", show=False),
        Binding("s", "save", "Save"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("ctrl+c", "interrupt", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        session: UISession,
        *,
        refresh_hz: float = REFRESH_HZ,
        frozen: bool = False,
        run_engine: bool = True,
        exit_when_done: bool = False,
        freeze_gc: bool = False,
    ) -> None:
        super().__init__()
        self.freeze_gc = freeze_gc
        self.session = session
        self.refresh_hz = min(float(refresh_hz), REFRESH_HZ)
        self.frozen = frozen
        self.run_engine = run_engine
        self.exit_when_done = exit_when_done
        self.paused = False
        self.selectable = [
            (i, label) for i, m in enumerate(session.models) for label in m.card.event_labels
        ]
        self.selected = 0
        self.last_snapshot: Snapshot | None = None
        self.redraws = 0
        self.cpu_samples: list[tuple[float, float]] = []  # (process %, UI thread %) per second
        self._shown_version = -1
        self._cpu_mark = (time.thread_time(), time.monotonic())
        self._proc: Any = None
        self._status: StatusBar | None = None  # widgets, once mounted
        self._sections: list[RollSection] = []
        self._now = NowPanel(id="now")
        self._events = EventsPanel(id="events")
        self._input = InputPanel(id="input")
        self._latency = LatencyPanel(id="latency")

    # ---- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        label_width = min(LABEL_MAX, max(len(lb) for m in self.session.models
                                         for lb in m.card.labels))
        with RollContainer(id="roll"):
            for i, m in enumerate(self.session.models):
                yield RollSection(i, tuple(m.card.labels), self.session.roll_seconds,
                                  label_width=label_width, id=f"roll-{i}")
        with Horizontal(id="middle"):
            yield self._now
            yield self._events
        with Horizontal(id="bottom"):
            yield self._input
            yield self._latency
        yield Footer()

    def _fit_roll(self, height: int) -> None:
        """Size the roll to about half the screen at most, panels keep their minimum.

        Up to 8 lines per class for finer bars when there is room; many classes scroll.
        """
        counts = [len(m.card.labels) for m in self.session.models]
        avail = height - 2 - BOTTOM_ROWS - MIN_MIDDLE_ROWS
        budget = min(avail, round(ROLL_SHARE * (height - 2 - BOTTOM_ROWS)))
        rows = next((h for h in range(MAX_ROW_LINES, 1, -1)
                     if sum(c * h + 2 for c in counts) <= budget), 1)
        for section in self.query(RollSection):
            section.set_row_height(rows)
        need = sum(c * rows + 2 for c in counts)
        for box in self.query(RollContainer):
            box.styles.height = max(3, min(need, avail))

    def on_resize(self, event: events.Resize) -> None:
        self._fit_roll(event.size.height)

    def on_mount(self) -> None:
        self._status = self.query_one(StatusBar)
        self._sections = list(self.query(RollSection))
        self._fit_roll(self.size.height)
        if self.frozen:
            self._latency.set_cpu(*FROZEN_CPU)
        else:
            import psutil

            self._proc = psutil.Process()
            self._proc.cpu_percent(None)  # the first call only starts the measurement
            self.set_interval(1.0, self._sample_cpu)
        self.set_interval(1.0 / self.refresh_hz, self._tick)
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            # SIGTERM and SIGHUP (the terminal went away) end the UI like q (open events
            # closed and written); not in tests, which do not run on the main thread's loop
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, self._quit, 143)
            loop.add_signal_handler(signal.SIGHUP, self._quit, 129)
        if self.run_engine:
            self._audio()
        self._tick()
        if self.freeze_gc:
            # A full collection holds the GIL for as long as it scans: with the ~140k objects
            # of a started app that was 100-260 ms with the audio worker stalled. Frozen
            # objects are never scanned again; what the UI allocates from now on is little.
            self.call_after_refresh(gc.freeze)

    def on_unmount(self) -> None:
        self.session.stop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)

    # ---- the audio worker --------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, name="audio", group="audio")
    def _audio(self) -> None:
        """Drain the source into the engine (never on the UI thread)."""
        self.session.run()
        self.post_message(AudioFinished())

    def on_audio_finished(self, message: AudioFinished) -> None:
        self._tick(force=True)
        if self.session.error:
            self.notify(self.session.error, title="audio stopped", severity="error", timeout=30)
        if self.exit_when_done:
            self._quit(1 if self.session.error else 0)

    # ---- drawing (UI thread, at most refresh_hz) ---------------------------------------------
    def _on_screen(self) -> bool:
        """The widgets are mounted and the app is not closing.

        Timers and messages may still arrive during shutdown, when the widgets are gone.
        """
        return self._status is not None and self._status.is_attached

    def _tick(self, force: bool = False) -> None:
        if not self._on_screen():
            return
        status = self._status
        assert status is not None
        if self.paused:  # the display stands still; the status line says what goes on
            status.set_live(True, self.session.n_events, self.session.finished)
            return
        if self.session.version == self._shown_version and not force:
            return
        snap = self.session.snapshot(frozen=self.frozen)
        self._shown_version = snap.version
        self.last_snapshot = snap
        self.redraws += 1
        sel_model, sel_label = self.selectable[self.selected] if self.selectable else (-1, None)
        for section in self._sections:
            section.show(snap.models[section.index],
                         sel_label if section.index == sel_model else None)
        for panel in (self._now, self._events, self._input, self._latency):
            panel.show(snap)
        status.show(snap)
        status.set_live(self.paused, snap.n_events, snap.finished)

    def _sample_cpu(self) -> None:
        """CPU share of the whole process (psutil) and of this UI thread, once a second."""
        tt, now = time.thread_time(), time.monotonic()
        ui = 100.0 * (tt - self._cpu_mark[0]) / max(1e-6, now - self._cpu_mark[1])
        self._cpu_mark = (tt, now)
        process = float(self._proc.cpu_percent(None)) if self._proc is not None else 0.0
        self.cpu_samples.append((process, ui))
        if self._on_screen():
            self._latency.set_cpu(process, ui)

    # ---- keys --------------------------------------------------------------------------------
    def _quit(self, code: int) -> None:
        """Stop the audio (the worker closes open events and writes them), then exit."""
        self.session.stop()
        if code == 129:
            threading.Thread(target=self._leave_if_stuck, args=(code,), daemon=True,
                             name="hangup-exit").start()
        self.exit(code, return_code=code)

    def _leave_if_stuck(self, code: int) -> None:
        """After SIGHUP, leave even if textual's shutdown blocks on the vanished terminal.

        Seen under load: its writer queue never drains and the process lives on. Once the worker
        has closed and written the open events, a normal exit gets a few seconds, then we go.
        """
        self.session.wait(10.0)
        time.sleep(HANGUP_GRACE_S)
        os._exit(code)

    def action_quit(self) -> None:  # type: ignore[override]
        self._quit(0)

    def action_interrupt(self) -> None:
        self._quit(130)  # Ctrl-C: like q, with the shell's usual code

    def action_pause(self) -> None:
        self.paused = not self.paused
        if self._status is not None and self._on_screen():
            self._status.set_live(self.paused, self.session.n_events, self.session.finished)
        if not self.paused:
            self._tick(force=True)

    def action_reset(self) -> None:
        self.session.reset_models()
        self.notify("model state reset", timeout=2)

    def action_select(self, delta: int) -> None:
        if not self.selectable:
            return
        self.selected = (self.selected + delta) % len(self.selectable)
        model, label = self.selectable[self.selected]
        for section in self._sections:
            if section.index == model:  # many classes: the roll scrolls to the selected one
                y = section.virtual_region.y + section.row_offset(label)
                for box in self.query(RollContainer):
                    box.scroll_to_region(Region(0, y, 1, section.row_height), animate=False)
        self._tick(force=True)

    def action_threshold(self, direction: int) -> None:
        if not self.selectable:
            return
        model, label = self.selectable[self.selected]
        on, off = self.session.adjust_threshold(model, label, direction * THRESHOLD_STEP)
        self.notify(f"{label}: on {on:.2f}, off {off:.2f}", timeout=2)
        self._tick(force=True)

    def action_save(self) -> None:
        self._save()

    @work(thread=True, exit_on_error=False, name="save", group="save")
    def _save(self) -> None:
        """Matplotlib takes a moment: off the UI thread, like the audio."""
        try:
            paths = self.session.save()
        except Exception as e:  # noqa: BLE001 - shown to the user, the UI carries on
            self.post_message(Saved([], f"{type(e).__name__}: {e}"))
            return
        self.post_message(Saved(paths))

    def on_saved(self, message: Saved) -> None:
        if message.error:
            self.notify(message.error, title="save failed", severity="error", timeout=10)
        else:
            self.notify("saved " + ", ".join(p.name for p in message.paths), timeout=4)
        self._tick(force=True)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())


def run_ui(
    models: Sequence[Any],
    cfg: Any,
    *,
    files: Sequence[Path] | None = None,
    realtime: bool = True,
    device: int | str | None = None,
    seconds: float | None = None,
    raw: Any = None,
) -> int:
    """Run the UI on files (paced replay) or a microphone until q; print the summary; exit code.

    cfg is live.cli.RunConfig (vad, vad_mode, fmt, out; optional roll_seconds, block_ms).
    Events are written and flushed to cfg.out as they finish, exactly as without the UI.
    """
    from hark.live.engine import EngineOptions

    roll_seconds = float(getattr(cfg, "roll_seconds", None) or DEFAULT_ROLL_S)
    options = EngineOptions(vad=cfg.vad, vad_mode=cfg.vad_mode,
                            vad_kind=getattr(cfg, "vad_kind", None))
    rate = max(int(m.card.sample_rate) for m in models)
    out = Path(cfg.out) if cfg.out is not None else None
    common: dict[str, Any] = dict(
        engine_options=options, out=out, fmt=cfg.fmt, roll_seconds=roll_seconds,
        save_dir=out.parent if out is not None else None,
    )
    if files is not None:
        from hark.live.sources import FileSource

        # 20 ms blocks: the roll moves smoothly at 20 redraws a second
        sources = [FileSource(f, rate, block_s=0.02, realtime=realtime, raw=raw) for f in files]
        session = UISession(models, sources, kind="file", paced=realtime, **common)
        exit_when_done = False  # keep the last picture on screen until q
    else:
        from hark.live.sources import MicSource

        block_ms = float(getattr(cfg, "block_ms", None) or 10)
        mic = MicSource(rate, device=device, block_ms=block_ms, max_seconds=seconds)
        session = UISession(models, [mic], kind="mic", paced=True, max_seconds=seconds, **common)
        try:
            mic.start()  # a device that cannot open fails here, as one line, before the UI
        except BaseException:
            session.close()
            raise
        exit_when_done = True  # --seconds: stop by itself
    app = HarkApp(session, exit_when_done=exit_when_done, freeze_gc=True)
    code: int | None = None
    switch_interval = sys.getswitchinterval()
    # The audio worker and the UI share the GIL. Each numpy / onnxruntime call in feed() gives
    # the GIL up and must get it back; with the default 5 ms switch interval a busy redraw makes
    # every one of those wait up to 5 ms (measured: e2e p99 40-160 ms at 120x40 under tmux;
    # 0.5 ms: 4-6 ms). The UI owns the process while it runs, so it sets this and restores it.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    # models, librosa, onnxruntime: never scanned again by the cyclic GC (HarkApp(freeze_gc))
    gc.freeze()
    try:
        code = app.run()
    finally:
        sys.setswitchinterval(switch_interval)
        gc.unfreeze()
        session.stop()
        session.wait(10.0)
        summary = session.close()
        with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
            print(summary.text(), file=sys.stderr)
    if code is None:  # the app ended without a result (e.g. it crashed): not a success
        return 1
    return 1 if (summary.error and code == 0) else int(code)
