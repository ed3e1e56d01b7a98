"""The benchmark suite's short (CI) mode writes its table, JSON, PNG and Markdown.

Keras baseline (a) included when TensorFlow is installed (the dev setup, hence CI): it must then
run, not be skipped. The PulseAudio parts are in test_loopback.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import suite
from hark.bench.baselines import tensorflow_available


@pytest.mark.slow
def test_suite_short(tmp_path: Path) -> None:
    assert suite.main(["--short", "--no-loopback", "--stand-ins", "--out", str(tmp_path)]) == 0
    r = json.loads((tmp_path / "bench.json").read_text())
    assert [m["name"] for m in r["models"]] == ["stack", "cnn"]
    assert r["config"]["quick"] and r["capacity"]["models"]
    table = (tmp_path / "bench.txt").read_text()
    assert table.startswith("$ hark bench") and "targets (measured, not asserted)" in table
    assert (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"
    assert "| target |" in (tmp_path / "bench.md").read_text()
    for m in r["models"]:
        k = m["baselines"]["keras_naive"]
        if not tensorflow_available():
            assert "TensorFlow" in k["skipped"]
            continue
        assert "skipped" not in k, k
        assert k["keras_params"] > 0 and k["onnx_params"] > 0 and "untrained" in k["keras_model"]
        assert k["per_decision_us"]["n"] > 0
        assert m["ratios"]["keras_naive_over_engine"] > 1  # predict() alone costs milliseconds
