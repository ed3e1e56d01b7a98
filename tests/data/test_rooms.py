"""Rooms and channels do what they say, under a seed."""

from __future__ import annotations

import numpy as np
import pytest

from hark.models.data.rooms import (
    ChannelAugmenter,
    ChannelOptions,
    RoomBankOptions,
    room_bank,
    simulate_rir,
    telephone,
)


def _rt60(rir: np.ndarray, sr: int) -> float:
    """Schroeder backward integration, T20 extrapolated to 60 dB."""
    import pyroomacoustics as pra

    return float(pra.experimental.measure_rt60(rir, fs=sr, decay_db=20))


@pytest.mark.parametrize("rt60", [0.3, 0.8])
def test_simulated_rooms_reverberate_as_asked(rt60: float) -> None:
    rir = simulate_rir(rt60, (6.0, 5.0, 3.0), np.random.default_rng(1))
    measured = _rt60(rir, 16000)
    assert 0.7 * rt60 < measured < 1.5 * rt60  # NOTES: pyroomacoustics overshoots 15-30%


def test_bank_is_cached_and_seeded(tmp_path) -> None:
    opts = RoomBankOptions(n=2, rt60_range=(0.2, 0.4), seed=3)
    a = room_bank(tmp_path, opts)
    files = sorted(a.glob("*.wav"))
    mtimes = [f.stat().st_mtime_ns for f in files]
    assert len(files) == 2 and room_bank(tmp_path, opts) == a
    assert [f.stat().st_mtime_ns for f in files] == mtimes  # reused, not simulated again


def test_telephone_keeps_the_voice_band_only() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(16000).astype(np.float32) * 0.1
    y = telephone(x, 16000)
    spec = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(y.size, 1 / 16000)
    mid = spec[(f > 800) & (f < 2500)].mean()
    assert spec[f > 4500].mean() < 1e-3 * mid  # the 8 kHz round trip removed everything above 4k
    assert spec[f < 100].mean() < 0.1 * mid


def test_channel_chain_is_seeded_and_sets_snr(tmp_path) -> None:
    bank = room_bank(tmp_path, RoomBankOptions(n=2, rt60_range=(0.2, 0.3)))
    t = np.arange(16000) / 16000
    word = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    aug = ChannelAugmenter(16000, bank)
    a = aug(word, np.random.default_rng(5))
    b = aug(word, np.random.default_rng(5))
    assert np.array_equal(a, b) and a.shape == word.shape
    noise_only = ChannelAugmenter(16000, None, ChannelOptions(
        room_p=0, eq_p=0, laptop_highpass_p=0, bandpass_p=0, telephone_p=0, mp3_p=0,
        clipping_p=0, noise_p=1.0, snr_db=(10.0, 10.0), gain_db=(0.0, 0.0)))
    y = noise_only(word, np.random.default_rng(1))
    snr = 10 * np.log10(np.mean(word**2) / np.mean((y - word) ** 2))
    assert abs(snr - 10.0) < 0.5


def test_reverberant_streams_use_the_evaluation_rooms(tmp_path) -> None:
    """`synth speech --room`: a click gains a room's tail; the truth is unchanged; the rooms are
    drawn from the evaluation bank, never the training one."""
    from hark.live.events import Event
    from hark.models.data.events import Stream
    from hark.models.synth import EVAL_ROOM_SEED, reverberant

    x = np.zeros(16000, np.float32)
    x[4000] = 0.9
    st = Stream(x, 16000, [Event("yes", 0.2, 0.4)])
    opts = RoomBankOptions(n=2, rt60_range=(0.4, 0.6), seed=EVAL_ROOM_SEED)
    (out,) = reverberant([st], tmp_path, 3, opts)
    assert out.events == st.events and out.audio.shape == x.shape
    tail = out.audio[4400:8000]
    assert np.sqrt(np.mean(tail**2)) > 1e-4  # energy 25-250 ms after the click: reverberation
    assert not np.any(x[4400:8000])
    assert (out.audio == reverberant([st], tmp_path, 3, opts)[0].audio).all()  # seeded
    assert room_bank(tmp_path, opts) != room_bank(tmp_path, RoomBankOptions(n=2, seed=0))
