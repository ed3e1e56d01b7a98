"""models.prefetch: the next epoch's data built in a forked worker is the data itself."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from hark.models.prefetch import EpochData


def _make(epoch: int) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng([3, epoch])
    return rng.normal(size=(200, 40)).astype(np.float32), os.getpid()


def test_prefetched_epochs_equal_the_ones_built_in_place() -> None:
    with EpochData(_make, last=4) as ahead:
        got = [ahead.get(e) for e in range(4)]
    plain = EpochData(_make, last=4, ahead=False)
    with plain:
        want = [plain.get(e) for e in range(4)]
    for (a, _), (b, pid_b) in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
        assert pid_b == os.getpid()
    # epoch 0 is built in place; every later one came from the worker process
    assert got[0][1] == os.getpid()
    assert all(pid != os.getpid() for _, pid in got[1:])


def test_the_next_epoch_is_built_before_it_is_asked_for(tmp_path: Path) -> None:
    def make(epoch: int) -> int:
        (tmp_path / f"built-{epoch}").touch()
        return epoch

    with EpochData(make, last=3) as data:
        assert data.get(0) == 0
        # "training" epoch 0: nobody has asked for epoch 1, yet the worker builds it
        deadline = time.monotonic() + 60
        while not (tmp_path / "built-1").exists():
            assert time.monotonic() < deadline, "the worker never built epoch 1"
            time.sleep(0.02)
        assert data.get(1) == 1
        assert data.get(2) == 2
    assert not (tmp_path / "built-3").exists()  # nothing past the last epoch


def test_a_failure_in_the_worker_reaches_the_caller() -> None:
    def bad(epoch: int) -> int:
        if epoch == 1:
            raise ValueError("no streams for epoch 1")
        return epoch

    with EpochData(bad, last=3) as data, pytest.raises(ValueError, match="epoch 1"):
        data.get(0)
        data.get(1)


def test_leaving_early_ends_the_worker() -> None:
    def slow(epoch: int) -> int:
        time.sleep(0.3)
        return epoch

    data = EpochData(slow, last=10)
    with data:
        data.get(0)  # epoch 1 is now pending: an early stop leaves it
    assert data._pool is None and not data._pending
