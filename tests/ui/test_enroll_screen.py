"""The `hark enroll` screen under Pilot: the prompt, a meter that follows the audio, r / s / q.

The source is a queue the test fills, so the worker sees exactly the audio the test gives it,
when it gives it (as a microphone would deliver it).
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Iterator

import numpy as np

from hark.live.takes import TakeSession
from hark.live.ui.enroll import EnrollApp
from hark.models.data.tts import Prosody, Voice, synth_clip
from tests.ui.fixtures import wait_until
from tests.ui.screen_text import screen_text

RATE = 16000
BLOCK = 480  # 30 ms
KAL = Voice("flite", "kal16", "flite-kal16", "flite-kal")


class QueueSource:
    """Blocks the test puts in, handed out as they come; close() ends blocks()."""

    def __init__(self) -> None:
        self._q: queue.Queue[np.ndarray] = queue.Queue()
        self.closed = False

    def put(self, x: np.ndarray) -> None:
        for i in range(0, x.size, BLOCK):
            self._q.put(np.asarray(x[i : i + BLOCK], np.float32))

    def pending(self) -> int:
        return self._q.qsize()

    def blocks(self) -> Iterator[np.ndarray]:
        while not self.closed:
            try:
                yield self._q.get(timeout=0.02)
            except queue.Empty:
                continue

    def close(self) -> None:
        self.closed = True


def _noise(seconds: float, dbfs: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (10 ** (dbfs / 20) * rng.standard_normal(int(seconds * RATE))).astype(np.float32)


def test_prompt_meter_retake_skip_quit() -> None:
    word = synth_clip("yes", KAL, RATE, Prosody())
    take = np.concatenate((_noise(0.3, -60), word + _noise(word.size / RATE, -60, 1),
                           _noise(0.6, -60, 2)))

    async def body() -> None:
        session = TakeSession(["yes", "stop"], 2)
        src = QueueSource()
        app = EnrollApp(session, src, RATE)
        async with app.run_test(size=(90, 30)) as pilot:
            await pilot.pause(0.1)
            text = screen_text(app)
            assert "say 'yes' (take 1/2, word 1/2)" in text
            assert "○○" in text and "Re-take the last" in text and "Skip word" in text

            # the meter follows the audio: quiet noise, then 30 dB louder (for 120 ms: less
            # than a take's least speech, so it is not kept as one)
            src.put(_noise(0.3, -60))
            await wait_until(pilot, lambda: src.pending() == 0, "the quiet noise")
            await pilot.pause(0.15)
            assert " -60 dBFS" in screen_text(app)
            updates = app.meter_updates
            src.put(_noise(0.12, -30))
            await wait_until(pilot, lambda: src.pending() == 0, "the loud noise")
            await pilot.pause(0.15)
            assert app.meter_updates > updates and " -30 dBFS" in screen_text(app)

            src.put(take)
            await wait_until(pilot, lambda: src.pending() == 0, "the take")
            await pilot.pause(0.15)
            assert len(session.takes()) == 1
            await pilot.pause(0.15)
            text = screen_text(app)
            assert "say 'yes' (take 2/2, word 1/2)" in text and "●○" in text
            assert "kept take 1/2 of 'yes'" in text

            await pilot.press("r")  # the take just kept is discarded and asked for again
            await pilot.pause(0.1)
            assert session.takes() == []
            text = screen_text(app)
            assert "say 'yes' (take 1/2, word 1/2)" in text
            assert "discarded take 1 of 'yes': say it again" in text

            await pilot.press("s")
            await pilot.pause(0.1)
            text = screen_text(app)
            assert "say 'stop' (take 1/2, word 2/2)" in text and "skipped" in text
            assert session.skipped == ["yes"]

            await pilot.press("q")
            await pilot.pause(0.1)
        assert app.return_value == 1 and session.quit_requested
        assert src.closed  # the worker closed the source on its way out

    asyncio.run(body())


def test_the_screen_ends_by_itself_when_every_take_is_in() -> None:
    word = synth_clip("go", KAL, RATE, Prosody())
    take = np.concatenate((_noise(0.3, -60), word + _noise(word.size / RATE, -60, 1),
                           _noise(0.6, -60, 2)))

    async def body() -> None:
        session = TakeSession(["go"], 2)
        src = QueueSource()
        app = EnrollApp(session, src, RATE)
        async with app.run_test(size=(80, 24)) as pilot:
            src.put(np.concatenate((take, take, _noise(0.3, -60))))
            await wait_until(pilot, lambda: app.return_value is not None, "the app to exit", 20)
        assert app.return_value == 0 and len(session.takes()) == 2

    asyncio.run(body())
