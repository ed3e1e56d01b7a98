"""hark client against a real hark serve: the same lines as hark replay; errors are one line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hark.live.model import OnnxModel
from tests.live.serving import DEMO, serving

ROOT = Path(__file__).resolve().parents[2]


def _hark(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "hark.cli", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


@pytest.mark.parametrize("fmt", ["jsonl", "tsv"])
def test_client_prints_what_replay_prints(fmt: str) -> None:
    replay = _hark("replay", str(DEMO), "--format", fmt, "--no-ui")
    assert replay.returncode == 0 and replay.stdout
    with serving([OnnxModel.load("commands")]) as st:
        got = _hark("client", str(DEMO), "--url", st.url, "--format", fmt)
    assert got.returncode == 0, got.stderr
    assert got.stdout == replay.stdout
    assert "26.0 s streamed, 10 events" in got.stderr


def test_connection_refused_is_one_line() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    got = _hark("client", str(DEMO), "--url", f"ws://127.0.0.1:{port}")
    assert got.returncode != 0
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hark: error: cannot connect"), got.stderr
    assert "Traceback" not in got.stderr


def test_server_error_is_one_line() -> None:
    with serving([OnnxModel.load("commands")]) as st:
        got = _hark("client", str(DEMO), "--url", st.url, "--model", "nope")
    assert got.returncode != 0
    assert got.stderr.strip() == ("hark: error: server: unknown model 'nope' (this server has: "
                                  "commands)")


def test_serve_refuses_open_host_without_token_and_stops_on_sigterm() -> None:
    bad = _hark("serve", "--host", "0.0.0.0")
    assert bad.returncode == 2
    assert bad.stderr.startswith("hark: error: refusing to listen on 0.0.0.0 without --token")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "hark.cli", "serve", "--port", "0"],
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    m = re.search(r"ws://127\.0\.0\.1:(\d+)", proc.stderr.readline())
    assert m
    client = _hark("client", str(DEMO), "--url", f"ws://127.0.0.1:{m.group(1)}")
    assert client.returncode == 0 and len(client.stdout.splitlines()) == 10
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopped" in err
