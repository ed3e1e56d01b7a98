"""The eight published Keras models in ../shared/wild: export, parity from raw audio, the words.

Each model is exported once per session with the README's own command line (through
hark.cli.main), including --reference-features with its repository's feature code
(tests/export/wild_features.py), so the card records features and posteriors against the
repository's pipeline on probe audio. The keyword models then hear espeak-ng words: hark
(its streaming frontend and the runtime's window assembly) must find at least the words the
repository's own features find. The sound models replay a stream without error.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.export import wild_features

pytestmark = [pytest.mark.tf, pytest.mark.filterwarnings("ignore")]

ROOT = Path(__file__).resolve().parents[2]
# ../shared/wild beside the checkout (CI, /work/main); a git worktree under /work/wt/ has it
# one level further up
SHARED = next((p for p in (ROOT / ".." / "shared", ROOT / ".." / ".." / "shared")
               if (p / "wild").is_dir()), ROOT / ".." / "shared")
FEATURES = "tests/export/wild_features.py"
# librosa.feature.mfcc's defaults: n_fft 2048, hop 512, centred (zeros), 128 Slaney mels,
# power_to_db (10*log10, amin 1e-10, top_db 80 over the clip), DCT-II ortho
LIBROSA_MFCC = ("kind=mfcc,n_fft=2048,win_length=2048,hop_length=512,center=true,n_mels=128,"
                "log=db,floor_mode=max,log_floor=1e-10,top_db=80")

# name -> (model file, the rest of the `hark export` command line)
MODELS: dict[str, tuple[str, str]] = {
    "velardo_kws_cnn": ("model.h5", f"--sample-rate 22050 --frontend {LIBROSA_MFCC},n_mfcc=13 "
                        "--framing clip"),
    "memm_kws_lstm": ("lstm_nn.h5", f"--sample-rate 22050 --frontend {LIBROSA_MFCC},n_mfcc=13 "
                      "--framing clip"),
    "dodo_kws_dense_mfcc20": (
        "model_2_9205_835687.h5",
        f"--sample-rate 22050 --frontend {LIBROSA_MFCC},n_mfcc=20 --layout bins_frames "
        "--custom-objects ../shared/wild/dodo_kws_dense_mfcc20/custom_objects.py --framing clip",
    ),
    "siva_kws_lstm_stft": (
        "finetune_lstm.h5",
        "--sample-rate 16000 --frontend kind=stft,win_length=255,hop_length=128,n_fft=pow2,"
        "window_fn=hann_symmetric,power=1,log=none --output-activation softmax",
    ),
    "ollie_speech_music_cnn": (
        "model.keras",
        f"--sample-rate 22050 --frontend {LIBROSA_MFCC},n_mfcc=13 --output-activation sigmoid "
        "--framing clip",
    ),
    "us8k_cnn_mfcc40": ("weights.best.basic_cnn.hdf5",
                        f"--sample-rate 22050 --frontend {LIBROSA_MFCC},n_mfcc=40 --framing clip"),
    "siren_lstm_mfccmean": ("best_model.hdf5",
                            f"--sample-rate 22050 --frontend {LIBROSA_MFCC},n_mfcc=80 --pool mean "
                            "--framing clip"),
    "lucy_us8k_kapre_conv2d": ("conv2d.h5", "--preset raw16k"),
}
REFERENCE = {
    "velardo_kws_cnn": "velardo", "memm_kws_lstm": "memm", "dodo_kws_dense_mfcc20": "dodo",
    "siva_kws_lstm_stft": "siva", "ollie_speech_music_cnn": "ollie", "us8k_cnn_mfcc40": "us8k",
    "siren_lstm_mfccmean": "siren", "lucy_us8k_kapre_conv2d": "lucy",
}
KEYWORD_MODELS = ("velardo_kws_cnn", "memm_kws_lstm", "dodo_kws_dense_mfcc20",
                  "siva_kws_lstm_stft")
SOUND_MODELS = ("ollie_speech_music_cnn", "us8k_cnn_mfcc40", "siren_lstm_mfccmean",
                "lucy_us8k_kapre_conv2d")
WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off")


def command(name: str) -> str:
    """The README's command line for one model (paths from the repository root)."""
    model, rest = MODELS[name]
    return (f"hark export ../shared/wild/{name}/{model} --labels ../shared/wild/{name}/labels.txt "
            f"{rest} --reference-features {FEATURES}:{REFERENCE[name]} --name {name} --out wild/")


@pytest.fixture(scope="session")
def wild_export(toolchain: Any, tmp_path_factory: pytest.TempPathFactory
                ) -> Callable[[str], tuple[int, str, Path]]:
    """name -> (exit code, stderr, card path), each model exported once per session."""
    import contextlib
    import io

    from hark.cli import main

    out = tmp_path_factory.mktemp("wild")

    @cache
    def run(name: str) -> tuple[int, str, Path]:
        argv = shlex.split(command(name))[1:]
        argv = [str(SHARED / a[len("../shared/"):]) if a.startswith("../shared/")
                else str(ROOT / a) if a.startswith("tests/") else a for a in argv]
        argv[argv.index("--out") + 1] = str(out)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = main(argv)
        return rc, err.getvalue(), out / f"{name}.json"

    return run


