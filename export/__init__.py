"""Keras (.keras / legacy .h5) -> ONNX + model card, with parity proof.

    from hark.export import convert
    result = convert("kws.keras", "labels.txt", frontend="kaggle-specgram", out_dir="models/")
    result.onnx_path, result.card_path, result.parity["max_abs_diff"], result.op_types

Importing this package does not import TensorFlow; `convert` does, when called.
"""

from hark.export.convert import ExportResult, convert
from hark.export.errors import (
    ExportError,
    FrontendMismatchError,
    LayerError,
    ModelFileError,
    ParityError,
    ReferenceMismatchError,
    ToolchainError,
)
from hark.export.presets import PRESETS, Preset

__all__ = [
    "PRESETS",
    "ExportError",
    "ExportResult",
    "FrontendMismatchError",
    "LayerError",
    "ModelFileError",
    "ParityError",
    "Preset",
    "ReferenceMismatchError",
    "ToolchainError",
    "convert",
]
