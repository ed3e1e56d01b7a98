from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hark.models.data.speech_commands import (
    COMMAND_WORDS,
    LABELS_12,
    SILENCE,
    SILENCE_REGIONS,
    UNKNOWN,
    SpeechCommandsSet,
    Split,
    load_speech_commands,
    speaker_of,
    which_set,
)


def _tone(seconds: float, rate: int, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    mono = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


def _write(path: Path, data: np.ndarray, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, rate, subtype="PCM_16")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A miniature Speech Commands tree: 2 command words, 2 other words, lists and noise."""
    root = tmp_path / "sc"
    _write(root / "yes/spk1_nohash_0.wav", _tone(1.0, 16000), 16000)
    _write(root / "yes/spk2_nohash_0.wav", _tone(0.5, 8000), 8000)  # short, other rate
    _write(root / "yes/spk3_nohash_0.wav", _tone(1.3, 16000, channels=2), 16000)  # long, stereo
    _write(root / "no/spk1_nohash_0.wav", _tone(1.0, 16000, 300.0), 16000)
    _write(root / "no/spk2_nohash_1.wav", _tone(1.0, 16000, 300.0), 16000)
    _write(root / "bed/spk1_nohash_0.wav", _tone(1.0, 16000, 600.0), 16000)
    _write(root / "cat/spk3_nohash_0.wav", _tone(1.0, 16000, 700.0), 16000)
    noise = np.random.default_rng(0).uniform(-0.3, 0.3, 10 * 8000)
    _write(root / "_background_noise_/white_noise.wav", noise, 8000)
    (root / "validation_list.txt").write_text("yes/spk2_nohash_0.wav\nno/spk2_nohash_1.wav\n")
    (root / "testing_list.txt").write_text("yes/spk3_nohash_0.wav\ncat/spk3_nohash_0.wav\n")
    return root


def _names(ds: SpeechCommandsSet, split: Split) -> list[tuple[str, str]]:
    clips = ds.splits[split]
    return sorted(
        (f"{c.path.parent.name}/{c.path.name}", c.label) for c in clips if c.label != SILENCE
    )


def test_labels_12_protocol() -> None:
    assert len(LABELS_12) == 12
    assert LABELS_12[:10] == COMMAND_WORDS
    assert LABELS_12[10:] == (SILENCE, UNKNOWN)


def test_splits_follow_the_lists_and_other_words_are_unknown(tree: Path) -> None:
    ds = load_speech_commands(tree)
    assert ds.labels == LABELS_12
    assert _names(ds, "train") == [
        ("bed/spk1_nohash_0.wav", UNKNOWN),
        ("no/spk1_nohash_0.wav", "no"),
        ("yes/spk1_nohash_0.wav", "yes"),
    ]
    assert _names(ds, "validation") == [
        ("no/spk2_nohash_1.wav", "no"),
        ("yes/spk2_nohash_0.wav", "yes"),
    ]
    assert _names(ds, "test") == [
        ("cat/spk3_nohash_0.wav", UNKNOWN),
        ("yes/spk3_nohash_0.wav", "yes"),
    ]
    # 10% of the command-word clips, rounded up: one silence clip per split
    assert [ds.counts(s)[SILENCE] for s in ("train", "validation", "test")] == [1, 1, 1]
    assert {c.speaker for c in ds.splits["test"] if c.label != SILENCE} == {"spk3"}


def test_arrays_are_fixed_length_mono_float32_at_the_requested_rate(tree: Path) -> None:
    ds = load_speech_commands(tree, sample_rate=16000, clip_s=1.0)
    x, y = ds.arrays("validation")
    assert x.shape == (3, 16000) and x.dtype == np.float32 and y.dtype == np.int64
    labels = [ds.labels[i] for i in y]
    assert sorted(labels) == sorted(["no", "yes", SILENCE])
    short = x[labels.index("yes")]
    # 0.5 s at 8 kHz, resampled: a 440 Hz tone for half a second, then zero padding
    spectrum = np.abs(np.fft.rfft(short[:8000]))
    assert np.argmax(spectrum) * 16000 / 8000 == pytest.approx(440, abs=4)
    assert np.all(short[8100:] == 0.0)
    x8, _ = load_speech_commands(tree, sample_rate=8000, clip_s=0.5).arrays("test")
    assert x8.shape == (3, 4000)


def test_silence_clips_come_from_each_splits_region_of_the_noise(tree: Path) -> None:
    ds = load_speech_commands(tree, silence_per_split=6, seed=3)
    total = 10 * 8000
    for split, (lo, hi) in SILENCE_REGIONS.items():
        silences = [c for c in ds.splits[split] if c.label == SILENCE]
        assert len(silences) == 6
        for clip in silences:
            assert clip.path.parent.name == "_background_noise_"
            assert lo * total <= clip.start and clip.start + clip.frames <= hi * total
            assert clip.frames == 8000
        audio = ds.load(silences[0])
        assert audio.shape == (16000,) and np.std(audio) > 0.05


def test_silence_positions_are_seeded(tree: Path) -> None:
    def starts(seed: int) -> list[int]:
        ds = load_speech_commands(tree, silence_per_split=4, seed=seed)
        return [c.start for c in ds.splits["train"] if c.label == SILENCE]

    assert starts(1) == starts(1)
    assert starts(1) != starts(2)


def test_unknown_can_be_capped(tree: Path) -> None:
    ds = load_speech_commands(tree, unknown_per_split=0)
    assert all(ds.counts(s)[UNKNOWN] == 0 for s in ("train", "validation", "test"))


def test_a_silence_folder_replaces_cut_noise(tree: Path) -> None:
    _write(tree / "_silence_/quiet_nohash_0.wav", np.zeros(16000), 16000)
    ds = load_speech_commands(tree)
    silences = [c for s in ds.splits.values() for c in s if c.label == SILENCE]
    assert [c.path.name for c in silences] == ["quiet_nohash_0.wav"]


def test_custom_words_change_the_labels(tree: Path) -> None:
    ds = load_speech_commands(tree, words=("yes", "bed"))
    assert ds.labels == ("yes", "bed", SILENCE, UNKNOWN)
    assert ("no/spk1_nohash_0.wav", UNKNOWN) in _names(ds, "train")
    assert ("bed/spk1_nohash_0.wav", "bed") in _names(ds, "train")


def test_without_lists_the_dataset_hash_splits_by_speaker(tree: Path) -> None:
    (tree / "validation_list.txt").unlink()
    (tree / "testing_list.txt").unlink()
    ds = load_speech_commands(tree)
    for split, clips in ds.splits.items():
        for clip in clips:
            if clip.label != SILENCE:
                assert which_set(clip.path.name) == split
    assert which_set("a/spk9_nohash_0.wav") == which_set("b/spk9_nohash_3.wav")


def test_speaker_of() -> None:
    assert speaker_of("yes/0a7c2a8d_nohash_1.wav") == "0a7c2a8d"
    assert speaker_of("espeak-en-us-m3_nohash_0.wav") == "espeak-en-us-m3"


def test_missing_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_speech_commands(tmp_path / "absent")
