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
from collections.abc import Callable, Iterator, Mapping
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
    # weights-only files: the builder that made the model ({"builder": "FILE.py:FUNC", ...})
    architecture: dict[str, str] | None = None
    notes: list[str] = field(default_factory=list)  # warnings for the export summary

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


def detect(path: str | Path, weights_only: bool = False) -> tuple[str, str]:
    """Return (container, keras_version) for a model file; raise ModelFileError otherwise.

    container is "keras-zip" (a .keras archive), "h5", or with weights_only (the caller builds
    the model) "h5-weights" for an HDF5 file of model.save_weights. keras_version is what the
    file records ("3.15.1", "2.2.4", "2.15.0", ...), "" when it records none.
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
            if weights_only:
                return "h5-weights", _attr_str(attrs.get("keras_version"))
            raise ModelFileError(
                f"{p.name} is an HDF5 file without a model config (a weights-only file, from "
                "model.save_weights): give the code that builds the model, --architecture "
                "FILE.py:FUNC, or save the whole model with model.save()"
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
Builder = Callable[[], Any]  # --architecture: returns the uncompiled model of a weights file


def import_user_file(p: Path, prefix: str, error: type[Exception], where: str, verb: str,
                     describe: Any) -> ModuleType:
    """Run a user's Python file as a module; any failure is one `error` line naming `where`.

    The one importer of custom objects, --architecture builders and --reference-features code.
    """
    spec = importlib.util.spec_from_file_location(f"{prefix}_{p.stem}", p)
    if spec is None or spec.loader is None:
        raise error(f"{where}cannot import {p}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's code: any error becomes one line
        raise error(f"{where}{verb}{p.name} raised {type(e).__name__}: {describe(e)}") from None
    return module


def read_custom_objects(path: str | Path) -> dict[str, Any]:
    """The `custom_objects` dict of a Python file (what the training script registered)."""
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"custom objects file not found: {p}")
    if p.suffix != ".py":
        raise ModelFileError(f"custom objects file {p.name} is not a Python file (.py)")
    module = import_user_file(p, "_hark_custom_objects", ModelFileError, "", "",
                              str)
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


def load(path: str | Path, custom_objects: CustomObjects = None,
         architecture: str | Path | Builder | None = None) -> LoadedModel:
    """Load a Keras model file with the Keras that wrote it (see the module docstring).

    custom_objects: a dict of the names the model was saved with, or a .py file defining one
    (`custom_objects = {...}`). kapre's time-frequency layers are always known
    (export.kapre_layers). architecture: "FILE.py:FUNC" (or the function) returning the
    uncompiled model a weights-only file (model.save_weights) belongs to: see load_weights_only.
    """
    p = Path(path)
    user_objects = (read_custom_objects(custom_objects)
                    if isinstance(custom_objects, str | Path) else dict(custom_objects or {}))
    if architecture is not None:
        return load_weights_only(p, architecture, user_objects)
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


def read_builder(spec: str | Path | Builder) -> tuple[Builder, str, Path | None]:
    """FILE.py:FUNC -> (the function, "FILE.py:FUNC", the file); a callable is taken as it is."""
    if callable(spec):
        return spec, getattr(spec, "__qualname__", repr(spec)), None
    path, sep, func = str(spec).rpartition(":")
    if not sep or not path or not func:
        raise ModelFileError(f"--architecture {spec!r}: expected FILE.py:FUNC (a function that "
                             "returns the model)")
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"--architecture: {p} not found")
    if p.suffix != ".py":
        raise ModelFileError(f"--architecture: {p.name} is not a Python file (.py)")
    module = import_user_file(p, "_hark_architecture", ModelFileError, "--architecture: ",
                              "importing ", _one_line)
    fn = getattr(module, func, None)
    if not callable(fn):
        raise ModelFileError(f"--architecture: {p.name} has no function {func!r}")
    return fn, f"{p.name}:{func}", p


def _one_line(e: BaseException | str, limit: int = 300) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _keras_of(model: Any) -> ModuleType | None:
    """The Keras module (keras 3 or tf_keras) of the model the builder returned, from its class."""
    root = type(model).__module__.split(".")[0]
    if root not in ("keras", "tf_keras") or not hasattr(model, "load_weights"):
        return None
    import importlib

    return importlib.import_module(root)


def _float_arrays(path: Path) -> list[tuple[int, ...]]:
    """Shapes of the float arrays a weights file holds (a whole-model file: its model_weights)."""
    import h5py
    import numpy as np

    shapes: list[tuple[int, ...]] = []
    with h5py.File(path, "r") as h5:
        root = h5.get("model_weights", h5)

        def visit(_: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset) and np.issubdtype(obj.dtype, np.floating):
                shapes.append(tuple(int(d) for d in obj.shape))

        root.visititems(visit)
    return shapes


def load_weights_only(path: Path, architecture: str | Path | Builder,
                      custom_objects: Mapping[str, Any] | None = None) -> LoadedModel:
    """Build the model with the user's function, then load a model.save_weights file into it.

    Every weight must come from the file and every array of the file must be used: a weight left
    unset or a spare array is a model that is not the one trained, so it is one clear error
    (Keras itself only warns about some of these). The parity proof then runs as for any model.
    """
    container, version = detect(path, weights_only=True)
    require_toolchain()
    fn, where, builder_file = read_builder(architecture)
    try:
        model = fn()
    except Exception as e:  # the user's code
        raise ModelFileError(f"--architecture: {where}() raised {type(e).__name__}: "
                             f"{_one_line(e)}") from None
    K = _keras_of(model)
    if K is None:
        raise ModelFileError(f"--architecture: {where}() returned {type(model).__name__}, not a "
                             "Keras model (return the model, e.g. keras.Model(inputs, outputs))")
    try:
        ok = bool(model.inputs) and bool(model.outputs)
    except (AttributeError, ValueError):
        ok = False
    if not ok:
        raise ModelFileError(f"--architecture: the model {where}() returns has no inputs yet: "
                             "start it with keras.Input(shape) (or give the first layer an "
                             "input shape)")
    import numpy as np

    variables = [v for v in model.weights if np.issubdtype(np.dtype(v.dtype.name if hasattr(
        v.dtype, "name") else v.dtype), np.floating)]
    for v in variables:  # NaN until the file sets it: nothing is left as built
        v.assign(np.full(tuple(v.shape), np.nan, dtype=np.float32))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.load_weights(str(path))
    except Exception as e:  # Keras raises ValueError, KeyError, OSError ... here
        raise ModelFileError(f"{path.name} does not fit the model {where}() returns: "
                             f"{_one_line(load_error_cause(e))}") from None
    unset = [v for v in variables if np.isnan(np.asarray(v.numpy())).all()]
    if unset:
        names = ", ".join(f"{getattr(v, 'path', None) or v.name} {list(v.shape)}"
                          for v in unset[:3])
        raise ModelFileError(f"{path.name} does not fit the model {where}() returns: it sets "
                             f"no value for {len(unset)} of its {len(variables)} weights "
                             f"({names})")
    in_file = _float_arrays(path)
    if len(in_file) > len(variables):
        raise ModelFileError(f"{path.name} does not fit the model {where}() returns: the file "
                             f"holds {len(in_file)} weight arrays, the model {len(variables)} "
                             "(it was saved from a bigger model)")
    notes = []
    major = _major(version) if version else None
    if major == 2 and K.__name__ == "keras" and any(
        getattr(layer, "recurrent_activation", None) is not None
        and "hard_sigmoid" in str(layer.get_config().get("recurrent_activation"))
        for layer in model.layers
    ):
        notes.append(f"{path.name} was written by Keras {version} but {where}() builds a Keras 3 "
                     "model: Keras 3 computes hard_sigmoid as clip(x/6+0.5), Keras 2 as "
                     "clip(0.2x+0.5) (up to 5e-2 apart); build it with tf_keras")
    arch = {"builder": where}
    if builder_file is not None:
        arch["sha256"] = sha256_of(builder_file)
    from hark.export.kapre_layers import kapre_objects

    objects = {**kapre_objects(K), **(custom_objects or {})}
    return LoadedModel(model, K, path, container, version, sha256_of(path), objects, arch, notes)
