"""What the speech gate saves: inference compute on a silence-heavy stream, gated vs ungated.

The stream (`quiet_room`) is mostly room noise (a -50 dBFS pink-ish floor and a faint 50 Hz hum)
with spoken words on `speech_fraction` of it (espeak-ng when installed, else the synthetic voiced
syllables of bench.audio). The same stream is fed, in mic-sized blocks, to one engine per gate
(off, webrtc, silero) in the same run; the ratio of ungated to gated inference seconds is the
saving, and the gate's own cost (the VAD stage) is shown beside it, since silero is not free.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from hark.live.errors import HarkError

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "seven", "hello")
GATES = ("off", "webrtc", "silero")


def _espeak_words(rate: int) -> list[np.ndarray] | None:
    """One clip per word from espeak-ng at `rate`, or None without espeak-ng."""
    if shutil.which("espeak-ng") is None:
        return None
    import soundfile as sf
    import soxr

    clips = []
    with tempfile.TemporaryDirectory(prefix="hark-gate-") as d:
        for i, w in enumerate(WORDS):
            path = Path(d) / f"{i}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), w], check=True,
                           capture_output=True, timeout=30)
            x, sr = sf.read(path, dtype="float32")
            clips.append(soxr.resample(x, sr, rate).astype(np.float32))
    return clips


def quiet_room(seconds: float, rate: int, speech_fraction: float = 0.2, seed: int = 0
               ) -> tuple[np.ndarray, str]:
    """(audio, how it was made): words on speech_fraction of the time, room noise everywhere."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    w = rng.standard_normal(n)
    spec = np.fft.rfft(w) / np.sqrt(np.maximum(np.fft.rfftfreq(n, 1 / rate), 50.0))
    room = np.fft.irfft(spec, n)
    room = 10 ** (-50 / 20) * room / room.std()
    room += 10 ** (-55 / 20) * np.sqrt(2) * np.sin(2 * np.pi * 50 * np.arange(n) / rate)
    clips = _espeak_words(rate)
    source = "espeak-ng words"
    if clips is None:
        from hark.bench.audio import synth

        clips = [synth(0.6, rate, seed=seed + k) for k in range(len(WORDS))]
        source = "synthetic voiced syllables (no espeak-ng)"
    out = room.astype(np.float32)
    budget = speech_fraction * n
    pos, k, used = int(0.5 * rate), 0, 0
    while used < budget:
        clip = clips[k % len(clips)] * rng.uniform(0.3, 0.6) / (np.abs(clips[k % len(clips)]).max()
                                                              + 1e-9)
        clip = clip[: int(min(clip.size, budget - used))]
        gap = int(clip.size * (1 - speech_fraction) / speech_fraction)
        if pos + clip.size > n:
            break
        out[pos : pos + clip.size] += clip
        used += clip.size
        pos += clip.size + gap
        k += 1
    return np.clip(out, -1, 1), f"{source} on {used / n:.0%} of {seconds:g} s of room noise"


def _feed(models: list[Any], audio: np.ndarray, block: int, gate: str) -> dict[str, Any]:
    from hark.live.engine import Engine, EngineOptions

    kind = None if gate == "off" else gate
    options = EngineOptions(vad=gate != "off", vad_kind=kind)  # type: ignore[arg-type]
    engine = Engine(models, options)
    t0 = time.perf_counter()
    for i in range(0, audio.size, block):
        engine.feed(audio[i : i + block])
    engine.close()
    wall = time.perf_counter() - t0
    t = engine.total_times
    stream = engine.streams[0]
    return {
        "inference_s": t.inference,
        "vad_s": t.vad,
        "stages_s": t.total,
        "feed_s": wall,
        "model_calls": stream.runner.calls,
        "open_fraction": (None if stream.gate is None
                          else stream.gate.frames_open / max(1, stream.gate.frames_decided)),
        "events": len(engine.events),
    }


def measure(model: Any, seconds: float = 60.0, block_ms: float = 10.0) -> dict[str, Any]:
    """Every gate on the same quiet-room stream: compute per gate and the ratios to ungated."""
    rate = model.card.sample_rate
    audio, how = quiet_room(seconds, rate)
    block = max(1, int(round(rate * block_ms / 1000)))
    _feed([model], audio[: rate], block, "off")  # warm the session
    runs: dict[str, Any] = {}
    for gate in GATES:
        try:
            runs[gate] = _feed([model], audio, block, gate)
        except HarkError as e:
            runs[gate] = {"skipped": str(e)}
    base = runs["off"]
    for gate in GATES[1:]:
        r = runs[gate]
        if "skipped" in r:
            continue
        r["inference_ratio"] = base["inference_s"] / max(r["inference_s"], 1e-9)
        r["stages_ratio"] = base["stages_s"] / max(r["stages_s"], 1e-9)
        r["calls_ratio"] = base["model_calls"] / max(r["model_calls"], 1)
    return {"model": model.name, "audio": how, "seconds": seconds, "runs": runs}


def format_lines(result: dict[str, Any]) -> list[str]:
    """Text lines for the bench table."""
    out = [f"{result['model']}: speech gate on {result['audio']} (same run, same stream)"]
    for gate, r in result["runs"].items():
        if "skipped" in r:
            out.append(f"  {gate:7s} skipped: {r['skipped']}")
            continue
        line = (f"  {gate:7s} inference {r['inference_s'] * 1e3:8.1f} ms, VAD "
                f"{r['vad_s'] * 1e3:7.1f} ms, all stages {r['stages_s'] * 1e3:8.1f} ms, "
                f"{r['model_calls']} model calls")
        if gate != "off":
            line += (f", open {r['open_fraction']:.0%}; {r['calls_ratio']:.1f}x fewer model "
                     f"calls, inference stage {r['inference_ratio']:.1f}x less than ungated "
                     f"(all stages {r['stages_ratio']:.1f}x)")
        out.append(line)
    return out
