"""Reading a Keras input shape against a frontend: one reading is taken, several are listed."""

from __future__ import annotations

from typing import Any

import pytest

from hark.export.analysis import KerasInput
from hark.export.errors import FrontendMismatchError
from hark.export.layout import feature_readings, frames_in, nice_window_s
from hark.export.modelcard import plan_frontends
from hark.export.presets import FrontendChoice
from hark.live.card import FrontendSpec

# librosa.feature.mfcc defaults at librosa.load's 22050 Hz
LIBROSA = {"kind": "mfcc", "n_fft": 2048, "win_length": 2048, "hop_length": 512,
           "center": True, "n_mels": 128, "log": "db", "floor_mode": "max",
           "log_floor": 1e-10, "top_db": 80.0}


def _plan(shape: tuple[int | None, ...], fe: dict[str, Any], sr: int = 22050,
          layout: dict[str, Any] | None = None, **kw: Any) -> Any:
    return plan_frontends([KerasInput("x", shape, "window")], FrontendChoice(None, fe),
                          sample_rate=sr, layout=layout, **kw)


@pytest.mark.parametrize("shape,n_mfcc,want,window_s", [
    ((44, 13, 1), 13, ("frames_bins", 44, False, "none"), 1.0),  # velardo
    ((44, 13), 13, ("frames_bins", 44, False, "none"), 1.0),  # memm
    ((40, 174, 1), 40, ("bins_frames", 174, False, "none"), 4.02),  # us8k, coefficient-first
    ((11, 13, 1), 13, ("frames_bins", 11, False, "none"), 0.25),  # ollie: 0.25 s segments
])
def test_one_reading_is_taken(shape: tuple[int, ...], n_mfcc: int,
                              want: tuple[Any, ...], window_s: float) -> None:
    plan = _plan(shape, {**LIBROSA, "n_mfcc": n_mfcc})
    r = plan.readings["x"]
    assert (r.layout, r.frames, r.flatten, r.pool) == want
    assert plan.window_s == window_s
    assert frames_in(int(round(window_s * 22050)), plan.frontends["main"], 22050) == want[1]
    # the stride is a whole number of 512-sample hops (4 hops = 92.9 ms), not 0.1 s
    assert plan.stride_s == pytest.approx(4 * 512 / 22050)


def test_flattened_vector_lists_both_orders_then_takes_the_one_asked() -> None:
    with pytest.raises(FrontendMismatchError) as e:
        _plan((880,), {**LIBROSA, "n_mfcc": 20})
    msg = str(e.value)
    assert "fits the mfcc frontend in 2 ways" in msg
    assert "--layout frames_bins --flatten" in msg and "--layout bins_frames --flatten" in msg
    r = _plan((880,), {**LIBROSA, "n_mfcc": 20}, layout={"layout": "bins_frames"}).readings["x"]
    assert (r.layout, r.flatten, r.frames) == ("bins_frames", True, 44)


def test_fixed_one_step_input_is_a_window_or_a_pool_not_a_sequence() -> None:
    with pytest.raises(FrontendMismatchError) as e:
        _plan((1, 80), {**LIBROSA, "n_mfcc": 80})
    msg = str(e.value)
    assert "variable time axis" not in msg
    assert "--pool mean" in msg and "1 frame of 80 bins" in msg
    plan = _plan((1, 80), {**LIBROSA, "n_mfcc": 80}, layout={"pool": "mean"}, window_s=2.0)
    assert plan.readings["x"].pool == "mean" and plan.window_s == 2.0


def test_misleading_bins_hint_is_gone() -> None:
    with pytest.raises(FrontendMismatchError) as e:
        _plan((40, 174, 1), {**LIBROSA, "n_mfcc": 13})
    msg = str(e.value)
    assert "--n-mfcc 40" in msg and "--n-mfcc 174" in msg  # both readings, neither presumed


def test_short_raw_input_is_not_silently_a_waveform() -> None:
    with pytest.raises(FrontendMismatchError, match=r"39\.9 ms at 22050 Hz, shorter than 50 ms"):
        _plan((880,), {"kind": "raw"})
    assert _plan((16000, 1), {"kind": "raw"}, sr=16000).readings["x"].role == "raw"


def test_channel_stacked_and_pooled_mean_std() -> None:
    spec = {"kind": "specgram", "window_ms": 20.0, "hop_ms": 10.0, "log_floor": 1e-10}
    r = _plan((99, 81, 3), spec, sr=8000).readings["x"]
    assert (r.channels, r.channel_axis, r.frames) == (3, "last", 99)
    r = _plan((3, 99, 81), spec, sr=8000).readings["x"]
    assert (r.channels, r.channel_axis) == (3, "first")
    pooled = [x.pool for x in feature_readings((216, 1), 108)]
    assert "mean_std" in pooled


def test_options_that_fit_nothing_say_what_fits() -> None:
    with pytest.raises(FrontendMismatchError, match="none of its readings.*--layout frames_bins"):
        _plan((44, 13, 1), {**LIBROSA, "n_mfcc": 13}, layout={"pool": "mean"})


def test_nice_window_prefers_round_seconds() -> None:
    spec = FrontendSpec(kind="logmel", window_ms=25.0, hop_ms=10.0, n_fft=512)
    assert nice_window_s(98, spec, 16000) == 1.0
    assert nice_window_s(98, spec, 16000, prefer=(0.99, 1.004)) == 1.004  # 0.99: 97 frames


@pytest.mark.parametrize("shape,layout,want", [
    ((880,), "bins_frames", ("bins_frames", True, 44)),  # dodo: the order of a flattened vector
    ((880,), "frames_bins", ("frames_bins", True, 44)),
    ((20, 20), "bins_frames", ("bins_frames", False, 20)),  # square: either order fits
    ((1, 17600), "frames_bins", ("frames_bins", True, 880)),  # also 0.8 s of raw samples
])
def test_an_explicit_layout_alone_settles_the_reading(shape: tuple[int, ...], layout: str,
                                                      want: tuple[Any, ...]) -> None:
    plan = _plan(shape, {**LIBROSA, "n_mfcc": 20}, layout={"layout": layout})
    r = plan.readings["x"]
    assert (r.layout, r.flatten, r.frames) == want


def test_no_flatten_leaves_the_pooled_reading() -> None:
    spec = {"kind": "logmel", "window_ms": 25.0, "hop_ms": 10.0, "n_fft": 512, "n_mels": 40}
    with pytest.raises(FrontendMismatchError, match="3 ways"):
        _plan((80,), spec, sr=16000)  # 2 frames flattened either way, or mean and std
    r = _plan((80,), spec, sr=16000, layout={"flatten": False}).readings["x"]
    assert r.pool == "mean_std"
