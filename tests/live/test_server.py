"""hark serve: a real server on an ephemeral loopback port, real WebSocket clients.

Events streamed over the socket equal `hark replay` of the same audio (the batched engine for frame
models, a per-stream engine for window models); bad input is an error message and a clean close,
and the server goes on serving the others.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import threading
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import soxr

from hark.live.model import OnnxModel, bundled_dir
from hark.live.protocol import BAD_DATA, POLICY
from hark.live.server import ServeOptions
from tests.live.serving import (
    DEMO,
    NonReader,
    ServerThread,
    read_audio,
    replay_lines,
    same_events,
    send_audio,
    serving,
)


@pytest.fixture(scope="module")
def commands() -> OnnxModel:
    return OnnxModel.load("commands")


@pytest.fixture(scope="module")
def three() -> list[OnnxModel]:
    return [OnnxModel.load(n) for n in ("commands", "sounds", "commands-cnn")]


@pytest.fixture(scope="module")
def demo48k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    x, rate = read_audio(DEMO)
    path = tmp_path_factory.mktemp("audio") / "demo48k.wav"
    sf.write(str(path), soxr.resample(x, rate, 48000), 48000, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def replay_demo() -> list[dict[str, Any]]:
    return replay_lines([str(DEMO)])


def _gated_copy(d: Path) -> Path:
    """commands with its speech gate on (and no pre-roll: the batched engine has none yet)."""
    src = bundled_dir() / "commands"
    shutil.copy(src.with_suffix(".onnx"), d / "commands.onnx")
    card = json.loads(src.with_suffix(".json").read_text())
    card["vad"] = {**card["vad"], "enabled": True, "pre_roll_ms": 0.0}
    (d / "commands.json").write_text(json.dumps(card))
    return d / "commands.onnx"


def test_stream_equals_replay(commands: OnnxModel, replay_demo: list[dict[str, Any]]) -> None:
    x, rate = read_audio(DEMO)
    with serving([commands]) as st:
        assert "commands" in st.server.banks  # the batched engine serves it
        got = send_audio(st.url, x, rate, block_ms=100, hello={"scores": True})
        st.wait_idle()
        assert st.server.banks["commands"].streams == []  # the stream left the bank
    assert got.ready is not None and got.ready["models"][0]["name"] == "commands"
    assert got.ready["hop_ms"] == 10.0
    assert len(replay_demo) == 10
    same_events(got.events, replay_demo)
    assert all(e["confidence"] == e["peak"] for e in got.events)
    opens = got.of("open")
    # events are announced when they open, as seen at the end of each processed batch of audio
    # (one that opens and ends inside one batch has only its event); the onset is where it
    # stood then (back-dating may still move it a little)
    assert len(opens) >= 5
    for o in opens:
        assert any(o["label"] == e["label"] and abs(o["onset"] - e["onset"]) < 0.05
                   for e in replay_demo) or o["label"] == "stop", o
    scores = got.of("scores")
    assert scores and set(scores[0]["scores"]) == set(commands.card.labels)
    # the scores are the model's posteriors (the most of each label since the last message): "yes"
    # rises while the word is said (0.5-1.0 s; a loaded machine sends it later, in bigger
    # batches, so any message up to 1.9 s may carry it), not elsewhere
    during = max(s["scores"]["yes"] for s in scores if 0.5 < s["t"] < 1.9)
    away = max(s["scores"]["yes"] for s in scores if 2.6 < s["t"] < 4.8)
    assert during > 0.5 and during > 3 * away, (during, away)
    summary = got.of("summary")
    assert summary == [{"type": "summary", "seconds": 26.0, "events": 10,
                        "dropped_seconds": 0.0}]
    assert got.messages[-1]["type"] == "summary" and got.close_code == 1000
    assert not any("Traceback" in line for line in st.log)


def test_three_models_resampled_equal_replay(three: list[OnnxModel], demo48k: Path) -> None:
    """48 kHz f32le in, two frame models batched at 16 kHz and a window model at 8 kHz."""
    want = replay_lines([str(demo48k), "--model", "commands", "--model", "sounds",
                         "--model", "commands-cnn"])
    x, rate = read_audio(demo48k)
    with serving(three) as st:
        assert set(st.server.banks) == {"commands", "sounds"}
        assert "commands-cnn" in st.server.unbatched
        got = send_audio(st.url, x, rate, block_ms=20, fmt="f32le")
    assert {e["model"] for e in want} == {"commands", "sounds", "commands-cnn"}
    same_events(got.events, want)


def test_gate_on_equals_replay(tmp_path: Path) -> None:
    path = _gated_copy(tmp_path)
    model = OnnxModel.load(path)
    assert model.card.vad.enabled
    want = replay_lines([str(DEMO), "--model", str(path)])
    x, rate = read_audio(DEMO)
    with serving([model]) as st:
        got = send_audio(st.url, x, rate, block_ms=37)
    assert want
    same_events(got.events, want)


def test_two_streams_at_once_each_their_own(commands: OnnxModel, tmp_path: Path,
                                            replay_demo: list[dict[str, Any]]) -> None:
    x, rate = read_audio(DEMO)
    other = np.concatenate((np.zeros(rate // 2 + 123, np.float32), x[9 * rate : 18 * rate]))
    other_path = tmp_path / "other.wav"
    sf.write(str(other_path), other, rate, subtype="FLOAT")
    want_other = replay_lines([str(other_path)])
    results: dict[str, Any] = {}
    with serving([commands]) as st:
        def run(name: str, audio: np.ndarray, block: float) -> None:
            results[name] = send_audio(st.url, audio, rate, block_ms=block, fmt="f32le")

        threads = [threading.Thread(target=run, args=("demo", x, 20)),
                   threading.Thread(target=run, args=("other", other, 100))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert st.server.ticks > 0
    same_events(results["demo"].events, replay_demo)
    same_events(results["other"].events, want_other)
    assert [e["label"] for e in want_other] != [e["label"] for e in replay_demo]


def _raw_exchange(url: str, first: str | bytes, then: list[str | bytes] | None = None,
                  ) -> tuple[list[dict[str, Any]], int | None]:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    msgs: list[dict[str, Any]] = []
    with connect(url, close_timeout=5) as ws:
        try:
            ws.send(first)
            for m in then or []:
                ws.send(m)
        except ConnectionClosed:
            pass  # refused at once: its error message is still there to read
        try:
            while True:
                msgs.append(json.loads(ws.recv(20)))
        except ConnectionClosed:
            pass
        return msgs, ws.close_code


HELLO = {"type": "hello", "sample_rate": 16000, "format": "s16le", "channels": 1}


@pytest.mark.parametrize(("first", "then", "code", "words"), [
    ("{not json", None, BAD_DATA, "malformed JSON"),
    ("[1, 2]", None, BAD_DATA, "JSON object"),
    (json.dumps({**HELLO, "format": "s24le"}), None, BAD_DATA, "unknown sample format"),
    (json.dumps({**HELLO, "sample_rate": 4000}), None, BAD_DATA, "sample_rate"),
    (json.dumps({**HELLO, "sample_rate": "16k"}), None, BAD_DATA, "sample_rate"),
    (json.dumps({**HELLO, "channels": 2}), None, BAD_DATA, "mono"),
    (json.dumps({**HELLO, "models": ["nope"]}), None, BAD_DATA, "unknown model 'nope'"),
    (json.dumps({"type": "start"}), None, POLICY, "must be a hello"),
    (b"\x00\x01" * 80, None, POLICY, "binary audio before the hello"),
    (json.dumps(HELLO), [b"\x00" * 321], BAD_DATA, "321 bytes is not whole s16le samples"),
    (json.dumps(HELLO), ['{"type":"pause"}'], POLICY, "unknown message type 'pause'"),
    (json.dumps(HELLO), ["nope"], BAD_DATA, "malformed JSON"),
    # nesting json.loads would recurse into (RecursionError: close 1011, no word), a huge hello
    pytest.param("[" * 1500 + "]" * 1500, None, BAD_DATA, "must not nest more than 32 levels",
                 id="deep-array"),
    pytest.param('{"type":"hello","x":' + '{"a":' * 2000 + "1" + "}" * 2001, None, BAD_DATA,
                 "must not nest more than 32 levels", id="deep-hello"),
    pytest.param(json.dumps({**HELLO, "pad": "x" * 70_000}), None, BAD_DATA, "at most 64 KiB",
                 id="huge-hello"),
    pytest.param(json.dumps(HELLO), ["[" * 3000 + "]" * 3000], BAD_DATA,
                 "must not nest more than 32", id="deep-after-hello"),
])
def test_bad_input_is_an_error_and_a_clean_close(
        commands: OnnxModel, first: str | bytes, then: list[str | bytes] | None, code: int,
        words: str, replay_demo: list[dict[str, Any]]) -> None:
    with serving([commands]) as st:
        msgs, close = _raw_exchange(st.url, first, then)
        errors = [m for m in msgs if m["type"] == "error"]
        assert len(errors) == 1 and words in errors[0]["message"], msgs
        assert msgs[-1]["type"] == "error"
        assert close == code
        st.wait_idle()
        # the server goes on serving, and said one line, no traceback
        x, rate = read_audio(DEMO)
        ok = send_audio(st.url, x[: 3 * rate], rate)
        assert [e["label"] for e in ok.events] == ["yes", "no"]
    assert not any("Traceback" in line for line in st.log)
    assert any(words.split("'")[0] in line for line in st.log)


def test_hello_depth_counts_nesting_not_brackets_in_strings() -> None:
    """The depth bound reads JSON structure: brackets and escaped quotes in a string are text."""
    from hark.live.protocol import ProtocolError, parse_hello

    token = '[[{{\\"]]' * 40 + "\\"
    hello = parse_hello(json.dumps({**HELLO, "token": token, "x": [[[[1]]]]}))
    assert hello.token == token
    with pytest.raises(ProtocolError, match="32 levels"):
        parse_hello(json.dumps({**HELLO, "x": json.loads("[" * 40 + "]" * 40)}))


def test_token_and_max_streams(commands: OnnxModel) -> None:
    x, rate = read_audio(DEMO)
    with serving([commands], ServeOptions(token="s3cret", max_streams=1)) as st:
        for bad in ({}, {"token": "wrong"}):
            msgs, close = _raw_exchange(st.url, json.dumps({**HELLO, **bad}))
            assert close == POLICY and msgs == [{"type": "error",
                                                 "message": "wrong or missing token"}]
        from websockets.sync.client import connect

        with connect(st.url) as first:  # holds the only stream
            first.send(json.dumps({**HELLO, "token": "s3cret"}))
            assert json.loads(first.recv(10))["type"] == "ready"
            msgs, close = _raw_exchange(st.url, json.dumps({**HELLO, "token": "s3cret"}))
            assert close == POLICY and "full (1 streams)" in msgs[0]["message"]
        st.wait_idle()
        ok = send_audio(st.url, x[: 2 * rate], rate, hello={"token": "s3cret"})
        assert [e["label"] for e in ok.events] == ["yes"]


def test_hello_timeout(commands: OnnxModel) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with serving([commands], ServeOptions(hello_timeout_s=0.3)) as st, connect(st.url) as ws:
        msg = json.loads(ws.recv(10))
        assert msg == {"type": "error", "message": "no hello within 0.3 s"}
        with pytest.raises(ConnectionClosed):
            ws.recv(10)
        assert ws.close_code == POLICY


def test_client_vanishing_mid_event(commands: OnnxModel,
                                    replay_demo: list[dict[str, Any]]) -> None:
    """A client that drops its TCP connection inside "yes": the others are unaffected."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    x, rate = read_audio(DEMO)
    pcm = (x * 32767).astype("<i2")
    with serving([commands]) as st:
        result: dict[str, Any] = {}
        other = threading.Thread(target=lambda: result.update(
            demo=send_audio(st.url, x, rate, block_ms=50)))
        other.start()
        with contextlib.suppress(ConnectionClosed, OSError), connect(st.url) as ws:
            ws.send(json.dumps({**HELLO, "scores": True}))
            assert json.loads(ws.recv(10))["type"] == "ready"
            for i in range(0, int(0.95 * rate), 800):  # up to the end of "yes"
                ws.send(pcm[i : i + 800].tobytes())
            opened = None
            while opened is None:
                msg = json.loads(ws.recv(10))
                if msg["type"] == "open":
                    opened = msg
            assert opened["label"] == "yes"
            ws.socket.shutdown(socket.SHUT_RDWR)  # gone, no closing handshake
            ws.socket.close()
        other.join(120)
        st.wait_idle()
        assert st.server.banks["commands"].streams == []
        assert any("client gone" in line for line in st.log)
    same_events(result["demo"].events, replay_demo)


