"""An ONNX model with its card: an onnxruntime session configured explicitly, checked on load."""

from __future__ import annotations

import math
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from hark.live.card import CardError, ModelCard, load_card
from hark.live.errors import HarkError
from hark.live.paths import path_kind

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
    # a model has its card beside it (NAME.front.onnx / NAME.head.onnx of a split do not)
    return sorted(p.stem for p in d.glob("*.onnx") if p.with_suffix(".json").is_file()) \
        if d.is_dir() else []


def resolve_model(spec: str | os.PathLike[str] | None) -> tuple[Path, Path]:
    """A bundled model's name, or a path to NAME.onnx with NAME.json beside it."""
    spec = str(spec) if spec is not None else DEFAULT_MODEL
    p = Path(spec)
    # path_kind, not is_file(): a folder the user cannot search is one line, not a traceback
    if p.suffix in (".onnx", ".json") or os.sep in spec or path_kind(p, ModelError):
        onnx_path = p.with_suffix(".onnx")
        if path_kind(onnx_path, ModelError) != "file":
            raise ModelError(f"model file not found: {onnx_path}")
        return onnx_path, onnx_path.with_suffix(".json")
    onnx_path = bundled_dir() / f"{spec}.onnx"
    if path_kind(onnx_path, ModelError) != "file":
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
        self.options = RuntimeOptions()  # how the session was made (the split pair's too)

    @classmethod
    def load(
        cls,
        spec: str | os.PathLike[str] | None = None,
        card: ModelCard | None = None,
        options: RuntimeOptions | None = None,
    ) -> OnnxModel:
        """Load a bundled model by name or a .onnx path; validate its card against the graph."""
        options = options or RuntimeOptions()
        onnx_path, card_path = resolve_model(spec)
        if card is None:
            card = load_card(card_path)  # its errors name the card file
        if card.backbone is not None:  # the shipped backbone must be the one it was built on
            from hark.live.backbone import check_ref

            try:
                check_ref(card.backbone)
            except CardError as e:
                raise CardError(f"{card_path}: {e}") from None
        session = open_session(onnx_path, options)
        ins = {i.name: _shape(i.shape) for i in session.get_inputs()}
        outs = {o.name: _shape(o.shape) for o in session.get_outputs()}
        try:
            output = card.check_against_model(ins, outs)
            check_types(card, session, output)
            dry_run(card, session, output)
        except CardError as e:
            raise CardError(f"{onnx_path} does not match its card: {e}") from None
        model = cls(onnx_path, card, session, output)
        model.options = options
        return model

    def run(self, feeds: dict[str, np.ndarray], outputs: list[str] | None = None) -> list[Any]:
        return list(self.session.run(outputs or [self.output], feeds))

    def input_shape(self, name: str) -> tuple[int | str | None, ...]:
        return next(_shape(i.shape) for i in self.session.get_inputs() if i.name == name)


def open_session(onnx_path: Path, options: RuntimeOptions) -> Any:
    """An onnxruntime session on a checked file, configured as `options` say."""
    import onnxruntime as ort

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
    check_external_data(onnx_path)  # before onnxruntime opens anything the graph names
    try:
        return ort.InferenceSession(str(onnx_path), sess_options=so, providers=[options.provider])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"cannot load {onnx_path}: not a valid ONNX model ({first})") from e


FLOAT = "tensor(float)"


def check_types(card: ModelCard, session: Any, output: str) -> None:
    """Hark feeds float32 and feeds state outputs back as inputs: the graph must agree."""
    ins = {i.name: i for i in session.get_inputs()}
    outs = {o.name: o for o in session.get_outputs()}
    for name in [*(i.name for i in card.inputs), *(s.input for s in card.state)]:
        if ins[name].type != FLOAT:
            raise CardError(f"input {name!r} is {_dtype(ins[name].type)} in the model; hark feeds "
                            "float32")
    for st in card.state:
        if outs[st.output].type != FLOAT:
            raise CardError(f"state output {st.output!r} is {_dtype(outs[st.output].type)}; it "
                            f"is fed back into float32 input {st.input!r}")
        got = _shape(ins[st.input].shape)
        if len(got) != len(st.shape) or any(
            isinstance(a, int) and a != b for a, b in zip(got, st.shape, strict=False)
        ):
            raise CardError(f"state {st.input!r} is {list(st.shape)} in the card but "
                            f"{_dims(got)} in the model")
    if outs[output].type not in (FLOAT, "tensor(double)", "tensor(float16)"):
        raise CardError(f"posterior output {output!r} is {_dtype(outs[output].type)}, not float")


def dry_run_feeds(card: ModelCard) -> dict[str, np.ndarray]:
    """Zeros shaped exactly as the runners feed them: one frame, or one window, plus state."""
    feeds: dict[str, np.ndarray] = {}
    for inp in card.inputs:
        if inp.role == "frames":
            shape: tuple[int, ...] = (1, 1, card.frontends[inp.frontend].n_bins(card.sample_rate))
        elif inp.role == "window":
            # built by the runner's own assembly, so layouts (bins-first, flattened, pooled,
            # stacked channels) and per-window ops are fed exactly as they will be
            from hark.live.runners import window_tensor

            spec = card.frontends[inp.frontend]
            frames = np.zeros((card.expected_frames(inp), spec.frame_bins(card.sample_rate)),
                              dtype=np.float32)
            feeds[inp.name] = window_tensor(frames, spec, inp, card.normalization.get(inp.frontend))
            continue
        else:
            shape = (1, card.expected_frames(inp))
        if len(inp.shape) == len(shape) + 1:
            shape = (*shape, 1)
        feeds[inp.name] = np.zeros(shape, dtype=np.float32)
    for st in card.state:
        feeds[st.input] = np.zeros(st.shape, dtype=np.float32)
    return feeds


