"""`hark train`, `hark eval`, `hark synth`: models from synthetic data, and their scores.

Nothing heavy is imported here: TensorFlow loads only when `hark train` runs, and `hark eval`
never needs it (it scores the exported ONNX model through the live engine).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from hark.live.cli_options import add_fields, values
from hark.live.errors import HarkError
from hark.live.workers import Workers, add_pool_args, pool_options
from hark.models.options import TrainOptions

TRAIN_EXAMPLES = """\
examples:
  hark train --arch rnn --synth 400 --seed 1 --out out/commands
        the default `commands` model: per-frame LSTM on 16 kHz log-mel, words among fillers
  hark train --arch cnn --synth 400 --seed 1 --out out/commands-cnn
        the Kaggle light-weight CNN on the 8 kHz log-spectrogram, 12 classes, 1 s windows
  hark train --arch rnn --task sounds --synth 600 --seed 1 --out out/sounds
        per-frame multi-label clap / whistle / beep / knock / speech
  hark train --arch wave1d --data ~/speech_commands --epochs 20 --out out/wave1d
        a real Speech Commands folder (testing_list.txt / validation_list.txt are honoured)
  hark train --arch rnn --synth 100 --set units=[128] --set cell=gru --out out/gru
        config fields of the architecture (see models/architectures.py)
  hark train --frontend embedding --arch dense --data data/mywords --out out/mywords
        a small head on the frozen speech-embedding backbone: minutes, not hours
then: hark replay --model OUT/NAME.onnx talk.wav
"""

EVAL_EXAMPLES = """\
examples:
  hark eval --model commands-cnn --data data/flite
        12-class accuracy, per-class P/R/F1, confusion matrix on a Speech Commands folder
  hark eval --model commands --audio talk.wav --annotations talk.tsv --json res.json
        replay through the live engine; event-based P/R/F1 (sed_eval collars), flips/min
  hark eval --model sounds --audio out/sounds/eval/test-sounds-10db
        every X.wav with an X.tsv beside it in a folder
  hark eval --model commands --negatives talk/ --audio eval/words --jobs 2 --json fa.json
        false accepts per hour over two worker processes (the same figures as one)
  hark eval --model commands --negatives talk/ --ray HEAD:6379
        the files over a Ray cluster (pip install 'hark[cluster]'; see README)
"""

SYNTH_EXAMPLES = """\
examples:
  hark synth tree data/espeak --n-per-word 400 --seed 1       espeak-ng Speech Commands tree
  hark synth tree data/flite --engine flite --n-per-word 60 --all-test   held out
  hark synth speech eval/words --tree data/espeak --n 20       test-split word streams + truth
  hark synth speech eval/fillers --tree data/espeak --unknown-only
  hark synth sounds eval/sounds-10db --n 40 --snr 10 10        sound-event streams + truth
  hark synth demo models/bundled/demo.wav                      the bundled demo recording
