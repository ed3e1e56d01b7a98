"""`hark enroll`: a new model from a few takes of a held-out voice, from a folder and a microphone.

The user is flite's slt, a voice held out of all training; the base is a small embedding model
built here without TensorFlow (tests/enroll_models.py). The folder test runs the real command in
a subprocess under `-X importtime` (so it also proves TensorFlow is never imported); the
microphone test plays the takes into a PulseAudio virtual microphone while the command records.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hark.cli import main
from hark.live.card import load_card
from hark.live.model import OnnxModel
from hark.models.data.audio import read_audio
from hark.models.data.user_takes import user_takes, write_takes
from hark.models.enroll import (
    EnrollError,
    EnrollOptions,
    Take,
    enroll,
    scoring_clip,
    window_samples,
)
from hark.models.evaluation import classify_clip
from tests.enroll_models import WORDS, embedding_base
from tests.virtual_mic import VirtualMic, require_virtual_mic

NEW_WORDS = ("lights on", "lights off", "music")
RATE = 16000
REPO = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return embedding_base(tmp_path_factory.mktemp("enroll-base"))


@pytest.fixture(scope="module")
def slt_new(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 takes (different speed and pitch) of each new word by slt, in DIR/<word>/takeK.wav."""
    return write_takes(tmp_path_factory.mktemp("slt-new"), user_takes(NEW_WORDS, "slt", 4))


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _env() -> dict[str, str]:
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1"}


def test_new_words_from_a_folder_of_takes(base: Path, slt_new: Path, tmp_path: Path) -> None:
    before = _digest(base.parent)
    out = tmp_path / "mine.onnx"
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hark.cli", "enroll", "--model", str(base),
         "--words", ",".join(NEW_WORDS), "--from", str(slt_new), "--out", str(out)],
        capture_output=True, text=True, timeout=900, env=_env(), cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    imported = {m.group(1).strip().split(".")[0]
                for m in re.finditer(r"^import time:.*\|\s*(\S+)\s*$", r.stderr, re.M)}
    assert "hark" in imported and "onnxruntime" in imported  # the log is the real one
    assert not imported & {"tensorflow", "keras", "tf_keras", "tf2onnx"}
    assert _digest(base.parent) == before  # the base model and its files untouched

    card = load_card(out.with_suffix(".json"))
    assert card.labels == (*NEW_WORDS, "_silence_", "_unknown_")
    assert card.ignore_labels == ("_silence_", "_unknown_")
    base_card = load_card(base.with_suffix(".json"))
    assert (card.frontends, card.window_s, card.stride_s, card.smoothing, card.vad,
            card.backbone) == (base_card.frontends, base_card.window_s, base_card.stride_s,
                               base_card.smoothing, base_card.vad, base_card.backbone)
    assert card.inputs[0].name == base_card.inputs[0].name and card.normalization == {}
    enrolled = card.provenance["enrolled"]
    assert enrolled["takes_per_word"] == {w: 3 for w in NEW_WORDS}
    assert enrolled["new_words"] is True and enrolled["windows"]["synthetic"] > 0
    assert card.provenance["parity"]["max_abs_diff"] <= 1e-5
    assert card.provenance["base"]["sha256"] == hashlib.sha256(base.read_bytes()).hexdigest()

    # the card's table is what the written model does with the held-out (4th) takes
    model = OnnxModel.load(out)
    ev = card.evaluation["enroll"]
    assert [row["word"] for row in ev["held_out"]] == list(NEW_WORDS)
    n = window_samples(card)
    for row in ev["held_out"]:
        assert row["take"].endswith("take4.wav") and row["base"] is None
        clip = scoring_clip(Take(row["word"], read_audio(row["take"], RATE), row["take"]), n)
        assert classify_clip(model, clip)[0] == row["enrolled"]
    right = [row["enrolled"] == row["word"] for row in ev["held_out"]]
    assert ev["accuracy_after"] == pytest.approx(np.mean(right))
    assert ev["accuracy_after"] >= 2 / 3, ev
    assert ev["accuracy_before"] is None  # the base has none of these words
    assert "accuracy on the held-out takes: base -, enrolled" in r.stdout
    assert f"wrote {out}" in r.stdout


