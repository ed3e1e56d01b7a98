"""`hark client`: stream a file or the local microphone to `hark serve`, print its events.

The audio goes as the source gives it (a file at its own rate, mono float32; the server resamples
exactly as `hark replay` does), so the events equal `hark replay` of the same file. Without
--realtime the client sends as fast as the server answers: it keeps at most half the server's
queue in flight, counted by the server's acks, so nothing is dropped however fast the file reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hark.live.errors import HarkError
from hark.live.events import Event
from hark.live.protocol import GOING_AWAY, dumps, event_from_message


class ClientError(HarkError):
    """The server cannot be reached, refused the stream, or broke off.

    A stream the server cut is one too: the events that came are written, the exit is not 0.
    """


@dataclass
class ClientResult:
    """What one streamed source gave back."""

    events: list[Event] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    dropped_s: float = 0.0
    ready: dict[str, Any] | None = None
    interrupted: bool = False


def _blocks_in_thread(blocks: Iterator[np.ndarray], loop: asyncio.AbstractEventLoop,
                      out: asyncio.Queue[np.ndarray | None], stop: threading.Event) -> None:
    """Read a (blocking) source in a thread; None marks the end; an exception is passed on."""
    try:
        for block in blocks:
            if stop.is_set():
                break
            loop.call_soon_threadsafe(out.put_nowait, block)
    except Exception as e:  # noqa: BLE001 - handed to the event loop, raised there
        loop.call_soon_threadsafe(out.put_nowait, e)  # type: ignore[arg-type]
    finally:
        loop.call_soon_threadsafe(out.put_nowait, None)


async def stream(url: str, blocks: Iterator[np.ndarray], sample_rate: int, *,
                 models: list[str] | None = None, token: str | None = None,
                 paced: bool = False, on_event: Callable[[Event], None] | None = None,
                 on_message: Callable[[dict[str, Any]], None] | None = None,
                 stop: threading.Event | None = None) -> ClientResult:
    """Send mono float32 blocks at `sample_rate`; returns the events and the summary.

    paced: the source keeps real time itself (a microphone, --realtime); otherwise the sending is
    held to what the server has acknowledged. stop: set it to end the stream early (the server
    then closes the open events and sends them).
    """
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

    stop = stop or threading.Event()
    result = ClientResult()
    hello: dict[str, Any] = {"type": "hello", "sample_rate": int(sample_rate),
                             "format": "f32le", "channels": 1, "acks": True}
    if models:
        hello["models"] = list(models)
    if token is not None:
        hello["token"] = token
    try:
        ws = await connect(url, max_size=None, open_timeout=10, close_timeout=5)
    except InvalidURI as e:
        raise ClientError(f"{url}: not a ws:// or wss:// address ({e})") from None
    except (OSError, InvalidHandshake, TimeoutError) as e:
        raise ClientError(f"cannot connect to {url}: {getattr(e, 'strerror', None) or e}") \
            from None
    loop = asyncio.get_running_loop()
    acked = 0
    acked_event = asyncio.Event()
    error: list[str] = []

    async def receive() -> None:
        nonlocal acked
        async for text in ws:
            msg = json.loads(text)
            kind = msg.get("type")
            if on_message is not None:
                on_message(msg)
            if kind == "event":
                ev = event_from_message(msg)
                result.events.append(ev)
                if on_event is not None:
                    on_event(ev)
            elif kind == "ack":
                acked = int(msg.get("samples", 0))
                acked_event.set()
            elif kind == "dropped":
                result.dropped_s = float(msg.get("total_seconds", 0.0))
            elif kind == "summary":
                result.summary = msg
            elif kind == "error":
                error.append(str(msg.get("message")))
            acked_event.set()

    async with ws:
        try:
            await ws.send(dumps(hello))
            first = json.loads(await ws.recv())
        except ConnectionClosed:
            raise ClientError(f"{url}: the server closed the connection") from None
        if first.get("type") == "error":
            raise ClientError(f"server: {first.get('message')}")
        if first.get("type") != "ready":
            raise ClientError(f"server: expected a ready message, got {first.get('type')!r}")
        result.ready = first
        window = max(1, round(float(first.get("queue_ms", 2000)) / 2000 * sample_rate))
        receiver = asyncio.create_task(receive())
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=0)
        reader = threading.Thread(target=_blocks_in_thread, args=(blocks, loop, queue, stop),
                                  daemon=True)
        reader.start()
        sent = 0
        ended = False  # the server was told the audio is over (all of it, or the user stopped)
        failure: BaseException | None = None
        try:
            while not stop.is_set() and not receiver.done():
                block = await queue.get()
                if block is None:
                    break
                if isinstance(block, BaseException):
                    failure = block
                    break
                x = np.ascontiguousarray(block, dtype="<f4")
                if not paced:
                    while sent - acked + x.size > window and sent > acked \
                            and not receiver.done():
                        acked_event.clear()
                        await acked_event.wait()
                await ws.send(x.tobytes())
                sent += x.size
            if not receiver.done():
                await ws.send(dumps({"type": "end"}))
                ended = True
        except ConnectionClosed:
            pass
        finally:
            stop.set()
        with contextlib.suppress(ConnectionClosed):
            await receiver
        if failure is not None:
            raise failure
        if error:
            raise ClientError(f"server: {error[0]}")
        if result.summary is None:
            raise ClientError(f"{url}: the connection ended before the summary "
                              f"(close code {ws.close_code})")
        heard = float(result.summary.get("seconds", 0.0))
        if not ended or heard < round(sent / sample_rate, 3) - 0.0015:
            # the server stopped mid-stream: what came back is true, but not all there is
            why = " (the server is stopping)" if ws.close_code == GOING_AWAY else ""
            raise ClientError(f"{url}: the server ended the stream after {heard:.1f} s{why}, "
                              f"before the end of the audio; the {len(result.events)} events "
                              "up to there were written")
    return result


def run_stream(url: str, blocks: Iterator[np.ndarray], sample_rate: int,
               **kwargs: Any) -> ClientResult:
    """stream() from synchronous code; SIGINT/SIGTERM end the stream cleanly (events kept)."""
    stop = threading.Event()
    interrupted: list[int] = []

    async def main() -> ClientResult:
        loop = asyncio.get_running_loop()
        on_main = threading.current_thread() is threading.main_thread()
        if on_main:
            def on_signal(sig: int) -> None:
                interrupted.append(sig)
                stop.set()

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, on_signal, sig)
        try:
            return await stream(url, blocks, sample_rate, stop=stop, **kwargs)
        finally:
            if on_main:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

    result = asyncio.run(main())
    result.interrupted = bool(interrupted)
    return result


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