def test_flood_drops_oldest_audio_and_memory_stays_bounded(commands: OnnxModel) -> None:
    """1 s messages into a 100 ms queue: the oldest audio goes, the client is told, time counts."""
    x, rate = read_audio(DEMO)
    with serving([commands], ServeOptions(queue_ms=100)) as st:
        got = send_audio(st.url, x[: 8 * rate], rate, block_ms=1000, wait_acks=False)
        st.wait_idle()
        seen = st.log
    dropped = got.of("dropped")
    assert dropped, got.messages
    total = dropped[-1]["total_seconds"]
    assert 0 < total < 8
    summary = got.of("summary")[0]
    assert summary["seconds"] == 8.0  # the stream clock counts the dropped audio
    assert summary["dropped_seconds"] >= total
    assert got.close_code == 1000
    # every event lies inside the stream's time, after its audio
    assert all(0 <= e["onset"] <= e["offset"] <= 8.0 for e in got.events)
    assert any("dropped" in line for line in seen)


def test_pending_queue_is_bounded(commands: OnnxModel) -> None:
    """The pending queue never holds more than --queue-ms, whatever a client sends."""
    from hark.live.protocol import Hello
    from hark.live.streams import Outbox, Stream

    hello = Hello(16000, "s16le")
    s = Stream(1, hello, [commands], {}, ServeOptions().engine, 1600, Outbox(8))
    lost = 0.0
    for _ in range(50):
        lost += s.push(np.ones(1000, np.float32))
    assert s.pending_samples == 1600 and s.max_pending_seen == 1600
    assert s.received == 50000 and s.dropped == 50000 - 1600
    assert lost == pytest.approx(s.dropped / 16000)
    chunks = s.take(None)
    assert chunks[0].start == 50000 - 1600 and sum(c.samples.size for c in chunks) == 1600
    box = Outbox(3)
    for i in range(5):
        box.put({"type": "scores", "i": i})
    assert len(box) == 3 and box.dropped == 2
    for _ in range(3):
        box.put({"type": "event"})  # events push the scores out
    assert [k for k, _ in box.items] == ["event"] * 3
    from hark.live.streams import OutboxFull

    with pytest.raises(OutboxFull):
        box.put({"type": "event"})


