"""`hark eval` on fixtures whose answers are known: hand-made ONNX models, synthetic recordings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hark.cli import main
from hark.live.features import compute_features
from tests import onnx_models
from tests.models.handmade import tone_tree, tone_window_model

RATE = 16000
# (label, onset, offset) of the tones in the recording; low = 300 Hz, high = 5 kHz
TRUTH = (("low", 1.0, 1.5), ("high", 2.0, 2.7), ("low", 4.0, 4.8))
DURATION_S = 6.0


@pytest.fixture(scope="module")
def bands(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The band-energy detector and a recording of three tone bursts over faint noise."""
    d = tmp_path_factory.mktemp("bands")
    t = np.arange(int(DURATION_S * RATE)) / RATE
    audio = (0.001 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)
    for label, on, off in TRUTH:
        f = 300.0 if label == "low" else 5000.0
        audio += (0.3 * np.sin(2 * np.pi * f * t) * ((t >= on) & (t < off))).astype(np.float32)
    wav = d / "tones.wav"
    sf.write(wav, audio, RATE, subtype="FLOAT")
    # thresholds halfway (in power) between the floor and the steady tone, as the engine tests do
    feats = compute_features(audio, onnx_models.LOGMEL, RATE)
    thr = []
    for band, (_, on, off) in ((slice(0, 10), TRUTH[0]), (slice(30, 40), TRUTH[1])):
        steady = np.exp(feats[int((on + off) / 2 * 100), band]).mean()
        thr.append(float(np.log(steady / 2)))
    model = onnx_models.band_energy_model(d, (thr[0], thr[1]))
    return model, wav


def write_tsv(path: Path, rows: list[tuple[str, float, float]]) -> Path:
    path.write_text("onset\toffset\tevent_label\n"
                    + "".join(f"{on:.3f}\t{off:.3f}\t{lb}\n" for lb, on, off in rows))
    return path