def test_the_base_words_and_a_held_out_take_that_is_never_trained_on(
        base: Path, tmp_path: Path) -> None:
    takes_by_word = user_takes(WORDS, "slt", 5)
    model = OnnxModel.load(base)
    opts = EnrollOptions()

    def takes(last: int) -> list[Take]:  # takes 1-3 to train on, take `last` held out
        return [Take(w, clips[k], f"{w}/{k + 1}") for w, clips in takes_by_word.items()
                for k in (0, 1, 2, last)]

    a = enroll(model, takes(3), tmp_path / "a.onnx", opts, log=lambda s: None)
    b = enroll(model, takes(4), tmp_path / "b.onnx", opts, log=lambda s: None)
    assert a.labels == model.card.labels
    assert [r.word for r in a.rows] == list(WORDS) and all(r.in_base for r in a.rows)
    assert a.accuracy_before is not None and a.accuracy_after >= 0.75
    # only the held-out take differs: the fitted heads are the same bytes
    assert a.onnx_path.read_bytes() == b.onnx_path.read_bytes()
    assert [r.source for r in b.rows] == [f"{w}/5" for w in WORDS]
    table = a.table()
    assert table.splitlines()[0].split() == ["word", "base", "enrolled", "held-out", "take"]
    assert f"base {a.accuracy_before:.2f}, enrolled {a.accuracy_after:.2f}" in table
    card = load_card(a.card_path)
    assert card.evaluation["enroll"]["accuracy_before"] == a.accuracy_before
    assert card.provenance["enrolled"]["takes_per_word"] == {w: 3 for w in WORDS}


def _one_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    errors = [line for line in err if line.startswith("hark: error:")]
    assert len(errors) == 1 and err[-1] == errors[0], err
    return errors[0]


