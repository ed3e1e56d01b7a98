"""`hark serve`: many audio streams over WebSocket, one shared set of model sessions.

Each connection is one stream (hark.live.streams.Stream). The event loop only moves bytes: it
decodes PCM into the stream's bounded pending queue and sends what the stream's bounded outbox
holds. One asyncio task, the batcher, drains every stream's pending audio every few ms and runs it
in one worker thread: frame models through one BatchedEngine per model (one onnxruntime call per
hop for all the streams with a frame due), window models (and any model whose graph fixes the
batch axis) through a per-stream Engine. Nothing the batcher does waits for a client, so a slow or
vanished client never stalls the others. The page in live/web/ is served on the same port over
plain HTTP (process_request). The protocol is hark.live.protocol (and the README).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import logging
import mimetypes
import socket
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from hark.live.batched import BatchedEngine, check_batch
from hark.live.engine import EngineOptions
from hark.live.model import OnnxModel
from hark.live.protocol import (
    BAD_DATA,
    GOING_AWAY,
    POLICY,
    Hello,
    ProtocolError,
    decode_pcm,
    dumps,
    error_message,
    parse_control,
    parse_hello,
)
from hark.live.streams import Job, Outbox, OutboxFull, Segment, Stream

LOOPBACK = ("127.0.0.1", "localhost", "::1")
WEB_FILES = {"/": "index.html", "/index.html": "index.html", "/app.js": "app.js",
             "/worklet.js": "worklet.js"}


@dataclass(frozen=True)
class ServeOptions:
    """How the server listens and what it allows each client."""

    host: str = "127.0.0.1"
    port: int = 8765  # 0: any free port (printed, and Server.port)
    token: str | None = None  # shared secret every hello must carry
    max_streams: int = 512  # concurrent streams; one more is refused with an error
    queue_ms: float = 2000.0  # audio a stream may have waiting; beyond it the oldest is dropped
    hello_timeout_s: float = 10.0
    max_message_bytes: int = 1 << 20  # a bigger message closes the connection (1009)
    out_queue: int = 512  # messages waiting for a client; scores/acks are dropped first
    tick_ms: float = 5.0  # the batcher runs at most this often (what arrives meanwhile batches)
    tick_cap_ms: float = 500.0  # audio of one stream run per tick (a flood cannot hog a tick)
    close_timeout_s: float = 2.0
    send_buffer_bytes: int | None = None  # SO_SNDBUF per connection (None: the system's)
    engine: EngineOptions = field(default_factory=EngineOptions)
    batched: bool = True  # False: a per-stream Engine for every model (for comparisons)


class _Conn:
    """The event-loop side of one stream: its socket and the waits around it."""

    def __init__(self, ws: Any, stream: Stream) -> None:
        self.ws = ws
        self.stream = stream
        self.closed = asyncio.get_running_loop().create_future()  # set when the engines closed
        self.wake_sender = asyncio.Event()
        self.kill = asyncio.Event()
        self.error: ProtocolError | None = None
        self.finishing = False  # the last message is queued: the sender stops when empty

    def send(self, msg: dict[str, Any]) -> None:
        try:
            self.stream.outbox.put(msg)
        except OutboxFull as e:
            if self.error is None:
                self.error = ProtocolError(str(e), POLICY)
            self.kill.set()
        self.wake_sender.set()


class Server:
    """The WebSocket server around shared models; start() in a running event loop."""

    def __init__(self, models: list[OnnxModel], options: ServeOptions | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        if not models:
            raise ValueError("the server needs at least one model")
        self.options = options or ServeOptions()
        self.models = {m.name: m for m in models}
        self.default_models = tuple(self.models)
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.banks: dict[str, BatchedEngine] = {}
        self.unbatched: dict[str, str] = {}  # model -> why it runs one engine per stream
        opts = self.options.engine
        for m in models:
            check = check_batch(m)
            if not self.options.batched:
                self.unbatched[m.name] = "batching off"
            elif opts.vad_kind == "silero":
                self.unbatched[m.name] = "the silero gate runs per stream"
            elif not check.ok:
                self.unbatched[m.name] = check.reason
            else:
                self.banks[m.name] = BatchedEngine(m, opts)
        self.conns: dict[int, _Conn] = {}
        self._ids = itertools.count(1)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="hark-batcher")
        self._wake: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._ws: Any = None
        self._batcher: asyncio.Task[None] | None = None
        self.port = self.options.port
        self.ticks = 0

    # ---- life cycle ------------------------------------------------------------------------
    async def start(self) -> int:
        """Listen; returns the port (useful with port 0)."""
        from websockets.asyncio.server import serve

        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        quiet = logging.getLogger("hark.serve.websockets")
        quiet.setLevel(logging.CRITICAL)  # bad handshakes are the client's problem, not a trace
        o = self.options
        self._ws = await serve(
            self._handler, o.host, o.port, process_request=self._process_request,
            max_size=o.max_message_bytes, max_queue=4, close_timeout=o.close_timeout_s,
            logger=quiet, ping_interval=20, ping_timeout=20,
        )
        self.port = int(self._ws.sockets[0].getsockname()[1])
        self._batcher = asyncio.create_task(self._batch_loop())
        return self.port

    async def shutdown(self) -> None:
        """Stop listening, end every stream (open events closed and sent, a summary), close."""
        assert self._stopping is not None and self._ws is not None
        self._ws.close(close_connections=False)
        self._stopping.set()
        for _ in range(int((5 + 2 * self.options.close_timeout_s) / 0.02)):
            if not self.conns:
                break
            await asyncio.sleep(0.02)
        self._ws.close()
        await self._ws.wait_closed()
        if self._batcher is not None:
            self._batcher.cancel()
        self._pool.shutdown(wait=True)

    # ---- HTTP: the page ------------------------------------------------------------------
    def _process_request(self, connection: Any, request: Any) -> Any:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        path = request.path.split("?", 1)[0]
        name = WEB_FILES.get(path)
        if name is None:
            return connection.respond(404, "not found\n")
        body = (resources.files("hark.live") / "web" / name).read_text(encoding="utf-8")
        response = connection.respond(200, body)
        kind = mimetypes.guess_type(name)[0] or "text/plain"
        if kind.endswith("javascript"):
            kind = "text/javascript"
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = f"{kind}; charset=utf-8"
        response.headers["Cache-Control"] = "no-store"
        return response

    # ---- one connection --------------------------------------------------------------------
    async def _handler(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        peer = _peer(ws)
        if self.options.send_buffer_bytes is not None:
            sock = ws.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                                self.options.send_buffer_bytes)
        try:
            conn = await self._open(ws)
        except ProtocolError as e:
            self.log(f"hark: serve: {peer}: refused: {e}")
            await self._close(ws, [error_message(str(e))], e.code, str(e))
            return
        except (ConnectionClosed, OSError):
            return
        s = conn.stream
        self.log(f"hark: serve: stream {s.id} from {peer}: {s.sample_rate} Hz {s.hello.format}, "
                 f"{', '.join(m.name for m in s.models)}")
        assert self._stopping is not None and self._wake is not None
        sender = asyncio.create_task(self._send_loop(conn))
        reader = asyncio.create_task(self._read_loop(conn))
        stop = asyncio.create_task(self._stopping.wait())
        kill = asyncio.create_task(conn.kill.wait())
        await asyncio.wait({reader, stop, kill}, return_when=asyncio.FIRST_COMPLETED)
        for t in (reader, stop, kill):
            t.cancel()
        vanished = reader.done() and not reader.cancelled() and reader.result() == "gone"
        code = GOING_AWAY if self._stopping.is_set() and conn.error is None else 1000
        if conn.error is not None:  # what it sent and is not yet run is not run now
            s.take(None)
        s.ending = True
        self._wake.set()
        await conn.closed  # the batcher ran the rest and closed the open events
        if conn.error is not None:
            s.outbox.put_control(error_message(str(conn.error)))
            code = conn.error.code
        else:
            s.outbox.put_control({"type": "summary", "seconds": round(s.received / s.sample_rate,
                                                                      3),
                                  "events": s.events,
                                  "dropped_seconds": round(s.dropped / s.sample_rate, 3)})
        conn.finishing = True
        conn.wake_sender.set()
        if not vanished:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(sender), self.options.close_timeout_s + 5)
        sender.cancel()
        await self._close(ws, [], code, str(conn.error or ""), vanished)
        del self.conns[s.id]
        why = f"error: {conn.error}" if conn.error else ("client gone" if vanished else "ended")
        self.log(f"hark: serve: stream {s.id} closed ({why}): {s.received / s.sample_rate:.1f} s,"
                 f" {s.events} events, {s.dropped / s.sample_rate:.1f} s dropped")

    async def _open(self, ws: Any) -> _Conn:
        o = self.options
        if len(self.conns) >= o.max_streams:
            raise ProtocolError(f"the server is full ({o.max_streams} streams)", POLICY)
        try:
            first = await asyncio.wait_for(ws.recv(), o.hello_timeout_s)
        except TimeoutError:
            raise ProtocolError(f"no hello within {o.hello_timeout_s:g} s", POLICY) from None
        if isinstance(first, bytes):
            raise ProtocolError("binary audio before the hello", POLICY)
        hello = parse_hello(first)
        if o.token is not None and not hmac.compare_digest(
                (hello.token or "").encode(), o.token.encode()):
            raise ProtocolError("wrong or missing token", POLICY)
        names = hello.models or self.default_models
        unknown = [n for n in names if n not in self.models]
        if unknown:
            raise ProtocolError(f"unknown model {unknown[0]!r} (this server has: "
                                f"{', '.join(self.models)})")
        if len(self.conns) >= o.max_streams:
            raise ProtocolError(f"the server is full ({o.max_streams} streams)", POLICY)
        models = [self.models[n] for n in names]
        stream = Stream(next(self._ids), hello, models,
                        {n: b for n, b in self.banks.items() if n in names}, o.engine,
                        max(1, round(o.queue_ms / 1000 * hello.sample_rate)),
                        Outbox(o.out_queue))
        await ws.send(dumps(self._ready(stream, hello)))
        conn = _Conn(ws, stream)
        self.conns[stream.id] = conn
        return conn

    def _ready(self, stream: Stream, hello: Hello) -> dict[str, Any]:
        hops = [m.card.decision_hop_s() for m in stream.models]
        return {"type": "ready", "stream": stream.id,
                "models": [{"name": m.name, "labels": list(m.card.labels),
                            "sample_rate": int(m.card.sample_rate),
                            "batched": m.name in self.banks} for m in stream.models],
                "hop_ms": round(min(hops) * 1000, 3), "queue_ms": self.options.queue_ms,
                "max_message_bytes": self.options.max_message_bytes}

    async def _read_loop(self, conn: _Conn) -> str:
        """Audio into the pending queue until the end: "end", "gone" or "error"."""
        from websockets.exceptions import ConnectionClosed

        s = conn.stream
        assert self._wake is not None
        try:
            async for msg in conn.ws:
                if isinstance(msg, bytes):
                    lost = s.push(decode_pcm(msg, s.hello))
                    if lost:
                        conn.send({"type": "dropped", "seconds": round(lost, 3),
                                   "total_seconds": round(s.dropped / s.sample_rate, 3)})
                    self._wake.set()
                elif parse_control(msg) == "end":
                    return "end"
        except ProtocolError as e:
            conn.error = e
            return "error"
        except ConnectionClosed:
            return "gone"
        return "gone"

    async def _send_loop(self, conn: _Conn) -> None:
        from websockets.exceptions import ConnectionClosed

        box = conn.stream.outbox
        try:
            while True:
                while box.items:
                    _, msg = box.items.popleft()
                    await conn.ws.send(dumps(msg))
                if conn.finishing:
                    return
                conn.wake_sender.clear()
                await conn.wake_sender.wait()
        except (ConnectionClosed, OSError):
            return

    async def _close(self, ws: Any, msgs: list[dict[str, Any]], code: int, reason: str,
                     vanished: bool = False) -> None:
        from websockets.exceptions import ConnectionClosed

        if vanished:
            ws.transport.abort()
            return
        try:
            async with asyncio.timeout(self.options.close_timeout_s + 1):
                for m in msgs:
                    await ws.send(dumps(m))
                await ws.close(code, reason[:120])
        except (TimeoutError, ConnectionClosed, OSError):
            ws.transport.abort()

    # ---- the batcher -----------------------------------------------------------------------
    async def _batch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        o = self.options
        while True:
            await self._wake.wait()
            self._wake.clear()
            t0 = loop.time()
            jobs: list[Job] = []
            for conn in list(self.conns.values()):
                s = conn.stream
                if s.closed or not (s.pending or s.ending):
                    continue
                end = s.ending
                limit = None if end else max(1, round(o.tick_cap_ms / 1000 * s.sample_rate))
                jobs.append(Job(s, s.take(limit), end))
            if not jobs:
                continue
            results = await loop.run_in_executor(self._pool, self._compute, jobs)
            self.ticks += 1
            for stream, msgs, failure in results:
                found = self.conns.get(stream.id)
                if found is None:
                    continue
                conn = found
                if failure is not None and conn.error is None:
                    conn.error = ProtocolError(failure, 1011)
                    conn.kill.set()
                for m in msgs:
                    conn.send(m)
                if stream.closed and not conn.closed.done():
                    conn.closed.set_result(None)
            if any(c.stream.pending or (c.stream.ending and not c.stream.closed)
                   for c in self.conns.values()):
                self._wake.set()
            rest = o.tick_ms / 1000 - (loop.time() - t0)
            if rest > 0:
                await asyncio.sleep(rest)

    def _compute(self, jobs: list[Job]) -> list[tuple[Stream, list[dict[str, Any]], str | None]]:
        """The worker thread: each stream's news of the tick, its events in `hark replay` order.

        `hark replay` feeds a file block by block and writes each block's events model by model
        (the order given), then the closing events model by model. A client's message is such
        a block, so the tick runs in rounds: round r feeds every job its r-th message, runs each
        bank once for all of them, and takes each stream's events of that message in model
        order; the end of a stream (the resampler's tail, then the close) has rounds of its own.
        A bank still runs one onnxruntime call per hop for every stream with a frame due.
        """
        steps = [[(c, False) for c in job.chunks] + ([(None, True)] if job.end else [])
                 for job in jobs]
        msgs: list[list[dict[str, Any]]] = [[] for _ in jobs]
        failures: list[str | None] = [None] * len(jobs)
        for r in range(max(map(len, steps), default=0)):
            touched: list[tuple[int, list[Segment]]] = []
            for i, job in enumerate(jobs):
                if r >= len(steps[i]) or failures[i] is not None:
                    continue
                chunk, end = steps[i][r]
                try:
                    touched.append((i, job.stream.feed([chunk] if chunk else [], end)))
                except Exception as e:  # noqa: BLE001 - one stream's failure is that stream's
                    failures[i] = _internal(e)
            events: dict[str, dict[int, list[Any]]] = {}
            failed: dict[str, str] = {}
            for name, bank in self.banks.items():
                if bank.streams:
                    try:
                        events[name] = bank.process()
                    except Exception as e:  # noqa: BLE001 - reported to that bank's streams
                        failed[name] = _internal(e)
            for i, segs in touched:
                last_round = r == len(steps[i]) - 1
                try:
                    for seg in segs:
                        for b in seg.banked:
                            failures[i] = failures[i] or failed.get(b.bank.card.name)
                        seg.after_process([events.get(b.bank.card.name, {}).get(b.sid, [])
                                           for b in seg.banked], opens=last_round)
                        msgs[i].extend(seg.take_messages(scores=last_round and not seg.closing))
                        if seg.closing:  # its closing events after its last block's
                            seg.close()
                            msgs[i].extend(seg.take_messages(scores=True))
                except Exception as e:  # noqa: BLE001
                    failures[i] = failures[i] or _internal(e)
        out: list[tuple[Stream, list[dict[str, Any]], str | None]] = []
        for i, job in enumerate(jobs):
            s, failure = job.stream, failures[i]
            if failure is not None and s.segment is not None:
                # the stream will end now: its engine state is not to be trusted
                _quiet_close(s.segment)
                s.segment = None
            if job.end:
                s.closed = True
            if s.hello.acks:
                msgs[i].append({"type": "ack", "samples": s.processed,
                                "t": round(s.processed / s.sample_rate, 6)})
            out.append((s, msgs[i], failure))
        return out


def _quiet_close(seg: Segment) -> None:
    try:
        seg.close()
    except Exception:  # noqa: BLE001 - already failing; its streams must leave the banks
        for b in seg.banked:
            b.bank._streams.pop(b.sid, None)


def _internal(e: Exception) -> str:
    return f"internal error: {type(e).__name__}: {e}"


def _peer(ws: Any) -> str:
    try:
        host, port = ws.remote_address[:2]
        return f"{host}:{port}"
    except (TypeError, ValueError, AttributeError):
        return "?"


def check_bind(host: str, token: str | None, insecure: bool) -> None:
    """Loopback only, unless a token protects the streams (or --insecure says not to)."""
    from hark.live.errors import HarkError

    if host not in LOOPBACK and not host.startswith("127.") and token is None and not insecure:
        raise HarkError(f"refusing to listen on {host} without --token (anyone who can reach it "
                        "could stream to your models); give --token SECRET, or --insecure")


__all__ = ["BAD_DATA", "Server", "ServeOptions", "check_bind"]
