"""--pool bins_mean: a model fed one value per frame, the mean over that frame's coefficients.

The speech-emotion notebooks (RAVDESS) feed a Conv1D `np.mean(librosa.feature.mfcc(y=X,
sr=sample_rate, n_mfcc=13), axis=0)` of 2.5 s at 44100 Hz: 216 frames, one value each, as a
(216, 1) input. The model here is built the same way (tiny), fed exactly that code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hark.export.errors import FrontendMismatchError, ReferenceMismatchError
from hark.export.presets import FrontendChoice
from hark.live.card import FrontendSpec
from tests.export.conftest import LABELS3, randomize
from tests.export.test_clip_framing import clip_posteriors

pytestmark = [pytest.mark.tf, pytest.mark.filterwarnings("ignore:You are saving your model")]

RATE = 44100
# librosa.feature.mfcc's defaults (see the README's LIBROSA_MFCC), 13 coefficients
LIBROSA_MFCC: dict[str, Any] = {
    "kind": "mfcc", "n_fft": 2048, "win_length": 2048, "hop_length": 512, "center": True,
    "n_mels": 128, "log": "db", "floor_mode": "max", "log_floor": 1e-10, "top_db": 80.0,
    "n_mfcc": 13}
MFCC = FrontendChoice(None, LIBROSA_MFCC)

FEATURES = '''\
import librosa
import numpy as np


def features(audio, sample_rate):
    """The notebook: X, sample_rate = librosa.load(path, duration=2.5, sr=44100, offset=0.5)."""
    return np.mean(librosa.feature.mfcc(y=audio, sr=sample_rate, n_mfcc=13), axis=0)


def wrong_n_mfcc(audio, sample_rate):
    """A pipeline that is not the model's: the same shape, 20 coefficients averaged."""
    return np.mean(librosa.feature.mfcc(y=audio, sr=sample_rate, n_mfcc=20), axis=0)


def wrong_axis(audio, sample_rate):
    """The other mean: over the frames, one value per coefficient."""
    return np.mean(librosa.feature.mfcc(y=audio, sr=sample_rate, n_mfcc=13), axis=1)
