"""Pre-roll: the last frames seen while the speech gate was shut, held until it opens or they age.

While the gate is shut, a gated frame model's frames are held here (at most `capacity`, the card's
pre_roll_ms) instead of being answered with zeros at once. When the gate opens, the model is run
over the held frames first (its state warmed on the onset the VAD was late for) and their
posteriors are reported under their own time stamps; frames pushed out of a full buffer are the
ones that really get zeros. A preallocated ring: no allocation per frame.
"""

from __future__ import annotations

import numpy as np


class FrameRing:
    """Up to `capacity` consecutive feature frames, oldest first, with their absolute indices."""

    def __init__(self, capacity: int, n_bins: int) -> None:
        self.capacity = capacity
        self._buf = np.zeros((max(capacity, 1), n_bins), dtype=np.float32)
        self._start = 0  # ring position of the oldest held frame
        self.count = 0
        self.end = 0  # absolute index one past the newest held frame

    @property
    def first(self) -> int:
        """Absolute index of the oldest held frame."""
        return self.end - self.count

    def push(self, first: int, frames: np.ndarray) -> tuple[int, int]:
        """Hold frames numbered first, first + 1, ...; return (index, count) of those dropped.

        The dropped ones are the oldest (held or new, consecutive). Frames must follow the held.
        """
        n = len(frames)
        if self.count and first != self.end:
            raise ValueError("pre-roll frames must be consecutive")
        out_first = self.first if self.count else first
        if self.capacity == 0:
            self.end = first + n
            return out_first, n
        total = self.count + n
        dropped = max(0, total - self.capacity)
        if n >= self.capacity:  # the new frames alone fill the ring
            self._buf[:] = frames[n - self.capacity :]
            self._start, self.count = 0, self.capacity
        else:
            if dropped:
                self._start = (self._start + dropped) % self.capacity
                self.count -= dropped
            pos = (self._start + self.count) % self.capacity
            k = min(n, self.capacity - pos)
            self._buf[pos : pos + k] = frames[:k]
            self._buf[: n - k] = frames[k:]
            self.count += n
        self.end = first + n
        return out_first, dropped

    def take(self) -> np.ndarray:
        """The held frames in order (a copy); the ring is then empty."""
        idx = (self._start + np.arange(self.count)) % max(self.capacity, 1)
        out = self._buf[idx]
        self.clear()
        return out

    def clear(self) -> None:
        self._start = 0
        self.count = 0
