"""Repaint at most every N seconds, but never leave a stale picture.

A change that comes too soon is drawn by a one-shot timer when the interval is up (render()
reads the newest data then).
"""

from __future__ import annotations

import time

from textual.timer import Timer
from textual.widget import Widget


class Throttled(Widget):
    """A widget whose `refresh_at_most(interval_s)` coalesces repaints."""

    _shown_at = 0.0
    _late: Timer | None = None

    def refresh_at_most(self, interval_s: float) -> None:
        now = time.monotonic()
        wait = self._shown_at + interval_s - now
        if wait <= 0:
            self._shown_at = now
            self.refresh()
        elif self._late is None:
            self._late = self.set_timer(wait, self._late_refresh)

    def refresh_now(self) -> None:
        self._shown_at = time.monotonic()
        self.refresh()

    def _late_refresh(self) -> None:
        self._late = None
        self.refresh_now()
