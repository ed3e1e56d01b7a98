"""Small corpora cut from the bundled demo (words and sounds) for the --jobs / --ray tests.

Slices and concatenations of the demo recording (with their truth, shifted), and negatives made
of shuffled 100 ms pieces of it over noise (word fragments: the commands model fires on a few).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from hark.live.events import read_events_tsv
from hark.live.model import bundled_dir

CMD = [sys.executable, "-m", "hark.cli"]


def hark(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CMD, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def demo() -> tuple[np.ndarray, int]:
    x, rate = sf.read(bundled_dir() / "demo.wav", dtype="float32")
    return x, int(rate)


def replay_files(folder: Path) -> list[Path]:
    """Six short files: slices (some with events, one with none) and a concatenation."""
    x, r = demo()
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (a, b) in enumerate([(0, 6), (5, 9), (8.5, 10.0), (12, 20), (20, 26)]):
        out.append(folder / f"part{i}.wav")
        sf.write(out[-1], x[int(a * r): int(b * r)], r, subtype="PCM_16")
    out.insert(3, folder / "twice.flac")
    sf.write(out[3], np.concatenate([x[: 4 * r], x[: 7 * r]]), r)
    return out


def cut_flac(folder: Path) -> Path:
    """A FLAC cut in half: its header opens, its decoding fails mid-file."""
    x, r = demo()
    full = folder / "full.flac"
    sf.write(full, np.concatenate([x, x]), r)
    cut = folder / "cut.flac"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    return cut


def eval_streams(folder: Path, n: int = 5) -> Path:
    """n 10 s slices of the demo with their truth (X.wav + X.tsv)."""
    x, r = demo()
    truth = read_events_tsv(bundled_dir() / "demo.tsv")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        a, b = 4.0 * i, 4.0 * i + 10.0
        sf.write(folder / f"s{i}.wav", x[int(a * r): int(b * r)], r, subtype="PCM_16")
        rows = [f"{e.onset_s - a:.3f}\t{e.offset_s - a:.3f}\t{e.label}" for e in truth
                if e.onset_s >= a and e.offset_s <= b]
        (folder / f"s{i}.tsv").write_text("\n".join(["onset\toffset\tevent_label", *rows]) + "\n")
    return folder


def negatives(folder: Path, n: int = 4, seconds: float = 20.0) -> Path:
    """n files of shuffled 100 ms demo pieces over noise: no whole word, some false accepts."""
    x, r = demo()
    rng = np.random.default_rng(0)
    pieces = x[: len(x) // 1600 * 1600].reshape(-1, 1600)
    folder.mkdir(parents=True, exist_ok=True)
    n_samples = int(seconds * r)
    for i in range(n):
        y = 0.01 * rng.standard_normal(n_samples).astype(np.float32)
        y += pieces[rng.integers(0, len(pieces), n_samples // 1600 + 1)].reshape(-1)[:n_samples]
        sf.write(folder / f"n{i}.wav", y, r, subtype="PCM_16")
    return folder


def long_files(folder: Path, n: int, seconds: float) -> list[Path]:
    """n files of the demo repeated to `seconds` each: a run that lasts long enough to disturb."""
    x, r = demo()
    folder.mkdir(parents=True, exist_ok=True)
    y = np.tile(x, int(np.ceil(seconds * r / len(x))))[: int(seconds * r)]
    out = [folder / f"long{i}.wav" for i in range(n)]
    for p in out:
        sf.write(p, y, r, subtype="PCM_16")
    return out
