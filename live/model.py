"""An ONNX model with its card: an onnxruntime session configured explicitly, checked on load."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from hark.live.card import CardError, ModelCard, load_card
from hark.live.errors import HarkError

DEFAULT_MODEL = "commands"


class ModelError(HarkError):
    """A model file that is missing, unreadable or not the model its card describes."""


@dataclass(frozen=True)
class RuntimeOptions:
    """How onnxruntime runs a model. One intra-op thread: per-hop calls are too small to split."""

    threads: int = 1
    provider: str = "CPUExecutionProvider"
    optimization: str = "all"  # disable | basic | extended | all


def bundled_dir() -> Path:
    """Where the bundled models live (package data of `models`, no code imported from it)."""
    return Path(str(resources.files("hark.models"))) / "bundled"


def bundled_names() -> list[str]:
    d = bundled_dir()
    return sorted(p.stem for p in d.glob("*.onnx")) if d.is_dir() else []


def resolve_model(spec: str | os.PathLike[str] | None) -> tuple[Path, Path]:
    """A bundled model's name, or a path to NAME.onnx with NAME.json beside it."""
    spec = str(spec) if spec is not None else DEFAULT_MODEL
    p = Path(spec)
    if p.suffix in (".onnx", ".json") or p.exists() or os.sep in spec:
        onnx_path = p.with_suffix(".onnx")
        if not onnx_path.is_file():
            raise ModelError(f"model file not found: {onnx_path}")
        return onnx_path, onnx_path.with_suffix(".json")
    onnx_path = bundled_dir() / f"{spec}.onnx"
    if not onnx_path.is_file():
        names = ", ".join(bundled_names()) or "none installed"
        raise ModelError(f"no bundled model named {spec!r} (bundled: {names}); "
                         "or give a path to a .onnx file")
    return onnx_path, onnx_path.with_suffix(".json")


class OnnxModel:
    """A session plus the card that says how to feed it and read it."""

    def __init__(self, path: Path, card: ModelCard, session: Any, output: str) -> None:
        self.path = path
        self.card = card
        self.session = session
        self.output = output
        self.name = card.name

    @classmethod
    def load(
        cls,
        spec: str | os.PathLike[str] | None = None,
        card: ModelCard | None = None,
        options: RuntimeOptions | None = None,
    ) -> OnnxModel:
        """Load a bundled model by name or a .onnx path; validate its card against the graph."""
        import onnxruntime as ort

        options = options or RuntimeOptions()
        onnx_path, card_path = resolve_model(spec)
        if card is None:
            card = load_card(card_path)  # its errors name the card file
        so = ort.SessionOptions()
        so.intra_op_num_threads = options.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[options.optimization]
        so.log_severity_level = 3
        try:
            session = ort.InferenceSession(
                str(onnx_path), sess_options=so, providers=[options.provider]
            )
        except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(f"cannot load {onnx_path}: not a valid ONNX model ({first})") from e
        ins = {i.name: _shape(i.shape) for i in session.get_inputs()}
        outs = {o.name: _shape(o.shape) for o in session.get_outputs()}
        try:
            output = card.check_against_model(ins, outs)
        except CardError as e:
            raise CardError(f"{onnx_path.name} does not match its card: {e}") from None
        return cls(onnx_path, card, session, output)

    def run(self, feeds: dict[str, np.ndarray], outputs: list[str] | None = None) -> list[Any]:
        return list(self.session.run(outputs or [self.output], feeds))

    def input_shape(self, name: str) -> tuple[int | str | None, ...]:
        return next(_shape(i.shape) for i in self.session.get_inputs() if i.name == name)


def _shape(shape: Any) -> tuple[int | str | None, ...]:
    return tuple(d if isinstance(d, int) else None for d in (shape or ()))
