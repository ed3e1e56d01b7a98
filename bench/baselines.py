"""The naive ways, timed per decision on the same audio, for the ratios against the engine.

(a) keras_naive: the loop people usually write. At every decision, the features of the whole
    window from scratch with the usual library call (librosa.feature.melspectrogram / mfcc for
    log-mel / MFCC models, scipy.signal.spectrogram for the 8 kHz log-spectrogram CNN), then
    Keras `model.predict` on that window. Needs TensorFlow: it runs in a child process
    (`python -m hark.bench.baselines`), so TensorFlow's 500 MB and its thread pools never touch
    the engine's measurements. The Keras model is the architecture from models/architectures.py
    with the card's shapes (a NAME.keras beside the ONNX file is loaded instead when present);
    its weights are whatever it was built with: timing only, the posteriors are not compared.
(b) onnx_window: the same ONNX session, the whole window every decision, no carried state, no
    incremental features: live.features.compute_features on the last window_s of samples, and a
    frame model runs over all of the window's frames from a zero state, keeping the last row.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from hark.bench.timing import Dist

FRAME_WINDOW_S = 1.0  # what a naive loop re-reads for a frame model each hop


def decision_ends(card: Any, n_samples: int, window_s: float, limit: int) -> list[int]:
    """Sample positions where decisions end, at most `limit`, spread evenly over the signal.

    A decision ends every decision hop once a whole window has been heard.
    """
    rate = card.sample_rate
    hop = int(round(card.decision_hop_s() * rate))
    first = int(round(window_s * rate))
    ends = list(range(first, n_samples + 1, hop))
    if len(ends) > limit:
        idx = np.linspace(0, len(ends) - 1, limit).round().astype(int)
        ends = [ends[i] for i in idx]
    return ends


def baseline_window_s(card: Any) -> float:
    return float(card.window_s) if not card.streaming else FRAME_WINDOW_S


# ---- (b) the same ONNX model on the whole window -----------------------------------------
def onnx_window(model: Any, audio: np.ndarray, limit: int) -> dict[str, Any]:
    """Time (b) per decision; returns its JSON summary."""
    from hark.live.features import compute_features

    card = model.card
    window_s = baseline_window_s(card)
    n_win = int(round(window_s * card.sample_rate))
    ends = decision_ends(card, audio.size, window_s, limit)
    if not ends:
        return {"skipped": f"the audio is shorter than the {window_s} s window"}
    state = {s.input: np.zeros(s.shape, dtype=np.float32) for s in card.state}
    shapes = {i.name: i.shape for i in card.inputs}

    def decide(x: np.ndarray) -> np.ndarray:
        feeds: dict[str, np.ndarray] = dict(state)
        for inp in card.inputs:
            spec = card.frontends[inp.frontend]
            norm = card.normalization.get(inp.frontend)
            f = compute_features(x, spec, card.sample_rate, norm).astype(np.float32)
            if inp.role == "raw":
                feeds[inp.name] = f.reshape((1, -1, 1) if len(shapes[inp.name]) == 3 else (1, -1))
            else:
                feeds[inp.name] = f[None, :, :, None] if len(shapes[inp.name]) == 4 else f[None]
        out = model.session.run([model.output], feeds)[0]
        return np.asarray(out).reshape(-1, len(card.labels))[-1]

    decide(audio[ends[0] - n_win : ends[0]])  # warm
    times, cpu = _timed(decide, audio, ends, n_win)
    return {
        "what": "same ONNX session; features of the whole window recomputed and the model run on "
        "the whole window every decision" + (", from a zero state" if card.state else ""),
        "window_s": window_s,
        "per_decision_us": Dist.of(times).to_json(),
        "per_decision_cpu_us": Dist.of(cpu).to_json(),
    }


def _timed(decide: Any, audio: np.ndarray, ends: list[int], n_win: int
           ) -> tuple[list[float], list[float]]:
    """Wall and process CPU seconds of decide() on the window ending at each of `ends`."""
    wall, cpu = [], []
    for end in ends:
        x = audio[end - n_win : end]
        c0 = time.process_time()
        t0 = time.perf_counter()
        decide(x)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


# ---- (a) Keras, in a child process -------------------------------------------------------
def tensorflow_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None and (
        importlib.util.find_spec("keras") is not None
    )


def keras_naive(
    model: Any, audio: np.ndarray, limit: int, threads: int, timeout_s: float = 300.0
) -> dict[str, Any]:
    """Time (a) in a child process; {"skipped": why} when TensorFlow is not installed."""
    if not tensorflow_available():
        return {"skipped": "TensorFlow/Keras not installed (pip install 'hark[export]')"}
    with tempfile.TemporaryDirectory(prefix="hark-bench-") as d:
        wav = Path(d) / "audio.npy"
        out = Path(d) / "out.json"
        np.save(wav, audio)
        job = {"model": str(model.path), "audio": str(wav), "limit": limit, "threads": threads,
               "out": str(out)}
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
               "KERAS_BACKEND": "tensorflow", "OPENBLAS_NUM_THREADS": str(threads),
               "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "hark.bench.baselines", json.dumps(job)],
                env=env, capture_output=True, text=True, timeout=timeout_s, check=False,
            )
        except subprocess.TimeoutExpired:
            return {"skipped": f"the Keras baseline took longer than {timeout_s:.0f} s"}
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or "").strip().splitlines()[-3:]
            return {"skipped": "the Keras baseline failed: " + " | ".join(tail)}
        return dict(json.loads(out.read_text()))


def _onnx_params(path: str) -> int:
    import onnx

    m = onnx.load(path, load_external_data=False)
    return int(sum(int(np.prod(t.dims)) for t in m.graph.initializer))


def _rnn_layers(path: str) -> list[tuple[str, int]]:
    """(op, hidden_size) of each recurrent node in the ONNX graph, in graph order."""
    import onnx

    m = onnx.load(path, load_external_data=False)
    out = []
    for node in m.graph.node:
        if node.op_type in ("LSTM", "GRU"):
            hidden = next((a.i for a in node.attribute if a.name == "hidden_size"), 0)
            out.append((node.op_type, int(hidden)))
    return out


def _build_keras(card: Any, onnx_path: Path) -> tuple[Any, str]:
    """The Keras model to time, and where it came from."""
    import keras

    beside = onnx_path.with_suffix(".keras")
    if beside.is_file():
        return keras.saving.load_model(beside, compile=False), f"loaded {beside.name} (trained)"
    inp = card.inputs[0]
    fe = card.frontends[inp.frontend]
    bins = fe.n_bins(card.sample_rate)
    n_classes = len(card.labels)
    arch: Any
    try:
        from hark.models import architectures as arch
    except ImportError:
        arch = None
    if card.streaming:
        layers = _rnn_layers(str(onnx_path)) or [("LSTM", 64)]
        units = tuple(h for _, h in layers)
        cell = "gru" if layers[0][0] == "GRU" else "lstm"
        if arch is not None:
            rnn = arch.RnnConfig(n_bins=bins, cell=cell, units=units, task=card.task,
                                 dropout=0.0)
            return arch.build_rnn(rnn, n_classes), (
                f"models/architectures.py build_rnn({cell}, units={list(units)}), "
                "untrained weights"
            )
        x = i = keras.Input((None, bins))
        for u in units:
            x = keras.layers.LSTM(u, return_sequences=True)(x)
        out = keras.layers.Dense(n_classes, activation="softmax")(x)
        return keras.Model(i, out), f"generic LSTM{list(units)}, untrained weights"
    if len(card.inputs) == 1 and inp.role == "window" and arch is not None:
        n_frames = card.expected_frames(inp)
        cnn = arch.CnnConfig(n_frames=n_frames, n_bins=bins)
        return arch.build_cnn(cnn, n_classes), (
            "models/architectures.py build_cnn (Kaggle CNN), untrained weights"
        )
    ins = [keras.Input(tuple(d for d in i.shape[1:])) for i in card.inputs]
    flat = [keras.layers.Flatten()(x) for x in ins]
    x = flat[0] if len(flat) == 1 else keras.layers.Concatenate()(flat)
    out = keras.layers.Dense(n_classes, activation="softmax")(keras.layers.Dense(64)(x))
    return keras.Model(ins, out), "generic dense stand-in, untrained weights"


def _naive_features(x: np.ndarray, card: Any, inp: Any) -> np.ndarray:
    """What a notebook computes on the window: the usual library call, from scratch."""
    fe = card.frontends[inp.frontend]
    sr = card.sample_rate
    if fe.kind == "raw":
        return x[:, None]
    win, hop = fe.window_samples(sr), fe.hop_samples(sr)
    if fe.kind == "specgram":
        from scipy import signal

        _, _, spec = signal.spectrogram(
            x, fs=sr, window="hann", nperseg=win, noverlap=win - hop, detrend=False
        )
        return np.log(spec.T.astype(np.float32) + 1e-10)
    import librosa

    fmax = fe.fmax if fe.fmax is not None else sr / 2
    if fe.kind == "mfcc":
        return librosa.feature.mfcc(
            y=x, sr=sr, n_mfcc=fe.n_mfcc, n_fft=fe.fft_size(sr), hop_length=hop,
            win_length=win, n_mels=fe.n_mels, fmin=fe.fmin, fmax=fmax,
        ).T
    mel = librosa.feature.melspectrogram(
        y=x, sr=sr, n_fft=fe.fft_size(sr), hop_length=hop, win_length=win,
        n_mels=fe.n_mels, fmin=fe.fmin, fmax=fmax,
    )
    return np.log(mel + fe.log_floor).T


def _keras_child(job: dict[str, Any]) -> dict[str, Any]:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(int(job["threads"]))
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from hark.live.card import load_card

    onnx_path = Path(job["model"])
    card = load_card(onnx_path.with_suffix(".json"))
    model, origin = _build_keras(card, onnx_path)
    audio = np.load(job["audio"])
    window_s = baseline_window_s(card)
    n_win = int(round(window_s * card.sample_rate))
    ends = decision_ends(card, audio.size, window_s, int(job["limit"]))

    def shaped(f: np.ndarray, keras_input: Any) -> np.ndarray:
        want = tuple(keras_input.shape[1:])
        if None not in want and f.shape != want[: f.ndim]:
            pad = np.zeros(want[: f.ndim], np.float32)  # center=True gives a frame or two more
            n = min(pad.shape[0], f.shape[0])
            pad[-n:] = f[-n:]
            f = pad
        return f.reshape((1, *f.shape, 1) if len(want) == f.ndim + 1 else (1, *f.shape))

    def decide(x: np.ndarray) -> None:
        feeds = []
        for inp, kin in zip(card.inputs, model.inputs, strict=False):
            f: np.ndarray = _naive_features(x, card, inp).astype(np.float32)
            norm = card.normalization.get(inp.frontend)
            if norm is not None:
                f = (f - np.asarray(norm.mean, np.float32)) / np.asarray(norm.std, np.float32)
            feeds.append(shaped(f, kin))
        model.predict(feeds if len(feeds) > 1 else feeds[0], verbose=0)

    for end in ends[:3]:  # warm: tracing, librosa/numba first use
        decide(audio[end - n_win : end])
    times, cpu = _timed(decide, audio, ends, n_win)
    feat_kind = card.frontends[card.inputs[0].frontend].kind
    lib = {"specgram": "scipy.signal.spectrogram", "raw": "none (raw samples)"}.get(
        feat_kind, f"librosa.feature.{'mfcc' if feat_kind == 'mfcc' else 'melspectrogram'}"
    )
    return {
        "what": f"{lib} on the whole window + Keras model.predict, every decision",
        "window_s": window_s,
        "keras_model": origin,
        "keras_params": int(model.count_params()),
        "onnx_params": _onnx_params(str(onnx_path)),
        "tensorflow": tf.__version__,
        "per_decision_us": Dist.of(times).to_json(),
        "per_decision_cpu_us": Dist.of(cpu).to_json(),
    }


def main(argv: list[str] | None = None) -> int:
    """Child-process entry point: one JSON job in argv[1], result written to job['out']."""
    job = json.loads((argv if argv is not None else sys.argv[1:])[0])
    result = _keras_child(job)
    Path(job["out"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