def test_bad_input_is_one_line_and_nothing_written(base: Path, slt_new: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.onnx"
    common = ["--from", str(slt_new), "--out", str(out)]
    line = _one_error(capsys, ["enroll", "--model", "commands", *common])
    assert "not an embedding model" in line and "frontend" in line
    line = _one_error(capsys, ["enroll", "--model", str(base), "--words",
                               "lights on,lights off,dim the lights", *common])
    assert "no takes of 'dim the lights'" in line
    line = _one_error(capsys, ["enroll", "--model", str(base), "--words", "lights on",
                               "--from", str(slt_new), "--out", str(base)])
    assert "never overwritten" in line
    line = _one_error(capsys, ["enroll", "--model", str(base), "--words", "_silence_", *common])
    assert "background class" in line

    silent = tmp_path / "silent"
    write_takes(silent, {"lights on": [np.zeros(RATE, np.float32)] * 2})
    sf.write(silent / "lights_on" / "take2.wav",
             sf.read(slt_new / "lights_on" / "take1.wav")[0], RATE)
    line = _one_error(capsys, ["enroll", "--model", str(base), "--words", "lights on",
                               "--from", str(silent), "--out", str(out)])
    assert "take1.wav: no speech in it" in line

    bare = tmp_path / "bare.onnx"  # the same model without its enrolment set
    bare.write_bytes(base.read_bytes())
    bare.with_suffix(".json").write_bytes(base.with_suffix(".json").read_bytes())
    line = _one_error(capsys, ["enroll", "--model", str(bare), *common])
    assert "no bare.enroll.npz beside it" in line
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_an_enroll_error_names_the_problem(base: Path) -> None:
    model = OnnxModel.load(base)
    one = [Take("lights on", np.zeros(10, np.float32), "x")]
    with pytest.raises(EnrollError, match="at least 2 takes per word"):
        enroll(model, one, base.with_name("z.onnx"), EnrollOptions(words=("lights on",)))
    with pytest.raises(EnrollError, match="not a word of this enrolment"):
        enroll(model, [Take("cat", np.zeros(10, np.float32), "x")], base.with_name("z.onnx"))


def test_takes_from_the_virtual_microphone(base: Path, tmp_path: Path) -> None:
    """The real command records 2 words x 4 takes played into a virtual mic, and enrols them."""
    require_virtual_mic()
    words = ("lights on", "lights off")
    takes = user_takes(words, "slt", 4)
    gap = np.zeros(int(0.5 * RATE), np.float32)
    played = np.concatenate([np.concatenate((gap, t)) for w in words for t in takes[w]] + [gap])
    wav = tmp_path / "takes.wav"
    sf.write(wav, played, RATE, subtype="PCM_16")
    out = tmp_path / "mic.onnx"
    with VirtualMic() as vm:
        p = subprocess.Popen(
            [sys.executable, "-m", "hark.cli", "enroll", "--model", str(base), "--words",
             ",".join(words), "--takes", "3", "--device", "pulse", "--no-ui", "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**vm.child_env(), "OPENBLAS_NUM_THREADS": "1"}, stdin=subprocess.DEVNULL,
        )
        assert p.stderr is not None
        seen = []
        while True:  # the listening line, then the first prompt: the mic is open
            line = p.stderr.readline()
            seen.append(line)
            if not line or line.startswith("hark: say"):
                break
        assert seen[-1].startswith("hark: say 'lights on' (take 1/4"), "".join(seen) + \
            p.stderr.read()
        vm.play(wav, wait=True)
        stdout, err = p.communicate(timeout=600)
    err = "".join(seen) + err
    assert p.returncode == 0, err
    got = re.findall(r"got take (\d)/4 of '([a-z ]+)'", err)
    assert got == [(str(k), w) for w in words for k in range(1, 5)], err
    card = load_card(out.with_suffix(".json"))
    assert card.labels == (*words, "_silence_", "_unknown_")
    assert card.provenance["enrolled"]["takes_per_word"] == {w: 3 for w in words}
    assert [r["take"] for r in card.evaluation["enroll"]["held_out"]] == \
        [f"mic {w!r} take 4" for w in words]
    OnnxModel.load(out)
    assert "accuracy on the held-out takes" in stdout


def test_no_input_device_is_one_line(base: Path, tmp_path: Path) -> None:
    """No sound card and no PulseAudio server: one line, before anything is prompted."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PULSE_SERVER": "unix:/nonexistent",
           "XDG_RUNTIME_DIR": str(tmp_path), "OPENBLAS_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "hark.cli", "enroll", "--model", str(base), "--words", "lights on",
         "--no-ui", "--out", str(tmp_path / "x.onnx")],
        capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL,
        cwd=REPO,
    )
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hark: error:"), r.stderr
    assert "no audio input device found" in err[0]
    assert "say" not in r.stderr and not (tmp_path / "x.onnx").exists()


def test_strip_windows_label_whole_words_parts_and_room() -> None:
    """Windows that hold the whole word, a part of it (up to partial_max), or none of it."""
    from hark.live.card import EMBEDDING_HOP
    from hark.models.data.augment import Augmenter
    from hark.models.enroll import strip_windows, strips

    window_n = 22112  # 8 embeddings
    speech = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1  # 0.5 s
    quiet = Augmenter(noise_prob=0.0, gain_db_range=(0.0, 0.0), shift_max_s=0.0)
    st = strips([speech], window_n, k=3, copies=2, rng=np.random.default_rng(1), aug=quiet,
                pad_hops=6)
    assert st.audio.shape[1] == window_n + (3 - 1 + 12) * EMBEDDING_HOP
    sw = strip_windows(st, 8, window_n, partial_max=0.85)
    want: list[float] = []
    for i in range(2):
        a, b = int(st.offset[i]), int(st.offset[i] + st.length[i])
        assert np.array_equal(st.audio[i, a:b], speech) and not st.audio[i, :a].any()
        n_windows = (st.audio.shape[1] - window_n) // EMBEDDING_HOP + 1
        mine = []
        for j in range(n_windows):
            lo, hi = j * EMBEDDING_HOP, j * EMBEDDING_HOP + window_n
            share = max(0, min(b, hi) - max(a, lo)) / (b - a)
            if share >= 1 or share <= 0.85:
                mine.append(min(share, 1.0))
        assert sum(v == 1.0 for v in mine) >= 3  # the k windows that hold it all, at least
        assert any(0 < v <= 0.85 for v in mine)  # the word coming in or going out
        assert len(mine) < n_windows  # the ones nearly whole are left out
        want += mine
    np.testing.assert_allclose(sw.share, want)
    assert sw.x.shape == (len(want), 8, 96) and (sw.clip == 0).all()
    assert np.array_equal(sw.whole, np.asarray(want) == 1.0)


def test_the_bundled_embedding_model_is_the_default(slt_new: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """No --model: the bundled commands-emb; its enrolled copy goes to ./commands-emb-enrolled."""
    from hark.live.model import bundled_dir, bundled_names

    if "commands-emb" not in bundled_names():
        pytest.skip("commands-emb is not bundled in this tree")
    bundled = _digest(bundled_dir())
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        code = main(["enroll", "--words", "lights on,lights off", "--from", str(slt_new)])
    finally:
        os.chdir(cwd)
    out = capsys.readouterr()
    assert code == 0, out.err
    card = load_card(tmp_path / "commands-emb-enrolled.json")
    assert card.name == "commands-emb-enrolled" and card.labels[:2] == ("lights on", "lights off")
    assert card.provenance["base"]["name"] == "commands-emb"
    assert card.smoothing == load_card(bundled_dir() / "commands-emb.json").smoothing
    assert _digest(bundled_dir()) == bundled  # nothing written into the package
    OnnxModel.load(tmp_path / "commands-emb-enrolled.onnx")
