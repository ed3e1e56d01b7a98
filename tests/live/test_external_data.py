"""ONNX external data must be a file inside the model's folder: hark checks it before onnxruntime.

Each model is saved by onnx with its weights in a side file, then the stored location is edited
to point elsewhere (where a real file with the right bytes waits, so only hark's check can refuse).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from hark.live.model import ModelError, OnnxModel
from tests import onnx_models


def _external(tmp_path: Path) -> Path:
    """The LSTM test model with its weight matrices in `weights.bin` beside it."""
    src = onnx_models.lstm_frame_model(tmp_path / "build")
    folder = tmp_path / "model"
    folder.mkdir()
    m = onnx.load(str(src))
    path = folder / "lstm.onnx"
    onnx.save(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=1024)
    shutil.copy(src.with_suffix(".json"), path.with_suffix(".json"))
    return path


def _relocate(path: Path, location: str, **extra: str) -> None:
    m = onnx.load(str(path), load_external_data=False)
    for t in m.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            for e in t.external_data:
                if e.key == "location":
                    e.value = location
                elif e.key in extra:
                    e.value = extra[e.key]
    path.write_bytes(m.SerializeToString())


def test_external_data_inside_the_folder_loads(tmp_path: Path) -> None:
    path = _external(tmp_path)
    assert b"weights.bin" in path.read_bytes()
    model = OnnxModel.load(path)
    assert model.card.name == "lstm"
    (path.parent / "sub").mkdir()
    shutil.move(path.parent / "weights.bin", path.parent / "sub" / "weights.bin")
    _relocate(path, "sub/weights.bin")
    OnnxModel.load(path)


def _refused(path: Path) -> str:
    with pytest.raises(ModelError) as e:
        OnnxModel.load(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}: tensor ")
    return msg


def test_parent_directory_is_refused(tmp_path: Path) -> None:
    path = _external(tmp_path)
    shutil.copy(path.parent / "weights.bin", tmp_path / "weights.bin")
    _relocate(path, "../weights.bin")
    assert "external data '../weights.bin' leaves the model's folder" in _refused(path)
    _relocate(path, "sub/../../weights.bin")
    assert "leaves the model's folder" in _refused(path)


def test_absolute_path_is_refused(tmp_path: Path) -> None:
    path = _external(tmp_path)
    target = path.parent / "weights.bin"  # even one that points into the folder itself
    _relocate(path, str(target.resolve()))
    assert "is an absolute path" in _refused(path)


def test_symlink_leaving_the_folder_is_refused(tmp_path: Path) -> None:
    path = _external(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.move(path.parent / "weights.bin", outside / "weights.bin")
    os.symlink(outside / "weights.bin", path.parent / "weights.bin")
    assert "is a link that leaves the model's folder" in _refused(path)
    os.unlink(path.parent / "weights.bin")
    os.symlink(outside, path.parent / "linked")  # a linked folder, too
    _relocate(path, "linked/weights.bin")
    assert "is a link that leaves the model's folder" in _refused(path)


def test_symlink_within_the_folder_is_fine(tmp_path: Path) -> None:
    path = _external(tmp_path)
    shutil.move(path.parent / "weights.bin", path.parent / "real.bin")
    os.symlink("real.bin", path.parent / "weights.bin")
    OnnxModel.load(path)


def test_missing_file_and_range_past_the_end(tmp_path: Path) -> None:
    path = _external(tmp_path)
    _relocate(path, "nothing.bin")
    assert "'nothing.bin' is not a file in the model's folder" in _refused(path)
    _relocate(path, "weights.bin", length=str(10**9))
    assert "asks for bytes past the end" in _refused(path)


def test_cli_refuses_with_one_line(tmp_path: Path) -> None:
    path = _external(tmp_path)
    shutil.copy(path.parent / "weights.bin", tmp_path / "weights.bin")
    _relocate(path, "../weights.bin")
    r = subprocess.run([sys.executable, "-m", "hark.cli", "replay", "--no-ui", "--model",
                        str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"hark: error: {path}: tensor 'W': external data '../weights.bin' leaves the model's "
        "folder"]
