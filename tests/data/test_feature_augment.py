"""Feature-space augmentation of log-mel crops: spec_augment and voice_augment."""

from __future__ import annotations

import numpy as np
import pytest

from hark.live.card import Normalization
from hark.models.datasets import spec_augment, voice_augment

BINS = 40
NORM = Normalization(mean=tuple(np.linspace(-8.0, -12.0, BINS)), std=tuple(np.full(BINS, 2.0)))


def crops_with_a_formant(peak_bin: int, b: int = 4, t: int = 30) -> np.ndarray:
    """Normalised crops whose log power is flat at -10 with one 3-bin peak (+4) at peak_bin."""
    z = np.full((b, t, BINS), -10.0, np.float32)
    z[:, :, peak_bin - 1 : peak_bin + 2] += 4.0
    mean, std = np.asarray(NORM.mean, np.float32), np.asarray(NORM.std, np.float32)
    return (z - mean) / std


def log_power(x: np.ndarray) -> np.ndarray:
    return x * np.asarray(NORM.std, np.float32) + np.asarray(NORM.mean, np.float32)


def test_voice_augment_without_warp_or_tilt_is_the_identity() -> None:
    x = crops_with_a_formant(20)
    out = voice_augment(x, np.random.default_rng(0), NORM, warp=0.0, tilt_db=0.0)
    np.testing.assert_allclose(out, x, atol=1e-5)


def test_warp_moves_a_formant_by_the_drawn_factor() -> None:
    x = crops_with_a_formant(20)
    rng = np.random.default_rng(3)
    factors = np.random.default_rng(3).uniform(0.8, 1.2, size=4)  # the draws voice_augment makes
    out = voice_augment(x, rng, NORM, warp=0.2, tilt_db=0.0)
    z = log_power(out)
    for i, f in enumerate(factors):
        centre = float(np.sum(np.arange(BINS) * (z[i, 0] + 10.0)) / np.sum(z[i, 0] + 10.0))
        assert centre == pytest.approx(20 * f, abs=0.35), (i, f, centre)
        assert np.allclose(z[i], z[i, :1])  # the same for every frame of the crop


def test_tilt_is_a_smooth_curve_within_its_range_and_seeded() -> None:
    x = crops_with_a_formant(20, b=64)
    a = voice_augment(x, np.random.default_rng(5), NORM, warp=0.0, tilt_db=6.0)
    b = voice_augment(x, np.random.default_rng(5), NORM, warp=0.0, tilt_db=6.0)
    np.testing.assert_array_equal(a, b)
    delta_db = (log_power(a) - log_power(x))[:, 0, :] * 10.0 / np.log(10.0)
    assert np.abs(delta_db).max() <= 6.0 * 0.5 + 3.0 + 1e-3  # |slope * u| + |bump|
    assert np.abs(np.diff(delta_db, axis=1)).max() < 0.5  # smooth across neighbouring bands
    assert delta_db.std(axis=0).mean() > 1.0  # and it differs from crop to crop


def test_spec_augment_masks_and_shifts_levels_in_place() -> None:
    x = crops_with_a_formant(20, b=200)
    before = x.copy()
    out = spec_augment(x, np.random.default_rng(1), NORM, max_mask_bins=5, mask_prob=0.5)
    assert out is x
    masked = (out == 0.0).all(axis=1)  # (B, bins): bins zeroed for every frame
    width = masked.sum(axis=1)
    assert 60 < np.count_nonzero(width) < 140 and width.max() <= 5
    gain = (out - before)[~masked[:, None, :].repeat(out.shape[1], 1)]
    assert np.abs(gain).max() <= 6.0 * np.log(10) / 10 / 2.0 + 1e-5
