"""A small embedding model with its enrolment set, built without TensorFlow, for enroll tests.

What `hark train --frontend embedding --arch lr` would leave in a folder (NAME.onnx, NAME.json,
NAME.enroll.npz), fitted here with hark's own softmax head on a few synthetic voices (flite kal16,
awb, rms and two espeak-ng voices; never the held-out slt), so the tests need neither TensorFlow
nor a trained model from elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hark.live.backbone import backbone_info, embed_batch, window_seconds
from hark.live.card import (
    FrontendSpec,
    InputSpec,
    ModelCard,
    SmoothingSpec,
    VadSpec,
)
from hark.models.data.augment import Augmenter
from hark.models.data.tts import Prosody, Voice, synth_clip
from hark.models.enroll import RATE, strip_windows, strips
from hark.models.softmax_head import fit_softmax, fold_normalisation

WORDS = ("yes", "no", "up", "down")
FILLERS = ("cat", "house", "seven", "tree", "learn")
VOICES = (
    Voice("flite", "kal16", "flite-kal16", "flite-kal"),
    Voice("flite", "awb", "flite-awb", "flite-awb"),
    Voice("flite", "rms", "flite-rms", "flite-rms"),
    Voice("espeak", "en-us+m3", "espeak-en-us-m3", "espeak-m3"),
    Voice("espeak", "en+f3", "espeak-en-f3", "espeak-f3"),
)
PROSODIES = ((0.9, 0.4), (1.1, 0.6))
FRAMES = 8


def embedding_base(out_dir: Path, name: str = "tiny-emb", words: tuple[str, ...] = WORDS,
                   with_enroll_set: bool = True) -> Path:
    """Write NAME.onnx + NAME.json (+ NAME.enroll.npz) into out_dir; return the .onnx path."""
    labels = (*words, "_silence_", "_unknown_")
    rng = np.random.default_rng(3)
    window_s = window_seconds(FRAMES)
    window_n = int(round(window_s * RATE))
    clips: list[np.ndarray] = []
    y: list[int] = []
    for text, label in [(w, i) for i, w in enumerate(words)] + [
            (f, len(words) + 1) for f in FILLERS]:
        for v in VOICES:
            for speed, pitch in PROSODIES:
                clips.append(synth_clip(text, v, RATE, Prosody(speed, pitch)))
                y.append(label)
    aug = Augmenter(sample_rate=RATE, shift_max_s=0.0)
    sw = strip_windows(strips(clips, window_n, 4, 1, rng, aug), FRAMES, window_n)
    # silence: noise-only windows at random levels
    hiss = np.stack([aug(np.asarray(1e-4 * rng.standard_normal(window_n), np.float32), rng)
                     for _ in range(48)])
    x = np.concatenate((sw.x[sw.whole], embed_batch(hiss)))
    yy = np.concatenate((np.asarray(y)[sw.clip][sw.whole], np.full(len(hiss), len(words))))
    mean = x.reshape(-1, x.shape[-1]).mean(axis=0)
    std = np.maximum(x.reshape(-1, x.shape[-1]).std(axis=0), 1e-3)
    xn = ((x - mean) / std).reshape(len(x), -1)
    fit = fit_softmax(xn, yy, np.ones(len(yy)), len(labels), 1e-2)
    head = fold_normalisation(fit, mean, std, FRAMES)
    import onnx

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.onnx"
    onnx.save(head.to_onnx("embeddings", "posteriors"), str(path))
    card = ModelCard(
        name=name, labels=labels, sample_rate=RATE,
        frontends={"main": FrontendSpec(kind="embedding")},
        inputs=(InputSpec(name="embeddings", role="window", shape=(None, FRAMES, 96)),),
        output="posteriors", window_s=window_s, stride_s=0.08,
        ignore_labels=("_silence_", "_unknown_"),
        smoothing=SmoothingSpec(median_frames=3, threshold_on=0.5, threshold_off=0.35,
                                min_on_ms=0.0, min_off_ms=100.0),
        vad=VadSpec(enabled=True),
        provenance={"trained_by": "tests/enroll_models.py"},
        backbone=backbone_info().ref(),
    )
    card.save(path.with_suffix(".json"))
    if with_enroll_set:
        np.savez_compressed(path.with_suffix(".enroll.npz"), x=x.astype(np.float16), y=yy,
                            labels=np.array(labels))
    return path
