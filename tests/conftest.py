"""Shared fixtures: generated audio (no downloads), seeded."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def _espeak(text: str, out: Path, rate: int = 16000) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (apt-get install espeak-ng); scripts/setup.sh "
                    "installs it")
    raw = out.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), text], check=True)
    import soxr

    x, sr = sf.read(raw, dtype="float32")
    return soxr.resample(x, sr, rate).astype(np.float32)


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spoken phrase at 16 kHz with 0.3 s of silence each side; length a multiple of 480."""
    d = tmp_path_factory.mktemp("speech")
    x = _espeak("hello there, seven", d / "speech")
    pad = np.zeros(4800, dtype=np.float32)
    x = np.concatenate([pad, x, pad])
    x = np.concatenate([x, np.zeros((-x.size) % 480, dtype=np.float32)])
    path = d / "speech.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
