"""Your own keywords end to end: `hark synth tree --words` -> `hark train` -> replay."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

WORDS = "lights on,lights off,hey hark"
LABELS = ["lights_on", "lights_off", "hey_hark"]


def _sentences(folder: Path) -> None:
    from hark.models.data.audio import write_wav
    from hark.models.data.tts import espeak_voices, synth_clip

    voice = espeak_voices(("en-us",), ("m2",))[0]
    for i, text in enumerate(("the lamp by the door is bright", "we wrote a note on the shop")):
        write_wav(folder / f"s{i}.wav", synth_clip(text, voice) * 0.5, 16000)


def test_speech_pieces_are_seeded_and_sized(tmp_path: Path) -> None:
    import numpy as np

    from hark.models.data.real_speech import speech_pieces

    _sentences(tmp_path)
    a = speech_pieces(tmp_path, 16000, 12, np.random.default_rng(1))
    b = speech_pieces(tmp_path, 16000, 12, np.random.default_rng(1))
    assert len(a) == 12 and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(0.4 * 16000 <= x.size <= 3.0 * 16000 for x in a)
    assert all(np.any(x) for x in a)


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
    # with real-speech negatives (here: espeak sentences standing in for a folder of recordings)
    # and rooms / microphones / channels on every training stream
    negs = tmp_path / "negatives"
    _sentences(negs)
    got = subprocess.run([*run, "train", "--arch", "rnn", "--data", str(tree), "--epochs", "1",
                          "--seed", "3", "--out", str(out), "--no-tune", "--seq-frames", "200",
                          "--val-streams", "2", "--test-streams", "1", "--test-stream-s", "8",
                          "--threads", "1", "--negatives", str(negs), "--channels", "1",
                          "--rir-cache", str(tmp_path / "rooms")],
                         capture_output=True, text=True, timeout=900)
    assert got.returncode == 0, got.stderr[-2000:]
    assert "real speech: " in got.stdout + got.stderr
    assert "channels: 100% of the training streams" in got.stdout + got.stderr
    assert len(list((tmp_path / "rooms").rglob("rir_*.wav"))) == 24  # the simulated bank
    onnx = next(out.glob("*.onnx"))
    card = json.loads(onnx.with_suffix(".json").read_text())
    assert card["labels"][:3] == LABELS and "_unknown_" in card["labels"]
    prov = card["provenance"]
    assert prov["channels"] == 1.0 and prov["real_speech_negatives"] == str(negs)
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
