"""A real `hark serve` Server on an ephemeral loopback port, run in a thread, and client helpers."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from hark.live.model import OnnxModel
from hark.live.server import ServeOptions, Server

DEMO = Path(__file__).resolve().parents[2] / "models" / "bundled" / "demo.wav"


class ServerThread:
    """Server(models, options) listening on 127.0.0.1:<free port> in its own event loop."""

    def __init__(self, models: list[OnnxModel], options: ServeOptions | None = None) -> None:
        self.log: list[str] = []
        opts = options or ServeOptions()
        from dataclasses import replace

        self.server = Server(models, replace(opts, host="127.0.0.1", port=0),
                             log=self.log.append)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.port = self.call(self.server.start())
        self.url = f"ws://127.0.0.1:{self.port}"

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.call(self.server.shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def wait_idle(self, timeout: float = 20.0) -> None:
        """Until no stream is open (the server has finished with every connection)."""
        import time

        end = time.monotonic() + timeout
        while self.server.conns and time.monotonic() < end:
            time.sleep(0.02)
        assert not self.server.conns, f"streams still open: {list(self.server.conns)}"


@contextlib.contextmanager
def serving(models: list[OnnxModel], options: ServeOptions | None = None) -> Iterator[ServerThread]:
    st = ServerThread(models, options)
    try:
        yield st
    finally:
        st.stop()


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return np.ascontiguousarray(x.mean(axis=1, dtype=np.float32)), int(rate)


@dataclass
class Session:
    """Everything one client got back."""

    ready: dict[str, Any] | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.of("event")


def send_audio(url: str, audio: np.ndarray, rate: int, *, block_ms: float = 100.0,
               fmt: str = "s16le", hello: dict[str, Any] | None = None,
               wait_acks: bool = True, timeout: float = 60.0) -> Session:
    """Stream audio in blocks (acks keep it within the server's queue), end, read to the close."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    out = Session()
    h = {"type": "hello", "sample_rate": rate, "format": fmt, "channels": 1, "acks": True,
         **(hello or {})}
    pcm = (np.clip(np.round(audio * 32768.0), -32768, 32767).astype("<i2") if fmt == "s16le"
           else audio.astype("<f4"))
    block = max(1, round(block_ms / 1000 * rate))
    with connect(url, max_size=None, close_timeout=5) as ws:
        ws.send(json.dumps(h))
        out.ready = json.loads(ws.recv(timeout))
        if out.ready.get("type") != "ready":
            out.messages.append(out.ready)
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                ws.recv(timeout)
            out.close_code = ws.close_code
            return out
        window = int(out.ready["queue_ms"] / 2000 * rate)
        acked = 0
        for i in range(0, pcm.size, block):
            ws.send(pcm[i : i + block].tobytes())
            sent = min(pcm.size, i + block)
            while wait_acks and sent - acked > window:
                msg = json.loads(ws.recv(timeout))
                out.messages.append(msg)
                if msg["type"] == "ack":
                    acked = msg["samples"]
        ws.send(json.dumps({"type": "end"}))
        try:
            while True:
                out.messages.append(json.loads(ws.recv(timeout)))
        except ConnectionClosed:
            pass
        out.close_code = ws.close_code
    return out


def replay_lines(args: list[str]) -> list[dict[str, Any]]:
    """`hark replay ARGS --format jsonl`, run in-process: its event lines as dicts."""
    import sys

    from hark.cli import main

    buf = io.StringIO()
    old = sys.stdout
    sys.stdout = buf
    try:
        code = main(["replay", *args, "--format", "jsonl", "--no-ui"])
    finally:
        sys.stdout = old
    assert code == 0
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


def same_events(got: list[dict[str, Any]], want: list[dict[str, Any]], tol: float = 1e-6) -> None:
    """Each model's events in order: label equal, onset/offset/peak/mean within tol."""
    models = sorted({e["model"] for e in want} | {e["model"] for e in got})
    for m in models:
        g = [e for e in got if e["model"] == m]
        w = [e for e in want if e["model"] == m]
        assert [e["label"] for e in g] == [e["label"] for e in w], m
        for a, b in zip(g, w, strict=True):
            for k in ("onset", "offset", "peak", "mean"):
                assert abs(a[k] - b[k]) <= tol, (m, a, b)


class NonReader:
    """A WebSocket client that, once connected, never reads a byte (websockets' sans-I/O protocol
    on a plain socket with a tiny receive buffer): the slowest reader there is."""

    def __init__(self, url: str, port: int) -> None:
        import socket

        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        self.sock.connect(("127.0.0.1", port))
        self.protocol = ClientProtocol(parse_uri(url))
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        while self.protocol.handshake_exc is None and not self.protocol.events_received():
            data = self.sock.recv(4096)
            assert data, "the server closed during the handshake"
            self.protocol.receive_data(data)
            if getattr(self.protocol, "response", None) is not None:
                break

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def send_text(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self._flush()

    def send_binary(self, data: bytes) -> None:
        self.protocol.send_binary(data)
        self._flush()

    def close(self) -> None:
        self.sock.close()