@pytest.mark.parametrize("name", list(MODELS))
def test_exports_with_parity_from_raw_audio(wild_export: Any, name: str) -> None:
    rc, err, card_path = wild_export(name)
    assert rc == 0, err
    card = json.loads(card_path.read_text())
    prov = card["provenance"]
    assert prov["parity"]["max_abs_diff"] <= 1e-4
    ref = prov["reference_parity"]
    assert ref["passed"], ref
    if name == "lucy_us8k_kapre_conv2d":
        assert card["inputs"][0]["role"] == "raw" and prov["frontend_in_graph"]
    if name in ("siva_kws_lstm_stft", "ollie_speech_music_cnn"):
        assert prov["output_head"] in ("softmax", "sigmoid")


@cache
def _word_clips(sample_rate: int) -> tuple[tuple[str, np.ndarray], ...]:
    from hark.models.data.tts import espeak_voices, synth_clip

    voices = espeak_voices(accents=("en-us", "en"), variants=("m3", "f2"))
    return tuple((w, synth_clip(w, v, sample_rate)) for v in voices for w in WORDS)


def _load(card_path: Path) -> Any:
    from hark.live.model import OnnxModel

    return OnnxModel.load(card_path.with_suffix(".onnx"))


def _words_found(model: Any, fn: Callable[[np.ndarray, int], Any] | None) -> int:
    """Clips whose top label is the word: hark's runtime tensors (fn None) or fn's features."""
    from hark.export.reference import runtime_tensor

    card = model.card
    inp = card.inputs[0]
    n = int(round(card.window_s * card.sample_rate))
    found = 0
    for word, clip in _word_clips(card.sample_rate):
        window = np.zeros(n, np.float32)
        window[: min(n, clip.size)] = clip[:n]
        if fn is None:
            x = runtime_tensor(card, model.session, window)[inp.name]
        else:
            x = np.asarray(fn(window, card.sample_rate), np.float32).reshape(
                (1, *[d or 1 for d in inp.shape[1:]]))
        post = model.session.run([model.output], {inp.name: x})[0].reshape(-1)
        found += int(card.labels[int(np.argmax(post))] == word)
    return found


@pytest.mark.parametrize("name", KEYWORD_MODELS)
def test_keyword_model_finds_what_its_repository_finds(wild_export: Any, name: str,
                                                       record_property: Any) -> None:
    rc, err, card_path = wild_export(name)
    assert rc == 0, err
    model = _load(card_path)
    hark_found = _words_found(model, None)
    repo_found = _words_found(model, getattr(wild_features, REFERENCE[name]))
    total = len(_word_clips(model.card.sample_rate))
    record_property("words", f"hark {hark_found}/{total}, repository {repo_found}/{total}")
    print(f"{name}: words found through hark {hark_found}/{total}, through the repository's "
          f"features {repo_found}/{total}")
    assert hark_found >= repo_found


@pytest.mark.parametrize("name", KEYWORD_MODELS)
def test_keyword_model_replays_the_words(wild_export: Any, name: str) -> None:
    """A stream of the words, 1.5 s apart: the top label around each word, through the engine."""
    from hark.live.engine import offline_posteriors

    rc, err, card_path = wild_export(name)
    assert rc == 0, err
    model = _load(card_path)
    card = model.card
    sr = card.sample_rate
    slot = int(1.5 * sr)
    clips = _word_clips(sr)[: len(WORDS)]
    stream = np.zeros(slot * (len(clips) + 1), np.float32)
    for i, (_, clip) in enumerate(clips):
        stream[i * slot + sr // 4 : i * slot + sr // 4 + clip.size] = clip[: slot - sr // 4]
    times, post = offline_posteriors(model, stream)
    assert len(post) and np.all(np.isfinite(post))
    right = 0
    for i, (word, _) in enumerate(clips):
        sel = (times >= i * slot / sr) & (times < (i + 1) * slot / sr)
        if sel.any():
            top = np.unravel_index(int(np.argmax(post[sel])), post[sel].shape)[1]
            right += int(card.labels[int(top)] == word)
    print(f"{name}: replay {right}/{len(clips)} words")
    repo_found = _words_found(model, getattr(wild_features, REFERENCE[name]))
    if repo_found >= len(_word_clips(sr)) // 2:  # a model its own features make work
        assert right >= 1


@pytest.mark.parametrize("name", SOUND_MODELS)
def test_sound_model_replays_without_error(wild_export: Any, name: str) -> None:
    from hark.live.engine import offline_posteriors

    rc, err, card_path = wild_export(name)
    assert rc == 0, err
    model = _load(card_path)
    sr = model.card.sample_rate
    rng = np.random.default_rng(5)
    t = np.arange(int(6 * sr)) / sr
    speech = np.concatenate([c for _, c in _word_clips(sr)[:4]])
    stream = (0.05 * rng.standard_normal(t.size) + 0.2 * np.sin(2 * np.pi * 700 * t)
              * (np.sin(2 * np.pi * 0.5 * t) > 0)).astype(np.float32)
    stream[: min(speech.size, stream.size)] += speech[: stream.size]
    times, post = offline_posteriors(model, stream)
    assert len(post) >= 2 and np.all(np.isfinite(post))
    assert np.all((post >= 0) & (post <= 1))
    if model.card.task == "multiclass":
        assert np.allclose(post.sum(axis=1), 1.0, atol=1e-4)


def test_readme_lists_each_command() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in MODELS:
        assert command(name) in readme, name
