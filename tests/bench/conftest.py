"""Models for the bench tests, written once per session to a temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import onnx_models
from tests.bench.stream_models import lstm_stack_model


@pytest.fixture(scope="session")
def bench_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bench-models")
    return {
        "stack": lstm_stack_model(d, units=(32, 16), vad=True, name="stack"),
        "stack_fixed": lstm_stack_model(d, units=(32, 16), dynamic_batch=False, vad=True,
                                        name="stackfixed"),
        "lstm": onnx_models.lstm_frame_model(d),
        "cnn": onnx_models.conv_window_model(d),
        "bands": onnx_models.band_energy_model(d, (-2.0, -6.0)),
    }
