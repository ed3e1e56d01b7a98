"""`hark mic` on a real PortAudio stream from a virtual PulseAudio microphone."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hark.live.card import SmoothingSpec
from tests import onnx_models
from tests.live.test_cli_replay import RATE, TRUTH, _tones
from tests.virtual_mic import VirtualMic, require_virtual_mic


@pytest.fixture(scope="module")
def band_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_band_model(tmp_path_factory.mktemp("mic"))


def make_band_model(d: Path) -> Path:
    """A model whose events are a 300 Hz tone (low) and a 6 kHz tone (high), written into d."""
    from hark.live.features import compute_features

    thr = []
    for band, f in ((slice(0, 10), 300.0), (slice(30, 40), 6000.0)):
        steady = compute_features(_tones([(f, 0, 1)], 1.0), onnx_models.LOGMEL, RATE)[50]
        # 10 dB below the steady tone: a real audio path (pulse resamples) may lose a few dB
        thr.append(float(np.log(np.exp(steady[band]).mean() / 10)))
    # bridge playback glitches of a loaded machine (10-20 ms of silence) as hark's cards do
    smooth = SmoothingSpec(method="none", threshold_on=0.5, threshold_off=0.5, min_on_ms=30,
                           min_off_ms=60)
    return onnx_models.band_energy_model(d, (thr[0], thr[1]), smoothing=smooth)


def test_mic_prints_the_played_events(band_model: Path, tmp_path: Path) -> None:
    require_virtual_mic()
    freqs = {"low": 300.0, "high": 6000.0}
    wav = tmp_path / "played.wav"
    sf.write(wav, _tones([(freqs[lb], a, b) for lb, a, b in TRUTH], 3.5), RATE, subtype="PCM_16")
    out = tmp_path / "mic.tsv"
    with VirtualMic() as vm:
        p = subprocess.Popen(
            [sys.executable, "-m", "hark.cli", "mic", "--model", str(band_model), "--seconds", "6",
             "--format", "tsv", "--out", str(out), "--no-ui"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=vm.child_env(),
            stdin=subprocess.DEVNULL,
        )
        assert p.stderr is not None
        line = p.stderr.readline()
        assert "listening on" in line, line + p.stderr.read()
        time.sleep(0.3)
        vm.play(wav, wait=True)
        stdout, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    header, *rows = stdout.splitlines()
    assert header == "onset\toffset\tevent_label"
    got = [(c[2], float(c[0]), float(c[1])) for c in (r.split("\t") for r in rows)]
    assert [g[0] for g in got] == [t[0] for t in TRUTH], got
    # the stream clock starts when the mic opens, the file some time later: compare spacing.
    # Timing precision is the replay tests' job (same engine, exact audio); here playback by
    # paplay on a loaded 2-core machine can stall for ~0.1 s, so only gross errors fail.
    start = got[0][1] - TRUTH[0][1]
    assert 0 <= start < 3.0
    for (_, on, off), (_, t_on, t_off) in zip(got, TRUTH, strict=True):
        assert abs((on - start) - t_on) < 0.2 and abs((off - start) - t_off) < 0.2
    assert out.read_text() == stdout
    assert "0 overflows" in err


def test_mic_unknown_device_is_one_line(band_model: Path) -> None:
    require_virtual_mic()
    with VirtualMic() as vm:
        r = subprocess.run(
            [sys.executable, "-m", "hark.cli", "mic", "--model", str(band_model), "--device",
             "no-such-device", "--no-ui"],
            capture_output=True, text=True, env=vm.child_env(), timeout=60,
            stdin=subprocess.DEVNULL,
        )
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hark: error:") and "no-such-device" in err[0]


def test_mic_without_any_input_device(band_model: Path, tmp_path: Path) -> None:
    """No sound card and no PulseAudio server: say so, and point at hark replay."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PULSE_SERVER": "unix:/nonexistent",
           "XDG_RUNTIME_DIR": str(tmp_path)}
    r = subprocess.run(
        [sys.executable, "-m", "hark.cli", "mic", "--model", str(band_model), "--no-ui"],
        capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL,
        cwd=Path(__file__).parents[2],
    )
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, r.stderr
    assert "no audio input device found" in err[0] and "hark replay" in err[0]


def test_devices_without_any_input_device_is_an_error_too(tmp_path: Path) -> None:
    """`hark devices` with nothing to list: the one line `hark mic` gives and exit 2, not an
    exit 0 a script would take for a listing."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PULSE_SERVER": "unix:/nonexistent",
           "XDG_RUNTIME_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "hark.cli", "devices"], capture_output=True,
                       text=True, env=env, timeout=60, stdin=subprocess.DEVNULL,
                       cwd=Path(__file__).parents[2])
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        "hark: error: no audio input device found; to run on a recording instead, use: "
        "hark replay FILE"]
