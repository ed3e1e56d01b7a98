"""`hark export` through hark.cli.main: success output, and one clear line for each failure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hark.cli import main
from tests.export.conftest import LABELS3

pytestmark = [pytest.mark.tf, pytest.mark.filterwarnings("ignore:You are saving your model")]


@pytest.fixture(scope="module")
def labels_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("labels") / "labels.txt"
    p.write_text("\n".join(LABELS3) + "\n")
    return p


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc != 0
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("hark: error: ")
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["export", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "--preset" in out and "kaggle-specgram" in out


def test_cli_module_does_not_import_tensorflow() -> None:
    code = ("import argparse, sys, export, export.cli; "
            "export.cli.register(argparse.ArgumentParser().add_subparsers()); "
            "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)")
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0


def test_export_writes_model_and_card(saved: dict[str, Any], labels_file: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["export", str(saved["gru_legacy"].path), "--labels", str(labels_file),
               "--preset", "logmel40", "--name", "kws", "--out", str(tmp_path),
               "--ignore-labels", "_silence_", "--threshold-on", "0.7", "--threshold-off", "0.4",
               "--threshold-rise", "0.2", "--offset-advance-ms", "50", "--vad", "off", "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    res = json.loads(out)
    assert res["max_abs_diff"] <= 1e-4 and "GRU" in res["op_types"]
    card = json.loads((tmp_path / "kws.json").read_text())
    assert (tmp_path / "kws.onnx").is_file()
    assert card["name"] == "kws" and card["labels"] == list(LABELS3)
    assert card["smoothing"]["threshold_on"] == 0.7 and card["vad"]["enabled"] is False
    assert card["smoothing"]["threshold_rise"] == 0.2
    assert card["smoothing"]["offset_advance_ms"] == 50
    assert card["state"][0]["shape"] == [1, 1, 8]
    assert card["provenance"]["parity"]["streaming"]


def test_quantize_int8_with_eval(saved: dict[str, Any], keras_models: dict[str, Any],
                                 labels_file: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    model = keras_models["cnn_legacy"]
    x = np.random.default_rng(5).standard_normal((32, 99, 81, 1)).astype(np.float32)
    y = np.argmax(np.asarray(model(x, training=False)), axis=-1)
    y[:4] = (y[:4] + 1) % 3  # Keras accuracy 28/32
    np.savez(tmp_path / "val.npz", x=x, y=y)
    rc = main(["export", str(saved["cnn_legacy"].path), "--labels", str(labels_file),
               "--preset", "kaggle-specgram", "--out", str(tmp_path), "--quantize", "int8",
               "--eval-npz", str(tmp_path / "val.npz")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "int8" in out and "accuracy" in out
    card = json.loads((tmp_path / "cnn_legacy-int8.json").read_text())
    q = card["provenance"]["quantization"]
    assert (tmp_path / "cnn_legacy-int8.onnx").stat().st_size == q["bytes_int8"]
    assert q["latency_int8"]["median_us"] > 0 and q["latency_float"]["median_us"] > 0
    assert 0 < q["max_abs_diff_vs_keras"] < 0.05
    assert "accuracy_change" in q
    ev = json.loads((tmp_path / "cnn_legacy.json").read_text())["evaluation"]
    assert ev["accuracy_keras"] == pytest.approx(28 / 32) and ev["accuracy_onnx"] == ev[
        "accuracy_keras"]
    assert any(op.endswith("Integer") for op in q["op_types"])


# ---- failures: one line, non-zero exit ---------------------------------------------------------
def test_bidirectional_cannot_stream(saved: dict[str, Any], labels_file: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    _fails(capsys, ["export", str(saved["bidir"].path), "--labels", str(labels_file),
                    "--preset", "logmel40"], "'bi'", "Bidirectional", "cannot run causally")


def test_conv_same_cannot_stream(saved: dict[str, Any], labels_file: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    _fails(capsys, ["export", str(saved["convsame"].path), "--labels", str(labels_file),
                    "--preset", "logmel40"], "'smear'", "padding='same'", "future frames")


def test_bins_mismatch(saved: dict[str, Any], labels_file: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    _fails(capsys, ["export", str(saved["wide"].path), "--labels", str(labels_file),
                    "--preset", "logmel40"], "64 bins", "gives 40", "--n-mels 64")


def test_bins_fixed_by_override(saved: dict[str, Any], labels_file: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["export", str(saved["wide"].path), "--labels", str(labels_file), "--preset",
               "logmel40", "--n-mels", "64", "--out", str(tmp_path)])
    assert rc == 0, capsys.readouterr().err
    card = json.loads((tmp_path / "wide.json").read_text())
    assert card["frontends"]["main"]["n_mels"] == 64


def test_label_count_mismatch(saved: dict[str, Any], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    labels = tmp_path / "five.txt"
    labels.write_text("a\nb\nc\nd\ne\n")
    _fails(capsys, ["export", str(saved["cnn"].path), "--labels", str(labels),
                    "--preset", "kaggle-specgram"], "5 labels", "3 classes")


def test_window_mismatch(saved: dict[str, Any], labels_file: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    _fails(capsys, ["export", str(saved["cnn"].path), "--labels", str(labels_file),
                    "--preset", "kaggle-specgram", "--window-s", "0.5"],
           "takes 99 frames", "window_s=0.5 gives 49", "--window-s 1")


def test_raw_input_needs_raw_frontend(saved: dict[str, Any], labels_file: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    _fails(capsys, ["export", str(saved["raw"].path), "--labels", str(labels_file),
                    "--preset", "logmel40"], "raw samples", "raw16k")


def test_no_frontend_given(saved: dict[str, Any], labels_file: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    _fails(capsys, ["export", str(saved["cnn"].path), "--labels", str(labels_file)],
           "no frontend", "kaggle-specgram would fit")


@pytest.mark.parametrize("content,what", [
    (b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64), "WAV"),
    (b"just some notes, not a model\n", "text file"),
])
def test_not_a_keras_file(labels_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          content: bytes, what: str) -> None:
    fake = tmp_path / "model.h5"
    fake.write_bytes(content)
    _fails(capsys, ["export", str(fake), "--labels", str(labels_file), "--preset", "logmel40"],
           "model.h5", "not a Keras model", what)


def test_missing_file(labels_file: Path, tmp_path: Path,
                      capsys: pytest.CaptureFixture[str]) -> None:
    _fails(capsys, ["export", str(tmp_path / "nope.keras"), "--labels", str(labels_file),
                    "--preset", "logmel40"], "not found")


def test_tensorflow_not_installed(saved: dict[str, Any], labels_file: Path,
                                  monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # `import tensorflow` now fails
    _fails(capsys, ["export", str(saved["cnn"].path), "--labels", str(labels_file),
                    "--preset", "kaggle-specgram"], "tensorflow", "pip install 'hark[export]'")


def _bessel(t: Any) -> Any:
    import tensorflow as tf

    return tf.math.bessel_i0e(t)  # no ONNX conversion in tf2onnx


def test_unconvertible_layer(toolchain: Any, labels_file: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    K = toolchain[1]
    x = K.Input((99, 81, 1), name="spec")
    h = K.layers.Dense(3)(K.layers.Flatten()(x))
    h = K.layers.Lambda(_bessel, name="weird")(h)
    K.Model(x, K.layers.Softmax()(h)).save(tmp_path / "weird.h5")
    _fails(capsys, ["export", str(tmp_path / "weird.h5"), "--labels", str(labels_file),
                    "--preset", "kaggle-specgram", "--out", str(tmp_path)],
           "layer 'weird'", "BesselI0e", "cannot be converted")


def test_parity_failure_writes_nothing(saved: dict[str, Any], labels_file: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    line = _fails(capsys, ["export", str(saved["lstm"].path), "--labels", str(labels_file),
                           "--preset", "logmel40", "--out", str(tmp_path), "--tolerance", "1e-12"],
                  "parity check failed", "tolerance 1e-12", "batch 2 T=500", "streaming 7/call")
    assert "e-0" in line  # the measured numbers are printed
    assert not list(tmp_path.iterdir())
