import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import welch

from hark.models.data.augment import (
    NOISE_EXPONENTS,
    Augmenter,
    apply_gain_db,
    coloured_noise,
    mix_at_snr,
    time_shift,
)


def _snr_db(clean: np.ndarray, mixed: np.ndarray) -> float:
    clean64 = clean.astype(np.float64)
    residual = mixed.astype(np.float64) - clean64
    return float(10 * np.log10(np.mean(clean64**2) / np.mean(residual**2)))


@pytest.mark.parametrize(("colour", "slope"), list(NOISE_EXPONENTS.items()))
def test_noise_colour_has_its_spectral_slope(colour: str, slope: float) -> None:
    noise = coloured_noise(2**17, colour, np.random.default_rng(7))
    freqs, psd = welch(noise, fs=16000, nperseg=4096)
    band = (freqs >= 100) & (freqs <= 6000)
    fitted = np.polyfit(np.log10(freqs[band]), np.log10(psd[band]), 1)[0]
    assert fitted == pytest.approx(slope, abs=0.15)


def test_noise_is_unit_rms_float32_and_seeded() -> None:
    a = coloured_noise(16000, "pink", np.random.default_rng(3))
    b = coloured_noise(16000, "pink", np.random.default_rng(3))
    c = coloured_noise(16000, "pink", np.random.default_rng(4))
    assert a.dtype == np.float32
    assert np.sqrt(np.mean(a.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-5)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()
    assert coloured_noise(0, "white", np.random.default_rng(0)).size == 0


def test_noise_accepts_a_numeric_exponent() -> None:
    named = coloured_noise(4096, "brown", np.random.default_rng(1))
    numeric = coloured_noise(4096, -2.0, np.random.default_rng(1))
    np.testing.assert_array_equal(named, numeric)


@settings(max_examples=40, deadline=None)
@given(snr_db=st.floats(min_value=-20.0, max_value=40.0), seed=st.integers(0, 2**16))
def test_mix_at_snr_hits_the_requested_snr(snr_db: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(8000) / 16000
    signal = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    noise = coloured_noise(signal.size, "pink", rng)
    mixed = mix_at_snr(signal, noise, snr_db)
    assert _snr_db(signal, mixed) == pytest.approx(snr_db, abs=0.1)


def test_mix_at_snr_with_an_external_signal_power() -> None:
    signal = np.zeros(1000, dtype=np.float32)
    signal[:100] = 1.0  # the "word" is 10% of the buffer
    noise = coloured_noise(1000, "white", np.random.default_rng(0))
    mixed = mix_at_snr(signal, noise, 10.0, signal_power=1.0)
    residual = mixed.astype(np.float64) - signal
    assert 10 * np.log10(1.0 / np.mean(residual**2)) == pytest.approx(10.0, abs=0.01)


def test_mix_at_snr_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="shape"):
        mix_at_snr(np.ones(10), np.ones(11), 0.0)
    with pytest.raises(ValueError, match="no power"):
        mix_at_snr(np.ones(10), np.zeros(10), 0.0)


def test_time_shift_fills_with_zeros_and_never_wraps() -> None:
    x = np.arange(1, 6, dtype=np.float32)
    np.testing.assert_array_equal(time_shift(x, 2), [0, 0, 1, 2, 3])
    np.testing.assert_array_equal(time_shift(x, -2), [3, 4, 5, 0, 0])
    np.testing.assert_array_equal(time_shift(x, 0), x)
    np.testing.assert_array_equal(time_shift(x, 9), np.zeros(5))
    np.testing.assert_array_equal(time_shift(x, -9), np.zeros(5))


def test_gain_db() -> None:
    np.testing.assert_allclose(apply_gain_db(np.ones(3, np.float32), 20.0), 10.0, rtol=1e-6)


def test_augmenter_is_deterministic_and_keeps_shape() -> None:
    x = np.zeros(16000, dtype=np.float32)
    x[6000:10000] = np.sin(np.arange(4000) / 5.0)
    aug = Augmenter()
    a = aug(x, np.random.default_rng(5))
    b = aug(x, np.random.default_rng(5))
    c = aug(x, np.random.default_rng(6))
    assert a.shape == x.shape and a.dtype == np.float32
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()
    batch = aug.batch(np.stack([x, x, x]), np.random.default_rng(5))
    assert batch.shape == (3, 16000)
    assert not np.array_equal(batch[0], batch[1])


def test_augmenter_applies_its_snr_range_with_a_noise_bank() -> None:
    x = np.sin(np.arange(16000) / 3.0).astype(np.float32)
    bank = (coloured_noise(48000, "brown", np.random.default_rng(9)),)
    aug = Augmenter(
        shift_max_s=0.0,
        gain_db_range=(0.0, 0.0),
        noise_prob=1.0,
        snr_db_range=(12.0, 12.0),
        noise_bank=bank,
        bank_prob=1.0,
    )
    out = aug(x, np.random.default_rng(0))
    assert _snr_db(x, out) == pytest.approx(12.0, abs=0.1)
