"""`hark replay` as a user runs it: a real subprocess, real files, real exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hark.live.features import compute_features
from tests import onnx_models

RATE = 16000


def hark(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hark.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _tones(segments: list[tuple[float, float, float]], total: float) -> np.ndarray:
    t = np.arange(int(total * RATE)) / RATE
    x = 1e-4 * np.random.default_rng(0).standard_normal(t.size)
    for freq, start, stop in segments:
        x += 0.5 * np.sin(2 * np.pi * freq * t) * ((t >= start) & (t < stop))
    return x.astype(np.float32)


TRUTH = [("low", 0.5, 1.0), ("high", 1.5, 2.2), ("low", 2.8, 3.1)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tone recording with known segments and the band model that detects them."""
    d = tmp_path_factory.mktemp("replay")
    freqs = {"low": 300.0, "high": 6000.0}
    audio = _tones([(freqs[lb], a, b) for lb, a, b in TRUTH], 3.5)
    wav = d / "tones.wav"
    sf.write(wav, audio, RATE, subtype="PCM_16")
    thr = []
    for band, f in ((slice(0, 10), 300.0), (slice(30, 40), 6000.0)):
        steady = compute_features(_tones([(f, 0, 1)], 1.0), onnx_models.LOGMEL, RATE)[50]
        thr.append(float(np.log(np.exp(steady[band]).mean() / 2)))
    model = onnx_models.band_energy_model(d, (thr[0], thr[1]))
    return wav, model


def _check_events(rows: list[tuple[str, float, float]]) -> None:
    assert [r[0] for r in rows] == [t[0] for t in TRUTH]
    for (_, on, off), (_, t_on, t_off) in zip(rows, TRUTH, strict=True):
        assert abs(on - t_on) <= 0.011 and abs(off - t_off) <= 0.011


def test_replay_jsonl(setup: tuple[Path, Path], tmp_path: Path) -> None:
    wav, model = setup
    out = tmp_path / "ev.jsonl"
    r = hark("replay", str(wav), "--model", str(model), "--out", str(out))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    rows = [json.loads(line) for line in lines]
    _check_events([(e["label"], e["onset"], e["offset"]) for e in rows])
    assert out.read_text().splitlines() == lines


def test_replay_csv(setup: tuple[Path, Path]) -> None:
    wav, model = setup
    r = hark("replay", str(wav), "--model", str(model), "--format", "csv")
    assert r.returncode == 0, r.stderr
    header, *lines = r.stdout.splitlines()
    assert header.split(",")[:3] == ["onset", "offset", "event_label"]
    rows = [line.split(",") for line in lines]
    _check_events([(c[2], float(c[0]), float(c[1])) for c in rows])


def test_replay_tsv_dcase(setup: tuple[Path, Path], tmp_path: Path) -> None:
    wav, model = setup
    out = tmp_path / "ev.tsv"
    r = hark("replay", str(wav), "--model", str(model), "--format", "tsv", "--out", str(out))
    assert r.returncode == 0, r.stderr
    header, *lines = r.stdout.splitlines()
    assert header == "onset\toffset\tevent_label"
    rows = [line.split("\t") for line in lines]
    _check_events([(c[2], float(c[0]), float(c[1])) for c in rows])
    assert out.read_text() == r.stdout


def test_replay_several_files_lists_the_file(setup: tuple[Path, Path], tmp_path: Path) -> None:
    wav, model = setup
    other = tmp_path / "second.wav"
    other.write_bytes(wav.read_bytes())
    r = hark("replay", str(wav), str(other), "--model", str(model), "--format", "tsv")
    assert r.returncode == 0, r.stderr
    header, *lines = r.stdout.splitlines()
    assert header == "filename\tonset\toffset\tevent_label"
    rows = [line.split("\t") for line in lines]
    assert [c[0] for c in rows] == [str(wav)] * 3 + [str(other)] * 3
    _check_events([(c[3], float(c[1]), float(c[2])) for c in rows[3:]])  # times restart per file
    r = hark("replay", str(wav), str(other), "--model", str(model))
    files = [json.loads(x)["file"] for x in r.stdout.splitlines()]
    assert files == [str(wav)] * 3 + [str(other)] * 3


def test_replay_is_deterministic(setup: tuple[Path, Path]) -> None:
    wav, model = setup
    runs = {hark("replay", str(wav), "--model", str(model)).stdout for _ in range(2)}
    assert len(runs) == 1


def test_replay_other_rates_and_channels(setup: tuple[Path, Path], tmp_path: Path) -> None:
    """A 44.1 kHz stereo flac gives the same events: decoded, downmixed and resampled."""
    wav, model = setup
    audio, _ = sf.read(wav, dtype="float32")
    import soxr

    x = soxr.resample(audio, RATE, 44100)
    flac = tmp_path / "tones.flac"
    sf.write(flac, np.stack([x, x], axis=1), 44100, subtype="PCM_24")
    r = hark("replay", str(flac), "--model", str(model), "--format", "tsv")
    assert r.returncode == 0, r.stderr
    rows = [line.split("\t") for line in r.stdout.splitlines()[1:]]
    _check_events([(c[2], float(c[0]), float(c[1])) for c in rows])


def test_nan_samples_are_replaced_and_reported(setup: tuple[Path, Path], tmp_path: Path) -> None:
    wav, model = setup
    audio, _ = sf.read(wav, dtype="float32")
    audio[100:200] = np.nan
    bad = tmp_path / "nan.wav"
    sf.write(bad, audio, RATE, subtype="FLOAT")
    r = hark("replay", str(bad), "--model", str(model))
    assert r.returncode == 0, r.stderr
    assert "100 NaN/Inf samples replaced" in r.stderr
    assert len(r.stdout.splitlines()) == len(TRUTH)


