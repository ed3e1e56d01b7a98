"""`hark tune`: an exported model's speech gate and smoothing, chosen on the user's recordings.

No retraining, and validation recordings only: the same search `hark train` ends with
(models.tuning.choose_gate: every gate candidate, each with its own smoothing search, the gate kept
when it costs at most GATE_F1_ALLOWANCE of event F1), run on folders of X.wav + X.tsv (positives)
and recordings that should give no event (negatives). The tuned model is written to a new folder
(the ONNX copied, the card rewritten): a bundled model's card is package data, never changed in
place.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path
from typing import Any

from hark.live.errors import HarkError

EXAMPLES = """examples:
  hark synth speech val/words --tree data/espeak-1000 --split validation --n 48 --seed 1
  hark synth speech val/unknown --tree data/espeak-1000 --split validation --n 24 --seed 2 \\
      --unknown-only
  hark tune --model commands --audio val/words --negatives val/unknown --out out/tuned
  hark replay --model out/tuned/commands.onnx talk.wav
"""


def register(subparsers: Any) -> None:
    """Add `hark tune` to the `hark` command."""
    t = subparsers.add_parser(
        "tune",
        help="choose a model's VAD gate and smoothing on your validation recordings",
        description="Run every speech-gate candidate (off, webrtcvad modes, silero thresholds, "
        "hangover, pre-roll) through the live engine on validation recordings, search the "
        "smoothing for each, keep the gate when it costs at most 0.01 event F1, and write the "
        "model with the chosen card to OUT (NAME.onnx + NAME.json; the choice and its reason "
        "in the card's evaluation.validation_vad). Never tune on test data.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("--model", required=True, help="bundled name or path to NAME.onnx")
    t.add_argument("--audio", type=Path, nargs="+", required=True, metavar="DIR_OR_WAV",
                   help="validation recordings with truth (X.wav + X.tsv beside it, or folders)")
    t.add_argument("--negatives", type=Path, nargs="*", default=[], metavar="DIR_OR_FILE",
                   help="recordings in which the model should find nothing")
    t.add_argument("--out", type=Path, required=True, help="folder for the tuned NAME.onnx/.json")
    t.add_argument("--gate-off", action="store_true",
                   help="consider only the ungated candidate (smoothing search only)")
    t.set_defaults(func=run_tune)


def run_tune(args: argparse.Namespace) -> int:
    """The `hark tune` command."""
    from hark.live.events import read_events_tsv
    from hark.live.model import OnnxModel
    from hark.models.data.audio import read_audio
    from hark.models.evaluation import stream_pairs
    from hark.models.false_accepts import negative_files
    from hark.models.tuning import VAD_CANDIDATES, choose_gate

    model = OnnxModel.load(args.model)
    card = model.card
    try:
        pairs = stream_pairs(args.audio, None)
    except ValueError as e:
        raise HarkError(str(e)) from None
    if not pairs:
        raise HarkError("--audio: no X.wav with an X.tsv beside it")
    known = set(card.event_labels)
    rate = card.sample_rate
    try:
        pos = [(read_audio(a, rate), [e for e in read_events_tsv(t) if e.label in known])
               for a, t in pairs]
        neg = ([read_audio(f, rate) for f in negative_files(args.negatives)]
               if args.negatives else [])
    except (OSError, RuntimeError, ValueError) as e:
        raise HarkError(f"cannot read the validation audio: {e}") from None
    if not any(ref for _, ref in pos):
        raise HarkError("--audio: the truth files hold none of the model's labels")
    candidates = [c for c in VAD_CANDIDATES if not c.get("enabled", True)] if args.gate_off \
        else list(VAD_CANDIDATES)

    def log(line: str) -> None:
        print(f"hark tune: {line}", file=sys.stderr, flush=True)

    choice = choose_gate(model, pos, neg, candidates=candidates, log=log)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    onnx = out / f"{card.name}.onnx"
    if model.path.resolve() != onnx.resolve():
        shutil.copyfile(model.path, onnx)
        # a split window CNN's card names its streaming pair in the model's folder: it goes too
        for name in card.streaming_split.files() if card.streaming_split else ():
            shutil.copyfile(model.path.parent / name, out / name)
    ev = dict(card.evaluation)
    ev["validation_smoothing"] = choice.figures
    ev["validation_vad"] = {**choice.to_json(), "positives": len(pos), "negatives": len(neg),
                            "minutes": round(sum(a.size for a, _ in pos) / rate / 60, 2)}
    dataclasses.replace(card, smoothing=choice.smoothing, vad=choice.vad,
                        evaluation=ev).save(onnx.with_suffix(".json"))
    print(f"{onnx}: {choice.why}")
    return 0
