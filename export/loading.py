"""Find out what a model file is and load it with the Keras that wrote it.

Keras 3 files (.keras zips, and .h5 files whose keras_version is 3.x) load with Keras 3. Legacy
Keras 2.x / tf.keras files load with tf_keras, exactly: Keras 3 refuses some of them
(`time_major`, 2.2-style TimeDistributed) and silently computes 2.2-style `hard_sigmoid`
recurrent layers with different maths (clip(x/6+0.5) instead of clip(0.2x+0.5)).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import sys
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from hark.export.errors import ModelFileError, ToolchainError

INSTALL_HINT = "pip install 'hark[export]'"


def quiet_tensorflow() -> None:
    """Keep TensorFlow, absl and tf2onnx from flooding the terminal (call before importing TF)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    for name in ("tensorflow", "tf2onnx", "absl", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(tensorflow|tf_keras|keras|tf2onnx)(\.|$)")


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Silence fd 2 while TensorFlow's C++ side loads (absl prints before honouring log levels)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def require_toolchain() -> dict[str, str]:
    """Import TensorFlow, Keras and tf2onnx or say how to install them; return their versions."""
    quiet_tensorflow()
    try:
        with _stderr_silenced():
            import keras
            import onnx
            import onnxruntime
            import tensorflow as tf
            import tf2onnx

            with contextlib.suppress(ImportError):
                import tf_keras  # noqa: F401  (legacy files; loaded now, while stderr is quiet)
    except ImportError as e:
        missing = getattr(e, "name", None) or str(e)
        raise ToolchainError(
            f"the export toolchain is not installed ({missing} is missing): {INSTALL_HINT}"
        ) from None
    tf.get_logger().setLevel(logging.ERROR)
    if keras.backend.backend() != "tensorflow":
        raise ToolchainError(
            f"Keras runs on the {keras.backend.backend()} backend; export needs "
            "KERAS_BACKEND=tensorflow"
        )
    versions = {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tf2onnx": tf2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
    try:
        import tf_keras

        versions["tf_keras"] = tf_keras.__version__
    except ImportError:
        pass
    return versions


@dataclass
class LoadedModel:
    """A Keras model and where it came from."""

    model: Any
    keras: ModuleType  # the module that loaded it: keras (3) or tf_keras (legacy 2.x)
    path: Path
    container: str  # "keras-zip" or "h5"
    keras_version: str  # as recorded in the file
    sha256: str
    custom_objects: dict[str, Any] = field(default_factory=dict)  # what it was loaded with

    @property
    def legacy(self) -> bool:
        return self.keras.__name__ == "tf_keras"


_MAGIC = (
    (b"RIFF", "a WAV/RIFF audio file"),
    (b"fLaC", "a FLAC audio file"),
    (b"OggS", "an Ogg audio file"),
    (b"ID3", "an MP3 audio file"),
    (b"\x08\x00\x12", "an ONNX model"),
    (b"\x89PNG", "a PNG image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
)


def describe_bytes(head: bytes) -> str:
    """A guess at what a non-model file is, for the error message."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if not head:
        return "an empty file"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "an unknown binary file"
    return "a text file"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _attr_str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def detect(path: str | Path) -> tuple[str, str]:
    """Return (container, keras_version) for a model file; raise ModelFileError otherwise.

    container is "keras-zip" (a .keras archive) or "h5". keras_version is what the file
    records ("3.15.1", "2.2.4", "2.15.0", ...), "" when it records none.
    """
    p = Path(path)
    if p.is_dir():
        if (p / "saved_model.pb").exists():
            raise ModelFileError(
                f"{p} is a TensorFlow SavedModel directory: hark export reads Keras files; "
                "save the model with model.save('NAME.keras') (or .h5)"
            )
        raise ModelFileError(f"{p} is a directory, not a Keras model file")
    if not p.is_file():
        raise ModelFileError(f"model file not found: {p}")
    with p.open("rb") as f:
        head = f.read(16)
    if zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as z:
            names = set(z.namelist())
            if "config.json" not in names:
                raise ModelFileError(
                    f"{p.name} is a zip archive but not a Keras model (.keras files hold "
                    "config.json)"
                )
            version = ""
            if "metadata.json" in names:
                try:
                    version = str(json.loads(z.read("metadata.json")).get("keras_version", ""))
                except (ValueError, AttributeError):
                    version = ""
        return "keras-zip", version
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        import h5py

        try:
            with h5py.File(p, "r") as h5:
                attrs = dict(h5.attrs)
        except OSError as e:
            raise ModelFileError(f"{p.name}: unreadable HDF5 file: {e}") from None
        if "model_config" not in attrs:
            raise ModelFileError(
                f"{p.name} is an HDF5 file without a model config (a weights-only file?): save "
                "the whole model with model.save()"
            )
        return "h5", _attr_str(attrs.get("keras_version"))
    raise ModelFileError(
        f"{p.name} is not a Keras model file (.keras or HDF5 .h5): it looks like "
        f"{describe_bytes(head)}"
    )


def _major(version: str) -> int | None:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return None


CustomObjects = Mapping[str, Any] | str | Path | None


def read_custom_objects(path: str | Path) -> dict[str, Any]:
    """The `custom_objects` dict of a Python file (what the training script registered)."""
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"custom objects file not found: {p}")
    if p.suffix != ".py":
        raise ModelFileError(f"custom objects file {p.name} is not a Python file (.py)")
    spec = importlib.util.spec_from_file_location(f"_hark_custom_objects_{p.stem}", p)
    if spec is None or spec.loader is None:
        raise ModelFileError(f"cannot import {p}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's code: any error becomes one line
        raise ModelFileError(f"{p.name} raised {type(e).__name__}: {e}") from None
    objects = getattr(module, "custom_objects", None)
    if not isinstance(objects, Mapping):
        raise ModelFileError(
            f"{p.name} defines no dict named custom_objects (e.g. custom_objects = "
            "{'clipped_relu': clipped_relu})"
        )
    return dict(objects)


def load_error_cause(e: BaseException) -> str:
    """The part of a Keras loading error that says why (it comes last, after the config dump)."""
    text = " ".join(str(e).split()) or type(e).__name__
    for marker in ("Exception encountered:", "Exception encountered"):
        if marker in text:
            cause = text.rsplit(marker, 1)[1].strip(" :")
            if cause:
                text = cause
                break
    for cut in (" Please ensure you are using a", " See https://"):
        text = text.split(cut)[0]
    if len(text) > 600:  # a config dump without a marked cause: keep both ends
        text = text[:300] + " ... " + text[-300:]
    return text.strip().rstrip(".")


def _unknown_object_hint(cause: str, objects: Mapping[str, Any]) -> str:
    m = re.search(r"Unknown (?:layer|activation function|[a-z ]+):? '?([A-Za-z0-9_>.]+)'?", cause)
    if not m or m.group(1) in objects:
        return ""
    name = m.group(1)
    return (f"; pass it with --custom-objects FILE.py (a module defining custom_objects = "
            f"{{{name!r}: ...}}), or custom_objects= in the Python API")


def load(path: str | Path, custom_objects: CustomObjects = None) -> LoadedModel:
    """Load a Keras model file with the Keras that wrote it (see the module docstring).

    custom_objects: a dict of the names the model was saved with, or a .py file defining one
    (`custom_objects = {...}`). kapre's time-frequency layers are always known
    (export.kapre_layers).
    """
    p = Path(path)
    user_objects = (read_custom_objects(custom_objects)
                    if isinstance(custom_objects, str | Path) else dict(custom_objects or {}))
    container, version = detect(p)
    major = _major(version) if version else None
    if major is not None and major < 2:
        raise ModelFileError(
            f"{p.name} was written by Keras {version}: only Keras 2.x and 3.x files are supported"
        )
    # h5 files without a version and Keras 2.x files are legacy; .keras zips without one are 3.x
    legacy = major == 2 or (major is None and container == "h5")
    require_toolchain()
    if legacy:
        try:
            import tf_keras as K
        except ImportError:
            raise ToolchainError(
                f"{p.name} was written by Keras {version or '2.x'} and loads exactly only with "
                "tf_keras: pip install --no-deps tf_keras"
            ) from None
        loader = K.models.load_model
    else:
        import keras as K

        loader = K.saving.load_model
    from hark.export.kapre_layers import kapre_objects

    objects = {**kapre_objects(K), **user_objects}
    try:
        model = loader(str(p), compile=False, custom_objects=objects)
    except Exception as e:  # Keras raises many types here; each becomes one line
        cause = load_error_cause(e)
        raise ModelFileError(
            f"{p.name}: {K.__name__} {K.__version__} cannot load this model "
            f"(written by Keras {version or 'unknown'}): {cause}"
            f"{_unknown_object_hint(cause, objects)}"
        ) from None
    try:
        ok = bool(model.inputs) and bool(model.outputs)
    except (AttributeError, ValueError):
        ok = False
    if not ok:
        raise ModelFileError(
            f"{p.name}: the model has no symbolic inputs/outputs (a subclassed Model?): export "
            "needs a functional or Sequential model"
        )
    return LoadedModel(model, K, p, container, version, sha256_of(p), objects)
