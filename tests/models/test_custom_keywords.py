"""Your own keywords end to end: `hark synth tree --words` -> `hark train` -> replay."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

WORDS = "lights on,lights off,hey hark"
LABELS = ["lights_on", "lights_off", "hey_hark"]


@pytest.mark.slow
@pytest.mark.tf
def test_custom_phrases_tree_train_replay(tmp_path: Path) -> None:
    tree = tmp_path / "mine"
    run = [sys.executable, "-m", "hark.cli"]
    subprocess.run([*run, "synth", "tree", str(tree), "--words", WORDS, "--n-per-word", "8",
                    "--engine", "espeak-ng:0.7", "--engine", "flite:0.3", "--seed", "2"],
                   check=True, timeout=600)
    assert (tree / "words.txt").read_text().split() == LABELS
    out = tmp_path / "model"
    subprocess.run([*run, "train", "--arch", "rnn", "--data", str(tree), "--epochs", "1",
                    "--seed", "3", "--out", str(out), "--no-tune", "--seq-frames", "200",
                    "--val-streams", "2", "--test-streams", "1", "--test-stream-s", "8",
                    "--threads", "1"], check=True, timeout=900)
    onnx = next(out.glob("*.onnx"))
    card = json.loads(onnx.with_suffix(".json").read_text())
    assert card["labels"][:3] == LABELS and "_unknown_" in card["labels"]
    # a stream of the test split's phrases, replayed through the live engine with the card
    streams = tmp_path / "streams"
    subprocess.run([*run, "synth", "speech", str(streams), "--tree", str(tree), "--n", "1",
                    "--seconds", "10"], check=True, timeout=300)
    wav = next(streams.glob("*.wav"))
    truth = wav.with_suffix(".tsv").read_text().split("\n", 1)[1]
    assert any(lb in truth for lb in LABELS)  # the truth names the new words
    rep = subprocess.run([*run, "replay", str(wav), "--model", str(onnx), "--format", "jsonl"],
                         capture_output=True, text=True, check=True, timeout=300)
    for line in rep.stdout.splitlines():
        assert json.loads(line)["label"] in LABELS  # only the card's own words can be reported