'''


@pytest.fixture(scope="module")
def emotion(toolchain: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    keras = toolchain[0]
    x = keras.Input((216, 1), name="mfcc_means")
    h = keras.layers.Conv1D(4, 8, padding="same", activation="relu")(x)
    h = keras.layers.MaxPooling1D(8)(h)
    h = keras.layers.Flatten()(h)
    model = keras.Model(x, keras.layers.Dense(3, activation="softmax")(h))
    randomize(model, 51)
    # mean MFCCs are tens of dB: small weights keep the softmax off its rails
    model.set_weights([w * 0.05 for w in model.get_weights()])
    d = tmp_path_factory.mktemp("emotion")
    model.save(d / "emotion.keras")
    (d / "emotion_features.py").write_text(FEATURES)
    return d


def _ref(d: Path, func: str) -> str:
    return f"{d / 'emotion_features.py'}:{func}"


def test_frame_count_is_recognised_and_the_pooling_named(emotion: Path, tmp_path: Path) -> None:
    from hark.export.convert import convert

    with pytest.raises(FrontendMismatchError) as e:
        convert(emotion / "emotion.keras", list(LABELS3), frontend=MFCC,
                sample_rate=RATE, out_dir=tmp_path)
    msg = str(e.value)
    assert "216 values are one per frame of a 2.5 s window" in msg
    assert "--pool bins_mean" in msg
    assert "--n-mfcc 216" not in msg  # 216 coefficients of 128 mel bands cannot exist
    with pytest.raises(FrontendMismatchError, match="216 is the frame count of your 2.5 s"):
        convert(emotion / "emotion.keras", list(LABELS3), frontend=MFCC,
                sample_rate=RATE, window_s=2.5, out_dir=tmp_path)


@pytest.fixture(scope="module")
def exported(emotion: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from hark.export.convert import convert

    return convert(emotion / "emotion.keras", list(LABELS3), frontend=MFCC,
                   sample_rate=RATE, layout={"pool": "bins_mean", "framing": "clip"},
                   out_dir=tmp_path_factory.mktemp("emotion_out"),
                   reference_features=_ref(emotion, "features"))


def test_exports_with_parity_and_the_notebooks_features(exported: Any) -> None:
    card = exported.card
    inp = card.inputs[0]
    assert inp.pool == "bins_mean" and card.window_s == 2.5
    assert card.expected_frames(inp) == 216
    assert exported.parity["passed"] and exported.max_abs_diff <= 1e-4
    ref = card.provenance["reference_parity"]
    assert ref["passed"] and ref["window_samples"] == 110250
    assert ref["feature_max_rel_diff"] <= 1e-3 and ref["posterior_max_abs_diff"] <= 1e-3
    print(f"\nbins_mean: parity {exported.max_abs_diff:.1e}, features vs the notebook "
          f"{ref['feature_max_rel_diff']:.1e} of range, "
          f"posteriors {ref['posterior_max_abs_diff']:.1e}")


def _audio(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(RATE * seconds)) / RATE
    voiced = np.sin(2 * np.pi * 140 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t))
    return (0.3 * voiced + 0.03 * rng.standard_normal(t.size)).astype(np.float32)


def test_streams_equal_offline_at_any_chunking(exported: Any) -> None:
    from hark.live.engine import offline_posteriors
    from hark.live.model import OnnxModel

    model = OnnxModel.load(exported.onnx_path)
    audio = _audio(4.0, 9)
    for chunk in (None, 441, 4096, 17):
        _, got = offline_posteriors(model, audio, chunk=chunk)
        want = clip_posteriors(model, audio, len(got))  # each window framed as its own clip
        assert got.shape == want.shape, chunk
        assert np.max(np.abs(got - want)) <= 1e-4, chunk
    assert len(got) >= 10


def test_a_wrong_pipeline_is_caught(emotion: Path, exported: Any, tmp_path: Path) -> None:
    from hark.export.convert import convert

    args: dict[str, Any] = dict(frontend=MFCC, sample_rate=RATE, out_dir=tmp_path,
                                layout={"pool": "bins_mean", "framing": "clip"})
    with pytest.raises(ReferenceMismatchError, match="hark's features differ") as e:
        convert(emotion / "emotion.keras", list(LABELS3),
                reference_features=_ref(emotion, "wrong_n_mfcc"), **args)
    print(f"\nwrong pipeline: {e.value}")
    with pytest.raises(ReferenceMismatchError, match=r"\(13,\).*must return the input"):
        convert(emotion / "emotion.keras", list(LABELS3),
                reference_features=_ref(emotion, "wrong_axis"), **args)
    assert not list(tmp_path.glob("*.onnx"))


def test_fit_features_starts_though_the_shape_does_not_fit(emotion: Path,
                                                          tmp_path: Path) -> None:
    """No --pool and no top_db: the options as given fit nothing; the search finds both (and
    the per-clip framing librosa's center=True implies, from windows in the middle of a stream)."""
    from hark.export.convert import convert

    given = {k: v for k, v in LIBROSA_MFCC.items() if k != "top_db"}
    res = convert(emotion / "emotion.keras", list(LABELS3), frontend=FrontendChoice(None, given),
                  sample_rate=RATE, out_dir=tmp_path, reference_features=_ref(emotion, "features"),
                  fit_features=True)
    fit = res.card.provenance["fit_features"]
    assert fit["changed"] == {"top_db": 80.0, "pool": "bins_mean", "framing": "clip"}
    assert fit["command_line"] == "--frontend top_db=80 --pool bins_mean --framing clip"
    assert res.card.inputs[0].pool == "bins_mean" and res.card.inputs[0].framing == "clip"
    assert res.card.provenance["reference_parity"]["passed"]
    assert res.card.frontends["main"] == FrontendSpec(**LIBROSA_MFCC)
