"""`hark mic`, `hark replay`, `hark devices`: the streaming engine from the command line."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from hark.live.errors import HarkError

if TYPE_CHECKING:
    from hark.live.events import Event

FORMATS = ("jsonl", "csv", "tsv")

REPLAY_EXAMPLES = """\
examples:
  hark replay                              the bundled demo recording, bundled default model
  hark replay talk.wav --format tsv        DCASE-style onset/offset/label rows
  hark replay a.flac b.ogg --out ev.jsonl  several files; events also written to ev.jsonl
  hark replay talk.wav --model sounds --model commands   two models on one stream
  hark replay talk.wav --realtime          paced like a live stream (opens the UI on a terminal)
  hark replay talk.wav --model ./my.onnx   an exported model (my.json beside it)
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
"""


class Terminated(Exception):
    """SIGTERM, turned into an exception so that open events are closed and written."""


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
    m.add_argument("--block-ms", type=int, default=10, help="audio block size (default 10 ms)")
    m.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    _common(m)
    m.set_defaults(func=run_mic)

    d = sub.add_parser("devices", help="list audio input devices",
                       description="List the audio input devices PortAudio can see.",
                       epilog=DEVICES_EXAMPLES, formatter_class=fmt)
    d.set_defaults(func=run_devices)


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


def _config(args: argparse.Namespace) -> RunConfig:
    vad: bool | None = None
    mode: int | None = None
    kind: str | None = None
    if args.vad is not None:
        v = str(args.vad).lower()
        if v == "off":
            vad = False
        elif v == "on":
            vad = True
        elif v in ("webrtc", "silero"):
            kind = v
            if v == "silero":
                from hark.live.silero import model_path

                model_path()  # one clear line now if silero-vad is not installed
        elif v in ("0", "1", "2", "3"):
            mode = int(v)
        else:
            raise HarkError(
                f"--vad takes off, on, webrtc, silero or 0-3, not {args.vad!r}")
    if args.threads < 1:
        raise HarkError("--threads must be at least 1")
    if args.roll_seconds <= 0:
        raise HarkError("--roll-seconds must be positive")
    block_ms = getattr(args, "block_ms", 10.0)
    if block_ms <= 0:
        raise HarkError("--block-ms must be positive")
    seconds = getattr(args, "seconds", None)
    if seconds is not None and seconds <= 0:
        raise HarkError("--seconds must be positive")
    return RunConfig(
        models=tuple(args.model or ("commands",)),
        vad=vad,
        vad_mode=mode,
        fmt=args.format,
        out=args.out,
        threads=args.threads,
        roll_seconds=args.roll_seconds,
        block_ms=block_ms,
        vad_kind=kind,
    )


class EventOutput:
    """Where finished events go: stdout lines, and the --out file flushed per event."""

    def __init__(
        self, fmt: str, out: Path | None, stdout: TextIO, with_file: bool = False
    ) -> None:
        from hark.live.events import make_writer

        self._file: TextIO | None = None
        self.source: str | None = None  # the file events belong to, when several are replayed
        self.writers = [make_writer(fmt, stdout, with_file)]
        if out is not None:
            try:
                self._file = open(out, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
            except OSError as e:
                raise HarkError(f"cannot write {out}: {e.strerror}") from None
            self.writers.append(make_writer(fmt, self._file, with_file))
        self.count = 0

    def write_all(self, events: Iterable[Event]) -> None:
        for ev in events:
            for w in self.writers:
                w.write(ev, self.source)
            self.count += 1

    def close(self) -> None:
        for w in self.writers:
            w.close()
        if self._file is not None:
            self._file.close()


@contextmanager
def _sigterm_as_exception() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
                                          vad_kind=cfg.vad_kind))  # type: ignore[arg-type]
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
    from hark.live.sources import FileSource

    cfg = _config(args)
    files = [Path(f) for f in args.files] or [bundled_dir() / "demo.wav"]
    models = load_models(cfg)
    rate = models[0].card.sample_rate
    if _want_ui(args, args.realtime):
        from hark.live.ui.app import run_ui

        return run_ui(models, cfg, files=files, realtime=True)
    # open every file first: a bad one fails before anything is printed
    sources = [FileSource(f, rate, realtime=args.realtime) for f in files]
    output = EventOutput(cfg.fmt, cfg.out, sys.stdout, with_file=len(sources) > 1)
    engine = None
    truncated: list[str] = []
    try:
        with _sigterm_as_exception():
            for path, src in zip(files, sources, strict=True):
                engine = make_engine(models, cfg)
                if len(sources) > 1:
                    output.source = str(path)
                for block in src.blocks():
                    output.write_all(engine.feed(block))
                output.write_all(engine.close())
                _report_source(src, engine)
                if src.stats.truncated:
                    truncated.append(f"{src.name} (ends at {engine.time_s:.2f} s)")
                src.close()
                engine = None
    except (KeyboardInterrupt, Terminated) as e:
        if engine is not None:
            output.write_all(engine.close())
        output.close()
        print(f"hark: stopped by {'SIGTERM' if isinstance(e, Terminated) else 'Ctrl-C'}; "
              f"{output.count} events written", file=sys.stderr)
        return 130 if isinstance(e, KeyboardInterrupt) else 143
    output.close()
    if truncated:
        print(f"hark: error: truncated audio: {', '.join(truncated)}; the events up to there "
              "were written", file=sys.stderr)
        return 2
    return 0


def _report_source(src: object, engine: object) -> None:
    stats = getattr(src, "stats", None)
    bad = getattr(engine, "nonfinite", 0) + (getattr(stats, "nonfinite_samples", 0) or 0)
    if bad:
        print(f"hark: warning: {getattr(src, 'name', 'input')}: {bad} NaN/Inf samples replaced "
              "by silence", file=sys.stderr)


def run_mic(args: argparse.Namespace) -> int:
    from hark.live.sources import MicSource

    cfg = _config(args)
    models = load_models(cfg)
    rate = models[0].card.sample_rate
    if _want_ui(args, True):
        from hark.live.ui.app import run_ui

        return run_ui(models, cfg, device=args.device, seconds=args.seconds)
    mic = MicSource(rate, device=args.device, block_ms=args.block_ms, max_seconds=args.seconds)
    output = EventOutput(cfg.fmt, cfg.out, sys.stdout)
    engine = make_engine(models, cfg)
    code = 0
    try:
        with _sigterm_as_exception(), mic:
            print(f"hark: listening on {mic.name} ({mic.input_rate} Hz) with "
                  f"{', '.join(m.name for m in models)}; Ctrl-C to stop", file=sys.stderr)
            for block in mic.blocks():
                output.write_all(engine.feed(block))
    except KeyboardInterrupt:
        code = 130
    except Terminated:
        code = 143
    finally:
        output.write_all(engine.close())
        output.close()
    st = mic.stats
    print(f"hark: {engine.time_s:.1f} s heard, {output.count} events, {st.overflows} overflows, "
          f"{st.dropped_blocks} dropped blocks", file=sys.stderr)
    return code


def run_devices(args: argparse.Namespace) -> int:
    from hark.live.devices import format_devices

    print(format_devices())
    return 0
