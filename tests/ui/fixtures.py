"""Known recordings for the UI tests: tones at known times and the band model that detects them.

low = a 300 Hz tone (mel bins 0-9), high = a 6 kHz tone (bins 30-39); each posterior crosses 0.5
when a frame's analysis window is half covered by its tone, so events land on the known times.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
from textual.pilot import Pilot

from hark.live.features import compute_features
from tests import onnx_models

RATE = 16000
FREQS = {"low": 300.0, "high": 6000.0}
# (label, onset s, offset s) of the demo recording; 6 s long
TRUTH = [("low", 0.5, 1.3), ("high", 1.8, 2.6), ("low", 3.2, 3.6), ("high", 4.2, 5.4)]
DURATION_S = 6.0


def tones(segments: list[tuple[float, float, float]], total_s: float, seed: int = 0) -> np.ndarray:
    """Quiet noise with 0.5-amplitude sine tones (freq, start, stop) on top."""
    t = np.arange(int(total_s * RATE)) / RATE
    x = 1e-4 * np.random.default_rng(seed).standard_normal(t.size)
    for freq, start, stop in segments:
        x += 0.5 * np.sin(2 * np.pi * freq * t) * ((t >= start) & (t < stop))
    return x.astype(np.float32)


def write_tones(path: Path, truth: list[tuple[str, float, float]] = TRUTH,
                total_s: float = DURATION_S) -> Path:
    audio = tones([(FREQS[lb], a, b) for lb, a, b in truth], total_s)
    sf.write(path, audio, RATE, subtype="PCM_16")
    return path


def band_model(out_dir: Path, name: str = "bands") -> Path:
    """The band-energy model with thresholds at half the steady power of each tone."""
    thr = []
    for band, f in ((slice(0, 10), FREQS["low"]), (slice(30, 40), FREQS["high"])):
        steady = compute_features(tones([(f, 0, 1)], 1.0), onnx_models.LOGMEL, RATE)[50]
        thr.append(float(np.log(np.exp(steady[band]).mean() / 2)))
    return onnx_models.band_energy_model(out_dir, (thr[0], thr[1]), name=name)


class SteppedSource:
    """A recording whose blocks are handed out only as far as the test allows.

    The session's worker blocks in `blocks()` at the limit, like a microphone waiting for audio,
    so a test (or a screenshot) sees the stream frozen at an exact point. stop() releases it.
    """

    def __init__(self, path: Path, rate: int = RATE, block_s: float = 0.02) -> None:
        from hark.live.sources import FileSource, SourceStats

        with FileSource(path, rate, block_s=block_s) as src:
            self._blocks = [b.copy() for b in src.blocks()]
            self.input_rate = src.input_rate
            self.duration_s = src.duration_s
        self.name = path.name
        self.sample_rate = rate
        self.stats = SourceStats()
        self._ends = np.cumsum([b.size for b in self._blocks]) / rate  # audio time after block i
        self._allowed = 0
        self._stopped = False
        self._cond = threading.Condition()

    def allow_until(self, t_s: float) -> None:
        """Let the blocks that end at or before t_s through."""
        with self._cond:
            upto = int(np.searchsorted(self._ends, t_s + 1e-9, "right"))
            self._allowed = max(self._allowed, upto)
            self._cond.notify_all()

    def allow_all(self) -> None:
        self.allow_until(float(self._ends[-1]))

    def blocks(self) -> Iterator[np.ndarray]:
        for i, block in enumerate(self._blocks):
            with self._cond:
                self._cond.wait_for(lambda: self._stopped or i < self._allowed)  # noqa: B023
                if self._stopped:
                    return
            self.stats.blocks += 1
            yield block

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def close(self) -> None:
        self.stop()


class PacedQueueSource:
    """A microphone stand-in: a producer thread puts blocks into a small bounded queue at
    wall-clock pace and counts the ones it must drop because nobody drained the queue in time
    (what MicSource's audio callback does)."""

    def __init__(self, audio: np.ndarray, block_s: float = 0.02, queue_blocks: int = 10) -> None:
        import queue

        from hark.live.sources import SourceStats

        n = int(round(block_s * RATE))
        self._blocks = [audio[i : i + n] for i in range(0, audio.size, n)]
        self._block_s = block_s
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=queue_blocks)
        self.name = "paced-queue"
        self.input_rate = RATE
        self.duration_s = None
        self.stats = SourceStats()
        self._stopped = threading.Event()
        self._producer = threading.Thread(target=self._produce, daemon=True)

    def _produce(self) -> None:
        import queue
        import time

        start = time.monotonic()
        for i, block in enumerate(self._blocks):
            delay = start + (i + 1) * self._block_s - time.monotonic()
            if delay > 0 and self._stopped.wait(delay):
                return
            try:
                self._queue.put_nowait(block)
            except queue.Full:
                self.stats.dropped_blocks += 1
        self._queue.put(None)

    def blocks(self) -> Iterator[np.ndarray]:
        self._producer.start()
        while not self._stopped.is_set():
            block = self._queue.get()
            if block is None:
                return
            self.stats.blocks += 1
            yield block

    def stop(self) -> None:
        self._stopped.set()

    def close(self) -> None:
        self.stop()


async def wait_until(pilot: Pilot, cond: Callable[[], bool], what: str,
                     timeout_s: float = 15.0) -> None:
    """Let the app run until cond() holds (the audio worker runs on its own thread)."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await pilot.pause(0.02)
