"""--reference-features: the user's own feature code against hark's runtime, from raw audio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hark.export.errors import ReferenceMismatchError
from tests.export.conftest import randomize

pytestmark = [pytest.mark.tf]

# A notebook's feature code for 16 kHz log-mels: 25 ms frames every 10 ms, hann, n_fft 512,
# librosa's Slaney mel filters, 40 mels; `LOG` says which log the notebook took.
REFERENCE = '''\
import librosa
import numpy as np

LOG = "{log}"


def features(audio, sample_rate):
    frames = librosa.util.frame(audio, frame_length=400, hop_length=160, axis=0)
    window = np.hanning(401)[:-1]  # periodic hann
    power = np.abs(np.fft.rfft(frames * window, n=512, axis=-1)) ** 2
    mel = power @ librosa.filters.mel(sr=sample_rate, n_fft=512, n_mels=40).T
    if LOG == "db":
        return 10 * np.log10(mel + 1e-6)
    return np.log(mel + 1e-6)
'''


@pytest.fixture(scope="module")
def logmel_cnn(toolchain: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    keras = toolchain[0]
    x = keras.Input((98, 40, 1), name="logmel")
    h = keras.layers.Conv2D(4, 5, strides=3, activation="relu")(x)
    h = keras.layers.Flatten()(h)
    model = keras.Model(x, keras.layers.Dense(3, activation="softmax")(h))
    randomize(model, 31)
    d = tmp_path_factory.mktemp("reference")
    model.save(d / "cnn.keras")
    for log in ("ln", "db"):
        (d / f"ref_{log}.py").write_text(REFERENCE.format(log=log))
    return d / "cnn.keras"


def test_right_frontend_passes_and_is_recorded(logmel_cnn: Path, tmp_path: Path) -> None:
    from hark.export.convert import convert

    res = convert(logmel_cnn, ["a", "b", "c"], frontend="logmel40", out_dir=tmp_path,
                  reference_features=f"{logmel_cnn.parent / 'ref_ln.py'}:features")
    ref = res.card.provenance["reference_parity"]
    assert ref["passed"] and len(ref["probes"]) >= 4
    assert ref["feature_max_rel_diff"] <= 1e-4
    assert ref["posterior_max_abs_diff"] <= 1e-4
    assert ref["window_samples"] == 16000


def test_wrong_frontend_fails_naming_the_difference(logmel_cnn: Path, tmp_path: Path) -> None:
    from hark.export.convert import convert

    with pytest.raises(ReferenceMismatchError) as e:
        convert(logmel_cnn, ["a", "b", "c"], frontend="logmel40", out_dir=tmp_path,
                reference_features=f"{logmel_cnn.parent / 'ref_db.py'}:features")
    msg = str(e.value)
    assert "your features are 10*log10" in msg and "hark's are ln" in msg
    assert "log=db" in msg
    assert not list(tmp_path.glob("*.onnx"))  # nothing handed over


def test_reference_callable_and_shape_errors(logmel_cnn: Path, tmp_path: Path) -> None:
    from hark.export.convert import convert
    from hark.export.errors import ExportError

    with pytest.raises(ReferenceMismatchError, match="must return the input for one window"):
        convert(logmel_cnn, ["a", "b", "c"], frontend="logmel40", out_dir=tmp_path,
                reference_features=lambda audio, sr: np.zeros(7))
    with pytest.raises(ExportError, match="has no function 'nope'"):
        convert(logmel_cnn, ["a", "b", "c"], frontend="logmel40", out_dir=tmp_path,
                reference_features=f"{logmel_cnn.parent / 'ref_ln.py'}:nope")
    with pytest.raises(ExportError, match="--fit-features needs --reference-features"):
        convert(logmel_cnn, ["a", "b", "c"], frontend="logmel40", out_dir=tmp_path,
                fit_features=True)



def test_fit_features_finds_the_log_and_prints_it(logmel_cnn: Path, tmp_path: Path) -> None:
    """Needs the runtime's log=db (frontends' FrontendSpec.log)."""
    from hark.export.convert import convert

    res = convert(logmel_cnn, ["a", "b", "c"], frontend="logmel40", out_dir=tmp_path,
                  reference_features=f"{logmel_cnn.parent / 'ref_db.py'}:features",
                  fit_features=True)
    fit = res.card.provenance["fit_features"]
    assert fit["changed"] == {"log": "db"}
    assert "log=db" in fit["command_line"]
    assert res.card.frontends["main"].log == "db"
    assert res.card.provenance["reference_parity"]["passed"]


def test_fit_keeps_the_layout_options_given() -> None:
    from hark.export.layout import LayoutOptions
    from hark.export.reference import layout_candidates

    free = layout_candidates(LayoutOptions())
    assert {c.pool for c in free} >= {"mean", "mean_std", "bins_mean"}
    assert {c.layout for c in free} >= {"frames_bins", "bins_frames"}
    for c in layout_candidates(LayoutOptions(layout="bins_frames", flatten=True)):
        assert c.layout == "bins_frames" and c.flatten is True
