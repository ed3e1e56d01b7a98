"""Output heads: a model that ends in logits gets softmax or sigmoid appended in the ONNX graph.

Models trained with `from_logits=True` end in a linear layer; the card's thresholds act on
probabilities, so a logit peak of 4.47 must not be read as a confidence. The head is added to the
graph (not to the card) so every consumer of the .onnx sees posteriors, and parity is measured
after it: onnxruntime against the Keras output with the same function applied.
"""

from __future__ import annotations

import numpy as np

from hark.export.errors import ExportError
from hark.export.onnx_edit import GraphEditor

HEADS = ("softmax", "sigmoid", "none")
TASK_OF_HEAD = {"softmax": "multiclass", "sigmoid": "multilabel"}
LINEAR = ("linear", "None", "none")


def choose_head(layer: str, activation: str, requested: str | None, task: str | None,
                n_outputs: int) -> tuple[str | None, str | None]:
    """(head to append or None, task it implies) for a model whose last activation is given.

    Raises with the flag to add when the model ends in logits and nothing was requested.
    """
    if requested is not None and requested not in HEADS:
        raise ExportError(f"unknown output activation {requested!r} (expected "
                          f"{', '.join(HEADS)})")
    linear = activation in LINEAR
    if requested in (None, "none"):
        if linear and requested is None:
            kind = ("sigmoid (a single output is one probability)" if n_outputs == 1
                    else "softmax (one class per decision) or sigmoid (independent labels)")
            raise ExportError(
                f"the output layer {layer!r} is linear: the model outputs logits (trained with "
                f"from_logits=True?); add --output-activation {kind}, or --output-activation "
                "none with --task to keep raw scores"
            )
        return None, None
    if not linear:
        raise ExportError(
            f"the output layer {layer!r} already ends in {activation}: drop "
            f"--output-activation {requested}"
        )
    if requested == "softmax" and n_outputs == 1:
        raise ExportError(
            "softmax over a single output is always 1: use --output-activation sigmoid"
        )
    implied = TASK_OF_HEAD[requested]
    if task is not None and task != implied:
        raise ExportError(f"--output-activation {requested} gives {implied} posteriors, "
                          f"but --task {task} was given")
    return requested, implied


def append_head(editor: GraphEditor, output: str, head: str) -> None:
    """Rename graph output `output` to a logits tensor and compute `output` = head(logits)."""
    from onnx import helper

    logits = editor.unique(f"{output}_logits")
    editor.rename(output, logits)
    vi = next(o for o in editor.graph.output if o.name == logits)
    vi.name = output
    if head == "softmax":
        node = helper.make_node("Softmax", [logits], [output], axis=-1, name="hark_head_softmax")
    else:
        node = helper.make_node("Sigmoid", [logits], [output], name="hark_head_sigmoid")
    editor.graph.node.append(node)


def apply_head(x: np.ndarray, head: str | None) -> np.ndarray:
    """The same head in numpy, for the Keras side of parity (float64 inside)."""
    if head is None:
        return x
    z = x.astype(np.float64)
    if head == "softmax":
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        return (z / z.sum(axis=-1, keepdims=True)).astype(np.float32)
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
