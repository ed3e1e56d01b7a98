"""The real microphone path: PortAudio -> ALSA pulse plugin -> a private PulseAudio null sink.

A generated tone burst is played into the sink with paplay and recorded through MicSource; it must
come back at the right frequency and length, with the counters reported. The numbers printed here
(first-block latency, callback cadence) are measurements, asserted only loosely.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import numpy as np
import pytest
import soundfile as sf

from hark.live.devices import DeviceError, format_devices, list_input_devices
from hark.live.sources import MicSource
from tests import virtual_mic
from tests.virtual_mic import VirtualMic

RATE = 16000
TONE_HZ = 1000.0
TONE_S = 0.5
LEAD_S = 0.3  # silence before the tone in the played file
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def vmic() -> Iterator[VirtualMic]:
    with virtual_mic.virtual_mic() as mic:
        print(f"\nvirtual mic up: sink warm after {mic.warmup_s:.2f} s (pid {mic.pid})")
        yield mic


@pytest.fixture(scope="module")
def tone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """0.3 s silence, 0.5 s of 1 kHz at half scale, 0.4 s silence; 16-bit like the sink."""
    t = np.arange(int(TONE_S * RATE)) / RATE
    tone = 0.5 * np.sin(2 * np.pi * TONE_HZ * t)
    x = np.concatenate([np.zeros(int(LEAD_S * RATE)), tone, np.zeros(int(0.4 * RATE))])
    path = tmp_path_factory.mktemp("vmic") / "tone.wav"
    sf.write(path, x.astype(np.float32), RATE, subtype="PCM_16")
    return path


def _envelope_bounds(y: np.ndarray, threshold: float = 0.1, win: int = 32) -> tuple[int, int]:
    """First and last sample where the 2 ms moving peak of |y| exceeds threshold."""
    peak = np.lib.stride_tricks.sliding_window_view(np.abs(y), win).max(axis=1)
    above = np.flatnonzero(peak > threshold)
    assert above.size, "the tone never arrived"
    return int(above[0]), int(above[-1] + win - 1)


def test_played_tone_arrives_through_portaudio(vmic: VirtualMic, tone_wav: Path) -> None:
    ref, _ = sf.read(tone_wav, dtype="float32")
    with MicSource(RATE, max_seconds=3.0) as mic:
        assert mic.input_rate == RATE  # the sink runs at 16 kHz: no resampling anywhere
        blocks = mic.blocks()
        first = next(blocks)
        player = vmic.play(tone_wav, wait=False)
        y = np.concatenate([first, *blocks])
        assert player.wait(timeout=10) == 0
    stats = mic.stats
    print(f"\nrecorded {y.size / RATE:.2f} s via {mic.name!r}: {stats}")
    assert y.size == 3 * RATE
    assert stats.overflows >= 0 and stats.underflows >= 0  # reported, not raised
    assert stats.dropped_blocks == 0 and stats.nonfinite_samples == 0

    # where the file landed in the recording, and how faithfully
    corr = np.fft.irfft(np.fft.rfft(y, 2 * y.size) * np.conj(np.fft.rfft(ref, 2 * y.size)))
    lag = int(np.argmax(corr[: y.size]))
    aligned = y[lag : lag + ref.size]
    assert aligned.size == ref.size, "recording ended before the file did"
    max_diff = float(np.max(np.abs(aligned - ref)))
    print(
        f"file starts at {lag / RATE * 1000:.1f} ms into the recording; "
        f"max |recorded - played| = {max_diff:.3g}"
    )
    assert max_diff < 1e-3  # measured 0: the null sink path is bit-exact at 16 kHz

    # the tone itself, found without using the reference: frequency and duration
    start, end = _envelope_bounds(y)
    duration_s = (end - start + 1) / RATE
    seg = y[start : end + 1]
    spectrum = np.abs(np.fft.rfft(seg * np.hanning(seg.size), n=64 * RATE))
    freq = np.argmax(spectrum) * RATE / (64 * RATE)
    print(f"tone: {freq:.1f} Hz, {duration_s * 1000:.1f} ms")
    assert abs(freq - TONE_HZ) < 5.0
    assert abs(duration_s - TONE_S) < 0.05
    assert abs((start - lag) / RATE - LEAD_S) < 0.05
    assert np.max(np.abs(y[: max(0, start - 64)])) < 1e-3  # silence before: no noise, no clicks


def _cadence(latency: str, seconds: float = 2.0) -> tuple[float, np.ndarray]:
    t_open = time.monotonic()
    arrivals = []
    with MicSource(RATE, latency=latency, max_seconds=seconds) as mic:
        for _ in mic.blocks():
            arrivals.append(time.monotonic())
    return arrivals[0] - t_open, np.diff(arrivals) * 1000


def test_first_block_latency_and_cadence(vmic: VirtualMic) -> None:
    rows = []
    for latency in ("low", "high"):
        first_s, gaps_ms = _cadence(latency)
        rows.append((latency, first_s, gaps_ms))
        print(
            f"\nlatency={latency!r}: first block {first_s * 1000:.1f} ms after opening; "
            f"block gaps median {np.median(gaps_ms):.2f} ms, p5 {np.percentile(gaps_ms, 5):.2f}, "
            f"p95 {np.percentile(gaps_ms, 95):.2f}, max {gaps_ms.max():.2f} ms"
        )
    _, first_low, gaps_low = rows[0]
    assert first_low < 1.0  # an idle null sink would give ~1.8 s: the warm-up must have worked
    assert 5.0 < float(np.median(gaps_low)) < 20.0  # steady 10 ms blocks with latency='low'


def test_device_by_name_substring(vmic: VirtualMic) -> None:
    names = [d.name for d in list_input_devices()]
    assert "pulse" in names and "default" in names
    assert "pulse" in format_devices()
    with MicSource(RATE, device="PULS", max_seconds=0.2) as mic:
        assert mic.name == "pulse"
        n = sum(b.size for b in mic.blocks())
    assert n == int(0.2 * RATE)


def test_unknown_and_ambiguous_devices(vmic: VirtualMic) -> None:
    with pytest.raises(DeviceError) as info:
        MicSource(RATE, device="no such microphone")
    message = str(info.value)
    assert "no input device matches 'no such microphone'" in message
    assert "pulse" in message and "default" in message
    with pytest.raises(DeviceError, match="ambiguous"):
        MicSource(RATE, device="alsa")  # the host API name matches both


def test_stop_from_a_signal_handler(vmic: VirtualMic) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        mic.stop()

    old = signal.signal(signal.SIGALRM, handler)
    try:
        with MicSource(RATE) as mic:
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            t0 = time.monotonic()
            n = sum(b.size for b in mic.blocks())
            elapsed = time.monotonic() - t0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert 0.25 < elapsed < 2.0
    assert n > 0.2 * RATE


def test_child_process_sees_the_virtual_mic(vmic: VirtualMic) -> None:
    """What a `hark mic` subprocess test needs: only vmic.env in its environment."""
    env = vmic.child_env()
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run(
        [sys.executable, "-c", "from live.devices import format_devices; print(format_devices())"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "pulse" in out.stdout and "default" in out.stdout


def test_missing_pulseaudio_fails_in_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(virtual_mic, "missing_tools", lambda: ["pulseaudio"])
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="pulseaudio"):
        virtual_mic.require_virtual_mic()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="pulseaudio"):
        virtual_mic.require_virtual_mic()


def test_virtual_mic_cleans_up_after_itself() -> None:
    """A second mic (nested in the module's one): its env is restored and its daemon is gone."""
    before = os.environ.get("PULSE_SERVER")
    with virtual_mic.virtual_mic() as mic:
        assert os.environ["PULSE_SERVER"] == mic.env["PULSE_SERVER"] != before
        pid = mic.pid
        assert pid is not None
        socket = Path(mic.env["PULSE_SERVER"].removeprefix("unix:"))
        assert socket.exists()
    assert os.environ.get("PULSE_SERVER") == before
    assert not socket.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_play_waits_for_the_end(vmic: VirtualMic, tone_wav: Path) -> None:
    t0 = time.monotonic()
    assert vmic.play(tone_wav).returncode == 0
    assert time.monotonic() - t0 >= 1.0  # the file lasts 1.2 s
