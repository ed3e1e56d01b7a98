"""The real `hark` in a real terminal (tmux): replay --realtime, and mic on the virtual microphone.

These run the console script as a user would, read the screen with `tmux capture-pane`, press
keys with `send-keys`, and check the exit summary and the --out file.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.ui.fixtures import RATE, TRUTH, band_model, write_tones
from tests.ui.tmux import Tmux
from tests.virtual_mic import VirtualMic, require_virtual_mic


def _hark() -> list[str]:
    script = Path(sys.executable).parent / "hark"
    return [str(script)] if script.exists() else [sys.executable, "-m", "hark.cli"]


@pytest.fixture
def tmux_runs() -> Iterator[list[Tmux]]:
    """Tmux servers started by a test; killed (by their own socket) whatever happens."""
    runs: list[Tmux] = []
    yield runs
    for t in runs:
        t.kill()


def _event_row(label: str, onset: float, offset: float) -> str:
    return rf"{onset:.2f}–{offset:.2f}s\s+{label}\s+0\.9\d"


@pytest.mark.slow
def test_replay_realtime_shows_the_ui_with_the_expected_labels(
    tmp_path: Path, tmux_runs: list[Tmux]
) -> None:
    wav = write_tones(tmp_path / "tones.wav")
    model = band_model(tmp_path)
    out = tmp_path / "ev.jsonl"
    term = Tmux([*_hark(), "replay", str(wav), "--model", str(model), "--realtime",
                 "--out", str(out)], 120, 30)
    tmux_runs.append(term)

    screen = term.wait_for(r"(?s)file tones\.wav.*q Quit", timeout_s=30)  # a whole frame
    lines = screen.rstrip().splitlines()
    assert lines[0].startswith(" hark ") and "● live" in lines[0]
    assert any(line.startswith("▸low  0.50 ▕") for line in lines)
    assert any(line.startswith(" high 0.50 ▕") for line in lines)
    assert "q Quit" in lines[-1] and "space Pause" in lines[-1]

    # 'high' is on from 4.2 s to 5.4 s: the Now panel names it with its confidence
    term.wait_for(r"high 0\.9\d since 4\.20s", timeout_s=20)
    screen = term.wait_for(r"(?s)■ done.*Events \(4\)", timeout_s=10)  # the end of the file
    for label, onset, offset in TRUTH:
        assert re.search(_event_row(label, onset, offset), screen), (label, onset, screen)

    term.send("q")
    screen = term.wait_for(r"HARK-EXIT=\d+", timeout_s=15)
    assert "HARK-EXIT=0" in screen
    summary = next(line for line in screen.splitlines() if line.startswith("hark: "))
    assert "hark: 4 events in 6.0 s of audio from tones.wav (bands)." in summary
    assert f"Events were written to {out}" in summary
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["label"] for r in rows] == [t[0] for t in TRUTH]


@pytest.mark.slow
def test_mic_on_the_virtual_microphone_shows_a_played_sound(
    tmp_path: Path, tmux_runs: list[Tmux]
) -> None:
    require_virtual_mic()
    model = band_model(tmp_path)
    out = tmp_path / "mic.jsonl"
    # 0.3 s of silence, 0.8 s of the 6 kHz tone, 0.3 s of silence
    t = np.arange(int(0.8 * RATE)) / RATE
    burst = np.concatenate([np.zeros(int(0.3 * RATE)), 0.5 * np.sin(2 * np.pi * 6000 * t),
                            np.zeros(int(0.3 * RATE))]).astype(np.float32)
    sound = tmp_path / "burst.wav"
    sf.write(sound, burst, RATE, subtype="PCM_16")

    with VirtualMic() as vmic:
        term = Tmux([*_hark(), "mic", "--model", str(model), "--seconds", "8", "--out", str(out)],
                    120, 30, env=vmic.env)
        tmux_runs.append(term)
        term.wait_for(r"(?s)● live\s+mic .*q Quit", timeout_s=30)
        term.wait_for(r"● live\s+mic .* 00:(00\.[5-9]|0[1-9]\.\d)", timeout_s=10)  # audio flows
        assert "Events (0)" in term.capture() or "no event yet" in term.capture()
        vmic.play(sound)  # returns when paplay is done
        screen = term.wait_for(r"\d+\.\d\d–\d+\.\d\ds\s+high\s+0\.9\d", timeout_s=10)
        assert "Events (1)" in screen
        assert re.search(r"level .*dBFS", screen)
        # --seconds 8: the UI closes by itself, then prints the summary
        screen = term.wait_for(r"HARK-EXIT=\d+", timeout_s=20)
    assert "HARK-EXIT=0" in screen, screen
    summary = next(line for line in screen.splitlines() if line.startswith("hark: "))
    assert re.search(r"hark: 1 event in 8\.0 s of audio from .+ \(bands\)\.", summary), summary
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["label"] for r in rows] == ["high"]
    assert abs((rows[0]["offset"] - rows[0]["onset"]) - 0.8) < 0.05


@pytest.mark.slow
def test_sigterm_closes_the_open_event_writes_it_and_exits_143(
    tmp_path: Path, tmux_runs: list[Tmux]
) -> None:
    import signal

    import psutil

    wav = write_tones(tmp_path / "tones.wav")
    model = band_model(tmp_path)
    out = tmp_path / "ev.csv"
    term = Tmux([*_hark(), "replay", str(wav), "--model", str(model), "--realtime",
                 "--format", "csv", "--out", str(out)], 80, 24)
    tmux_runs.append(term)
    term.wait_for(r"high 0\.9\d since 1\.80s", timeout_s=30)  # the second event is open
    hark = next(p for p in psutil.Process(term.pane_pid()).children(recursive=True)
                if "replay" in p.cmdline())
    hark.send_signal(signal.SIGTERM)
    screen = term.wait_for(r"HARK-EXIT=\d+", timeout_s=15)
    assert "HARK-EXIT=143" in screen, screen
    assert "hark: 2 events in " in screen
    rows = out.read_text().splitlines()
    assert rows[0] == "onset,offset,event_label,peak,mean,model"
    assert [r.split(",")[2] for r in rows[1:]] == ["low", "high"]


@pytest.mark.slow
def test_terminal_closing_sighup_closes_the_open_event_and_writes_it(
    tmp_path: Path, tmux_runs: list[Tmux]
) -> None:
    """The terminal goes away under the UI (tmux killed: SIGHUP): --out gets the open event."""
    import psutil

    wav = write_tones(tmp_path / "tones.wav")
    model = band_model(tmp_path)
    out = tmp_path / "ev.csv"
    import os

    env = {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else None
    term = Tmux([sys.executable, "-m", "hark.cli", "replay", str(wav), "--model", str(model),
                 "--realtime", "--format", "csv", "--out", str(out)], 80, 24, env=env)
    tmux_runs.append(term)
    term.wait_for(r"high 0\.9\d since 1\.80s", timeout_s=30)  # the second event is open
    hark = next(p for p in psutil.Process(term.pane_pid()).children(recursive=True)
                if "replay" in p.cmdline())
    term.kill()  # the pty closes: the kernel sends SIGHUP
    hark.wait(timeout=20)
    rows = out.read_text().splitlines()
    assert rows[0] == "onset,offset,event_label,peak,mean,model"
    assert [r.split(",")[2] for r in rows[1:]] == ["low", "high"]
