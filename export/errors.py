"""Export errors: each one is a single line the CLI prints before exiting non-zero."""

from __future__ import annotations

from hark.live.errors import HarkError


class ExportError(HarkError):
    """Anything that stops `hark export` from handing over a verified model."""


class ToolchainError(ExportError):
    """TensorFlow / tf2onnx (the [export] extra) is not installed."""


class ModelFileError(ExportError):
    """The file is missing, is not a Keras model, or cannot be loaded."""


class LayerError(ExportError):
    """A layer that cannot be converted, or cannot run causally in a streaming model."""


class FrontendMismatchError(ExportError):
    """The frontend cannot feed a model input, or the labels do not match the output."""


class ParityError(ExportError):
    """onnxruntime and Keras disagree by more than the tolerance."""


class ReferenceMismatchError(ExportError):
    """hark's features differ from the user's own feature code on the same audio."""