def test_slow_reader_never_stalls_the_others(commands: OnnxModel,
                                             replay_demo: list[dict[str, Any]]) -> None:
    """A client that never reads: its messages pile up to the bound, it is closed; others go on."""
    x, rate = read_audio(DEMO)
    pcm = (x * 32767).astype("<i2")
    opts = ServeOptions(out_queue=16, close_timeout_s=0.5, queue_ms=400_000,
                        send_buffer_bytes=4096)
    with serving([commands], opts) as st:
        slow = NonReader(st.url, st.port)
        try:
            slow.send_text(json.dumps({**HELLO, "scores": True, "acks": True}))
            for _ in range(12):  # 12 x 26 s, never reading a message back
                for i in range(0, pcm.size, 1600):
                    slow.send_binary(pcm[i : i + 1600].tobytes())
            fast = send_audio(st.url, x, rate, block_ms=100)
            st.wait_idle(60)
        finally:
            slow.close()
        assert any("not reading its messages" in line for line in st.log), st.log
    same_events(fast.events, replay_demo)


def test_page_is_served_over_http(commands: OnnxModel) -> None:
    with serving([commands]) as st:
        base = f"http://127.0.0.1:{st.port}"
        with urllib.request.urlopen(base + "/") as r:
            assert r.status == 200 and "text/html" in r.headers["Content-Type"]
            assert "<canvas" in r.read().decode()
        for js in ("/app.js", "/worklet.js"):
            with urllib.request.urlopen(base + js) as r:
                assert r.headers["Content-Type"].startswith("text/javascript")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/../../etc/passwd")
        assert e.value.code == 404


