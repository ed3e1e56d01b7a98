"""Hand-made ONNX models and recordings whose right answers are known (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import soundfile as sf
from onnx import TensorProto, helper, numpy_helper

from hark.live.card import FrontendSpec, InputSpec, ModelCard, SmoothingSpec, VadSpec

SPECGRAM8K = FrontendSpec(kind="specgram", window_ms=20.0, hop_ms=10.0, log_floor=1e-10)
LOW_HZ, HIGH_HZ = 300.0, 2500.0


def tone_window_model(out_dir: Path, name: str = "tones") -> Path:
    """A 1 s window model on the 8 kHz log-spectrogram: 'yes' = energy at 200-400 Hz, 'no' =
    energy at 2.4-2.7 kHz, '_silence_' = neither (a constant score). Deterministic, so the clip
    accuracy on a folder of tones is known exactly."""
    sel = np.zeros((81, 3), dtype=np.float32)
    sel[4:9, 0] = 1 / 5  # 50 Hz bins 4..8: 200-400 Hz
    sel[48:54, 1] = 1 / 6  # 2400-2700 Hz
    nodes = [
        helper.make_node("ReduceMean", ["spec"], ["m"], axes=[1, 3], keepdims=0),
        helper.make_node("MatMul", ["m", "sel"], ["s"]),
        helper.make_node("Add", ["s", "bias"], ["z0"]),
        helper.make_node("Mul", ["z0", "gain"], ["z"]),
        helper.make_node("Softmax", ["z"], ["posteriors"], axis=-1),
    ]
    inits = [
        numpy_helper.from_array(sel, "sel"),
        numpy_helper.from_array(np.array([0.0, 0.0, -21.0], np.float32), "bias"),
        numpy_helper.from_array(np.array([4.0], np.float32), "gain"),
    ]
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("spec", TensorProto.FLOAT, [1, 99, 81, 1])],
        [helper.make_tensor_value_info("posteriors", TensorProto.FLOAT, [1, 3])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.onnx"
    onnx.save(model, str(path))
    ModelCard(
        name=name,
        labels=("yes", "no", "_silence_"),
        sample_rate=8000,
        frontends={"main": SPECGRAM8K},
        inputs=(InputSpec("spec", "window", (1, 99, 81, 1)),),
        window_s=1.0,
        stride_s=0.1,
        ignore_labels=("_silence_",),
        smoothing=SmoothingSpec(median_frames=1, min_on_ms=0, min_off_ms=0),
        vad=VadSpec(enabled=False),
    ).save(path.with_suffix(".json"))
    return path


def tone(freq: float, seconds: float = 0.4, rate: int = 16000, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t) * np.hanning(t.size)).astype(np.float32)


def tone_tree(root: Path) -> Path:
    """Speech Commands layout with known answers for the tone model.

    yes/ = low tones (3), no/ = high tones (3), up/ = low tones (2, which the tone model calls
    'yes'), all listed in testing_list.txt; plus one unlisted training clip.
    """
    rate = 16000
    listed = []
    for word, freq, n in (("yes", LOW_HZ, 3), ("no", HIGH_HZ, 3), ("up", LOW_HZ, 2)):
        for k in range(n):
            clip = np.zeros(rate, dtype=np.float32)
            x = tone(freq * (1 + 0.02 * k))
            clip[2000 + 1000 * k : 2000 + 1000 * k + x.size] = x
            p = root / word / f"spk{k}_nohash_0.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, clip, rate, subtype="PCM_16")
            listed.append(f"{word}/{p.name}")
    sf.write(root / "yes" / "train9_nohash_0.wav", np.zeros(rate, np.float32), rate)
    (root / "testing_list.txt").write_text("".join(f"{x}\n" for x in listed))
    (root / "validation_list.txt").write_text("")
    return root
