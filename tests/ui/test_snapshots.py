"""Screenshots at 80x24 and 120x40 (pytest-textual-snapshot), made deterministic: fixed audio
held at 4.5 s (an event open, three finished), timing numbers frozen (HarkApp(frozen=True)).

Update after an intended change of the look: pytest tests/ui --snapshot-update
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from hark.live.ui.app import HarkApp
from hark.live.ui.session import UISession
from tests.ui.fixtures import SteppedSource, wait_until

HOLD_AT_S = 4.5  # 'high' (4.2-5.4 s) is on; low, high, low are finished


def _held_app(stepped: SteppedSource, session: UISession) -> tuple[HarkApp, Any]:
    app = HarkApp(session, frozen=True)

    async def run_before(pilot: Pilot) -> None:
        stepped.allow_until(HOLD_AT_S)
        await wait_until(pilot, lambda: app.last_snapshot is not None
                         and app.last_snapshot.time_s >= HOLD_AT_S - 1e-6, "4.5 s on screen")
        await pilot.pause(0.7)  # > the longest repaint throttle (latency, 0.5 s): all caught up

    return app, run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_live_view(snap_compare: Callable[..., bool], stepped: SteppedSource,
                   stepped_session: UISession, size: tuple[int, int]) -> None:
    app, run_before = _held_app(stepped, stepped_session)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_help_over_the_live_view(snap_compare: Callable[..., bool], stepped: SteppedSource,
                                 stepped_session: UISession) -> None:
    app, run_before = _held_app(stepped, stepped_session)

    async def then_help(pilot: Pilot) -> None:
        await run_before(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=(80, 24), run_before=then_help)


def test_paused_with_a_class_selected(snap_compare: Callable[..., bool], stepped: SteppedSource,
                                      stepped_session: UISession) -> None:
    app, run_before = _held_app(stepped, stepped_session)

    async def then_select(pilot: Pilot) -> None:
        await run_before(pilot)
        await pilot.press("down", "plus", "space")
        await pilot.pause(0.1)
        app.clear_notifications()
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=(80, 24), run_before=then_select)
