"""`hark serve` and `hark client`: the command lines of hark.live.server and hark.live.client."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hark.live.errors import HarkError

SERVE_EXAMPLES = """\
examples:
  hark serve                               ws://127.0.0.1:8765, the page at http://127.0.0.1:8765/
  hark serve --model commands --model sounds --max-streams 300
  hark serve --host 0.0.0.0 --token s3cret  reachable from the network, every hello needs the token
  hark serve --port 0                      any free port (printed on stderr)
  hark serve --host 0.0.0.0 --insecure     on the network without a token (a trusted LAN only)

Streams: one WebSocket connection each; the protocol is in the README ("Serving many streams").
SIGINT/SIGTERM close every stream (open events closed and sent, then a summary) and exit 0.
"""

CLIENT_EXAMPLES = """\
examples:
  hark client talk.wav                     talk.wav's events from the local server (= hark replay)
  hark client talk.wav --realtime          paced like a live stream, in 100 ms blocks
  hark client                              the local microphone, streamed to the server
  hark client - --url ws://box:8765 --token s3cret < talk.wav
"""


def register(sub: argparse._SubParsersAction) -> None:
    from hark.live.cli import FORMATS

    fmt = argparse.RawDescriptionHelpFormatter
    s = sub.add_parser("serve", help="serve many audio streams over WebSocket (and a browser page)",
                       description="Listen for WebSocket streams (one connection = one stream) "
                       "and send each its events; the browser page is at / on the same port.",
                       epilog=SERVE_EXAMPLES, formatter_class=fmt)
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free one)")
    s.add_argument("--model", action="append", default=None, metavar="NAME|PATH",
                   help="model to serve (repeat; default: commands). A hello without 'models' "
                   "gets all of them")
    s.add_argument("--token", default=None, help="shared secret every hello must carry")
    s.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback --host without --token")
    s.add_argument("--max-streams", type=int, default=512, metavar="N",
                   help="concurrent streams (default 512); one more is refused")
    s.add_argument("--queue-ms", type=float, default=2000.0, metavar="MS",
                   help="audio a stream may have waiting (default 2000 ms); beyond it the oldest "
                   "is dropped and the client told")
    s.add_argument("--hello-timeout", type=float, default=10.0, metavar="S",
                   help="seconds a new connection has to send its hello (default 10)")
    s.add_argument("--max-message-kb", type=int, default=1024, metavar="KB",
                   help="largest message accepted (default 1024 KiB)")
    s.add_argument("--out-queue", type=int, default=512, metavar="N",
                   help="messages waiting for a slow client before it is closed (scores and "
                   "acks are dropped first; default 512)")
    s.add_argument("--vad", default=None, metavar="off|on|webrtc|silero|0-3",
                   help="speech gate override for every stream (as in hark replay)")
    s.add_argument("--no-batch", action="store_true",
                   help="one engine per stream for every model (for comparisons)")
    s.add_argument("--quiet", action="store_true", help="no line per stream on stderr")
    s.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    s.set_defaults(func=run_serve)

    c = sub.add_parser("client", help="stream a file or the microphone to 'hark serve'",
                       description="Stream audio to a hark server and print its events like "
                       "'hark replay' / 'hark mic' print them.",
                       epilog=CLIENT_EXAMPLES, formatter_class=fmt)
    c.add_argument("file", nargs="?", default=None, metavar="FILE|-",
                   help="audio file ('-': stdin); none: the local microphone")
    c.add_argument("--url", default="ws://127.0.0.1:8765", help="server address")
    c.add_argument("--model", action="append", default=None, metavar="NAME",
                   help="served model to use (repeat; default: all the server serves)")
    c.add_argument("--realtime", action="store_true", help="pace a file at wall-clock speed")
    c.add_argument("--block-ms", type=float, default=100.0,
                   help="audio per message, 1..500 ms (default 100: hark replay's block, so "
                   "several models' events come in replay's order)")
    c.add_argument("--token", default=None, help="the server's shared secret")
    c.add_argument("--out", type=Path, default=None, help="also write events to this file")
    c.add_argument("--format", choices=FORMATS, default="jsonl", help="event line format")
    c.add_argument("--device", default=None, help="input device (microphone mode)")
    c.add_argument("--seconds", type=float, default=None,
                   help="microphone mode: stop after this many seconds")
    c.add_argument("--raw-format", default=None, metavar="KIND:RATE:CH",
                   help="headerless PCM on stdin, e.g. s16le:16000:1")
    c.set_defaults(func=run_client)


def run_serve(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from hark.live.cli import parse_vad
    from hark.live.engine import EngineOptions
    from hark.live.model import OnnxModel, RuntimeOptions
    from hark.live.server import ServeOptions, Server, check_bind

    check_bind(args.host, args.token, args.insecure)
    if not 0 <= args.port <= 65535:
        raise HarkError(f"--port must be 0..65535, not {args.port}")
    for name, value, low in (("--max-streams", args.max_streams, 1),
                             ("--queue-ms", args.queue_ms, 10), ("--out-queue", args.out_queue, 2),
                             ("--hello-timeout", args.hello_timeout, 0.1),
                             ("--max-message-kb", args.max_message_kb, 1),
                             ("--threads", args.threads, 1)):
        if value < low:
            raise HarkError(f"{name} must be at least {low:g}")
    if args.token is not None and not args.token:
        raise HarkError("--token must not be empty")
    opts = RuntimeOptions(threads=args.threads)
    models = [OnnxModel.load(spec, options=opts) for spec in (args.model or ["commands"])]
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise HarkError(f"the same model is given twice: {', '.join(names)}")
    options = ServeOptions(
        host=args.host, port=args.port, token=args.token, max_streams=args.max_streams,
        queue_ms=args.queue_ms, hello_timeout_s=args.hello_timeout,
        max_message_bytes=args.max_message_kb * 1024, out_queue=args.out_queue,
        engine=EngineOptions(**parse_vad(args.vad)),
        batched=not args.no_batch)
    log = (lambda line: None) if args.quiet else None
    server = Server(models, options, log=log)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            port = await server.start()
        except OSError as e:
            raise HarkError(f"cannot listen on {args.host}:{args.port}: "
                            f"{e.strerror or e}") from None
        host = f"[{args.host}]" if ":" in args.host else args.host
        batched = ", ".join(f"{n} (batched)" if n in server.banks
                            else f"{n} (one engine per stream: {server.unbatched[n]})"
                            for n in server.models)
        print(f"hark: serving {batched} on ws://{host}:{port} (page: http://{host}:{port}/); "
              "Ctrl-C to stop", file=sys.stderr, flush=True)
        await stop.wait()
        n = len(server.conns)
        await server.shutdown()
        print(f"hark: stopped; {n} open streams closed", file=sys.stderr, flush=True)

    asyncio.run(main())
    return 0


def run_client(args: argparse.Namespace) -> int:
    from hark.live.cli import MAX_BLOCK_MS, check_out
    from hark.live.client import ClientError, run_stream, say
    from hark.live.sinks import SinkFailed, file_sink, stdout_sink
    from hark.live.sources import FileSource, MicSource, RawFormat

    if not 1 <= args.block_ms <= MAX_BLOCK_MS:
        raise HarkError(f"--block-ms must be 1..{MAX_BLOCK_MS} ms, not {args.block_ms:g}")
    if not args.url.startswith(("ws://", "wss://")):
        raise HarkError(f"--url must start with ws:// or wss://, not {args.url!r}")
    inputs = [args.file] if args.file else []
    check_out(args.out, inputs)
    sinks = [stdout_sink(args.format)]
    if args.out is not None:
        sinks.append(file_sink(args.out, args.format))
    mic = None
    if args.file is not None:
        raw = RawFormat.parse(args.raw_format) if args.raw_format else None
        src = FileSource(args.file, 16000, block_s=args.block_ms / 1000, realtime=args.realtime,
                         raw=raw)
        src.sample_rate = src.input_rate  # the file's own samples: the server resamples
        rate, blocks, paced, name = src.input_rate, src.blocks(), args.realtime, src.label
    else:
        mic = MicSource(16000, device=args.device, block_ms=args.block_ms,
                        max_seconds=args.seconds)
        rate, blocks, paced, name = 16000, mic.blocks(), True, mic.name
    failed: list[str] = []
    for s in sinks:
        s.open_source(name, 0)

    def write(ev: object) -> None:
        for s in list(sinks):
            try:
                s.write_events([ev])  # type: ignore[list-item]
            except SinkFailed as e:
                sinks.remove(s)
                if not e.quiet:
                    failed.append(str(e))
                    say(f"hark: error: {e}: output dropped")

    def message(msg: dict) -> None:
        if msg.get("type") == "dropped":
            say(f"hark: warning: the server dropped {msg.get('seconds')} s of audio (stream time "
                f"counts it; {msg.get('total_seconds')} s in all)")

    try:
        if mic is not None:
            mic.__enter__()
            say(f"hark: streaming {mic.name} ({mic.input_rate} Hz) to {args.url}; Ctrl-C to stop")
        result = run_stream(args.url, blocks, rate, models=args.model, token=args.token,
                            paced=paced, on_event=write, on_message=message)
    except ClientError:
        raise
    finally:
        if mic is not None:
            mic.stop()
            mic.__exit__(None, None, None)
        for s in sinks:
            s.close()
    summary = result.summary or {}
    say(f"hark: {summary.get('seconds', 0)} s streamed, {summary.get('events', 0)} events, "
        f"{summary.get('dropped_seconds', 0)} s dropped by the server"
        + ("; interrupted" if result.interrupted else ""))
    if result.interrupted:
        return 130
    return 1 if failed else 0
