"""Model cards: round trip, and one clear error per kind of mismatch."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from hark.live.card import CardError, FrontendSpec, ModelCard, load_card
from hark.live.model import ModelError, OnnxModel
from tests import onnx_models


@pytest.fixture(scope="module")
def lstm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return onnx_models.lstm_frame_model(tmp_path_factory.mktemp("card"))


def _write(path: Path, card: dict) -> None:
    path.write_text(json.dumps(card))


def test_round_trip(lstm_path: Path) -> None:
    card = load_card(lstm_path.with_suffix(".json"))
    again = ModelCard.from_json(json.loads(json.dumps(card.to_json())))
    assert again == card
    assert card.streaming and card.decision_hop_s() == pytest.approx(0.01)


def _mutated(lstm_path: Path, tmp_path: Path, change) -> Path:  # noqa: ANN001
    d = json.loads(lstm_path.with_suffix(".json").read_text())
    change(d)
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(lstm_path.read_bytes())
    _write(onnx.with_suffix(".json"), d)
    return onnx


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(labels=["a", "b"]), "the card has 2 labels but the model outputs 3"),
        (lambda d: d["frontends"]["main"].update(kind="cqt"),
         "frontends.main.kind: input should be"),
        (lambda d: d["state"].pop(), "model inputs ['c_in'] are not described by the card"),
        (lambda d: d["state"][0].update(output="nope"), "has no output 'nope' in the model"),
        (lambda d: d["frontends"]["main"].update(n_mels=64), "the logmel frontend gives 64 bins"),
        (lambda d: d["inputs"][0].update(name="x"), "card input 'x' is not an input of the model"),
        (lambda d: d.update(schema=7), "card schema 7 is not supported"),
        (lambda d: d.pop("labels"), "labels: required field missing"),
        (lambda d: d.update(task="regression"), "unknown task 'regression'"),
        (lambda d: d["frontends"]["main"].update(hop_ms=10.03), "not a whole number of samples"),
        (
            lambda d: (d.update(sample_rate=24000, vad={"enabled": True}),
                       d["frontends"]["main"].update(n_fft=1024)),
            "VAD cannot run at 24000",
        ),
        (lambda d: d["smoothing"].update(threshold_on=0.2, threshold_off=0.5), "threshold_off"),
        (lambda d: d["smoothing"].update(threshold_on=0.5, threshold_rise=0.6), "threshold_rise"),
        (lambda d: d["smoothing"].update(offset_advance_ms=-10), "offset_advance_ms"),
        (lambda d: d.update(ignore_labels=["zz"]), "ignore_labels ['zz']"),
    ],
)
def test_mismatch_is_one_clear_error(
    lstm_path: Path, tmp_path: Path, change, message: str  # noqa: ANN001
) -> None:
    path = _mutated(lstm_path, tmp_path, change)
    with pytest.raises((CardError, ModelError)) as e:
        OnnxModel.load(path)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_window_card_checks_frames_against_model(tmp_path: Path) -> None:
    path = onnx_models.conv_window_model(tmp_path)
    d = json.loads(path.with_suffix(".json").read_text())
    d["window_s"] = 0.5  # 49 frames, but the model takes 99
    _write(path.with_suffix(".json"), d)
    with pytest.raises(CardError, match="takes 99 frames but window_s=0.5 gives 49"):
        OnnxModel.load(path)


def test_stride_must_be_whole_hops(tmp_path: Path) -> None:
    path = onnx_models.conv_window_model(tmp_path)
    card = load_card(path.with_suffix(".json"))
    with pytest.raises(CardError, match="not a whole number of 10"):
        replace(card, stride_s=0.105).validate()


def test_missing_and_corrupt_files(tmp_path: Path, lstm_path: Path) -> None:
    with pytest.raises(ModelError, match="model file not found"):
        OnnxModel.load(tmp_path / "nothing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf")
    (tmp_path / "bad.json").write_text(lstm_path.with_suffix(".json").read_text())
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        OnnxModel.load(bad)
    nocard = tmp_path / "nocard.onnx"
    nocard.write_bytes(lstm_path.read_bytes())
    with pytest.raises(CardError, match="model card not found"):
        OnnxModel.load(nocard)
    (tmp_path / "nocard.json").write_text("{ not json")
    with pytest.raises(CardError, match="not valid JSON"):
        OnnxModel.load(nocard)


def test_unknown_bundled_name() -> None:
    with pytest.raises(ModelError, match="no bundled model named 'no-such-model'"):
        OnnxModel.load("no-such-model")


def test_frontend_spec_validation() -> None:
    with pytest.raises(CardError, match="n_fft 256 is shorter than the window"):
        FrontendSpec(kind="logmel", window_ms=25, n_fft=256).validate(16000)
    with pytest.raises(CardError, match="n_mfcc 50 must be in 1..n_mels"):
        FrontendSpec(kind="mfcc", n_fft=512, n_mfcc=50).validate(16000)
    assert FrontendSpec(kind="specgram", window_ms=20, hop_ms=10).n_bins(8000) == 81


def test_algorithmic_latency(lstm_path: Path, tmp_path: Path) -> None:
    frame = load_card(lstm_path.with_suffix(".json"))
    # 25 ms window + one 10 ms hop + median look-behind (5 // 2 hops)
    assert frame.algorithmic_latency_s() == pytest.approx(0.025 + 0.01 + 0.02)
    window = load_card(onnx_models.conv_window_model(tmp_path).with_suffix(".json"))
    assert window.algorithmic_latency_s() == pytest.approx(1.0 + 0.1 + 0.2)
