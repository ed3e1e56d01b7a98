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


# ---- findability: every frontend field in --help, --no-flatten, default ignored labels -------
def _option_blocks(text: str) -> dict[str, str]:
    """--flag -> its usage line and help, whitespace collapsed (argparse wraps anywhere)."""
    import re

    blocks: dict[str, str] = {}
    body = text.split("options:", 1)[1]
    for part in re.split(r"\n  (?=-)", body):
        m = re.match(r"(--[\w-]+)", part)
        if m:
            blocks[m.group(1)] = " ".join(part.split())
    return blocks


def _expected_values(name: str) -> list[str]:
    """The allowed words of a FrontendSpec field, read independently of export.cli."""
    import typing

    from hark.live.card import _CHOICES, FRONTEND_KINDS, FrontendSpec

    def word(v: Any) -> str:
        return "none" if v is None else ("true" if v is True else "false" if v is False
                                         else str(v))

    if name == "kind":
        return list(FRONTEND_KINDS)
    if name in _CHOICES:
        return [word(v) for v in _CHOICES[name]]
    hint = typing.get_type_hints(FrontendSpec)[name]
    words = []
    for arg in (typing.get_args(hint) or (hint,)):
        if typing.get_origin(arg) is typing.Literal:
            words += [word(v) for v in typing.get_args(arg)]
        elif arg is type(None):
            words.append("none")
    return words


def test_help_lists_every_frontend_field_with_its_values(
        capsys: pytest.CaptureFixture[str]) -> None:
    import dataclasses

    from hark.live.card import FrontendSpec

    with pytest.raises(SystemExit):
        main(["export", "--help"])
    blocks = _option_blocks(capsys.readouterr().out)
    for f in dataclasses.fields(FrontendSpec):
        flag = "--" + f.name.replace("_", "-")
        assert flag in blocks, f"{flag} is not in hark export --help"
        for value in _expected_values(f.name):
            assert value in blocks[flag].split(flag, 1)[1], (flag, value, blocks[flag])
    for value in ("stft", "hann_symmetric", "reflect", "db_amplitude", "replace_zero"):
        assert any(value in b for b in blocks.values()), value
    assert "bins_mean" in blocks["--pool"] and "--no-flatten" in blocks["--flatten"]
    assert "silence" in blocks["--ignore-labels"] and "--keep-labels" in blocks


def _captured_convert(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> dict[str, Any]:
    """The keyword arguments `hark export ARGV` hands to convert (nothing is converted)."""
    import importlib

    module = importlib.import_module("hark.export.convert")  # the package exports convert()
    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def fake(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(module, "convert", fake)
    with pytest.raises(Stop):
        main(["export", "m.keras", "--labels", "a,b", *argv])
    return seen


def test_every_field_flag_reaches_the_frontend(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _captured_convert(monkeypatch, [
        "--kind", "stft", "--window-fn", "hann_symmetric", "--pad-mode", "reflect",
        "--log", "db_amplitude", "--floor-mode", "max", "--log-floor", "1e-5", "--top-db", "80",
        "--n-fft", "pow2", "--center", "true", "--db-ref", "max", "--no-flatten",
        "--layout", "bins_frames"])
    fe = seen["frontend"]["*"].overrides
    assert fe == {"kind": "stft", "window_fn": "hann_symmetric", "pad_mode": "reflect",
                  "log": "db_amplitude", "floor_mode": "max", "log_floor": 1e-5,
                  "top_db": 80.0, "n_fft": "pow2", "center": True, "db_ref": "max"}
    assert seen["layout"] == {"layout": "bins_frames", "flatten": False}
    assert seen["ignore_labels"] is None and seen["keep_labels"] == []
    seen = _captured_convert(monkeypatch, ["--kind", "logmel", "--ignore-labels", "",
                                           "--keep-labels", "a"])
    assert seen["ignore_labels"] == [] and seen["keep_labels"] == ["a"]


def test_bad_field_value_names_the_allowed_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["export", "m.keras", "--labels", "a", "--window-fn", "kaiser"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "'kaiser'" in err and "hann_symmetric" in err


@pytest.mark.parametrize("labels,ignored", [
    (("yes", "no", "_silence_"), ("_silence_",)),
    (("Silence", "Background Noise", "_background_noise_", "noise", "None", "dog"),
     ("Silence", "Background Noise", "_background_noise_", "noise", "None")),
    (("yes", "_unknown_", "other", "noisy", "silent"), ()),  # sounds that are present
])
def test_silence_like_labels_are_ignored_by_default(labels: tuple[str, ...],
                                                    ignored: tuple[str, ...]) -> None:
    from hark.export.modelcard import resolve_ignore_labels

    assert resolve_ignore_labels(labels, None).labels == ignored


def test_ignore_and_keep_labels_override_the_default() -> None:
    from hark.export.errors import ExportError
    from hark.export.modelcard import resolve_ignore_labels

    labels = ("yes", "_unknown_", "_silence_")
    assert resolve_ignore_labels(labels, []).labels == ()
    assert resolve_ignore_labels(labels, ["_unknown_"]).labels == ("_unknown_",)
    kept = resolve_ignore_labels(labels, None, ["_silence_"])
    assert kept.labels == () and kept.kept == ("_silence_",)
    with pytest.raises(ExportError, match="'silence' not among the labels"):
        resolve_ignore_labels(labels, None, ["silence"])


def test_export_ignores_silence_by_default_and_says_so(
        saved: dict[str, Any], labels_file: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["export", str(saved["cnn"].path), "--labels", str(labels_file),
               "--preset", "kaggle-specgram", "--out", str(tmp_path), "--no-streaming-split"])
    out = capsys.readouterr().out
    assert rc == 0, out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("labels"))
    assert "_silence_" in line and "by default" in line and "--keep-labels" in line
    card = json.loads((tmp_path / "cnn.json").read_text())
    assert card["ignore_labels"] == ["_silence_"]
    assert card["provenance"]["ignore_labels"]["source"] == "default"