def run_eval(args: list[str], tmp_path: Path) -> dict:
    out = tmp_path / "res.json"
    assert main(["eval", *args, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_event_eval_perfect_detector(bands: tuple[Path, Path], tmp_path: Path) -> None:
    model, wav = bands
    tsv = write_tsv(tmp_path / "truth.tsv", list(TRUTH))
    res = run_eval(["--model", str(model), "--audio", str(wav), "--annotations", str(tsv)],
                   tmp_path)
    assert res["event_f1"] == 1.0 and res["precision"] == 1.0 and res["recall"] == 1.0
    assert (res["tp"], res["fp"], res["fn"]) == (3, 0, 0)
    # no smoothing, one threshold: every burst flips on once and off once
    assert res["flips_per_minute"] == pytest.approx(6 / (DURATION_S / 60), rel=1e-3)
    assert res["false_events_per_minute"] == 0.0


def test_event_eval_counts_label_mismatch_and_sets_aside_unknown_labels(
    bands: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, wav = bands
    rows = [TRUTH[0], TRUTH[1], ("high", 4.0, 4.8), ("speech", 5.0, 5.5)]
    tsv = write_tsv(tmp_path / "truth.tsv", rows)
    res = run_eval(["--model", str(model), "--audio", str(wav), "--annotations", str(tsv)],
                   tmp_path)
    assert (res["tp"], res["fp"], res["fn"]) == (2, 1, 1)
    assert res["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert res["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert res["event_f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert res["reference_set_aside"] == {"speech": 1}
    assert "event F1 0.6667" in capsys.readouterr().out


def test_event_eval_shifted_truth_outside_the_collar(
    bands: tuple[Path, Path], tmp_path: Path
) -> None:
    model, wav = bands
    # first burst's truth 250 ms late: outside the 200 ms onset collar -> one miss, one false alarm
    rows = [("low", 1.25, 1.5), TRUTH[1], TRUTH[2]]
    res = run_eval(["--model", str(model), "--audio", str(wav), "--annotations",
                    str(write_tsv(tmp_path / "t.tsv", rows))], tmp_path)
    assert (res["tp"], res["fp"], res["fn"]) == (2, 1, 1)


def test_event_eval_folder_of_pairs(bands: tuple[Path, Path], tmp_path: Path) -> None:
    model, wav = bands
    d = tmp_path / "set"
    d.mkdir()
    for k in range(2):
        (d / f"s{k}.wav").write_bytes(wav.read_bytes())
        write_tsv(d / f"s{k}.tsv", list(TRUTH))
    res = run_eval(["--model", str(model), "--audio", str(d)], tmp_path)
    assert res["files"] == 2 and res["tp"] == 6 and res["event_f1"] == 1.0


def test_clip_eval_known_accuracy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tone_window_model(tmp_path / "m")
    tree = tone_tree(tmp_path / "tree")
    res = run_eval(["--model", str(model), "--data", str(tree)], tmp_path)
    # yes (3) and no (3) right; up (2) heard as 'yes': 6 of 8; the unlisted clip is not scored
    assert res["n"] == 8 and res["split"] == "test"
    assert res["accuracy"] == 0.75
    labels = res["labels"]
    conf = np.array(res["confusion"])
    assert conf[labels.index("up"), labels.index("yes")] == 2
    assert res["per_class"]["yes"]["precision"] == 0.6 and res["per_class"]["yes"]["recall"] == 1.0
    assert res["per_class"]["no"]["f1"] == 1.0
    assert "accuracy 0.7500 on 8 clips" in capsys.readouterr().out


def test_clip_eval_without_lists_scores_every_clip(tmp_path: Path) -> None:
    model = tone_window_model(tmp_path / "m")
    tree = tone_tree(tmp_path / "tree")
    (tree / "testing_list.txt").unlink()
    (tree / "validation_list.txt").unlink()
    res = run_eval(["--model", str(model), "--data", str(tree)], tmp_path)
    assert res["n"] == 9 and res["split"] == "all"  # the silent train clip is called _silence_


def test_eval_writes_card(tmp_path: Path, bands: tuple[Path, Path]) -> None:
    model = tone_window_model(tmp_path / "m")
    tree = tone_tree(tmp_path / "tree")
    assert main(["eval", "--model", str(model), "--data", str(tree), "--write-card", "mine"]) == 0
    card = json.loads(model.with_suffix(".json").read_text())
    assert card["evaluation"]["mine"]["accuracy"] == 0.75


def test_eval_errors_are_one_line(tmp_path: Path, bands: tuple[Path, Path],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    model, wav = bands
    assert main(["eval", "--model", str(model), "--audio", str(tmp_path / "nope.wav"),
                 "--annotations", str(tmp_path / "nope.tsv")]) != 0
    assert main(["eval", "--model", str(model), "--data", str(tmp_path)]) != 0  # multilabel
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("hark: error:") for line in err)


def test_eval_compare_scores_each_gate(tmp_path: Path) -> None:
    """hark eval --vad compare: one row per gate, false events per hour from the same files."""
    from hark.live.model import OnnxModel
    from hark.models.gate_eval import compare_gates, format_gates

    model = OnnxModel.load(onnx_models.lstm_frame_model(tmp_path, vad=True))
    rng = np.random.default_rng(0)
    wav = tmp_path / "noise.wav"
    sf.write(wav, (0.05 * rng.standard_normal(16000 * 4)).astype(np.float32), 16000)
    tsv = wav.with_suffix(".tsv")
    tsv.write_text("onset\toffset\tevent_label\n")
    res = compare_gates(model, [(wav, tsv)])
    assert set(res) == {"off", "webrtc", "silero"}
    for r in res.values():
        assert r["false_events_per_hour"] == round(r["false_events"] / (4 / 3600), 2)
    # white noise: silero never opens, so nothing can be reported through it
    assert res["silero"]["false_events"] == 0
    assert "silero" in format_gates(res)


def test_clip_eval_reports_each_source_of_a_mixed_tree(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A multi-engine tree: each engine's accuracy on its own (a held-out engine must not hide)."""
    model = tone_window_model(tmp_path / "m")
    tree = tone_tree(tmp_path / "tree")
    listed = []
    for line in (tree / "testing_list.txt").read_text().split():
        word, name = line.split("/")
        engine = "flite" if word == "up" else "espeak"
        (tree / word / name).rename(tree / word / f"{engine}-{name}")
        listed.append(f"{word}/{engine}-{name}")
    (tree / "testing_list.txt").write_text("".join(f"{x}\n" for x in listed))
    res = run_eval(["--model", str(model), "--data", str(tree)], tmp_path)
    assert res["accuracy"] == 0.75
    # the tone model gets every espeak clip (yes, no) right and every flite clip (up) wrong
    assert res["per_source"] == {"espeak": {"accuracy": 1.0, "n": 6},
                                 "flite": {"accuracy": 0.0, "n": 2}}
    assert "flite      accuracy 0.0000  (n=2)" in capsys.readouterr().out


def test_speakers_without_an_engine_are_one_source() -> None:
    from hark.models.evaluation import clip_source

    assert clip_source("0a7c2a8d", "yes") == clip_source("1b2c3d4e", "no") == "other"
    assert clip_source("kokoro-af_heart*0.5+am_adam", "up") == "kokoro"
    assert clip_source("", "_silence_") == "_silence_"
