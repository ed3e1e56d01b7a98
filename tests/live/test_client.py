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


@pytest.fixture(scope="module")
def mic_band_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The band-energy model of the `hark mic` test (a tone in a band is an event)."""
    from tests.live.test_cli_mic import make_band_model

    return make_band_model(tmp_path_factory.mktemp("mic"))


@pytest.mark.parametrize("fmt", ["jsonl", "tsv"])
def test_client_prints_what_replay_prints(fmt: str) -> None:
    replay = _hark("replay", str(DEMO), "--format", fmt, "--no-ui")
    assert replay.returncode == 0 and replay.stdout
    with serving([OnnxModel.load("commands")]) as st:
        got = _hark("client", str(DEMO), "--url", st.url, "--format", fmt)
    assert got.returncode == 0, got.stderr
    assert got.stdout == replay.stdout
    assert "26.0 s streamed, 10 events" in got.stderr


def test_client_prints_several_models_events_in_replays_order() -> None:
    """Replay writes each 100 ms block's events model by model (in the order of --model): the
    client's lines are the same lines in the same order, whether the models run batched (the
    two LSTMs) or one engine per stream (the window CNN), and in either model order."""
    models = [OnnxModel.load(n) for n in ("commands", "sounds", "commands-cnn")]
    with serving(models) as st:
        for names in (["commands", "sounds"], ["sounds", "commands-cnn", "commands"]):
            flags = [f for n in names for f in ("--model", n)]
            replay = _hark("replay", str(DEMO), *flags, "--format", "tsv", "--no-ui")
            got = _hark("client", str(DEMO), "--url", st.url, *flags, "--format", "tsv")
            assert got.returncode == 0, got.stderr
            assert len({r.split("\t")[2] for r in replay.stdout.splitlines()[1:]}) > 10
            assert got.stdout == replay.stdout, names


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


def test_client_streams_the_microphone_to_the_server(mic_band_model: Path, tmp_path: Path) -> None:
    """`hark client` with no file: a real PortAudio stream from the virtual PulseAudio mic."""
    import time

    import soundfile as sf

    from tests.live.test_cli_replay import RATE, TRUTH, _tones
    from tests.virtual_mic import VirtualMic, require_virtual_mic

    require_virtual_mic()
    model_path = mic_band_model
    wav = tmp_path / "played.wav"
    freqs = {"low": 300.0, "high": 6000.0}
    sf.write(wav, _tones([(freqs[lb], a, b) for lb, a, b in TRUTH], 3.5), RATE, subtype="PCM_16")
    with serving([OnnxModel.load(model_path)]) as st, VirtualMic() as vm:
        env = {**vm.child_env(), "PYTHONPATH": str(ROOT)}
        p = subprocess.Popen([sys.executable, "-m", "hark.cli", "client", "--url", st.url,
                              "--seconds", "6", "--format", "tsv"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             stdin=subprocess.DEVNULL)
        assert p.stderr is not None
        line = p.stderr.readline()
        assert "hark: streaming" in line and st.url in line, line + p.stderr.read()
        time.sleep(0.3)
        vm.play(wav, wait=True)
        out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    header, *rows = out.splitlines()
    assert header == "onset\toffset\tevent_label"
    assert [r.split("\t")[2] for r in rows] == [t[0] for t in TRUTH], out
    assert re.search(r"hark: 6(\.\d+)? s streamed, 3 events", err), err



def test_a_stream_the_server_cuts_is_an_error() -> None:
    """The server stops while `hark client --realtime` is 2 s into the 26 s demo: the events
    so far are written, then one `hark: error:` line and a non-zero exit (never 0)."""
    import time

    from tests.live.serving import ServerThread

    st = ServerThread([OnnxModel.load("commands")])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        p = subprocess.Popen([sys.executable, "-m", "hark.cli", "client", str(DEMO), "--url",
                              st.url, "--realtime", "--format", "tsv"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
        end = time.monotonic() + 60
        while not any("stream 1 from" in line for line in st.log) and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(2.0)
    finally:
        st.stop()
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2, (p.returncode, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hark: error: "), err
    assert "the server ended the stream after" in lines[0] and "stopping" in lines[0], err
    assert "Traceback" not in err
    rows = out.splitlines()[1:]
    assert 0 < len(rows) < 10 and rows[0].endswith("\tyes"), out
