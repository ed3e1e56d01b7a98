"""Every fault of issue 12 through a real `hark` subprocess: message, exit code, nothing lost.

The pipeline (hark.live.pipeline.run) owns these rules once; each test here drives one case as a
user would hit it and checks the stderr line, the exit code and that every event already made
is still where it was going.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.live.test_cli_mic import band_model as mic_band_model  # noqa: F401 - fixture
from tests.live.test_cli_replay import RATE, TRUTH, _tones, hark
from tests.live.test_cli_replay import setup as replay_setup  # noqa: F401 - fixture
from tests.virtual_mic import VirtualMic, require_virtual_mic

CMD = [sys.executable, "-m", "hark.cli"]
Setup = tuple[Path, Path]


def _errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("hark: error:")]


def _labels_jsonl(text: str) -> list[str]:
    return [json.loads(line)["label"] for line in text.splitlines()]


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory, replay_setup: Setup) -> tuple[Path, int]:  # noqa: F811
    """40 s of the tone pattern repeated: 30 events, so a reader that leaves early misses most."""
    d = tmp_path_factory.mktemp("many")
    segs = [(300.0 if lb == "low" else 6000.0, a + 4 * k, b + 4 * k)
            for k in range(10) for lb, a, b in TRUTH]
    wav = d / "many.wav"
    sf.write(wav, _tones(segs, 40.0), RATE, subtype="PCM_16")
    return wav, 3 * 10


def test_out_is_one_of_the_inputs(replay_setup: Setup, tmp_path: Path) -> None:  # noqa: F811
    wav, model = replay_setup
    copy = tmp_path / "x.wav"
    copy.write_bytes(wav.read_bytes())
    r = hark("replay", str(copy), "--model", str(model), "--out", str(copy))
    assert r.returncode == 2 and r.stdout == ""
    assert _errors(r.stderr) == [f"hark: error: --out {copy} is one of the inputs: refusing to "
                                 "overwrite it"]
    assert copy.read_bytes() == wav.read_bytes()


def test_out_is_an_existing_audio_file(replay_setup: Setup, tmp_path: Path) -> None:  # noqa: F811
    """The typo `hark replay --out a.wav b.wav`: a.wav is a recording, not an events file."""
    wav, model = replay_setup
    a = tmp_path / "a.wav"
    a.write_bytes(wav.read_bytes())
    r = hark("replay", "--model", str(model), "--out", str(a), str(wav))
    assert r.returncode == 2 and r.stdout == ""
    [err] = _errors(r.stderr)
    assert "is an existing audio file: refusing to overwrite it" in err
    assert a.read_bytes() == wav.read_bytes()


def test_head_closing_stdout_leaves_every_event_in_out(many: tuple[Path, int],
                                                       replay_setup: Setup,  # noqa: F811
                                                       tmp_path: Path) -> None:
    """`| head -1`: stdout is dropped silently (not an error: exit 0); --out gets them all."""
    wav, n = many
    _, model = replay_setup
    out = tmp_path / "ev.jsonl"
    cmd = " ".join([*CMD, "replay", str(wav), "--model", str(model), "--out", str(out)])
    r = subprocess.run(["bash", "-c", f"{cmd} | head -1; echo \"rc=${{PIPESTATUS[0]}}\""],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    first, status = r.stdout.splitlines()
    assert status == "rc=0", r.stderr
    assert json.loads(first)["label"] == "low"
    assert len(_labels_jsonl(out.read_text())) == n
    assert _errors(r.stderr) == []
    # deterministic variant: the reader is gone before the first line is written
    p = subprocess.Popen([*CMD, "replay", str(wav), "--model", str(model), "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         stdin=subprocess.DEVNULL)
    assert p.stdout is not None
    p.stdout.close()
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0 and _errors(err) == []
    assert len(_labels_jsonl(out.read_text())) == n


def test_out_to_dev_full(replay_setup: Setup) -> None:  # noqa: F811
    wav, model = replay_setup
    r = hark("replay", str(wav), "--model", str(model), "--format", "csv", "--out", "/dev/full")
    assert r.returncode == 1
    assert _errors(r.stderr) == ["hark: error: /dev/full: No space left on device: output "
                                 "dropped; events still go to stdout"]
    header, *rows = r.stdout.splitlines()
    assert header.startswith("onset,offset,event_label") and len(rows) == len(TRUTH)


def test_stdout_to_dev_full_and_stdout_closed(replay_setup: Setup, tmp_path: Path) -> None:  # noqa: F811
    wav, model = replay_setup
    out = tmp_path / "ev.jsonl"
    with open("/dev/full", "w") as full:
        r = subprocess.run([*CMD, "replay", str(wav), "--model", str(model), "--out", str(out)],
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert _errors(r.stderr) == [f"hark: error: stdout: No space left on device: output "
                                 f"dropped; events still go to {out}"]
    assert _labels_jsonl(out.read_text()) == [t[0] for t in TRUTH]
    out.unlink()
    cmd = " ".join([*CMD, "replay", str(wav), "--model", str(model), "--out", str(out)])
    r = subprocess.run(["bash", "-c", f"{cmd} >&-"], capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert _errors(r.stderr) == [f"hark: error: stdout is closed: output dropped; events still "
                                 f"go to {out}"]
    assert _labels_jsonl(out.read_text()) == [t[0] for t in TRUTH]  # and only once


def test_disk_full_mid_run_keeps_whole_lines(many: tuple[Path, int],
                                             replay_setup: Setup,  # noqa: F811
                                             tmp_path: Path) -> None:
    """The file size limit (EFBIG, as a full disk gives ENOSPC) hits in the middle of a line."""
    wav, n = many
    _, model = replay_setup
    out = tmp_path / "ev.jsonl"
    limit = 1000  # bytes: about ten lines, the cut falls inside one

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    r = subprocess.run([*CMD, "replay", str(wav), "--model", str(model), "--out", str(out)],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                       preexec_fn=small_files)
    assert r.returncode == 1
    assert _errors(r.stderr) == [f"hark: error: {out}: File too large: output dropped; events "
                                 "still go to stdout"]
    printed = r.stdout.splitlines()
    assert len(printed) == n
    data = out.read_text()
    assert data.endswith("\n") and 0 < len(data) <= limit
    written = data.splitlines()
    assert written == printed[: len(written)]  # whole lines, the first ones, nothing half


@pytest.mark.parametrize("sig", [signal.SIGHUP])
def test_sighup_during_replay_keeps_every_event(
    replay_setup: Setup, tmp_path: Path, sig: signal.Signals  # noqa: F811
) -> None:
    """SIGHUP (the terminal went away) is handled like SIGINT and SIGTERM: exit 129."""
    _, model = replay_setup
    wav = tmp_path / "long.wav"
    sf.write(wav, _tones([(300, 0.3, 8.0), (6000, 0.6, 0.9)], 8.0), RATE)
    out = tmp_path / "ev.jsonl"
    p = subprocess.Popen([*CMD, "replay", str(wav), "--model", str(model), "--realtime",
                          "--no-ui", "--out", str(out)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    assert p.stdout is not None
    first = p.stdout.readline()
    time.sleep(0.5)
    p.send_signal(sig)
    rest, err = p.communicate(timeout=30)
    assert p.returncode == 129, err
    assert "hark: stopped by SIGHUP; 2 events written" in err
    written = out.read_text().splitlines()
    assert written == [first.strip(), *rest.splitlines()]
    assert [json.loads(x)["label"] for x in written] == ["high", "low"]


def test_sighup_under_mic_closes_the_open_event(mic_band_model: Path,  # noqa: F811
                                                tmp_path: Path) -> None:
    require_virtual_mic()
    wav = tmp_path / "long.wav"
    sf.write(wav, _tones([(300.0, 0.2, 6.0)], 6.0), RATE, subtype="PCM_16")
    out = tmp_path / "mic.jsonl"
    with VirtualMic() as vm:
        p = subprocess.Popen([*CMD, "mic", "--model", str(mic_band_model), "--seconds", "30",
                              "--out", str(out), "--no-ui"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=vm.child_env(),
                             stdin=subprocess.DEVNULL)
        assert p.stderr is not None
        assert "listening on" in p.stderr.readline()
        player = vm.play(wav, wait=False)
        time.sleep(2.5)  # the tone is on: its event is open
        p.send_signal(signal.SIGHUP)
        stdout, err = p.communicate(timeout=30)
        player.kill()
        player.wait()
    assert p.returncode == 129, err
    assert "stopped by SIGHUP" in err and _errors(err) == []
    [ev] = [json.loads(x) for x in out.read_text().splitlines()]
    assert ev["label"] == "low" and ev["offset"] - ev["onset"] > 1.0
    assert out.read_text() == stdout


def test_mic_gap_keeps_stream_time_and_says_where(mic_band_model: Path,  # noqa: F811
                                                  tmp_path: Path) -> None:
    """SIGSTOP for 3 s: whatever the audio path lost, the event after the stop keeps its time.

    The virtual microphone's PulseAudio buffers the 3 s (nothing lost, nothing to fill); a
    device that overruns flags it and its loss is filled with silence (tested with the fake
    PortAudio in test_sources). Either way the stream clock must not skip the stop.
    """
    require_virtual_mic()
    wav = tmp_path / "two.wav"
    sf.write(wav, _tones([(300.0, 0.5, 1.0), (6000.0, 6.0, 6.5)], 7.5), RATE, subtype="PCM_16")
    with VirtualMic() as vm:
        p = subprocess.Popen([*CMD, "mic", "--model", str(mic_band_model), "--seconds", "12",
                              "--no-ui"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=vm.child_env(), stdin=subprocess.DEVNULL)
        assert p.stderr is not None
        assert "listening on" in p.stderr.readline()
        time.sleep(0.3)
        vm.play(wav, wait=False)
        time.sleep(2.0)
        p.send_signal(signal.SIGSTOP)
        time.sleep(3.0)
        p.send_signal(signal.SIGCONT)
        stdout, err = p.communicate(timeout=40)
    assert p.returncode == 0, err
    lines = [json.loads(x) for x in stdout.splitlines()]
    events = [e for e in lines if e["label"] != "_gap_"]
    assert [e["label"] for e in events] == ["low", "high"], (events, err)
    for gap in (e for e in lines if e["label"] == "_gap_"):  # a loss is marked where it was
        assert events[0]["offset"] < gap["onset"] < events[1]["onset"], lines
    spacing = events[1]["onset"] - events[0]["onset"]
    assert abs(spacing - 5.5) < 0.3, (events, err)  # not 2.5 s: the lost 3 s are counted
    for line in (x for x in err.splitlines() if "of input lost at" in x):
        at = float(line.split(" lost at ")[1].split(" s")[0])
        assert events[0]["offset"] < at < events[1]["onset"], err


def test_decode_error_mid_file_keeps_the_open_event(replay_setup: Setup, tmp_path: Path) -> None:  # noqa: F811
    _, model = replay_setup
    full = tmp_path / "full.flac"
    sf.write(full, _tones([(300, 0.3, 4.0)], 4.0), RATE, subtype="PCM_16")
    cut = tmp_path / "cut.flac"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    out = tmp_path / "ev.jsonl"
    r = hark("replay", str(cut), "--model", str(model), "--out", str(out))
    assert r.returncode == 2
    [err] = _errors(r.stderr)
    assert "decoding failed at" in err and "the 1 events up to there were written" in err
    [ev] = [json.loads(x) for x in r.stdout.splitlines()]
    assert ev["label"] == "low" and abs(ev["onset"] - 0.3) < 0.02 and ev["offset"] > 1.0
    assert out.read_text() == r.stdout


def test_block_ms_is_capped(mic_band_model: Path) -> None:  # noqa: F811
    t0 = time.monotonic()
    r = subprocess.run([*CMD, "mic", "--model", str(mic_band_model), "--block-ms", "100000",
                        "--seconds", "2", "--no-ui"], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert time.monotonic() - t0 < 30
    assert r.returncode == 2 and r.stdout == ""
    assert _errors(r.stderr) == ["hark: error: --block-ms must be 1..500 ms, not 100000"]


def test_header_claiming_1_hz_is_refused(replay_setup: Setup, tmp_path: Path) -> None:  # noqa: F811
    _, model = replay_setup
    wav = tmp_path / "one.wav"
    sf.write(wav, np.zeros(200_000, dtype=np.int16), 1, subtype="PCM_16")
    r = subprocess.run([*CMD, "replay", str(wav), "--model", str(model)], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL,
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (4 << 30,) * 2))
    assert r.returncode == 2 and r.stdout == ""
    assert _errors(r.stderr) == ["hark: error: one.wav: the header claims a sample rate of 1 Hz "
                                 "(hark reads 1000..768000 Hz)"]


def test_raw_files_and_directories_are_one_line(replay_setup: Setup, tmp_path: Path) -> None:  # noqa: F811
    wav, model = replay_setup
    pcm, _ = sf.read(wav, dtype="int16")
    raw = tmp_path / "tones.raw"
    raw.write_bytes(pcm.astype("<i2").tobytes())
    r = hark("replay", str(raw), "--model", str(model))
    assert r.returncode == 2 and r.stdout == ""
    assert _errors(r.stderr) == [f"hark: error: {raw}: headerless audio: give its format, e.g. "
                                 "--raw-format s16le:16000:1"]
    r = hark("replay", str(raw), "--model", str(model), "--raw-format", "s16le:16000:1")
    assert r.returncode == 0, r.stderr
    assert _labels_jsonl(r.stdout) == [t[0] for t in TRUTH]
    for bad in ("s16:16000:1", "s16le:1:1", "wav"):
        r = hark("replay", str(raw), "--model", str(model), "--raw-format", bad)
        assert r.returncode == 2 and len(_errors(r.stderr)) == 1, (bad, r.stderr)
    d = tmp_path / "dir.wav"
    d.mkdir()
    r = hark("replay", str(d), "--model", str(model))
    assert r.returncode == 2
    assert _errors(r.stderr) == [f"hark: error: {d}: is a directory, not an audio file"]


def test_stdin_wav_flac_and_raw(replay_setup: Setup, tmp_path: Path) -> None:  # noqa: F811
    wav, model = replay_setup
    pcm, _ = sf.read(wav, dtype="int16")
    flac = tmp_path / "tones.flac"
    sf.write(flac, pcm, RATE)
    for data, extra in ((wav.read_bytes(), []), (flac.read_bytes(), []),
                        (pcm.astype("<i2").tobytes(), ["--raw-format", "s16le:16000:1"])):
        r = subprocess.run([*CMD, "replay", "-", "--model", str(model), *extra], input=data,
                           capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert _labels_jsonl(r.stdout.decode()) == [t[0] for t in TRUTH]
    r = subprocess.run([*CMD, "replay", "-", "--model", str(model)], input=b"not audio at all",
                       capture_output=True, timeout=120)
    assert r.returncode == 2
    assert _errors(r.stderr.decode())[0].startswith("hark: error: stdin: not a readable audio")
    r = subprocess.run([*CMD, "replay", "-", "--model", str(model)], input=b"",
                       capture_output=True, timeout=120)
    assert r.returncode == 2 and _errors(r.stderr.decode()) == ["hark: error: stdin: no data "
                                                                "(0 bytes)"]


def test_ui_error_path_closes_the_open_event(replay_setup: Setup, tmp_path: Path) -> None:  # noqa: F811
    """The terminal UI on a file that breaks mid-stream: the open event is closed and written."""
    from tests.ui.tmux import Tmux

    _, model = replay_setup
    full = tmp_path / "full.flac"
    sf.write(full, _tones([(300, 0.3, 4.0)], 4.0), RATE, subtype="PCM_16")
    cut = tmp_path / "cut.flac"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    out = tmp_path / "ev.jsonl"
    env = {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    term = Tmux([*CMD, "replay", str(cut), "--model", str(model), "--realtime", "--out",
                 str(out)], 100, 30, env=env)
    try:
        term.wait_for(r"decoding failed", timeout_s=40)
        term.send("q")
        screen = term.wait_for(r"HARK-EXIT=\d+", timeout_s=20)
    finally:
        term.kill()
    assert "HARK-EXIT=1" in screen
    assert "Stopped on an error: " in screen.replace("\n", "")
    [ev] = [json.loads(x) for x in out.read_text().splitlines()]
    assert ev["label"] == "low" and abs(ev["onset"] - 0.3) < 0.02 and ev["offset"] > 1.0
