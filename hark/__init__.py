"""hark: real-time audio recognition with Keras models exported to ONNX.

The public Python API (imported lazily, so `import hark` stays light and never pulls TensorFlow):

    model = hark.load_model("commands")          # a bundled name, or a .onnx beside its card
    engine = hark.Engine([model], sample_rate=16000)
    update = engine.feed(block)                  # numpy block: float32/64, or int16/int32
    update.finished, update.opened, update.scores
    engine.close()                               # end of stream: the open events, finished
    hark.export_keras("kws.keras", "labels.txt", frontend="logmel40")   # needs hark[export]

`hark.run(source, engine, sinks)` is the loop `hark mic` / `hark replay` use, with its fault
rules (hark.live.pipeline).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from hark.export.convert import ExportResult
    from hark.live.engine import Engine, EngineOptions
    from hark.live.events import Event, OpenEvent, Update
    from hark.live.model import OnnxModel
    from hark.live.pipeline import Sink, run

__all__ = [
    "Engine",
    "EngineOptions",
    "Event",
    "OnnxModel",
    "OpenEvent",
    "Sink",
    "Update",
    "export_keras",
    "load_model",
    "run",
]

# name -> module that defines it; resolved on first access (PEP 562)
_LAZY = {
    "Engine": "hark.live.engine",
    "EngineOptions": "hark.live.engine",
    "Event": "hark.live.events",
    "OpenEvent": "hark.live.events",
    "Update": "hark.live.events",
    "OnnxModel": "hark.live.model",
    "Sink": "hark.live.pipeline",
    "run": "hark.live.pipeline",
}


def load_model(name_or_path: str | Path, threads: int = 1) -> OnnxModel:
    """A bundled model by name ("commands", "sounds", ...) or a .onnx file with its .json card."""
    from hark.live.model import OnnxModel, RuntimeOptions

    return OnnxModel.load(name_or_path, options=RuntimeOptions(threads=threads))


def export_keras(model_path: str | Path, labels: Any, **options: Any) -> ExportResult:
    """Export a Keras model (.keras / .h5) to ONNX + card with a parity proof.

    The options are those of hark.export.convert (frontend=, out_dir=, quantize=, ...).
    TensorFlow is imported here, only when called.
    """
    from hark.export.convert import convert

    return convert(model_path, labels, **options)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hark' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
