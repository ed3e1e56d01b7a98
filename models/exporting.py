"""Hand a trained Keras model to the exporter: NAME.onnx + NAME.json (card) with parity measured.

The project's exporter (`hark.export.convert.convert`) does the work, the same code `hark export`
runs, so a trained model is exported exactly as a user's notebook model would be.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hark.live.card import (
    FrontendSpec,
    Normalization,
    SmoothingSpec,
    VadSpec,
)
from hark.models.architectures import BuiltModel


@dataclass(frozen=True)
class ExportRequest:
    """Everything the card needs besides the graph."""

    name: str
    labels: tuple[str, ...]
    sample_rate: int
    frontend: FrontendSpec
    normalization: Normalization | None = None
    ignore_labels: tuple[str, ...] = ()
    smoothing: SmoothingSpec = field(default_factory=SmoothingSpec)
    vad: VadSpec = field(default_factory=VadSpec)
    window_s: float | None = None
    stride_s: float | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)


def export_model(built: BuiltModel, req: ExportRequest, out_dir: str | Path) -> Path:
    """Write OUT/NAME.keras, OUT/NAME.onnx and OUT/NAME.json; returns the .onnx path.

    Parity between Keras and onnxruntime is measured and must hold (the card records it).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras_path = out / f"{req.name}.keras"
    built.model.save(keras_path)
    return _via_export(keras_path, built, req, out)


def _via_export(keras_path: Path, built: BuiltModel, req: ExportRequest, out: Path) -> Path:
    """Let export.convert load the saved Keras file, verify parity and write NAME.onnx/.json."""
    from hark.export.convert import convert

    result = convert(
        keras_path,
        list(req.labels),
        frontend=req.frontend,
        sample_rate=req.sample_rate,
        name=req.name,
        out_dir=out,
        window_s=req.window_s,
        stride_s=req.stride_s,
        normalization=req.normalization,
        task=built.task,
        ignore_labels=req.ignore_labels,
        smoothing=req.smoothing,
        vad=req.vad,
    )
    path = Path(result.onnx_path)
    _merge_card(path, req)
    return path


def _merge_card(onnx_path: Path, req: ExportRequest) -> None:
    """Add our provenance/evaluation to the card the exporter wrote (its fields win)."""
    from hark.live.card import load_card

    card_path = onnx_path.with_suffix(".json")
    card = load_card(card_path)
    prov = {**req.provenance, **card.provenance}
    ev = {**card.evaluation, **req.evaluation}
    replace(card, provenance=prov, evaluation=ev).save(card_path)
