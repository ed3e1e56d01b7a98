"""The shipped models: they load, their cards validate and carry evaluation figures, and the
default `hark replay` of the demo recording finds the words of demo.tsv."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hark.live.card import load_card
from hark.live.events import read_events_tsv
from hark.live.model import OnnxModel, bundled_dir, bundled_names

BUNDLED = ("commands", "commands-cnn", "sounds")
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


def test_bundled_models_are_there_and_small() -> None:
    assert set(BUNDLED) <= set(bundled_names())
    for name in BUNDLED:
        onnx_path = bundled_dir() / f"{name}.onnx"
        assert onnx_path.stat().st_size <= 2_000_000, name
    demo = bundled_dir() / "demo.wav"
    assert demo.stat().st_size <= 1_000_000
    assert demo.with_suffix(".tsv").is_file()


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_loads_and_card_validates(name: str) -> None:
    model = OnnxModel.load(name)  # card validated, and checked against the graph
    card = load_card(bundled_dir() / f"{name}.json")
    assert card == model.card
    assert card.provenance["parity"]["max_abs_diff"] < 1e-4
    assert card.evaluation, f"{name}: the card carries no evaluation figures"


def test_bundled_cards_match_the_issue() -> None:
    commands = OnnxModel.load("commands").card
    assert commands.streaming and commands.state and commands.sample_rate == 16000
    assert set(commands.event_labels) == set(COMMANDS)
    fe = commands.frontends[commands.inputs[0].frontend]
    assert (fe.kind, fe.n_mels, fe.window_ms, fe.hop_ms) == ("logmel", 40, 25.0, 10.0)
    cnn = OnnxModel.load("commands-cnn").card
    assert cnn.sample_rate == 8000 and cnn.window_s == 1.0 and cnn.stride_s == 0.1
    assert len(cnn.labels) == 12 and cnn.inputs[0].shape[1:3] == (99, 81)
    sounds = OnnxModel.load("sounds").card
    assert sounds.task == "multilabel" and not sounds.vad.enabled
    assert set(sounds.labels) == {"clap", "whistle", "beep", "knock", "speech"}


def test_bundled_cards_carry_figures_that_meet_the_bars() -> None:
    """The figures `hark eval --write-card` stored (models/bundle.py) against the issue's bars."""
    ev = OnnxModel.load("commands").card.evaluation
    assert ev["test_streams_words"]["event_f1"] >= 0.90
    assert ev["test_streams_words"]["minutes"] >= 20
    assert ev["test_streams_unknown_only"]["false_events_per_minute"] < 1.0
    assert "flite_clips" in ev and "flite_streams_words" in ev
    ev = OnnxModel.load("commands-cnn").card.evaluation
    assert ev["test_clips"]["accuracy"] >= 0.95 and "flite_clips" in ev
    ev = OnnxModel.load("sounds").card.evaluation
    assert ev["test_streams_10db"]["event_f1"] >= 0.90


def test_default_replay_of_the_demo_finds_its_words(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from hark.cli import main
    from hark.models.metrics import event_scores

    assert main(["replay", "--no-ui", "--format", "jsonl"]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert all(e["model"] == "commands" for e in found)
    truth = [e for e in read_events_tsv(bundled_dir() / "demo.tsv") if e.label in COMMANDS]
    assert len(truth) == 10

    from hark.live.events import Event

    est = [Event(e["label"], e["onset"], e["offset"], e["peak"], e["mean"]) for e in found]
    s = event_scores(truth, est)
    # Measured with the bundled model: all ten words are heard, in order, every one within the
    # 200 ms collars (onsets 40-55 ms late), and nothing else (the clap, whistle, beep and knock
    # give no event).
    words = [e.label for e in truth]
    heard = iter(e.label for e in est)
    assert all(w in heard for w in words), est  # every word, in order (a subsequence)
    assert s.overall.recall == 1.0, (s.overall, est)
    assert s.overall.fp == 0, est


def test_sounds_model_hears_the_demo_sounds(tmp_path: Path) -> None:
    from hark.cli import main

    out = tmp_path / "res.json"
    demo = bundled_dir() / "demo.wav"
    assert main(["eval", "--model", "sounds", "--audio", str(demo), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    per = res["per_class"]
    for label in ("clap", "whistle", "beep", "knock"):
        assert per[label]["tp"] == 1, (label, per)
