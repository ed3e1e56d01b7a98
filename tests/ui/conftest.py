"""Fixtures for the UI tests: the tone recording, the models, sessions."""

from __future__ import annotations

from pathlib import Path

import pytest

from hark.live.model import OnnxModel
from hark.live.sources import FileSource
from hark.live.ui.session import UISession
from tests import onnx_models
from tests.ui.fixtures import SteppedSource, band_model, write_tones


@pytest.fixture(scope="session")
def ui_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ui")
    return {
        "wav": write_tones(d / "tones.wav"),
        "bands": band_model(d),
        "lstm": onnx_models.lstm_frame_model(d),
    }


@pytest.fixture
def bands(ui_data: dict[str, Path]) -> OnnxModel:
    return OnnxModel.load(ui_data["bands"])


@pytest.fixture
def file_session(ui_data: dict[str, Path], bands: OnnxModel, tmp_path: Path) -> UISession:
    """The tone recording at full speed (not paced): deterministic, about 0.1 s."""
    src = FileSource(ui_data["wav"], 16000, block_s=0.02)
    return UISession([bands], [src], out=tmp_path / "events.jsonl", save_dir=tmp_path / "saved")


@pytest.fixture
def stepped(ui_data: dict[str, Path]) -> SteppedSource:
    return SteppedSource(ui_data["wav"])


@pytest.fixture
def stepped_session(stepped: SteppedSource, bands: OnnxModel, tmp_path: Path) -> UISession:
    return UISession([bands], [stepped], out=tmp_path / "events.jsonl",
                     save_dir=tmp_path / "saved")
