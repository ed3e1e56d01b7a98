"""Decision latency offline, for every label: held-out streams with known onsets, no audio stack.

For each label of the model that can be made here (a word: spoken by held-out voices of
espeak-ng and by flite, whose voices are never in training; a sound class: models.data's
synthesiser), clips go into streams with gaps and noise (models.data.streams, as the training
and evaluation streams are made). Each stream runs through the live engine with the card's gate
(models.tuning.record), is smoothed with the card's smoothing, and for every true event the
decision latency is where the smoothed posterior of its label first reaches threshold_on, from
the event's true onset (models.tuning.decision_latencies: the decision counted when the engine
has it, i.e. its frame or window has fully arrived). A word whose label never gets there is a
miss, counted apart. The loopback (bench.loopback) measures the same through a virtual mic.
"""

from __future__ import annotations

import shutil
import zlib
from typing import Any

import numpy as np

from hark.bench.timing import Dist

ESPEAK_VOICES = 6  # held-out espeak-ng voices per word
STREAM_S = 30.0
SPLIT_SEED = 0  # the tree seed whose test split of espeak voices is held out (hark synth's default)


def _held_out_voices() -> list[Any]:
    """Voices no model trained on a seed-0 tree has heard.

    espeak-ng voices in that tree's test split (speaker-disjoint from its training split),
    spread over accents and variants, then every flite voice.
    """
    from hark.models.data.synth_speech import SpeechSetOptions, assign_speakers
    from hark.models.data.tts import espeak_voices, flite_voices

    voices: list[Any] = []
    if shutil.which("espeak-ng"):
        pool = espeak_voices()
        # the same draw generate_speech_commands makes: rng([seed, crc32("speakers")])
        key = zlib.crc32(b"speakers")
        split = assign_speakers([v.speaker for v in pool], SpeechSetOptions().split_fractions,
                                np.random.default_rng([SPLIT_SEED, key]))
        test = sorted((v for v in pool if split[v.speaker] == "test"), key=lambda v: v.voice_id)
        if test:
            idx = np.linspace(0, len(test) - 1, min(ESPEAK_VOICES, len(test))).round()
            voices += [test[int(i)] for i in idx]
    if shutil.which("flite"):
        voices += [v for v in flite_voices() if v.name != "kal"]  # kal16 is kal at 16 kHz
    return voices


def label_clips(card: Any, per_label: int, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Clips of every event label that can be synthesised here (words, sound classes)."""
    from hark.models.data.sound_events import EVENT_CLASSES, synth_event
    from hark.models.data.tts import synth_clip

    rate = card.sample_rate
    rng = np.random.default_rng(seed)
    voices: list[Any] | None = None
    out: dict[str, list[np.ndarray]] = {}
    for label in card.event_labels:
        if label in EVENT_CLASSES:
            out[label] = [synth_event(label, rng, rate) for _ in range(per_label)]
        elif label.replace("'", "").isalpha() and not label.startswith("_"):
            if voices is None:
                voices = _held_out_voices()
            if voices:
                out[label] = [synth_clip(label, v, rate) for v in voices[:per_label]]
    return out


def measure(model: Any, n_streams: int = 4, per_label: int = 10, seed: int = 0
            ) -> dict[str, Any]:
    """Decision latency per label and overall on n_streams held-out streams (or why not)."""
    from hark.models.data.streams import SpeechStreamOptions, make_speech_stream
    from hark.models.metrics import EventScores
    from hark.models.tuning import decision_latencies, ready_offset_s, record, smooth

    card = model.card
    try:
        clips = label_clips(card, per_label, seed)
    except (RuntimeError, ValueError, OSError) as e:
        return {"model": card.name, "skipped": f"cannot synthesise the labels: {e}"}
    if not clips:
        return {"model": card.name, "skipped": "no label of this model can be synthesised here "
                "(words need espeak-ng or flite; sound classes models.data's synthesiser)"}
    pool = [(c, lb) for lb, cs in clips.items() for c in cs]
    rng = np.random.default_rng([seed, 14])
    opts = SpeechStreamOptions(duration_s=STREAM_S, sample_rate=card.sample_rate,
                               gap_s=(0.6, 1.5), snr_db_range=(10.0, 30.0))
    ready = ready_offset_s(card)
    spec = card.smoothing
    per_label_s: dict[str, list[float]] = {lb: [] for lb in clips}
    missed: dict[str, int] = {lb: 0 for lb in clips}
    scores = EventScores()
    for _ in range(n_streams):
        stream = make_speech_stream(pool, rng, opts)
        rec = record(model, stream.audio, stream.events)
        events, smoothed = smooth(model, rec, spec)
        scores.add_file(rec.reference, events, rec.duration_s)
        for lb, d in decision_latencies(rec.times, smoothed, card.labels, rec.reference,
                                        spec.threshold_on, ready):
            if d is None:
                missed[lb] += 1
            else:
                per_label_s[lb].append(d)
    every = [d for v in per_label_s.values() for d in v]
    overall = Dist.of(every)
    algo = card.algorithmic_latency_s()
    return {
        "model": card.name,
        "what": "held-out streams (words: espeak-ng test-split voices and flite; sounds: "
        "models.data synth), card's gate and smoothing; latency = first decision with the "
        "smoothed posterior of the true label >= threshold_on, minus the true onset",
        "streams": n_streams,
        "stream_s": STREAM_S,
        "threshold_on": spec.threshold_on,
        "algorithmic_latency_s": algo,
        "latency_us": overall.to_json(),
        "reached": len(every),
        "missed": int(sum(missed.values())),
        "per_label": {lb: {"latency_us": Dist.of(v).to_json(), "reached": len(v),
                           "missed": missed[lb]} for lb, v in per_label_s.items()},
        "event_f1": round(scores.overall.f1, 4),
        "false_per_min": round(scores.false_per_minute, 3),
        "target_s": algo + 0.080,
        "met": None if not every else bool(overall.p50 / 1e6 <= algo + 0.080),
    }


def format_lines(r: dict[str, Any]) -> list[str]:
    """The text table's lines for one model."""
    if "skipped" in r:
        return [f"  {r['model']}: skipped ({r['skipped']})"]
    d = r["latency_us"]

    def ms(us: float | None) -> str:
        return "-" if us is None else f"{us / 1e3:.0f}"

    lines = [f"  {r['model']}: p50 {ms(d['p50'])} p99 {ms(d['p99'])} ms over {r['reached']} "
             f"events ({r['missed']} never reached threshold_on {r['threshold_on']:g}); "
             f"algorithmic {r['algorithmic_latency_s'] * 1e3:.0f} ms; event F1 {r['event_f1']}, "
             f"{r['false_per_min']} false/min"]
    cells = [f"{lb} {ms(v['latency_us']['p50'])}" + (f" ({v['missed']} missed)" if v["missed"]
                                                      else "")
             for lb, v in r["per_label"].items()]
    for i in range(0, len(cells), 6):
        lines.append("    p50 ms: " + ", ".join(cells[i : i + 6]))
    return lines
