"""`hark enroll`: teach an embedding model your own voice, or new words, in seconds.

Takes come from the microphone (prompted: the terminal UI with a level meter and r / s / q keys,
or prompts on stderr with --no-ui) or from a folder of recordings (DIR/<word>/*.wav). The fit,
the writing and the checks are models.enroll. Nothing heavy at import: no TensorFlow, ever.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from hark.live.errors import HarkError

EXAMPLES = """\
examples:
  hark enroll
        say each word of the bundled commands-emb 3 times (+1 held out) into the default
        microphone; writes ./commands-emb-enrolled.onnx + .json
  hark enroll --words "lights on,lights off" --takes 3
        a model for new words from your takes plus synthetic speech of them
  hark enroll --model out/m/m.onnx --from takes/
        takes from recordings: takes/<word>/*.wav, sorted by name, the last of each held out;
        writes out/m/m-enrolled.onnx beside the old model (--out PATH.onnx elsewhere)
  hark enroll --words "yes please,no thanks" --device pulse --no-ui
        prompts on stderr instead of the terminal UI (pipes and scripts)
then: hark mic --model commands-emb-enrolled.onnx
"""
DEFAULT_MODEL = "commands-emb"  # the bundled embedding model, once it ships


def register(subparsers: Any) -> None:
    """Add `enroll` to the `hark` command."""
    p = subparsers.add_parser(
        "enroll",
        help="teach an embedding model your voice (or new words) from a few takes, in seconds",
        description="Record a few takes of each word (microphone or a folder), refit the head "
        "of an embedding model (hark train --frontend embedding) on them plus its stored "
        "synthetic windows (new words: plus synthetic speech of them), and write a new model + "
        "card beside the old one. The last take of each word is held out: the before/after "
        "table scores it with the old and the new model. No TensorFlow needed.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default=None, metavar="NAME|PATH",
                   help=f"the embedding model to start from (default: the bundled "
                   f"{DEFAULT_MODEL} when installed)")
    p.add_argument("--words", default=None, metavar='"A,B"',
                   help="new words (comma-separated): a model for exactly these words plus "
                   "_silence_ and _unknown_ (default: the model's own words)")
    p.add_argument("--takes", type=int, default=3, metavar="N",
                   help="takes per word to train on; one more is recorded and held out "
                   "(default 3)")
    p.add_argument("--from", dest="from_dir", type=Path, default=None, metavar="DIR",
                   help="takes from recordings: DIR/<word>/*.wav (a word's folder may use _ "
                   "or - for spaces), sorted by name, the last held out")
    p.add_argument("--device", default=None, metavar="INDEX|NAME",
                   help="input device (see hark devices; default: the default input)")
    p.add_argument("--no-ui", action="store_true",
                   help="prompts on stderr, takes in sequence (also without a terminal)")
    p.add_argument("--out", type=Path, default=None, metavar="PATH.onnx",
                   help="where to write the model (default: NAME-enrolled.onnx beside a model "
                   "file, ./NAME-enrolled.onnx for a bundled name); never the base model")
    p.add_argument("--wait-s", type=float, default=15.0, metavar="S",
                   help="--no-ui: seconds to wait for a take before giving up (default 15)")
    p.add_argument("--no-synth", action="store_true",
                   help="new words from your takes only (no synthetic speech)")
    p.add_argument("--seed", type=int, default=0, help="seed of the placement and noise")
    p.set_defaults(func=run_enroll)


def parse_words(text: str) -> tuple[str, ...]:
    """'lights on, lights off' -> ('lights on', 'lights off').

    Refuses duplicates, the names of the background classes and an empty list.
    """
    from hark.models.enroll import SILENCE, UNKNOWN, EnrollError

    words = tuple(w.strip() for w in text.split(",") if w.strip())
    if not words:
        raise EnrollError(f"--words {text!r}: no words (comma-separated, e.g. 'lights on,lights "
                          "off')")
    if len(set(words)) != len(words):
        raise EnrollError(f"--words {text!r}: a word is listed twice")
    bad = [w for w in words if w in (SILENCE, UNKNOWN)]
    if bad:
        raise EnrollError(f"--words: {bad[0]} is a background class, not a word")
    return words


def word_folder(root: Path, word: str) -> Path | None:
    """DIR/<word>, or the same with '_' or '-' for spaces."""
    for name in (word, word.replace(" ", "_"), word.replace(" ", "-")):
        if (root / name).is_dir():
            return root / name
    return None


def takes_from_folder(root: Path, words: tuple[str, ...], need_all: bool) -> list[Any]:
    """Every DIR/<word>/*.wav as a Take, sorted by name (the last is the held-out one).

    need_all: every word must have a folder (new words); else the words found are enrolled.
    """
    from hark.models.data.audio import read_audio
    from hark.models.enroll import RATE, EnrollError, Take

    if not root.is_dir():
        raise EnrollError(f"--from {root}: not a folder")
    takes = []
    missing = []
    for w in words:
        folder = word_folder(root, w)
        files = sorted(folder.glob("*.wav")) if folder is not None else []
        if not files:
            missing.append(w)
            continue
        for f in files:
            try:
                audio = read_audio(f, RATE)
            except Exception as e:  # noqa: BLE001 - soundfile's errors have no common base
                raise EnrollError(f"{f}: cannot read it as audio ({e})") from None
            takes.append(Take(w, audio, str(f)))
    if missing and (need_all or len(missing) == len(words)):
        raise EnrollError(f"--from {root}: no takes of {', '.join(map(repr, missing))} (expected "
                          f"{root}/<word>/*.wav)")
    return takes


def takes_from_mic(args: argparse.Namespace, words: tuple[str, ...]) -> list[Any] | None:
    """Prompt for each word (takes + 1 held out); None when the user quit."""
    from hark.live.sources import MicSource
    from hark.live.takes import Prompt, TakeSession, record
    from hark.models.enroll import RATE, Take

    session = TakeSession(words, args.takes + 1)
    # 30 ms blocks: the detector's frame; the queue holds 15 s while the UI starts
    src = MicSource(RATE, device=args.device, block_ms=30.0)
    ui = not args.no_ui and sys.stdout.isatty() and sys.stdin.isatty()
    if ui:
        from hark.live.ui.enroll import run_enroll_ui

        code, error = run_enroll_ui(session, src, RATE)
        if error is not None:
            raise HarkError(error)
        if code != 0:
            return None
    else:
        def prompt(p: Prompt) -> None:
            print(f"hark: {p.text()}", file=sys.stderr, flush=True)

        def kept(p: Prompt, seconds: float) -> None:
            print(f"hark: got take {p.take}/{p.takes} of {p.word!r} ({seconds:.1f} s)",
                  file=sys.stderr, flush=True)

        print(f"hark: listening on {src.name}", file=sys.stderr, flush=True)
        with src:
            record(session, src.blocks(), RATE, on_prompt=prompt, on_take=kept,
                   wait_s=args.wait_s)
    recorded = session.takes()
    print(f"hark: {len(recorded)} takes of {len({t.word for t in recorded})} words recorded"
          + (f"; skipped {', '.join(map(repr, session.skipped))}" if session.skipped else ""),
          file=sys.stderr, flush=True)
    return [Take(t.word, t.audio, f"mic {t.word!r} take {t.take}") for t in recorded]


def run_enroll(args: argparse.Namespace) -> int:
    from hark.live.model import ModelError, OnnxModel, bundled_names, resolve_model
    from hark.models.enroll import (
        EnrollError,
        EnrollOptions,
        check_base,
        default_output,
        enroll,
        load_enroll_set,
    )

    t0 = time.perf_counter()
    if args.takes < 1:
        raise EnrollError("--takes must be at least 1 (one more is recorded and held out)")
    spec = args.model
    if spec is None:
        if DEFAULT_MODEL not in bundled_names():
            raise ModelError(f"no bundled embedding model ({DEFAULT_MODEL}) is installed yet: "
                             "give --model PATH.onnx (a model of hark train --frontend embedding)")
        spec = DEFAULT_MODEL
    onnx_path, _ = resolve_model(spec)
    base = OnnxModel.load(spec)
    check_base(base)
    load_enroll_set(base)  # before any take is recorded: fail now, not after the user spoke
    new_words = parse_words(args.words) if args.words is not None else None
    words = new_words if new_words is not None else base.card.event_labels
    bundled = onnx_path.parent.resolve() == _bundled_dir().resolve()
    out = args.out if args.out is not None else default_output(spec, onnx_path, bundled)
    if out.suffix != ".onnx":
        raise EnrollError(f"--out {out}: give a NAME.onnx path")
    if out.resolve() == onnx_path.resolve():
        raise EnrollError(f"--out {out} is the base model: it is never overwritten")

    if args.from_dir is not None:
        takes = takes_from_folder(args.from_dir, words, need_all=new_words is not None)
    else:
        got = takes_from_mic(args, words)
        if got is None:
            print("hark: enroll quit: nothing written", file=sys.stderr)
            return 1
        takes = got

    def log(line: str) -> None:
        print(f"hark: {line}", file=sys.stderr, flush=True)

    opts = EnrollOptions(words=new_words, synthesize=not args.no_synth, seed=args.seed)
    result = enroll(base, takes, out, opts, log)
    print(result.table())
    print(f"wrote {result.onnx_path} + {result.card_path.name} (fit and checks "
          f"{result.seconds:.1f} s, {time.perf_counter() - t0:.1f} s in all); try it: "
          f"hark mic --model {result.onnx_path}")
    return 0


def _bundled_dir() -> Path:
    from hark.live.model import bundled_dir

    return bundled_dir()
