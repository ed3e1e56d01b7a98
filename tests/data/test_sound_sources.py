"""Recorded material in sound-event streams: speech from a pool, real backgrounds, music parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hark.live.events import Event
from hark.models.data.audio import write_wav
from hark.models.data.events import Stream
from hark.models.data.real_speech import HELD_OUT_MUSIC, MUSIC_PACKAGE, music_files, recordings
from hark.models.data.sound_events import (
    EventSources,
    EventStreamOptions,
    background_stretch,
    make_event_stream,
)
from hark.models.data.streams import under_background

SR = 16000


def _chirp(seconds: float, f0: float, f1: float) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * (f0 + (f1 - f0) * t / seconds / 2) * t)).astype(np.float32)


def test_empty_sources_change_nothing() -> None:
    """No recorded material: the very stream of the synthesised path (same draws, same audio)."""
    opts = EventStreamOptions(classes=("clap", "beep", "knock", "whistle"))
    a = make_event_stream(np.random.default_rng(3), opts)
    b = make_event_stream(np.random.default_rng(3), opts, EventSources())
    assert np.array_equal(a.audio, b.audio) and a.events == b.events


def test_speech_events_come_from_the_pool() -> None:
    pool = (_chirp(0.6, 500, 500), _chirp(0.8, 2000, 2000))  # two tones stand in for words
    opts = EventStreamOptions(classes=("speech",), n_events_range=(4, 4), snr_db_range=(40, 40),
                              allow_overlap=False, noise_rms=1e-4)
    st = make_event_stream(np.random.default_rng(1), opts, EventSources(speech=pool))
    assert [e.label for e in st.events] == ["speech"] * 4
    for e in st.events:
        piece = st.audio[round(e.onset_s * SR) : round(e.offset_s * SR)]
        peak = np.fft.rfftfreq(piece.size, 1 / SR)[np.argmax(np.abs(np.fft.rfft(piece)))]
        assert min(abs(peak - 500), abs(peak - 2000)) < 5  # each event is one of the pool's
        assert 0.5 < e.offset_s - e.onset_s < 0.85


def test_a_background_lies_at_its_level_under_every_stream_when_asked() -> None:
    tone = (0.3 * np.sin(2 * np.pi * 100 * np.arange(3 * SR) / SR)).astype(np.float32)
    opts = EventStreamOptions(n_events_range=(0, 0), noise_rms=0.01, duration_s=4.0,
                              noise_colours=("white",))
    on = make_event_stream(np.random.default_rng(2), opts,
                           EventSources(backgrounds=(tone,), background_p=1.0,
                                        background_db=(6.0, 6.0)))
    off = make_event_stream(np.random.default_rng(2), opts,
                            EventSources(backgrounds=(tone,), background_p=0.0))
    assert not on.events and not off.events
    # white noise at rms 0.01 plus the tone 6 dB above it: rms sqrt(1 + 10**0.6) * 0.01
    assert np.sqrt(np.mean(on.audio**2)) == pytest.approx(0.01 * np.sqrt(1 + 10**0.6), rel=0.03)
    assert np.sqrt(np.mean(off.audio**2)) == pytest.approx(0.01, rel=0.03)
    spectrum = np.abs(np.fft.rfft(on.audio))
    assert np.fft.rfftfreq(on.audio.size, 1 / SR)[np.argmax(spectrum)] == pytest.approx(100, abs=1)


def test_events_are_set_above_noise_and_background_together() -> None:
    tone = (0.3 * np.sin(2 * np.pi * 100 * np.arange(3 * SR) / SR)).astype(np.float32)
    opts = EventStreamOptions(classes=("beep",), n_events_range=(1, 1), snr_db_range=(10, 10),
                              noise_rms=0.01, duration_s=4.0)
    loud = EventSources(backgrounds=(tone,), background_p=1.0, background_db=(20.0, 20.0))
    st = make_event_stream(np.random.default_rng(5), opts, loud)
    quiet = make_event_stream(np.random.default_rng(5), opts)
    (e,), (q,) = st.events, quiet.events
    def level(s: Stream, ev: Event) -> float:
        return float(np.mean(s.audio[round(ev.onset_s * SR) : round(ev.offset_s * SR)] ** 2))
    # the floor is 0.01**2 * (1 + 100): the event is ~101x (20 dB) stronger than without music
    assert 10 * np.log10(level(st, e) / level(quiet, q)) == pytest.approx(20.0, abs=1.0)


def test_a_short_background_wraps_round() -> None:
    rec = np.arange(10, dtype=np.float32)
    out = background_stretch(rec, 25, np.random.default_rng(0))
    assert out.size == 25
    assert np.array_equal(out[10:20], out[:10]) and set(out.tolist()) == set(rec.tolist())
    with pytest.raises(ValueError, match="empty"):
        background_stretch(np.zeros(0, np.float32), 5, np.random.default_rng(0))


def test_music_under_a_word_stream_is_at_the_asked_ratio() -> None:
    audio = np.zeros(3 * SR, np.float32)
    word = _chirp(0.5, 300, 600)
    audio[SR : SR + word.size] = word
    st = Stream(audio, SR, [Event("yes", 1.0, 1.0 + word.size / SR)])
    music = (0.2 * np.random.default_rng(0).standard_normal(5 * SR)).astype(np.float32)
    got = under_background(st, [music], np.random.default_rng(1), snr_db_range=(10.0, 10.0))
    added = got.audio - audio
    ratio = 10 * np.log10(np.mean(word.astype(np.float64) ** 2) / np.mean(added**2))
    assert ratio == pytest.approx(10.0, abs=0.2) and got.events == st.events
    with pytest.raises(ValueError, match="no background"):
        under_background(st, [], np.random.default_rng(1))


def _fake_music_cache(root: Path) -> Path:
    folder = root / MUSIC_PACKAGE / "usr/share/asterisk/moh"
    folder.mkdir(parents=True)
    for name in ("a_track", HELD_OUT_MUSIC, "c_track"):
        write_wav(folder / f"{name}.wav", _chirp(0.5, 200, 400), 8000)
    (root / MUSIC_PACKAGE / ".complete").write_text("ok\n")
    return root


def test_one_music_track_is_kept_out_of_training(tmp_path: Path) -> None:
    cache = _fake_music_cache(tmp_path)
    train, test = music_files(cache, "train"), music_files(cache, "test")
    assert [f.stem for f in test] == [HELD_OUT_MUSIC]
    assert [f.stem for f in train] == ["a_track", "c_track"]
    assert len(music_files(cache)) == 3
    with pytest.raises(ValueError, match="music part"):
        music_files(cache, "validation")


def test_synth_music_writes_both_parts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hark.cli import main

    cache = _fake_music_cache(tmp_path / "cache")
    assert main(["synth", "music", str(tmp_path / "music"), "--cache", str(cache)]) == 0
    assert sorted(p.name for p in (tmp_path / "music" / "train").iterdir()) == \
        ["a_track.wav", "c_track.wav"]
    got = recordings(tmp_path / "music" / "test", SR)
    assert len(got) == 1 and got[0].size == SR  # 0.5 s at 8 kHz, decoded at 16 kHz
    assert "1 music tracks in" in capsys.readouterr().out


def _hand_tree(root: Path) -> Path:
    """Two word folders of tones (500 Hz: test split, 2000 Hz: train) and a noise folder."""
    for word, f0 in (("yes", 500.0), ("table", 2000.0)):
        for i in range(3):
            clip = np.zeros(SR, np.float32)
            clip[4000:12000] = _chirp(0.5, f0, f0)
            write_wav(root / word / f"s{i}_nohash_0.wav", clip, SR)
    write_wav(root / "_background_noise_" / "hum.wav", _chirp(2.0, 50, 50), SR)
    (root / "testing_list.txt").write_text("yes/s0_nohash_0.wav\nyes/s1_nohash_0.wav\n")
    (root / "validation_list.txt").write_text("table/s0_nohash_0.wav\n")
    return root


def test_tree_speech_draws_one_split_and_no_noise(tmp_path: Path) -> None:
    from hark.models.datasets import tree_speech

    root = _hand_tree(tmp_path / "tree")
    test = tree_speech(root, "test", 10, SR, np.random.default_rng(0))
    train = tree_speech(root, "train", 2, SR, np.random.default_rng(0))
    assert len(test) == 2 and len(train) == 2  # n caps the draw; only the split's clips
    peak = lambda x: np.fft.rfftfreq(x.size, 1 / SR)[np.argmax(np.abs(np.fft.rfft(x)))]  # noqa: E731
    assert all(abs(peak(x) - 500) < 3 for x in test)
    with pytest.raises(ValueError, match="no split"):
        tree_speech(root, "dev", 2, SR, np.random.default_rng(0))


def test_synth_sounds_with_a_tree_real_speech_and_music(tmp_path: Path) -> None:
    from hark.cli import main
    from hark.live.events import read_events_tsv

    root = _hand_tree(tmp_path / "tree")
    real = tmp_path / "real"
    write_wav(real / "talk.wav", _chirp(2.0, 3000, 3000), SR)
    music = tmp_path / "music"
    write_wav(music / "tune.wav", _chirp(3.0, 150, 150), SR)
    out = tmp_path / "streams"
    assert main(["synth", "sounds", str(out), "--n", "3", "--seconds", "6", "--seed", "4",
                 "--snr", "20", "20", "--speech-tree", str(root), "--speech-real", str(real),
                 "--music", str(music)]) == 0
    wavs = sorted(out.glob("*.wav"))
    assert len(wavs) == 3
    import soundfile as sf

    speech_peaks, music_level = [], []
    for wav in wavs:
        audio, _ = sf.read(wav, dtype="float32")
        spectrum = np.abs(np.fft.rfft(audio))
        freqs = np.fft.rfftfreq(audio.size, 1 / SR)
        music_level.append(spectrum[np.argmin(abs(freqs - 150))] / np.median(spectrum))
        for e in read_events_tsv(wav.with_suffix(".tsv")):
            if e.label == "speech":
                piece = audio[round(e.onset_s * SR) : round(e.offset_s * SR)]
                speech_peaks.append(np.fft.rfftfreq(piece.size, 1 / SR)[
                    np.argmax(np.abs(np.fft.rfft(piece)))])
    assert speech_peaks and all(min(abs(p - 500), abs(p - 3000)) < 10 for p in speech_peaks)
    assert min(music_level) > 20  # the music's tone stands out under every stream


def test_word_streams_over_music_and_through_an_evaluation_room(tmp_path: Path) -> None:
    from hark.models.data.rooms import RoomBankOptions
    from hark.models.synth import reverberant, write_speech_streams

    root = _hand_tree(tmp_path / "tree")
    music = tmp_path / "music"
    write_wav(music / "tune.wav", _chirp(3.0, 150, 150), SR)
    dry = write_speech_streams(root, tmp_path / "dry", 1, duration_s=5.0, seed=2,
                               snr_db_range=None)
    over = write_speech_streams(root, tmp_path / "over", 1, duration_s=5.0, seed=2,
                                snr_db_range=(10.0, 10.0), music=music)
    import soundfile as sf

    a, _ = sf.read(dry[0], dtype="float32")
    b, _ = sf.read(over[0], dtype="float32")
    freqs = np.fft.rfftfreq(a.size, 1 / SR)
    at = np.argmin(abs(freqs - 150))
    assert np.abs(np.fft.rfft(b))[at] > 30 * np.abs(np.fft.rfft(a))[at]
    st = Stream(a, SR, [])
    wet = reverberant([st], tmp_path / "rooms", seed=1,
                      bank_options=RoomBankOptions(n=2, rt60_range=(0.8, 0.9), seed=1000))[0]
    assert wet.audio.size == a.size and not np.allclose(wet.audio, a)
    # reverberation smears each tone burst's end: energy after the words' offsets grows
    tail = lambda x: float(np.sum(x[np.abs(a) < 1e-4] ** 2))  # noqa: E731
    assert tail(wet.audio) > 10 * tail(a) + 1e-6
