"""The screen of a running (headless) app as plain text lines, for assertions and reports."""

from __future__ import annotations

from textual.app import App


def screen_text(app: App) -> str:
    """What the terminal would show, without colours: one line per row."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text.rstrip() for strip in strips)
