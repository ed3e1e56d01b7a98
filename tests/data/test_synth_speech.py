import re
from pathlib import Path

import numpy as np
import pytest

from hark.models.data.audio import active_extent
from hark.models.data.speech_commands import SILENCE, UNKNOWN, load_speech_commands, speaker_of
from hark.models.data.synth_speech import (
    GenerationReport,
    SpeechSetOptions,
    assign_speakers,
    generate_speech_commands,
    render_word,
    split_counts,
)
from hark.models.data.tts import (
    ESPEAK_ACCENTS,
    Prosody,
    Voice,
    espeak_voices,
    flite_voices,
    synth_clip,
)

pytestmark = pytest.mark.usefixtures("espeak")

SAFE_ID = re.compile(r"^[a-z0-9-]+$")
SMALL = SpeechSetOptions(noise_s=1.0, noise_colours=("white", "pink"))


def _small_voices() -> tuple[Voice, ...]:
    variants = ("m1", "m3", "f2", "f4", "klatt", "klatt6", "croak", "whisper", "m7", "f1")
    return espeak_voices(accents=("en", "en-us"), variants=variants)


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_espeak_voices_use_accent_plus_variant_names() -> None:
    voices = espeak_voices()
    assert len(voices) >= 8 * 50
    assert len({v.voice_id for v in voices}) == len(voices)
    for voice in voices:
        accent, variant = voice.name.split("+", 1)
        assert accent in ESPEAK_ACCENTS  # never "en-gb+m3", which drops the variant
        assert SAFE_ID.match(voice.voice_id) and voice.voice_id.startswith("espeak-")
        assert "_nohash_" not in voice.voice_id
    # identical-sounding variants share one speaker key (klatt == klatt6 in espeak-ng 1.51)
    speakers = {v.name: v.speaker for v in voices}
    assert speakers["en+m1"] != speakers["en+m3"]
    assert speakers["en+m3"] == speakers["en-us+m3"]


def test_espeak_clip_is_speech_at_the_requested_rate() -> None:
    voice = espeak_voices(accents=("en",), variants=("m3",))[0]
    slow = synth_clip("yes", voice, 16000, Prosody(speed=0.7))
    fast = synth_clip("yes", voice, 16000, Prosody(speed=1.4))
    assert slow.dtype == np.float32 and np.max(np.abs(slow)) > 0.05
    assert slow.size > fast.size


def test_flite_voices_and_clips(flite: None) -> None:
    voices = flite_voices()
    assert {v.name for v in voices} >= {"kal16", "slt"}
    assert "awb_time" not in {v.name for v in voices}
    by_name = {v.name: v for v in voices}
    assert by_name["kal"].speaker == by_name["kal16"].speaker
    for voice in voices:
        clip = synth_clip("seven", voice, 16000)
        start, stop = active_extent(clip, 16000)
        assert 0.2 < (stop - start) / 16000 < 1.5, voice.name


def test_render_word_places_the_whole_word_inside_the_clip() -> None:
    voice = _small_voices()[0]
    clip = render_word("backward", voice, np.random.default_rng(0), 16000, 1.0)
    assert clip.shape == (16000,)
    start, stop = active_extent(clip, 16000)
    assert stop - start > 0.15 * 16000
    assert np.max(np.abs(clip)) <= 10 ** (-1 / 20) + 1e-4


def test_split_counts_and_speaker_assignment() -> None:
    assert split_counts(10, (0.8, 0.1, 0.1)) == [8, 1, 1]
    assert split_counts(4, (0.8, 0.1, 0.1)) == [2, 1, 1]
    assert split_counts(1, (0.8, 0.1, 0.1)) == [1, 0, 0]
    assert split_counts(5, (0.0, 0.0, 1.0)) == [0, 0, 5]
    speakers = [f"s{i}" for i in range(20)]
    a = assign_speakers(speakers, (0.8, 0.1, 0.1), np.random.default_rng(1))
    assert a == assign_speakers(speakers, (0.8, 0.1, 0.1), np.random.default_rng(1))
    assert [list(a.values()).count(s) for s in ("train", "validation", "test")] == [16, 2, 2]


def test_generation_is_deterministic_speaker_disjoint_and_loadable(tmp_path: Path) -> None:
    def generate(name: str, seed: int, workers: int) -> GenerationReport:
        return generate_speech_commands(
            tmp_path / name,
            6,
            words=("yes", "no"),
            unknown_words=("bed",),
            seed=seed,
            voices=_small_voices(),
            options=SMALL,
            workers=workers,
        )

    one = generate("a", seed=11, workers=2)
    generate("b", seed=11, workers=1)
    generate("c", seed=12, workers=1)
    assert one.n_clips == 18 and one.clips_per_s > 0
    a, b, c = (_tree_bytes(tmp_path / d) for d in "abc")
    assert a == b  # byte-identical, with and without the process pool
    assert a != c

    # every voice, and every speaker group, is in exactly one split
    voice_speaker = {v.voice_id: v.speaker for v in _small_voices()}
    ds = load_speech_commands(tmp_path / "a")
    split_of_voice: dict[str, set[str]] = {}
    split_of_speaker: dict[str, set[str]] = {}
    for split, clips in ds.splits.items():
        for clip in clips:
            if clip.label == SILENCE:
                continue
            vid = speaker_of(clip.path)
            split_of_voice.setdefault(vid, set()).add(split)
            split_of_speaker.setdefault(voice_speaker[vid], set()).add(split)
    assert all(len(s) == 1 for s in split_of_voice.values())
    assert all(len(s) == 1 for s in split_of_speaker.values())
    assert set().union(*split_of_speaker.values()) == {"train", "validation", "test"}
    assert set(one.speakers_per_split["test"]).isdisjoint(one.speakers_per_split["train"])

    # the loader sees the generated layout: words, unknown, silence from the noise folder
    for split in ("train", "validation", "test"):
        counts = ds.counts(split)
        assert (
            counts["yes"] > 0 and counts["no"] > 0 and counts[UNKNOWN] > 0 and counts[SILENCE] > 0
        )
    x, y = ds.arrays("train")
    assert x.shape[1] == 16000 and len(y) == len(ds.splits["train"])
    files = sorted(p.name for p in (tmp_path / "a" / "yes").iterdir())
    assert all(re.match(r"^espeak-[a-z0-9-]+_nohash_\d+\.wav$", f) for f in files)


def test_generation_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "old.wav").write_bytes(b"")
    with pytest.raises(FileExistsError):
        generate_speech_commands(
            tmp_path, 1, words=("yes",), unknown_words=(), voices=_small_voices()
        )


def test_flite_tree_for_held_out_evaluation(tmp_path: Path, flite: None) -> None:
    report = generate_speech_commands(
        tmp_path / "f",
        4,
        words=("yes", "stop"),
        unknown_words=("dog",),
        engine="flite",
        options=SpeechSetOptions(noise_s=1.0, noise_colours=("white",), split_fractions=(0, 0, 1)),
        workers=1,
    )
    assert report.engine == "flite" and report.clips_per_split == {
        "train": 0,
        "validation": 0,
        "test": 12,
    }
    names = sorted(p.name for p in (tmp_path / "f" / "yes").iterdir())
    assert names and all(n.startswith("flite-") for n in names)
    ds = load_speech_commands(tmp_path / "f")
    assert ds.counts("test")["stop"] == 4 and ds.counts("test")[UNKNOWN] == 4
    with pytest.raises(ValueError, match="engine"):
        generate_speech_commands(tmp_path / "g", 1, voices=_small_voices(), engine="flite")