def _bad_inputs(tmp: Path, wav: Path, model: Path) -> list[tuple[list[str], str]]:
    (tmp / "text.wav").write_text("this is not audio\n" * 50)
    (tmp / "empty.wav").write_bytes(b"")
    sf.write(tmp / "noframes.wav", np.zeros(0, dtype=np.float32), RATE)
    data = wav.read_bytes()
    (tmp / "truncated.wav").write_bytes(data[:30])
    (tmp / "dir.wav").mkdir(exist_ok=True)
    (tmp / "corrupt.onnx").write_bytes(b"\x08\x01garbage")
    (tmp / "corrupt.json").write_text(model.with_suffix(".json").read_text())
    (tmp / "nocard.onnx").write_bytes(model.read_bytes())
    mism = json.loads(model.with_suffix(".json").read_text())
    mism["labels"] = ["a", "b", "c"]
    (tmp / "mism.onnx").write_bytes(model.read_bytes())
    (tmp / "mism.json").write_text(json.dumps(mism))
    m = ["--model", str(model)]
    return [
        (["replay", str(tmp / "missing.wav"), *m], "missing.wav: no such file"),
        (["replay", str(tmp / "text.wav"), *m], "text.wav"),
        (["replay", str(tmp / "empty.wav"), *m], "empty.wav"),
        (["replay", str(tmp / "noframes.wav"), *m], "noframes.wav"),
        (["replay", str(tmp / "truncated.wav"), *m], "truncated.wav"),
        (["replay", str(tmp / "dir.wav"), *m], "dir.wav"),
        (["replay", str(wav), "--model", str(tmp / "nope.onnx")], "model file not found"),
        (["replay", str(wav), "--model", str(tmp / "corrupt.onnx")], "not a valid ONNX model"),
        (["replay", str(wav), "--model", str(tmp / "nocard.onnx")], "model card not found"),
        (["replay", str(wav), "--model", str(tmp / "mism.onnx")], "3 labels but the model"),
        (["replay", str(wav), "--model", "no-such-bundled"], "no bundled model named"),
        (["replay", str(wav), *m, "--vad", "7"], "--vad takes"),
        (["replay", str(wav), *m, "--out", str(tmp / "no" / "dir" / "x")], "cannot write"),
    ]


def test_bad_input_is_one_line_and_nonzero(setup: tuple[Path, Path], tmp_path: Path) -> None:
    wav, model = setup
    seen: list[str] = []
    for args, needle in _bad_inputs(tmp_path, wav, model):
        r = hark(*args)
        assert r.returncode != 0, (args, r.stdout)
        assert "Traceback" not in r.stderr, (args, r.stderr)
        err = [line for line in r.stderr.splitlines() if line.strip()]
        assert len(err) == 1, (args, r.stderr)
        assert err[0].startswith("hark: error: ") and needle in err[0], (args, err)
        assert r.stdout == "", (args, r.stdout)
        seen.append(err[0])
    print("\n".join(seen))


def test_truncated_file_keeps_events_then_fails(setup: tuple[Path, Path], tmp_path: Path) -> None:
    """The header promises more than the file holds: events up to the cut, then an error."""
    wav, model = setup
    cut = tmp_path / "cut.wav"
    data = wav.read_bytes()
    cut.write_bytes(data[: 44 + 2 * int(2.5 * RATE)])  # 16-bit PCM: keep the first 2.5 s
    r = hark("replay", str(cut), "--model", str(model), "--format", "tsv")
    assert r.returncode == 2
    rows = [line.split("\t") for line in r.stdout.splitlines()[1:]]
    assert [c[2] for c in rows] == ["low", "high"]
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "truncated audio" in err[0] and "cut.wav" in err[0]


def test_help_has_examples() -> None:
    for cmd in ("replay", "mic", "devices"):
        r = hark(cmd, "--help")
        assert r.returncode == 0 and "examples:" in r.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_replay_keeps_every_event(
    setup: tuple[Path, Path], tmp_path: Path, sig: signal.Signals
) -> None:
    """Stopped mid-stream: events already printed are in --out, the open one is closed too."""
    _, model = setup
    # one long 'low' tone from 0.3 s, a 'high' blip at 0.6-0.9 s: stopped at ~1.6 s, the low
    # event is still open and must be closed and written on the way out
    audio = _tones([(300, 0.3, 8.0), (6000, 0.6, 0.9)], 8.0)
    wav = tmp_path / "long.wav"
    sf.write(wav, audio, RATE)
    out = tmp_path / "ev.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen(
        [sys.executable, "-m", "hark.cli", "replay", str(wav), "--model", str(model),
         "--realtime", "--no-ui", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        stdin=subprocess.DEVNULL,
    )
    # wait for the first event line (the high blip) then interrupt
    assert p.stdout is not None
    first = p.stdout.readline()
    assert json.loads(first)["label"] == "high"
    time.sleep(0.5)
    p.send_signal(sig)
    rest, err = p.communicate(timeout=30)
    assert p.returncode == (130 if sig == signal.SIGINT else 143), err
    printed = [first.strip(), *rest.splitlines()]
    written = out.read_text().splitlines()
    assert written == printed
    last = json.loads(written[-1])
    assert last["label"] == "low" and abs(last["onset"] - 0.3) < 0.02 and last["offset"] < 7.0
    assert "Traceback" not in err
