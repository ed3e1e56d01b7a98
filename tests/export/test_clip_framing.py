"""Per-clip framing (--framing clip): each window's edge frames as its clip pipeline frames them.

A model trained on 1 s clips with librosa.feature.mfcc (center=True: each clip zero-padded by
n_fft // 2 at both ends) sees, inside hark's stream, windows whose outer frames cover real audio
beyond the window. The reference check compares windows in the middle of a continuous stream
and catches it; --framing clip recomputes those frames and matches the notebook everywhere.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hark.export.errors import ReferenceMismatchError
from hark.export.presets import FrontendChoice
from hark.live.card import CardError, FrontendSpec, InputSpec
from tests.export.conftest import LABELS3, randomize

RATE = 22050
# librosa.feature.mfcc(y, sr=22050, n_mfcc=13, n_fft=2048, hop_length=512), as velardo's
LIBROSA_MFCC: dict[str, Any] = {
    "kind": "mfcc", "n_fft": 2048, "win_length": 2048, "hop_length": 512, "center": True,
    "n_mels": 128, "log": "db", "floor_mode": "max", "log_floor": 1e-10, "top_db": 80.0,
    "n_mfcc": 13}
MFCC = FrontendChoice(None, LIBROSA_MFCC)

FEATURES = '''\
import librosa


def features(audio, sample_rate):
    """The notebook: the first second of the clip, mfcc(n_mfcc=13, n_fft=2048, hop 512).T."""
    y = audio[:22050]
    return librosa.feature.mfcc(y=y, sr=sample_rate, n_mfcc=13, n_fft=2048, hop_length=512).T
'''


def clip_posteriors(model: Any, audio: np.ndarray, count: int) -> np.ndarray:
    """Offline, per clip: each decision's window framed on its own (its whole clip computed by
    a fresh Frontend, padded at its end as librosa pads it), then assembled as the runtime does.
    """
    from hark.live.features import Frontend
    from hark.live.runners import window_tensor

    card = model.card
    inp = card.inputs[0]
    fe = card.frontends[inp.frontend]
    sr = card.sample_rate
    n = int(round((card.window_s or 0.0) * sr))
    stride = int(round((card.stride_s or 0.0) * sr))
    half = fe.fft_size(sr) // 2
    out = []
    for k in range(count):
        clip = audio[k * stride : k * stride + n].astype(np.float64)
        pad = clip[-half - 1 : -1][::-1] if fe.pad_mode == "reflect" else np.zeros(half)
        frames = Frontend(fe, sr).push(np.concatenate((clip, pad)))[: card.expected_frames(inp)]
        x = window_tensor(frames, fe, inp, card.normalization.get(inp.frontend))
        out.append(model.session.run([model.output], {inp.name: x})[0])
    return np.concatenate(out)


# ---- the runtime's edge frames against librosa, no TensorFlow ---------------------------------
@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
@pytest.mark.parametrize("n_fft,win,hop", [(2048, 2048, 512), (512, 400, 160), (1024, 1024, 256)])
def test_edge_frames_equal_librosa_per_clip(pad_mode: str, n_fft: int, win: int,
                                            hop: int) -> None:
    librosa = pytest.importorskip("librosa")
    from hark.live.clip_framing import ClipFramer
    from hark.live.features import compute_features

    spec = dataclasses.replace(
        FrontendSpec(kind="logmel", n_fft=n_fft, win_length=win, hop_length=hop, center=True,
                     n_mels=64, log="db", floor_mode="max", log_floor=1e-10),
        pad_mode=pad_mode)  # type: ignore[arg-type]  # parametrized: constant, reflect
    rng = np.random.default_rng(0)
    t = np.arange(RATE * 4) / RATE
    y = (0.3 * np.sin(2 * np.pi * 300 * t) + 0.05 * rng.standard_normal(t.size)).astype(
        np.float32)
    stream = compute_features(y, spec, RATE)
    n = RATE  # 1 s windows
    count = n // hop + 1
    framer = ClipFramer(spec, RATE, count, n)
    assert 2 <= framer.edge_frames <= 4
    stream_off = 0.0
    for first in (0, 7, 40, 100):
        clip = y[first * hop : first * hop + n]
        want = librosa.power_to_db(librosa.feature.melspectrogram(
            y=clip, sr=RATE, n_fft=n_fft, win_length=win, hop_length=hop, center=True,
            pad_mode=pad_mode, n_mels=64)).T
        window = stream[first : first + count]
        assert np.max(np.abs(framer.apply(window, clip) - want)) <= 1e-4
        stream_off = max(stream_off, float(np.max(np.abs(window - want))))
    assert stream_off > 1.0  # dB: the stream's edge frames are not the clip's


def test_card_checks_clip_framing() -> None:
    with pytest.raises(CardError, match="framing clip needs a window input and clip_samples"):
        InputSpec("x", "window", (1, 44, 13), framing="clip").validate()
    with pytest.raises(CardError, match="framing clip needs a window input"):
        InputSpec("x", "frames", (1, None, 13), framing="clip",
                  clip_samples="clip_samples").validate()


def test_framing_flag_reaches_convert(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.export.test_cli import _captured_convert

    seen = _captured_convert(monkeypatch, ["--kind", "mfcc", "--framing", "clip"])
    assert seen["layout"] == {"framing": "clip"}


# ---- a model built in the test, exported ------------------------------------------------------
@pytest.fixture(scope="module")
def clip_cnn(toolchain: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    keras = toolchain[0]
    x = keras.Input((44, 13, 1), name="mfcc")
    h = keras.layers.Conv2D(3, 3, strides=2, activation="relu")(x)
    h = keras.layers.Flatten()(h)
    model = keras.Model(x, keras.layers.Dense(3, activation="softmax")(h))
    randomize(model, 61)
    model.set_weights([w * 0.1 for w in model.get_weights()])  # MFCCs are tens of dB
    d = tmp_path_factory.mktemp("clip")
    model.save(d / "kws.keras")
    (d / "kws_features.py").write_text(FEATURES)
    return d



@pytest.mark.tf
def test_stream_framing_is_caught_in_the_middle_of_a_stream(clip_cnn: Path,
                                                            tmp_path: Path) -> None:
    from hark.export.convert import convert

    with pytest.raises(ReferenceMismatchError) as e:
        convert(clip_cnn / "kws.keras", list(LABELS3), frontend=MFCC, sample_rate=RATE,
                out_dir=tmp_path, reference_features=f"{clip_cnn / 'kws_features.py'}:features")
    msg = str(e.value)
    assert "a stream's first window matches, windows in the middle of a stream do not" in msg
    assert "add --framing clip" in msg
    assert not list(tmp_path.glob("*.onnx"))


@pytest.fixture(scope="module")
def exported(clip_cnn: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from hark.export.convert import convert

    return convert(clip_cnn / "kws.keras", list(LABELS3), frontend=MFCC, sample_rate=RATE,
                   layout={"framing": "clip"}, out_dir=tmp_path_factory.mktemp("clip_out"),
                   reference_features=f"{clip_cnn / 'kws_features.py'}:features")


@pytest.mark.tf
def test_clip_framing_exports_and_matches_the_notebook(exported: Any) -> None:
    card = exported.card
    inp = card.inputs[0]
    assert inp.framing == "clip" and card.frontends[inp.clip_samples or ""].kind == "raw"
    assert exported.max_abs_diff <= 1e-4
    ref = card.provenance["reference_parity"]
    assert ref["passed"] and ref["framing"] == "clip"
    assert sum(p["probe"].startswith("mid-stream") for p in ref["probes"]) == 3
    assert ref["mid_stream_feature_max_rel_diff"] <= 1e-3
    assert exported.streaming_split is not None and not exported.streaming_split.ok
    assert "framed per clip" in (exported.streaming_split.reason or "")
    print(f"\nclip framing: features vs the notebook {ref['feature_max_rel_diff']:.1e} of range "
          f"(mid-stream {ref['mid_stream_feature_max_rel_diff']:.1e}), posteriors "
          f"{ref['posterior_max_abs_diff']:.1e}")


def _audio(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(RATE * seconds)) / RATE
    tone = np.sin(2 * np.pi * (180 + 60 * np.sin(2 * np.pi * 0.7 * t)) * t)
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 2.3 * t)
    return (0.3 * tone * env + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.tf
def test_clip_framing_streams_equal_offline_per_clip(exported: Any) -> None:
    import importlib.util

    from hark.live.engine import offline_posteriors
    from hark.live.model import OnnxModel

    model = OnnxModel.load(exported.onnx_path)
    audio = _audio(6.0, 3)
    runs = {chunk: offline_posteriors(model, audio, chunk=chunk)[1] for chunk in (None, 441, 37)}
    got = runs[None]
    for chunk, post in runs.items():
        assert np.max(np.abs(post - got)) <= 1e-5, chunk
    assert np.max(np.abs(got - clip_posteriors(model, audio, len(got)))) <= 1e-4
    # and against the notebook's own features on every window's clip
    spec = importlib.util.spec_from_file_location("kws_features", exported.card.provenance[
        "source"]["path"].replace("kws.keras", "kws_features.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    card = model.card
    n = int(round((card.window_s or 0.0) * RATE))
    stride = int(round((card.stride_s or 0.0) * RATE))
    inp = card.inputs[0]
    notebook = np.concatenate([model.session.run(["posteriors"], {inp.name: np.asarray(
        mod.features(audio[k * stride : k * stride + n], RATE), np.float32)[None, ..., None]})[0]
        for k in range(len(got))])
    assert np.max(np.abs(got - notebook)) <= 1e-3
    # the same graph fed the stream's own frames: what --framing stream gives on this audio
    stream_card = dataclasses.replace(card, inputs=(dataclasses.replace(
        inp, framing="stream", clip_samples=None),))
    streamed = offline_posteriors(type(model)(model.path, stream_card, model.session,
                                              model.output), audio)[1]
    flips = int(np.sum(np.argmax(streamed, 1) != np.argmax(notebook, 1)))
    print(f"\n{len(got)} decisions: stream framing off the notebook by up to "
          f"{np.max(np.abs(streamed - notebook)):.2e} ({flips} decisions flipped), clip "
          f"framing by {np.max(np.abs(got - notebook)):.1e}")
    assert np.max(np.abs(streamed - notebook)) > 1e-3
