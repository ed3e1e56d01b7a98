"""How well `hark enroll` learns a voice: accuracy on a held-out take after N takes per word.

The users are the voices held out of all training (flite slt, the Kokoro blend; models.data.
user_takes), each saying every word N + 1 times with a different speed and pitch per take. For
each voice and word set the enrolment runs once per rotation: take r of every word is held out
and the other N are the takes (r = N + 1 is `hark enroll`'s own "the last take"), so each
figure is over words x rotations held-out takes. Printed, never asserted: this is a measurement
(issue 24 item 5's target: >= 0.95 with 3 takes), not a test, and nothing here tunes anything.

    .venv/bin/python scripts/enroll_accuracy.py --model out/commands-emb/commands-emb.onnx

(a) the model's own words (base accuracy before, enrolled after); (b) new words (--new-words),
which the base does not have: after only. Clip accuracy is classify_clip's decision on each
held-out take (hark eval's rule for window models); the stream columns replay each rotation's
held-out takes one after another through the enrolled model as `hark replay` would (its gate
and smoothing, the base's): words found, and false events per minute of that stream.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the hark command runs (hark/cli.py)

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from hark.live.model import OnnxModel  # noqa: E402
from hark.models.data.user_takes import (  # noqa: E402
    HELD_OUT_STAND_INS,
    STAND_INS,
    TakeStyle,
    user_takes,
)
from hark.models.enroll import RATE, EnrollOptions, Take, enroll  # noqa: E402

NEW_WORDS = ("lights on", "lights off", "music", "pause", "next song", "volume up",
             "volume down", "hello", "goodbye", "weather")


@dataclass
class Figure:
    """One voice x word set: held-out takes right / scored, and the wall time per enrolment."""

    voice: str
    words: str
    n_words: int
    takes: int
    before_right: int = 0
    before_n: int = 0
    after_right: int = 0
    after_n: int = 0
    seconds: float = 0.0
    runs: int = 0
    stream_found: int = 0
    stream_false: int = 0
    stream_s: float = 0.0
    base_found: int = 0
    base_false: int = 0

    def row(self) -> str:
        before = f"{self.before_right / self.before_n:.3f}" if self.before_n else "-"
        per_min = 60 / max(self.stream_s, 1e-9)
        base = (f"{self.base_found:>3}/{self.after_n:<3} {per_min * self.base_false:6.1f}"
                if self.before_n else f"{'-':>7} {'-':>6}")
        return (f"{self.voice:<13} {self.words:<14} {self.n_words:>5} {self.takes:>5}  "
                f"{before:>6}  {self.after_right / self.after_n:.3f} ({self.after_right}/"
                f"{self.after_n})  {base}  {self.stream_found:>3}/{self.after_n:<3} "
                f"{per_min * self.stream_false:6.1f}  {self.seconds / self.runs:6.1f} s")


def stream_check(model_path: Path, held: list[tuple[str, np.ndarray]], gap_s: float = 0.5,
                 wav: Path | None = None) -> tuple[int, int, float]:
    """The held-out takes in a row, replayed as `hark replay` runs: (found, false events, s).

    gap_s of silence between takes; the model's own card (gate, smoothing).

    Found: an event with the take's word that overlaps the take's speech (a window model's
    decisions are stamped at the window's centre); every other event is false.
    """
    from hark.live.utterance import speech_span
    from hark.models.evaluation import replay_events

    gap = np.zeros(int(gap_s * RATE), np.float32)
    parts, truth, t = [gap], [], gap.size
    for word, audio in held:
        span = speech_span(audio) or (0, audio.size)
        truth.append((word, (t + span[0]) / RATE, (t + span[1]) / RATE))
        parts += [audio, gap]
        t += audio.size + gap.size
    wav = (wav or model_path).with_suffix(".stream.wav")  # beside the enrolled model (temp)
    sf.write(wav, np.concatenate(parts), RATE, subtype="PCM_16")
    events, _, seconds = replay_events(OnnxModel.load(model_path), wav)
    used = set()
    found = 0
    for word, a, b in truth:
        hit = next((i for i, e in enumerate(events) if i not in used and e.label == word
                    and e.onset_s < b and e.offset_s > a), None)
        if hit is not None:
            used.add(hit)
            found += 1
    return found, len(events) - len(used), seconds


def measure(base: OnnxModel, voice: str, words: tuple[str, ...], new: bool, n_takes: int,
            rotations: int, options: EnrollOptions, out: Path, style: TakeStyle) -> Figure:
    """Enrol `words` spoken by `voice` once per rotation; count the held-out takes right."""
    t0 = time.perf_counter()
    clips = user_takes(words, voice, n_takes + 1, style)
    print(f"  {voice}: {len(words)} words x {n_takes + 1} takes synthesised in "
          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    fig = Figure(voice, "new words" if new else "model's words", len(words), n_takes)
    opts = replace(options, words=words if new else None)
    for r in range(rotations):
        held = n_takes - r  # the last take first, then the one before, ...
        order = [k for k in range(n_takes + 1) if k != held] + [held]
        takes = [Take(w, clips[w][k], f"{w}/take{k + 1}") for w in words for k in order]
        res = enroll(base, takes, out / f"{voice}-{int(new)}-{r}.onnx", opts,
                     log=lambda s: None)
        fig.runs += 1
        fig.seconds += res.seconds
        stream = [(w, clips[w][held]) for w in words]
        found, false, secs = stream_check(res.onnx_path, stream)
        fig.stream_found += found
        fig.stream_false += false
        fig.stream_s += secs
        if not new:
            b_found, b_false, _ = stream_check(base.path, stream, wav=res.onnx_path)
            fig.base_found += b_found
            fig.base_false += b_false
        for row in res.rows:
            fig.after_n += 1
            fig.after_right += row.enrolled == row.word
            if row.in_base:
                fig.before_n += 1
                fig.before_right += row.base == row.word
        print(f"  {voice} {fig.words} rotation {r + 1}: held-out take {held + 1}, base "
              f"{res.accuracy_before}, enrolled {res.accuracy_after:.2f}, {res.seconds:.1f} s, "
              f"L2 {res.l2.l2:g}; stream: {found}/{len(words)} found, {false} false",
              file=sys.stderr)
    return fig


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="an embedding model with NAME.enroll.npz")
    p.add_argument("--voices", default=",".join(HELD_OUT_STAND_INS),
                   help=f"stand-in users (of {', '.join(STAND_INS)})")
    p.add_argument("--takes", type=int, default=3, help="takes per word to train on")
    p.add_argument("--rotations", type=int, default=4, help="held-out take rotations (max "
                   "takes + 1)")
    p.add_argument("--new-words", default=",".join(NEW_WORDS))
    p.add_argument("--sets", default="own,new", help="own, new or both")
    p.add_argument("--strips-per-take", type=int, default=EnrollOptions.strips_per_take)
    p.add_argument("--windows-per-strip", type=int, default=EnrollOptions.windows_per_strip)
    p.add_argument("--partial-hops", type=int, default=EnrollOptions.partial_hops)
    p.add_argument("--partial-max", type=float, default=EnrollOptions.partial_max,
                   help="a window with at most this share of a word is _unknown_")
    p.add_argument("--noise-dbfs", type=float, default=TakeStyle.noise_dbfs,
                   help="the room noise of the takes (pink, dBFS RMS)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args()
    base = OnnxModel.load(args.model)
    options = EnrollOptions(strips_per_take=args.strips_per_take,
                            windows_per_strip=args.windows_per_strip,
                            partial_hops=args.partial_hops,
                            partial_max=args.partial_max)
    new_words = tuple(w.strip() for w in args.new_words.split(",") if w.strip())
    figures = []
    with tempfile.TemporaryDirectory(prefix="hark-enroll-acc-") as tmp:
        for voice in (v.strip() for v in args.voices.split(",") if v.strip()):
            for which in args.sets.split(","):
                words = base.card.event_labels if which == "own" else new_words
                figures.append(measure(base, voice, words, which == "new", args.takes,
                                       min(args.rotations, args.takes + 1), options, Path(tmp),
                                       TakeStyle(noise_dbfs=args.noise_dbfs)))
    print(f"base {args.model}; {args.takes} takes per word, held-out take rotated "
          f"{min(args.rotations, args.takes + 1)} times; room noise {args.noise_dbfs:g} dBFS; "
          f"options {options}")
    print(f"{'':<47}{'clip accuracy':<22}{'stream: base':<15}{'stream: enrolled':<17}")
    print(f"{'voice':<13} {'words':<14} {'words':>5} {'takes':>5}  {'before':>6}  after"
          f"{'':<11}  found  false/min  found  false/min  per enrolment")
    for f in figures:
        print(f.row())
    if args.json is not None:
        args.json.write_text(json.dumps([f.__dict__ for f in figures], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