def test_shutdown_closes_open_events_and_sends_them() -> None:
    """SIGINT/SIGTERM path: a whistle still sounding is closed where the audio ends, and sent."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    x, rate = read_audio(DEMO)
    pcm = (x * 32767).astype("<i2")
    st = ServerThread([OnnxModel.load("sounds")])
    msgs: list[dict[str, Any]] = []
    with connect(st.url) as ws:
        ws.send(json.dumps(HELLO))
        assert json.loads(ws.recv(10))["type"] == "ready"
        ws.send(pcm[9 * rate : 10 * rate].tobytes())  # the whistle starts at 0.33 s
        while not any(m["type"] == "open" for m in msgs):
            msgs.append(json.loads(ws.recv(10)))
        st.stop()
        try:
            while True:
                msgs.append(json.loads(ws.recv(10)))
        except ConnectionClosed:
            pass
        assert ws.close_code == 1001
    events = [m for m in msgs if m["type"] == "event"]
    assert [e["label"] for e in events] == ["whistle"] and events[0]["offset"] == 1.0, msgs
    assert msgs[-1] == {"type": "summary", "seconds": 1.0, "events": 1, "dropped_seconds": 0.0}


def test_opened_events_end_as_an_event_or_a_cancel(commands: OnnxModel) -> None:
    """Every open is followed by its event or by a cancel (a blip too short to keep)."""
    x, rate = read_audio(DEMO)
    # events must last 300 ms: the demo's shorter words ("off", 270 ms) open and are cancelled
    card = replace(commands.card, smoothing=replace(commands.card.smoothing, min_on_ms=300.0))
    strict = OnnxModel(commands.path, card, commands.session, commands.output)
    with serving([strict], ServeOptions(queue_ms=60)) as st:  # acks: 30 ms in flight at most
        got = send_audio(st.url, x, rate, block_ms=10)
    assert not got.of("dropped")
    pending: dict[tuple[Any, Any], int] = {}
    for m in got.messages:
        key = (m.get("model"), m.get("label"))
        if m["type"] == "open":
            pending[key] = pending.get(key, 0) + 1
        elif m["type"] in ("event", "cancel") and pending.get(key):
            pending[key] -= 1
            if not pending[key]:
                del pending[key]
    assert not pending, pending
    assert got.of("cancel")  # the demo's short words open, then are cancelled
