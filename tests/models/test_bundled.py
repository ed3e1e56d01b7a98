"""The shipped models: they load, their cards validate and carry evaluation figures, and the
default `hark replay` of the demo recording finds the words of demo.tsv."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hark.live.card import load_card
from hark.live.events import read_events_tsv
from hark.live.model import OnnxModel, bundled_dir, bundled_names

BUNDLED = ("commands", "commands-cnn", "sounds", "commands-emb")
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


HELD_OUT = ("flite_slt_clips", "flite_slt_streams", "flite_slt_rooms_streams",
            "kokoro_blend_clips", "kokoro_blend_streams", "ru_false_accepts", "operating_point")


@pytest.mark.parametrize("name", ["commands", "commands-cnn"])
def test_bundled_speech_cards_carry_every_held_out_figure(name: str) -> None:
    """Recipe v2 (models/bundle.py) stores one figure per held-out source in each card: the
    flite slt voice (clips, streams, streams in rooms), the Kokoro blend, Russian speech."""
    ev = OnnxModel.load(name).card.evaluation
    assert set(HELD_OUT) <= set(ev), sorted(set(HELD_OUT) - set(ev))
    assert ev["test_clips"]["per_source"]["espeak"]["n"] >= 2000
    assert ev["test_streams_words"]["minutes"] >= 20
    assert ev["ru_false_accepts"]["hours"] >= 0.4
    # the card's threshold is the operating point picked on validation material (Italian)
    picked = ev["operating_point"]["operating_point"]["threshold"]
    assert OnnxModel.load(name).card.smoothing.threshold_on == pytest.approx(picked, abs=1e-3)


def test_bundled_cards_carry_figures_that_meet_the_bars() -> None:
    """The figures `hark eval --write-card` stored against the bars this bundle reached (issue 11:
    clip accuracy >= 0.85 on an unseen voice and <= 2 false accepts per hour on real speech are
    met on the Kokoro blend and on Russian; the rest is reported in the README)."""
    for name, test_clips, test_f1 in (("commands", 0.82, 0.70), ("commands-cnn", 0.80, 0.50)):
        ev = OnnxModel.load(name).card.evaluation
        assert ev["test_clips"]["accuracy"] >= test_clips, name
        assert ev["test_streams_words"]["event_f1"] >= test_f1, name
        assert ev["kokoro_blend_clips"]["accuracy"] >= 0.85, name
        assert ev["flite_slt_clips"]["accuracy"] >= 0.50, name
        assert ev["ru_false_accepts"]["false_accepts_per_hour"] <= 2.0, name
    ev = OnnxModel.load("sounds").card.evaluation
    assert ev["test_streams_10db"]["event_f1"] >= 0.90


def test_bundled_sounds_card_carries_its_held_out_figures() -> None:
    """Recipe v2's sounds (speech of many engines and real speech, music, rooms): one figure per
    source it never heard, at the operating point picked on validation material."""
    card = OnnxModel.load("sounds").card
    ev = card.evaluation
    for key, bar in (("flite_slt_streams", 0.85), ("kokoro_blend_streams", 0.85),
                     ("ru_speech_streams", 0.85), ("held_out_music_streams", 0.85),
                     ("rooms_streams", 0.80)):
        assert ev[key]["event_f1"] >= bar, (key, ev[key]["event_f1"])
    assert ev["music_false_accepts"]["false_accepts_per_hour"] <= 2.0
    picked = ev["operating_point"]["operating_point"]["threshold"]
    assert card.smoothing.threshold_on == pytest.approx(picked, abs=1e-3)
    assert card.provenance["music"].endswith("music/train"), "trained with music beneath"


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


def test_bundled_backbone_model_pins_the_shipped_backbone_and_its_figures() -> None:
    """commands-emb (recipe emb): a head on the shipped speech-embedding backbone, with the
    backbone's attribution, every held-out figure, and the enrolment set beside it."""
    import numpy as np

    from hark.live.backbone import backbone_info, window_seconds

    card = OnnxModel.load("commands-emb").card
    assert card.frontends["main"].kind == "embedding" and card.backbone == backbone_info().ref()
    assert card.backbone.licence == "Apache-2.0" and "openWakeWord" in card.backbone.attribution
    assert card.window_s == pytest.approx(window_seconds(8)) and card.stride_s == 0.08
    assert set(card.event_labels) == set(COMMANDS)
    for key in ("flite_slt_clips", "flite_slt_streams", "kokoro_blend_clips",
                "kokoro_blend_streams", "ru_false_accepts", "operating_point", "test_clips"):
        assert key in card.evaluation, key
    assert card.evaluation["ru_false_accepts"]["false_accepts_per_hour"] <= 2.0
    assert card.provenance["sources"] == "flite,kokoro"
    with np.load(bundled_dir() / "commands-emb.enroll.npz") as z:
        assert tuple(z["labels"]) == card.labels and z["x"].shape[1:] == (8, 96)
