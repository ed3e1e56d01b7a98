"""Shared fixtures for the data tests: a seeded rng and hard requirements on the TTS binaries."""

import shutil

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def _require(binary: str) -> None:
    # Fail, never skip: a missing synthesiser would silently drop the speech tests from CI.
    if shutil.which(binary) is None:
        pytest.fail(
            f"{binary} is not on PATH; these tests need it (apt-get install {binary}). "
            "CI installs it, so install it locally too.",
            pytrace=False,
        )


@pytest.fixture
def espeak() -> None:
    _require("espeak-ng")


@pytest.fixture
def flite() -> None:
    _require("flite")