def dry_run(card: ModelCard, session: Any, output: str) -> None:
    """One call with the card's shapes: a mismatch is one line at load, not a traceback later."""
    names = [output, *(s.output for s in card.state)]
    try:
        outs = session.run(names, dry_run_feeds(card))
    except Exception as e:  # onnxruntime's own error types
        text = str(e).strip()
        first = text.splitlines()[0] if text else type(e).__name__
        raise CardError(f"a dry run with the card's shapes fails: {first}") from None
    post = np.asarray(outs[0])
    what = "frame" if card.streaming else "window"
    n = len(card.labels)
    if post.size != n or (post.ndim and post.shape[-1] != n):
        raise CardError(f"output {output!r} is {list(post.shape)} for one {what}: the card has "
                        f"{n} labels")
    for st, value in zip(card.state, outs[1:], strict=True):
        if tuple(np.shape(value)) != tuple(st.shape):
            raise CardError(f"state output {st.output!r} comes back as {list(np.shape(value))}, "
                            f"the card says {list(st.shape)}")


class ModelOutputError(ModelError):
    """A model whose output is NaN or infinite at run time: its posteriors mean nothing."""


def check_finite(post: np.ndarray, model: str) -> None:
    """Raise ModelOutputError if posteriors hold NaN/Inf (one sum: ~0.7 us for a hop's row)."""
    # a sum is non-finite iff an element is (or finite values near float32's 3e38 overflow it);
    # a hop's few classes are summed as Python floats (float64: no overflow), twice as fast
    if post.size <= 64:
        total = sum(post.ravel().tolist())
    else:
        with np.errstate(all="ignore"):  # inf + -inf: nan, which is what is looked for
            total = float(post.sum())
    if not math.isfinite(total):
        raise ModelOutputError(f"model {model!r} output NaN or infinity: its scores cannot be "
                               "trusted (a broken export, or a bad normalization?)")


# ---- external data ----------------------------------------------------------------------------
def check_external_data(onnx_path: Path) -> None:
    """Every external-data file the graph names must be a file inside the model's folder.

    Checked by hark itself, whatever onnxruntime would allow: no absolute path, no `..`, no
    symlink that leads out of the folder, no range past the end of the file. A graph without
    external data (no "location" key anywhere in its bytes) costs one scan and no onnx import.
    """
    try:
        with open(onnx_path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return  # onnxruntime reports the empty file
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                if mm.find(b"location") < 0:
                    return
    except OSError as e:
        raise ModelError(f"cannot read {onnx_path}: {e.strerror or e}") from None
    import onnx

    try:
        proto = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends
        raise ModelError(f"cannot load {onnx_path}: not a valid ONNX model ({e})") from None
    folder = onnx_path.parent.resolve()
    graphs = [proto.graph, *(t.initialization for t in proto.training_info),
              *(t.algorithm for t in proto.training_info)]
    for tensor in _tensors(graphs):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        problem = _external_problem(folder, info)
        if problem:
            raise ModelError(f"{onnx_path}: tensor {tensor.name!r}: external data "
                             f"{info.get('location', '')!r} {problem}")


def _external_problem(folder: Path, info: dict[str, str]) -> str | None:
    location = info.get("location", "")
    if not location or "\0" in location:
        return "has no valid location"
    pure = PurePosixPath(location.replace("\\", "/"))
    if pure.is_absolute() or PureWindowsPath(location).drive:
        return "is an absolute path (it must be a file in the model's folder)"
    if ".." in pure.parts:
        return "leaves the model's folder"
    target = (folder / pure).resolve()
    if not target.is_relative_to(folder):
        return "is a link that leaves the model's folder"
    if not target.is_file():
        return "is not a file in the model's folder"
    try:
        offset = int(info.get("offset", "0") or 0)
        length = int(info["length"]) if info.get("length") else None
    except ValueError:
        return "has a malformed offset or length"
    size = target.stat().st_size
    if offset < 0 or offset > size or (length is not None and (length < 0
                                                                or offset + length > size)):
        return f"asks for bytes past the end of its {size}-byte file"
    return None


def _tensors(graphs: list[Any]) -> Iterator[Any]:
    """Every TensorProto in the graphs, their nodes' attributes and subgraphs."""
    stack = list(graphs)
    while stack:
        g = stack.pop()
        yield from g.initializer
        for sp in g.sparse_initializer:
            yield sp.values
            yield sp.indices
        for node in g.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors
                if attr.HasField("sparse_tensor"):
                    yield attr.sparse_tensor.values
                    yield attr.sparse_tensor.indices
                for sp in attr.sparse_tensors:
                    yield sp.values
                    yield sp.indices
                if attr.HasField("g"):
                    stack.append(attr.g)
                stack.extend(attr.graphs)


def _dtype(onnx_type: str) -> str:
    return {"tensor(int64)": "int64", "tensor(double)": "float64 (double)",
            "tensor(int32)": "int32", "tensor(float16)": "float16"}.get(onnx_type, onnx_type)


def _dims(shape: tuple[int | str | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _shape(shape: Any) -> tuple[int | str | None, ...]:
    return tuple(d if isinstance(d, int) else None for d in (shape or ()))