"""


def register(subparsers: Any) -> None:
    """Add train, eval and synth to the `hark` command."""
    fmt = argparse.RawDescriptionHelpFormatter
    t = subparsers.add_parser(
        "train",
        help="train an architecture on synthetic or given data, export it to ONNX",
        description="Train a Keras model (early stopping on validation loss, seeded), export it "
        "to OUT/NAME.onnx + OUT/NAME.json, tune its smoothing on validation data and score it on "
        "held-out test data (reports in OUT/report/).",
        epilog=TRAIN_EXAMPLES,
        formatter_class=fmt,
    )
    t.add_argument("--arch", required=True,
                   choices=("cnn", "rnn", "wave1d", "fusion", "wavception", "lr", "dense",
                            "conv"),
                   help="cnn: 2-D CNN on 99x81 8 kHz spectrograms; rnn: per-frame LSTM/GRU; "
                   "wave1d: 1-D CNN on raw 16 kHz audio; fusion: CNN + LSTM; wavception: "
                   "1-D Inception; with --frontend embedding, a head over the last 8 speech "
                   "embeddings: lr (logistic regression), dense (one hidden layer), conv")
    t.add_argument("--task", choices=("commands", "sounds"), default="commands",
                   help="commands: 10 words + silence + unknown (default); sounds: multi-label "
                   "sound events (rnn only)")
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, metavar="DIR",
                     help="a Speech Commands folder (sounds: a folder of X.wav + X.tsv streams)")
    src.add_argument("--synth", type=int, metavar="N",
                     help="synthesise: N espeak-ng clips per command word (sounds: N streams "
                     "per epoch)")
    t.add_argument("--out", type=Path, default=None, help="output folder (default out/NAME)")
    t.add_argument("--name", default=None, help="model name (default: commands, sounds, "
                   "commands-cnn, commands-ARCH)")
    t.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="architecture config field (JSON value), e.g. units=[128,64]")
    # the training options, generated from TrainOptions (name, type, default)
    train_flags = add_fields(t, TrainOptions, [
        "epochs", "seed", "batch_size", "patience", ("learning_rate", "--lr"), "threads",
        "seq_frames", "target_delay_ms", "target_tail_ms", "onset_crops", "spec_augment",
        "streams_per_epoch", "freq_warp", "tilt_db", "channels", "rir_cache", "negatives",
        "negative_share", "speech_tree", "speech_real", "speech_clips", "music", "music_share",
        "val_streams", "tune_streams",
        "test_streams", "test_stream_s", "tune", "prefetch", "max_minutes",
        "init_from", "frontend", "windows_per_clip", "sources", "extra_data", "embed_cache",
        "val_voices", "head_streams"],
        choices={"frontend": ("default", "embedding")})
    t.set_defaults(func=run_train, train_flags=train_flags)

    e = subparsers.add_parser(
        "eval",
        help="score a model on clips (accuracy) or on recordings with truth (event F1)",
        description="Score an exported model (bundled name or .onnx path) through the live "
        "engine. --data: clip accuracy on a Speech Commands folder (testing_list.txt when "
        "present, else every clip). --audio/--annotations: event-based precision, recall, F1 "
        "(onset collar 200 ms, offset collar max(200 ms, 50%% of the event), labels must match) "
        "and label flips per minute.",
        epilog=EVAL_EXAMPLES,
        formatter_class=fmt,
    )
    e.add_argument("--model", default="commands", metavar="NAME|PATH",
                   help="bundled model name or path to a .onnx (default: commands)")
    what = e.add_mutually_exclusive_group(required=False)
    what.add_argument("--data", type=Path, metavar="DIR", help="Speech Commands folder")
    what.add_argument("--audio", nargs="+", metavar="FILE|DIR",
                      help="recordings (or folders of X.wav + X.tsv)")
    e.add_argument("--annotations", nargs="+", metavar="FILE.tsv",
                   help="DCASE truth per recording (default: X.tsv beside X.wav)")
    e.add_argument("--vad", choices=("on", "off", "webrtc", "silero", "compare"), default=None,
                   help="force the speech gate (default: as the card says); webrtc / silero: "
                   "that gate; compare: score recordings with each gate (off, webrtc, silero)")
    e.add_argument("--json", type=Path, metavar="OUT", help="write all figures as JSON")
    e.add_argument("--write-card", metavar="KEY", default=None,
                   help="also store the figures in the model card's evaluation[KEY]")
    e.add_argument("--seed", type=int, default=0, help="seed of the silence clips cut from noise")
    e.add_argument("--negatives", nargs="+", metavar="FILE|DIR",
                   help="long audio without the model's words: false accepts per hour")
    e.add_argument("--det", type=Path, metavar="OUT",
                   help="with --negatives: write the DET curve to OUT.json and OUT.png (misses "
                   "from --audio streams with truth)")
    e.add_argument("--target-fa-per-hour", type=float, metavar="X",
                   help="with --negatives: pick the lowest threshold_on within X false accepts "
                   "per hour (stored in the card with --write-card)")
    e.add_argument("--sweep-floor", type=float, default=0.2,
                   help="lowest threshold the DET sweep replays at (default 0.2)")
    add_pool_args(e)
    e.set_defaults(func=run_eval)

    s = subparsers.add_parser(
        "synth",
        help="write synthetic data sets (speech trees, word streams, sound streams, demo)",
        description="Write seeded synthetic data to disk for training and evaluation.",
        epilog=SYNTH_EXAMPLES,
        formatter_class=fmt,
    )
    ss = s.add_subparsers(dest="what", metavar="WHAT", required=True)
    tree = ss.add_parser("tree", help="a Speech Commands tree (speaker-disjoint splits)")
    tree.add_argument("out", type=Path)
    tree.add_argument("--n-per-word", type=int, default=100)
    tree.add_argument("--engine", action="append", default=None, metavar="NAME[:WEIGHT]",
                      help="espeak-ng, flite or kokoro, with a share of the clips; repeatable "
                      "(default espeak-ng)")
    tree.add_argument("--voices", default="", metavar="V1,V2",
                      help="only these voices (espeak en-us+m3, flite slt, kokoro "
                      "jf_alpha*0.3+jm_kumo)")
    tree.add_argument("--hold-out", action="append", default=[], metavar="ENGINE:VOICE",
                      help="leave this voice's speaker out of the tree (kept for measurement)")
    tree.add_argument("--shifts", type=int, default=0, metavar="N",
                      help="N Praat Change-gender speakers derived from every voice")
    tree.add_argument("--words", default="", metavar="W1,W2",
                      help="your own keywords or phrases instead of the ten commands")
    tree.add_argument("--near-miss", action="store_true",
                      help="add near-miss words (yet, know, light, top, ...) to the fillers")
    tree.add_argument("--seed", type=int, default=0)
    tree.add_argument("--workers", type=int, default=2)
    tree.add_argument("--all-test", action="store_true",
                      help="list every clip as test data (a synthesizer held out of training)")
    sp = ss.add_parser("speech", help="word streams (X.wav + X.tsv) from one split of a tree")
    sp.add_argument("out", type=Path)
    sp.add_argument("--tree", type=Path, required=True)
    sp.add_argument("--split", choices=("train", "validation", "test"), default="test")
    sp.add_argument("--n", type=int, default=20)
    sp.add_argument("--seconds", type=float, default=60.0)
    sp.add_argument("--unknown-only", action="store_true",
                    help="only unknown words (nothing a command model should report)")
    sp.add_argument("--snr", type=float, nargs=2, default=(5.0, 30.0), metavar=("LO", "HI"))
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--room", type=Path, default=None, metavar="CACHE",
                    help="play every stream through a simulated room (RT60 0.2-1.0 s) of the "
                    "evaluation bank, simulated once into CACHE (never the training rooms)")
    sp.add_argument("--music", type=Path, default=None, metavar="DIR",
                    help="lay a stretch of one recording of DIR (e.g. `hark synth music`'s "
                    "test part) under every stream, the words --snr above it")
    so = ss.add_parser("sounds", help="sound-event streams (X.wav + X.tsv)")
    so.add_argument("out", type=Path)
    so.add_argument("--n", type=int, default=40)
    so.add_argument("--seconds", type=float, default=10.0)
    so.add_argument("--snr", type=float, nargs=2, default=(10.0, 10.0), metavar=("LO", "HI"))
    so.add_argument("--seed", type=int, default=0)
    so.add_argument("--speech-tree", type=Path, default=None, metavar="TREE",
                    help="speech events from this tree's word clips (default: espeak-ng words)")
    so.add_argument("--split", choices=("train", "validation", "test"), default="test",
                    help="the --speech-tree split (default test)")
    so.add_argument("--speech-real", type=Path, default=None, metavar="DIR",
                    help="speech events from 0.4-3 s pieces of the real speech in DIR (with "
                    "--speech-tree: half of them)")
    so.add_argument("--music", type=Path, default=None, metavar="DIR",
                    help="a stretch of one recording of DIR under every stream (-6..+20 dB "
                    "over the coloured noise; the events --snr above both)")
    so.add_argument("--room", type=Path, default=None, metavar="CACHE",
                    help="every stream through a room of the evaluation bank (as synth speech)")
    mu = ss.add_parser("music", help="background music: Debian's asterisk-moh-opsound-wav "
                       "(fetched with apt-get download, not installed) as OUT/train (4 tracks) "
                       "and OUT/test (1 track kept out of training)")
    mu.add_argument("out", type=Path)
    mu.add_argument("--cache", type=Path, default=Path("cache"),
                    help="where the package is unpacked (default cache)")
    pr = ss.add_parser("prompts", help="real speech without command words: Debian's Asterisk "
                       "prompts (es, fr, it, ru; fetched with apt-get download, not installed)")
    pr.add_argument("out", type=Path, help="folder; one sub-folder of WAVs per language")
    pr.add_argument("--language", default="es,fr,it",
                    help="comma-separated (default es,fr,it; ru is hark's held-out language; "
                    "English is reserved for independent evaluation and refused)")
    pr.add_argument("--cache", type=Path, default=Path("cache"),
                    help="where the packages are unpacked (default cache)")
    de = ss.add_parser("demo", help="the demo recording (words and sounds) + its truth tsv")
    de.add_argument("out", type=Path, help="path of the .wav (the .tsv goes beside it)")
    de.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=run_synth)

    from hark.models import retune

    retune.register(subparsers)


def _parse_sets(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise HarkError(f"--set takes FIELD=VALUE, not {item!r}")
        key, value = (x.strip() for x in item.split("=", 1))
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value  # a bare word such as lstm / gru
    return out


def run_train(args: argparse.Namespace) -> int:
    """The `hark train` command."""
    from hark.models.training import train

    opts = TrainOptions(
        arch=args.arch,
        out=Path("."),  # replaced below once the name is known
        task=args.task,
        data=args.data,
        synth=args.synth,
        name=args.name,
        overrides=_parse_sets(args.set),
        **values(args, args.train_flags),
    )
    import dataclasses

    opts = dataclasses.replace(opts, out=args.out or Path("out") / opts.model_name)
    if args.data is not None and not args.data.is_dir():
        raise HarkError(f"--data {args.data}: no such folder")
    try:
        train(opts, log=lambda m: print(m, flush=True))
    except (ValueError, FileExistsError, FileNotFoundError) as e:
        raise HarkError(str(e)) from None
    return 0


def run_eval(args: argparse.Namespace) -> int:
    """The `hark eval` command."""
    from hark.live.model import OnnxModel
    from hark.models.evaluation import evaluate_clips, evaluate_streams, stream_pairs
    from hark.models.reports import format_events, write_json

    pool = pool_options(args)
    model = OnnxModel.load(args.model)
    vad = None if args.vad in (None, "compare") else args.vad != "off"
    vad_kind = args.vad if args.vad in ("webrtc", "silero") else None
    if args.negatives:
        return _run_negatives(args, model, vad, pool)
    if args.data is None and args.audio is None:
        raise HarkError("give --data DIR, --audio FILE|DIR or --negatives FILE|DIR")
    if args.det is not None or args.target_fa_per_hour is not None:
        raise HarkError("--det and --target-fa-per-hour need --negatives FILE|DIR")
    try:
        if args.data is not None:
            if not args.data.is_dir():
                raise HarkError(f"--data {args.data}: no such folder")
            with Workers([model], pool) as workers:
                res = evaluate_clips(model, args.data, seed=args.seed, workers=workers)
            print(f"{model.name} on {args.data} ({res.split} clips)")
            print(res.report.format())
            if res.format_sources():
                print("per source:\n" + res.format_sources())
            result = res.to_json()
        else:
            if args.annotations is None and any(Path(a).is_file() for a in args.audio):
                missing = [a for a in args.audio
                           if Path(a).is_file() and not Path(a).with_suffix(".tsv").is_file()]
                if missing:
                    raise HarkError(f"no truth for {missing[0]}: give --annotations FILE.tsv")
            pairs = stream_pairs(args.audio, args.annotations)
            if not pairs:
                raise HarkError("no recordings with truth found")
            for a, t in pairs:
                if not Path(a).is_file():
                    raise HarkError(f"{a}: no such file")
                if not Path(t).is_file():
                    raise HarkError(f"{t}: no such file")
            if args.vad == "compare":
                from hark.models.gate_eval import compare_gates, format_gates

                with Workers([model], pool) as workers:
                    result = {"gates": compare_gates(model, pairs, workers)}
                print(f"{model.name} on {len(pairs)} recording(s), per speech gate")
                print(format_gates(result["gates"]))
            else:
                with Workers([model], pool) as workers:
                    ev = evaluate_streams(model, pairs, vad=vad, vad_kind=vad_kind,
                                          workers=workers)
                result = ev.to_json()
                print(f"{model.name} on {len(pairs)} recording(s)")
                print(format_events(result))
    except (ValueError, FileNotFoundError) as e:
        raise HarkError(str(e)) from None
    result = {"model": model.name, "model_path": str(model.path), **result}
    if args.json is not None:
        write_json(args.json, result)
    if args.write_card:
        _write_card(model.path, args.write_card, result)
    return 0


def _negatives_per_gate(args: argparse.Namespace, model: Any, files: list[Path],
                        workers: Any) -> int:
    """`--negatives ... --vad compare`: false accepts per hour with each speech gate."""
    from hark.models.gate_eval import false_accepts_per_gate, format_false_accepts_per_gate
    from hark.models.reports import write_json

    gates = false_accepts_per_gate(model, files, workers)
    print(f"{model.name} on {len(files)} negative file(s), per speech gate "
          f"(threshold_on {model.card.smoothing.threshold_on:g})")
    print(format_false_accepts_per_gate(gates))
    result = {"model": model.name, "model_path": str(model.path),
              "negatives": [str(n) for n in args.negatives], "gates": gates}
    if args.json is not None:
        write_json(args.json, result)
    if args.write_card:
        _write_card(model.path, args.write_card, result)
    return 0


def _run_negatives(args: argparse.Namespace, model: Any, vad: bool | None, pool: Any) -> int:
    """False accepts per hour on negative audio; DET curve and operating point on request."""
    import dataclasses

    from hark.live.card import load_card
    from hark.models import false_accepts as F
    from hark.models.evaluation import stream_pairs
    from hark.models.reports import write_json

    if args.data is not None:
        raise HarkError("--negatives goes with --audio streams (for misses), not --data")
    if not 0.0 < args.sweep_floor <= 1.0:
        raise HarkError("--sweep-floor must be in (0, 1]")
    workers = None
    try:
        files = F.negative_files(args.negatives)
        sweeping = args.det is not None or args.target_fa_per_hour is not None
        low = None
        if sweeping:
            low = F.with_threshold(model, min(args.sweep_floor, model.card.smoothing.threshold_on))
        workers = Workers([model] + ([low] if low is not None else []), pool)
        kind = args.vad if args.vad in ("webrtc", "silero") else None
        if args.vad == "compare":
            return _negatives_per_gate(args, model, files, workers)
        card_fa = F.false_accepts(model, files, vad, workers, kind)
        result: dict[str, Any] = {"model": model.name, "model_path": str(model.path),
                                  "negatives": [str(n) for n in args.negatives],
                                  **card_fa.to_json()}
        print(f"{model.name} on {len(files)} negative file(s), {card_fa.hours:.3f} h: "
              f"{len(card_fa.events)} false accepts, {card_fa.per_hour():.2f} per hour "
              f"(threshold_on {model.card.smoothing.threshold_on:g})")
        for label, n in result["per_label"].items():
            print(f"  {label}: {n}")
        if low is not None:
            sweep = F.false_accepts(low, files, vad, workers, kind)
            pos = None
            if args.audio:
                pos = F.positives(low, stream_pairs(args.audio, args.annotations), vad, workers,
                                  kind)
            points = F.det_curve(sweep, pos, low.card.smoothing.threshold_on)
            if args.det is not None:
                png = args.det.with_suffix(".png")
                F.write_det(points, args.det.with_suffix(".json"), png, f"{model.name} DET")
                print(f"DET curve: {args.det.with_suffix('.json')} and {png}")
            if args.target_fa_per_hour is not None:
                best = F.pick_threshold(points, args.target_fa_per_hour)
                result["operating_point"] = dataclasses.asdict(best)
                miss = "" if pos is None else f", miss rate {best.miss_rate:.3f}"
                print(f"operating point for <= {args.target_fa_per_hour:g} FA/h: threshold_on "
                      f"{best.threshold:.3f} ({best.fa_per_hour:.2f} FA/h{miss})")
                if args.write_card:
                    card_path = model.path.with_suffix(".json")
                    card = load_card(card_path)
                    tuned = F.with_threshold(model, best.threshold).card.smoothing
                    dataclasses.replace(card, smoothing=tuned).save(card_path)
                    print(f"threshold_on {best.threshold:.3f} written to {card_path}",
                          file=sys.stderr)
    except (ValueError, FileNotFoundError) as e:
        raise HarkError(str(e)) from None
    finally:
        if workers is not None:
            workers.close(abort=sys.exc_info()[0] is not None)
    if args.json is not None:
        write_json(args.json, result)
    if args.write_card:
        _write_card(model.path, args.write_card, result)
    return 0


def _write_card(onnx_path: Path, key: str, result: dict[str, Any]) -> None:
    import dataclasses

    from hark.live.card import load_card

    card_path = onnx_path.with_suffix(".json")
    card = load_card(card_path)
    brief = {k: v for k, v in result.items() if k not in ("per_file", "confusion", "labels")}
    ev = dict(card.evaluation)
    ev[key] = brief
    dataclasses.replace(card, evaluation=ev).save(card_path)
    print(f"stored as evaluation[{key!r}] in {card_path}", file=sys.stderr)


def run_synth(args: argparse.Namespace) -> int:
    """The `hark synth` command."""
    from hark.models import synth

    try:
        if args.what == "tree":
            from hark.models.data.tts import parse_engine

            engines = tuple(parse_engine(e) for e in (args.engine or ["espeak"]))
            src = synth.TreeSources(
                engines=engines,
                voices=tuple(v.strip() for v in args.voices.split(",") if v.strip()),
                hold_out=tuple(args.hold_out),
                shifts=args.shifts,
                words=tuple(w.strip() for w in args.words.split(",") if w.strip()),
                near_miss=args.near_miss,
            )
            root = synth.ensure_tree(args.out, args.n_per_word, seed=args.seed,
                                     engine=engines[0][0], workers=args.workers,
                                     all_test=args.all_test, sources=src)
            print(f"Speech Commands tree in {root}")
        elif args.what == "speech":
            files = synth.write_speech_streams(
                args.tree, args.out, args.n, split=args.split, duration_s=args.seconds,
                seed=args.seed, unknown_only=args.unknown_only, snr_db_range=tuple(args.snr),
                room_cache=args.room, music=args.music)
            print(f"{len(files)} streams in {args.out}")
        elif args.what == "sounds":
            files = synth.write_sound_streams(
                args.out, args.n, seed=args.seed, duration_s=args.seconds,
                snr_db=tuple(args.snr), speech_tree=args.speech_tree, split=args.split,
                speech_real=args.speech_real, music=args.music, room_cache=args.room)
            print(f"{len(files)} streams in {args.out}")
        elif args.what == "music":
            from hark.models.data.real_speech import MUSIC_PARTS, music_files

            for part in MUSIC_PARTS:
                dest = args.out / part
                dest.mkdir(parents=True, exist_ok=True)
                files = music_files(args.cache, part)
                for f in files:
                    shutil.copyfile(f, dest / f.name)
                print(f"{len(files)} music tracks in {dest}")
        elif args.what == "prompts":
            from hark.models.data.real_speech import prompt_files

            for lang in (x.strip() for x in args.language.split(",") if x.strip()):
                dest = args.out / lang
                dest.mkdir(parents=True, exist_ok=True)
                import soundfile as sf

                files = prompt_files(lang, args.cache)
                kept = [f for f in files if sf.info(str(f)).frames > 0]  # a few are empty
                for i, f in enumerate(kept):
                    shutil.copyfile(f, dest / f"{i:05d}_{f.name}")
                print(f"{len(kept)} {lang} prompts in {dest} ({len(files) - len(kept)} empty "
                      "files left out)")
        else:
            from hark.models.demo import write_demo

            wav, tsv = write_demo(args.out, seed=args.seed)
            print(f"demo recording {wav} with truth {tsv}")
    except (ValueError, FileExistsError, FileNotFoundError, RuntimeError) as e:
        raise HarkError(str(e)) from None
    return 0
