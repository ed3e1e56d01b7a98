"""Build the next epoch's training data in a worker process while the current epoch trains.

Each epoch's data is fresh (new streams, rooms, noise, crops) and building it is single-threaded
numpy work that took as long as the fit itself on these 2-core machines, so doing it beside
TensorFlow instead of before it nearly halves an epoch. The data for epoch e is a pure function
of e (every generator is seeded by epoch), so the worker returns exactly what the caller would
have built: tests hold the two equal.

The worker is forked, so it inherits the closure and everything it holds (clip pools, room
banks) without pickling them; only the epoch number goes in and the arrays come back. It runs
numpy, soxr and audiomentations only, never TensorFlow.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_MAKE: Callable[[int], Any] | None = None  # set before the fork; the worker calls it


def _build(epoch: int) -> Any:
    assert _MAKE is not None
    return _MAKE(epoch)


class EpochData(Generic[T]):
    """`get(e)` returns make(e); with `ahead`, make(e + 1) is started in a worker at once.

    Use as a context manager so the worker ends with the loop (also on early stop or error).
    """

    def __init__(self, make: Callable[[int], T], last: int, ahead: bool = True) -> None:
        self.make, self.last, self.ahead = make, last, ahead
        self._pool: ProcessPoolExecutor | None = None
        self._pending: dict[int, Future[T]] = {}

    def __enter__(self) -> EpochData[T]:
        if self.ahead:
            global _MAKE
            _MAKE = self.make
            self._pool = ProcessPoolExecutor(1, mp_context=mp.get_context("fork"))
        return self

    def __exit__(self, *exc: object) -> None:
        global _MAKE
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._pending.clear()
        _MAKE = None

    def get(self, epoch: int) -> T:
        """The data of `epoch`; starts building the next epoch's before returning."""
        pending = self._pending.pop(epoch, None)
        data = pending.result() if pending is not None else self.make(epoch)
        if self._pool is not None and epoch + 1 < self.last:
            self._pending[epoch + 1] = self._pool.submit(_build, epoch + 1)
        return data
