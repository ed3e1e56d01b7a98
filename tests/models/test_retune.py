"""`hark tune`: a model's gate and smoothing chosen on recordings, written to a new folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from hark.live.card import load_card
from hark.live.model import OnnxModel, bundled_dir


def _hark(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hark.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


def test_tune_writes_a_card_with_the_choice_and_leaves_the_bundled_one(tmp_path: Path) -> None:
    val = tmp_path / "val"
    val.mkdir()
    for ext in ("wav", "tsv"):
        shutil.copy(bundled_dir() / f"demo.{ext}", val / f"demo.{ext}")
    before = (bundled_dir() / "commands.json").read_bytes()
    out = tmp_path / "tuned"
    r = _hark("tune", "--model", "commands", "--audio", val, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "hark tune: vad chosen:" in r.stderr
    assert (bundled_dir() / "commands.json").read_bytes() == before
    assert (out / "commands.onnx").read_bytes() == (bundled_dir() / "commands.onnx").read_bytes()
    card = load_card(out / "commands.json")
    record = card.evaluation["validation_vad"]
    assert record["positives"] == 1 and record["negatives"] == 0
    assert len(record["candidates"]) >= 5  # off, webrtcvad modes, silero thresholds
    assert card.vad.enabled == (record["chosen"] != "off")
    assert record["chosen"] in r.stdout or record["why"] in r.stdout
    OnnxModel.load(out / "commands.onnx")  # the written card passes validation against its graph
    json.loads((out / "commands.json").read_text())


def test_tune_errors_are_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _hark("tune", "--model", "commands", "--audio", empty, "--out", tmp_path / "o")
    assert r.returncode == 2
    want = "hark: error: --audio: no X.wav with an X.tsv beside it"
    assert r.stderr.strip().splitlines() == [want]
    r = _hark("tune", "--model", "commands", "--audio", bundled_dir(), "--negatives",
              tmp_path / "missing", "--out", tmp_path / "o")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("hark: error:")
    assert not (tmp_path / "o").exists()


def test_tune_of_a_split_window_model_carries_its_streaming_pair(tmp_path: Path) -> None:
    """commands-cnn's card names NAME.front.onnx / NAME.head.onnx: the tuned folder holds them."""
    val = tmp_path / "val"
    val.mkdir()
    for ext in ("wav", "tsv"):
        shutil.copy(bundled_dir() / f"demo.{ext}", val / f"demo.{ext}")
    out = tmp_path / "tuned"
    r = _hark("tune", "--model", "commands-cnn", "--audio", val, "--gate-off", "--out", out)
    assert r.returncode == 0, r.stderr
    split = load_card(out / "commands-cnn.json").streaming_split
    assert split is not None and split.ok and split.front and split.head
    for name in (split.front, split.head):
        assert (out / name).read_bytes() == (bundled_dir() / name).read_bytes()
    tuned = OnnxModel.load(out / "commands-cnn.onnx")  # loads with its pair from its own folder
    assert tuned.card.streaming_split == split
