"""`hark mic`, `hark replay`, `hark devices` (serve and client: serve_cli): the command line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hark.live.errors import HarkError
from hark.live.workers import add_pool_args, pool_options

FORMATS = ("jsonl", "csv", "tsv")
MAX_BLOCK_MS = 500  # a longer block only delays every event (and --seconds would overshoot)

REPLAY_EXAMPLES = """\
examples:
  hark replay                              the bundled demo recording, bundled default model
  hark replay talk.wav --format tsv        DCASE-style onset/offset/label rows
  hark replay a.flac b.ogg --out ev.jsonl  several files; events also written to ev.jsonl
  hark replay talk.wav --model sounds --model commands   two models on one stream
  hark replay talk.wav --realtime          paced like a live stream (opens the UI on a terminal)
  hark replay talk.wav --model ./my.onnx   an exported model (my.json beside it)
  sox talk.flac -t wav - | hark replay -   audio on standard input (any format soundfile reads)
  arecord -f S16_LE -r 16000 -t raw | hark replay - --raw-format s16le:16000:1
  hark replay corpus/*.flac --jobs 2 --out ev.jsonl   two worker processes, same output
  hark replay corpus/*.flac --ray HEAD:6379           Ray workers on a cluster ('hark[cluster]')

--out never overwrites an input or an existing audio file. If --out or stdout fails (disk full,
a closed stdout) the other goes on and hark exits 1; a reader that stops early (| head) is not an
error: --out still gets every event.

--jobs / --ray: each worker loads the models once and replays whole files; the events come out
file by file in input order (byte for byte what one process writes), without the UI, --realtime
or stdin. A signal stops it after the last whole file written.
"""

MIC_EXAMPLES = """\
examples:
  hark mic                                 default input device, bundled default model
  hark mic --device 2 --no-ui              device by index, one line per event
  hark mic --device usb --format csv --out events.csv
  hark mic --model sounds --vad off        sound events, no speech gate
  hark mic --seconds 30                    stop by itself after 30 s
"""

DEVICES_EXAMPLES = """\
examples:
  hark devices                             list input devices (index, name, channels, rate)

With no input device at all it says so in one line and exits 2, as hark mic does.
"""


def register(sub: argparse._SubParsersAction) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "replay",
        help="recognise events in audio files, as if they were a live stream",
        description="Replay audio files (wav, flac, ogg; any rate or channel count) through the "
        "live engine and print one line per finished event.",
        epilog=REPLAY_EXAMPLES,
        formatter_class=fmt,
    )
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="audio files (default: the bundled demo recording)")
    p.add_argument("--realtime", action="store_true", help="pace at wall-clock speed")
    p.add_argument("--raw-format", default=None, metavar="KIND:RATE:CH",
                   help="headerless PCM (stdin '-' or .raw files), e.g. s16le:16000:1")
    add_pool_args(p)
    _common(p)
    p.set_defaults(func=run_replay)

    m = sub.add_parser(
        "mic",
        help="recognise events live from a microphone",
        description="Listen to an input device and print one line per finished event.",
        epilog=MIC_EXAMPLES,
        formatter_class=fmt,
    )
    m.add_argument("--device", default=None,
                   help="input device: index or part of its name (see 'hark devices')")
    m.add_argument("--block-ms", type=float, default=10,
                   help=f"audio block size, 1..{MAX_BLOCK_MS} ms (default 10 ms)")
    m.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    _common(m)
    m.set_defaults(func=run_mic)

    d = sub.add_parser("devices", help="list audio input devices",
                       description="List the audio input devices PortAudio can see.",
                       epilog=DEVICES_EXAMPLES, formatter_class=fmt)
    d.set_defaults(func=run_devices)

    from hark.live import serve_cli  # hark serve, hark client (nothing heavy at import)

    serve_cli.register(sub)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", action="append", default=None, metavar="NAME|PATH",
                   help="bundled model name or path to a .onnx with its .json card "
                   "(repeat for several models; default: commands)")
    p.add_argument("--vad", default=None, metavar="off|on|webrtc|silero|0-3",
                   help="speech gate: 'off' for all models, 'on' each card's gate for all, "
                   "'webrtc' / 'silero' that gate for all (silero: pip install --no-deps "
                   "silero-vad), 0-3 sets webrtcvad aggressiveness for gated models")
    p.add_argument("--format", choices=FORMATS, default="jsonl", help="event line format")
    p.add_argument("--out", type=Path, default=None, help="also write events to this file")
    p.add_argument("--no-ui", action="store_true", help="line output even on a terminal")
    p.add_argument("--roll-seconds", type=float, default=10.0, metavar="S",
                   help="seconds of history in the UI's event roll (default 10)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")


@dataclass(frozen=True)
class RunConfig:
    """What the CLI decided from its flags: models, engine options, outputs."""

    models: tuple[str, ...]
    vad: bool | None
    vad_mode: int | None
    fmt: str
    out: Path | None
    threads: int
    roll_seconds: float = 10.0
    block_ms: float = 10.0
    vad_kind: str | None = None  # webrtc | silero: that gate for every model


def parse_vad(text: str | None) -> dict[str, Any]:
    """--vad off|on|webrtc|silero|0-3 as EngineOptions fields (vad, vad_kind, vad_mode)."""
    if text is None:
        return {}
    v = str(text).lower()
    if v in ("off", "on"):
        return {"vad": v == "on"}
    if v in ("webrtc", "silero"):
        if v == "silero":
            from hark.live.silero import model_path

            model_path()  # one clear line now if silero-vad is not installed
        return {"vad_kind": v}
    if v in ("0", "1", "2", "3"):
        return {"vad_mode": int(v)}
    raise HarkError(f"--vad takes off, on, webrtc, silero or 0-3, not {text!r}")


def _config(args: argparse.Namespace) -> RunConfig:
    gate = parse_vad(args.vad)
    if args.threads < 1:
        raise HarkError("--threads must be at least 1")
    if args.roll_seconds <= 0:
        raise HarkError("--roll-seconds must be positive")
    block_ms = getattr(args, "block_ms", 10.0)
    if not 1 <= block_ms <= MAX_BLOCK_MS:
        raise HarkError(f"--block-ms must be 1..{MAX_BLOCK_MS} ms, not {block_ms:g}")
    seconds = getattr(args, "seconds", None)
    if seconds is not None and seconds <= 0:
        raise HarkError("--seconds must be positive")
    return RunConfig(
        models=tuple(args.model or ("commands",)),
        vad=gate.get("vad"),
        vad_mode=gate.get("vad_mode"),
        fmt=args.format,
        out=args.out,
        threads=args.threads,
        roll_seconds=args.roll_seconds,
        block_ms=block_ms,
        vad_kind=gate.get("vad_kind"),
    )


def check_out(out: Path | None, inputs: Sequence[str | Path]) -> None:
    """Refuse an --out that is one of the inputs or any existing audio file.

    A typo such as `hark replay --out a.wav b.wav` must not replace a recording with event lines.
    """
    from hark.live.paths import path_kind

    # path_kind, not exists(): a path in a folder the user cannot search is one line
    kind = path_kind(out) if out is not None else None
    if out is None or kind is None:
        return
    for f in inputs:
        if str(f) != "-" and path_kind(f) and os.path.samefile(out, f):
            raise HarkError(f"--out {out} is one of the inputs: refusing to overwrite it")
    if kind == "file":
        import soundfile as sf

        try:
            sf.info(str(out))
        except Exception:  # noqa: BLE001 - not audio (or unreadable): an ordinary output file
            return
        raise HarkError(f"--out {out} is an existing audio file: refusing to overwrite it "
                        "(events are written as .jsonl, .csv or .tsv)")


def make_sinks(cfg: RunConfig, with_file: bool = False) -> list[Any]:
    """Stdout lines, plus the --out file (opened now: a bad path fails before anything runs)."""
    from hark.live.sinks import file_sink, stdout_sink

    sinks: list[Any] = [stdout_sink(cfg.fmt, with_file)]
    if cfg.out is not None:
        sinks.append(file_sink(cfg.out, cfg.fmt, with_file))
    return sinks


def stream_rate(models: Sequence[Any]) -> int:
    """The rate hark feeds its engine: the highest model rate (the others are resampled)."""
    return max(int(m.card.sample_rate) for m in models)


def load_models(cfg: RunConfig) -> list:
    from hark.live.model import OnnxModel, RuntimeOptions

    opts = RuntimeOptions(threads=cfg.threads)
    models = [OnnxModel.load(spec, options=opts) for spec in cfg.models]
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise HarkError(f"the same model is given twice: {', '.join(names)}")
    return models


def make_engine(models: list, cfg: RunConfig):  # noqa: ANN201 - live.engine.Engine
    from hark.live.engine import Engine, EngineOptions

    engine = Engine(models, EngineOptions(vad=cfg.vad, vad_mode=cfg.vad_mode,
                                          vad_kind=cfg.vad_kind),  # type: ignore[arg-type]
                    sample_rate=stream_rate(models))
    if os.environ.get("HARK_TRACE_FIRST_BLOCK") == "1":
        _trace_first_block(engine)
    return engine


def _trace_first_block(engine: object) -> None:
    """HARK_TRACE_FIRST_BLOCK=1: one stderr line once the first block has been processed.

    `hark bench --startup` reads it (time.monotonic() is system-wide on Linux, so the parent
    subtracts its own spawn time); the wrapper removes itself after one call.
    """
    feed = engine.feed  # type: ignore[attr-defined]

    def first(samples: object) -> object:
        out = feed(samples)
        engine.feed = feed  # type: ignore[attr-defined]
        print(f"hark: first block processed at monotonic={time.monotonic():.6f}",
              file=sys.stderr, flush=True)
        return out

    engine.feed = first  # type: ignore[attr-defined]


def _want_ui(args: argparse.Namespace, live_stream: bool) -> bool:
    return live_stream and not args.no_ui and sys.stdout.isatty() and sys.stdin.isatty()


def run_replay(args: argparse.Namespace) -> int:
    from hark.live.model import bundled_dir
    from hark.live.pipeline import run
    from hark.live.sources import FileSource, RawFormat

    cfg = _config(args)
    pool = pool_options(args)
    raw = RawFormat.parse(args.raw_format) if args.raw_format else None
    files = [Path(f) for f in args.files] or [bundled_dir() / "demo.wav"]
    if sum(str(f) == "-" for f in files) > 1:
        raise HarkError("stdin ('-') can be given only once")
    if pool.parallel and args.realtime:
        raise HarkError("--realtime paces one live stream: it does not go with --jobs or --ray")
    if pool.parallel and any(str(f) == "-" for f in files):
        raise HarkError("--jobs and --ray read files, not stdin ('-')")
    check_out(cfg.out, files)
    models = load_models(cfg)
    rate = stream_rate(models)
    if _want_ui(args, args.realtime):
        from hark.live.ui.app import run_ui

        return run_ui(models, cfg, files=files, realtime=True, raw=raw)
    # open every file first: a bad one fails before anything is printed
    sources = [FileSource(f, rate, realtime=args.realtime, raw=raw) for f in files]
    sinks = make_sinks(cfg, with_file=len(sources) > 1)
    if pool.parallel:
        result = _replay_on_workers(models, cfg, raw, sources, sinks, pool)
    else:
        result = run(sources, make_engine(models, cfg), sinks)
    if result.signal is not None:
        print(f"hark: stopped by {result.signal}; {result.events} events written",
              file=sys.stderr)
    elif result.error is not None:
        print(f"hark: error: {result.error}; the {result.events} events up to there were "
              "written", file=sys.stderr)
    elif result.truncated:
        print(f"hark: error: truncated audio: {', '.join(result.truncated)}; the events up to "
              "there were written", file=sys.stderr)
    return result.exit_code


def _replay_on_workers(models: list, cfg: RunConfig, raw: Any, sources: list, sinks: list,
                       pool: Any) -> Any:
    """The files over worker processes or Ray (hark.live.workers), written in input order."""
    import functools
    import signal
    import threading

    from hark.live.corpus import replay_task
    from hark.live.pipeline import run_outcomes, signals_caught
    from hark.live.workers import AudioFile, Workers

    items = [AudioFile(s.path, s.duration_s) for s in sources]
    stop = threading.Event()
    caught: list[str] = []

    def on_signal(signum: int, frame: object) -> None:
        caught.append(signal.Signals(signum).name)
        stop.set()

    # caught from the start: Ray defers a SIGINT that comes while it starts, then replays it
    with signals_caught(on_signal):
        workers = Workers(models, pool, stop=stop)
        ok = False
        try:
            task = functools.partial(replay_task, cfg=cfg, raw=raw)
            result = run_outcomes(workers.map(task, items), sinks, stop=stop, signals=False)
            if caught and result.signal is None:
                result.signal = caught[0]
            ok = result.signal is None and result.error is None
        finally:
            workers.close(abort=not ok)
    return result


def run_mic(args: argparse.Namespace) -> int:
    from hark.live.pipeline import run
    from hark.live.sources import MicSource

    cfg = _config(args)
    check_out(cfg.out, ())
    models = load_models(cfg)
    rate = stream_rate(models)
    if _want_ui(args, True):
        from hark.live.ui.app import run_ui

        return run_ui(models, cfg, device=args.device, seconds=args.seconds)
    mic = MicSource(rate, device=args.device, block_ms=args.block_ms, max_seconds=args.seconds)
    sinks = make_sinks(cfg)
    engine = make_engine(models, cfg)
    with mic:
        print(f"hark: listening on {mic.name} ({mic.input_rate} Hz) with "
              f"{', '.join(m.name for m in models)}; Ctrl-C to stop", file=sys.stderr, flush=True)
        result = run(mic, engine, sinks)
    st = mic.stats
    lost = sum(g[1] for g in st.gaps)
    print(f"hark: {result.audio_s:.1f} s heard, {result.events} events, {st.overflows} overflows, "
          f"{st.dropped_blocks} dropped blocks, {lost:.1f} s of input lost"
          + (f"; stopped by {result.signal}" if result.signal else ""), file=sys.stderr)
    if result.error is not None:
        print(f"hark: error: {result.error}", file=sys.stderr)
    return result.exit_code


def run_devices(args: argparse.Namespace) -> int:
    from hark.live.devices import NO_INPUT_DEVICE, DeviceError, format_devices, list_input_devices

    devices = list_input_devices()
    if not devices:  # as `hark mic` says it: a script must not read an empty list as success
        raise DeviceError(NO_INPUT_DEVICE)
    print(format_devices(devices))
    return 0
