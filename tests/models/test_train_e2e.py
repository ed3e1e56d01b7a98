"""Tiny end-to-end runs: every architecture trains one epoch on a few dozen synthetic clips,
exports through export.convert, and its ONNX model replays through the live engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.tf, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hark.models.synth import ensure_tree

    # 3 clips per command word (one per split), 2 per unknown word: 90 clips, ~1 s to make
    return ensure_tree(tmp_path_factory.mktemp("tree") / "espeak", 3, seed=5)


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory, tiny_tree: Path) -> Path:
    from hark.models.synth import write_speech_streams

    d = tmp_path_factory.mktemp("stream")
    return write_speech_streams(tiny_tree, d, 1, split="train", duration_s=6.0, seed=3)[0]


def _train(arch: str, out: Path, tree: Path | None, **kw: object):  # noqa: ANN202
    from hark.models.training import TrainOptions, train

    base: dict[str, object] = dict(epochs=1, seed=7, batch_size=16, val_streams=2,
                                   tune_streams=2, test_streams=1, test_stream_s=8.0, verbose=0)
    opts = TrainOptions(arch=arch, out=out, data=tree, **{**base, **kw})  # type: ignore[arg-type]
    return train(opts, log=lambda m: None)


def _replays(onnx_path: Path, wav: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hark.cli import main

    capsys.readouterr()
    assert main(["replay", str(wav), "--model", str(onnx_path), "--format", "jsonl"]) == 0
    for line in capsys.readouterr().out.splitlines():
        json.loads(line)


def _check_card(onnx_path: Path, labels_len: int) -> dict:
    from hark.live.model import OnnxModel

    model = OnnxModel.load(onnx_path)  # validates the card against the graph
    assert len(model.card.labels) == labels_len
    assert model.card.provenance["parity"]["max_abs_diff"] < 1e-4
    return json.loads(onnx_path.with_suffix(".json").read_text())


@pytest.mark.parametrize("arch", ["cnn", "wave1d", "fusion", "wavception"])
def test_clip_architectures_train_export_replay(
    arch: str, tiny_tree: Path, stream: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    voice = {"freq_warp": 0.1, "tilt_db": 4.0} if arch in ("cnn", "fusion") else {}
    res = _train(arch, tmp_path / arch, tiny_tree, tune=arch == "cnn", **voice)
    assert res.onnx_path.is_file() and res.onnx_path.with_suffix(".keras").is_file()
    card = _check_card(res.onnx_path, 12)
    assert card["window_s"] == 1.0 and card["stride_s"] == 0.1
    assert {k: card["provenance"][k] for k in voice} == voice
    assert 0.0 <= card["evaluation"]["test_clips"]["accuracy"] <= 1.0
    report = tmp_path / arch / "report"
    for f in ("test_clips.txt", "test_clips.json", "test_clips.png", "history.json"):
        assert (report / f).is_file(), f
    if arch == "cnn":
        assert "validation_smoothing" in card["evaluation"]
        assert "event_f1" in card["evaluation"]["test_streams"]["words"]
    _replays(res.onnx_path, stream, capsys)


def test_voice_augmentation_needs_a_spectrum(tiny_tree: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="raw audio"):
        _train("wave1d", tmp_path / "w", tiny_tree, freq_warp=0.1)


def test_a_time_budget_stops_after_the_epoch_that_passes_it(tiny_tree: Path,
                                                            tmp_path: Path) -> None:
    res = _train("cnn", tmp_path / "c", tiny_tree, epochs=4, patience=9, max_minutes=0.0,
                 tune=False)
    assert len(res.history) == 1
    prov = json.loads(res.onnx_path.with_suffix(".json").read_text())["provenance"]
    assert prov["max_minutes"] == 0.0 and prov["epochs_run"] == 1 and prov["epochs_max"] == 4


def test_init_from_goes_on_from_the_trained_weights_and_normalisation(tiny_tree: Path,
                                                                     tmp_path: Path) -> None:
    import keras

    base = _train("rnn", tmp_path / "base", tiny_tree, seq_frames=200, tune=False,
                  overrides={"units": [32]})
    # a learning rate too small to move anything: the weights out are the weights in
    more = _train("rnn", tmp_path / "more", tiny_tree, seq_frames=200, tune=False, seed=8,
                  learning_rate=1e-12, init_from=base.onnx_path)
    a, b = (keras.models.load_model(r.onnx_path.with_suffix(".keras"), compile=False)
            for r in (base, more))
    wa, wb = ([w.numpy() for w in m.trainable_weights] for m in (a, b))
    assert len(wa) == len(wb) > 2
    for x, y in zip(wa, wb, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-6)
    cards = [json.loads(r.onnx_path.with_suffix(".json").read_text()) for r in (base, more)]
    assert cards[1]["normalization"] == cards[0]["normalization"]
    assert cards[1]["provenance"]["config"]["units"] == [32]
    assert cards[1]["provenance"]["init_from"] == str(base.onnx_path.with_suffix(".keras"))
    with pytest.raises(ValueError, match="not --arch cnn"):
        _train("cnn", tmp_path / "c", tiny_tree, init_from=base.onnx_path)
    with pytest.raises(ValueError, match="differ from the trained model"):
        _train("rnn", tmp_path / "r", tiny_tree, init_from=base.onnx_path,
               overrides={"units": [64]})
    with pytest.raises(FileNotFoundError, match="no nothing.keras"):
        _train("rnn", tmp_path / "n", tiny_tree, init_from=tmp_path / "nothing.onnx")


def test_rnn_commands_streams_and_matches_keras(
    tiny_tree: Path, stream: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import keras
    import soundfile as sf

    from hark.live.engine import offline_posteriors
    from hark.live.features import compute_features
    from hark.live.model import OnnxModel

    res = _train("rnn", tmp_path / "rnn", tiny_tree, seq_frames=200)
    card = _check_card(res.onnx_path, 12)
    # the VAD settings are one of the tuner's candidates (the gate off is one of them)
    from hark.models.tuning import VAD_CANDIDATES

    vad = card["vad"]
    assert any(all(vad[k] == v for k, v in cand.items()) for cand in VAD_CANDIDATES)
    assert "validation_smoothing" in card["evaluation"]
    assert card["ignore_labels"] == ["_silence_", "_unknown_"]
    assert [s["input"] for s in card["state"]]  # recurrent state carried by the engine
    ev = card["evaluation"]["test_streams"]
    assert set(ev) == {"words", "unknown_only"}
    # serving equals training: the engine's posteriors (VAD off) are the Keras model's
    model = OnnxModel.load(res.onnx_path)
    audio, _ = sf.read(stream, dtype="float32")
    _, post = offline_posteriors(model, audio, chunk=1234)
    fe = model.card.frontends["main"]
    x = compute_features(audio, fe, 16000, model.card.normalization["main"])
    ref = keras.saving.load_model(res.onnx_path.with_suffix(".keras"))(x[None]).numpy()[0]
    np.testing.assert_allclose(post, ref, atol=1e-4)
    _replays(res.onnx_path, stream, capsys)


def test_rnn_sounds(tmp_path: Path, tiny_tree: Path, stream: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    """Speech events from a tree and from recordings, music beneath, rooms and channels."""
    from hark.models.data.audio import write_wav

    music = tmp_path / "music"
    t = np.arange(3 * 16000) / 16000
    write_wav(music / "tune.wav", (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    lines: list[str] = []
    from hark.models.training import TrainOptions, train

    opts = TrainOptions(arch="rnn", out=tmp_path / "sounds", task="sounds", synth=6,
                        seq_frames=300, streams_per_epoch=6, epochs=1, seed=7, batch_size=16,
                        val_streams=2, test_streams=1, verbose=0, speech_tree=tiny_tree,
                        speech_real=tiny_tree / "yes", speech_clips=20, music=music,
                        channels=1.0, rir_cache=tmp_path / "rooms")
    res = train(opts, log=lines.append)
    card = _check_card(res.onnx_path, 5)
    assert card["task"] == "multilabel"
    log = "\n".join(lines)
    assert "music: 1 recordings of" in log and "channels: 100% of the training streams" in log
    assert "sound streams (train): " in log and "+ real speech of" in log
    prov = card["provenance"]
    assert prov["speech_tree"] == str(tiny_tree) and prov["music"] == str(music)
    assert prov["channels"] == 1.0 and prov["speech_clips"] == 20
    # a speech gate would hide claps and knocks: the sounds tuner keeps the gate off
    from hark.live.card import load_card

    choice = card["evaluation"]["validation_vad"]
    assert choice["why"] and not load_card(res.onnx_path.with_suffix(".json")).vad.enabled
    assert "event_f1" in card["evaluation"]["test_streams_10db"]
    _replays(res.onnx_path, stream, capsys)


def test_sound_sources_are_refused_where_they_do_not_apply(tiny_tree: Path,
                                                           tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--task sounds"):
        _train("rnn", tmp_path / "a", tiny_tree, speech_tree=tiny_tree)
    with pytest.raises(ValueError, match="rnn's training streams"):
        _train("cnn", tmp_path / "b", tiny_tree, music=tmp_path)
    with pytest.raises(ValueError, match="not with --data"):
        _train("rnn", tmp_path / "c", tmp_path, task="sounds", music=tmp_path)
    with pytest.raises(ValueError, match="music-share"):
        _train("rnn", tmp_path / "d", tiny_tree, music_share=1.5)


def test_rnn_training_is_deterministic_under_a_seed(tiny_tree: Path, tmp_path: Path) -> None:
    """Same seed, same data, same options: the same weights, posteriors and card defaults. This is
    what lets the README's commands rebuild the bundled models. One run builds epoch 2's data in
    the prefetch worker while epoch 1 trains, the other builds it in place: the same weights."""
    import onnx
    from onnx import numpy_helper

    runs = [_train("rnn", tmp_path / f"run{i}", tiny_tree, seq_frames=200, freq_warp=0.1,
                   tilt_db=6.0, epochs=2, patience=9, prefetch=i == 0) for i in range(2)]
    # initializer names carry per-process counters and their order may differ: compare the
    # multiset of (shape, dtype, bytes), i.e. bit-identical weights
    weights = [sorted((a.shape, str(a.dtype), a.tobytes()) for a in (
        numpy_helper.to_array(t) for t in onnx.load(str(r.onnx_path)).graph.initializer))
        for r in runs]
    assert len(weights[0]) > 4 and sum(len(w[2]) for w in weights[0]) > 100_000
    assert weights[0] == weights[1]
    cards = [json.loads(r.onnx_path.with_suffix(".json").read_text()) for r in runs]
    assert cards[0]["smoothing"] == cards[1]["smoothing"] and cards[0]["vad"] == cards[1]["vad"]
    assert cards[0]["normalization"] == cards[1]["normalization"]
    assert cards[0]["provenance"]["freq_warp"] == 0.1
