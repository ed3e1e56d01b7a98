"""The README's Python API example runs as written, and `import hark` stays light."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _api_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python block in the README's Python API section"
    return match.group(1)


def test_readme_api_example_runs_as_written() -> None:
    code = _api_example()
    assert len(code.strip().splitlines()) <= 16
    probe = code + (
        "\nassert isinstance(update, hark.Update) and isinstance(final, hark.Update)"
        "\nassert engine.time_s == 1.0 and set(level) <= set(model.card.labels)"
        "\nimport sys; assert 'tensorflow' not in sys.modules\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr


def test_import_hark_is_light_and_typed() -> None:
    r = subprocess.run(
        [sys.executable, "-c",
         "import sys, hark; heavy = [m for m in ('numpy', 'onnxruntime', 'tensorflow', "
         "'hark.live.engine') if m in sys.modules]; print(heavy); "
         "assert hark.Engine.__module__ == 'hark.live.engine'; "
         "assert 'tensorflow' not in sys.modules"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
    assert (README.parent / "hark" / "py.typed").is_file()


def _protocol_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("Protocol (text frames are JSON objects", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python block at the top of the README's protocol section"
    return match.group(1)


def test_readme_protocol_client_loop_paces_by_acks_and_loses_nothing() -> None:
    """The README's home-made client, run as written (its file and address swapped for the
    demo and a real server with a 0.3 s queue): every event `hark replay` finds, in order, and
    nothing dropped; the same blocks written without waiting for acks lose audio."""
    from hark.live.model import OnnxModel
    from hark.live.server import ServeOptions
    from tests.live.serving import DEMO, read_audio, replay_lines, send_audio, serving

    code = _protocol_example()
    assert code.count('"talk.wav"') == 1 and code.count('"ws://127.0.0.1:8765"') == 1
    want = [f"{e['label']} {e['onset']} {e['offset']}" for e in replay_lines([str(DEMO)])]
    with serving([OnnxModel.load("commands")], ServeOptions(queue_ms=300)) as st:
        probe = code.replace('"talk.wav"', repr(str(DEMO))).replace(
            '"ws://127.0.0.1:8765"', repr(st.url))
        r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == want
        st.wait_idle()
        assert "0.0 s dropped" in st.log[-1], st.log
        x, rate = read_audio(DEMO)
        unpaced = send_audio(st.url, x, rate, fmt="f32le", wait_acks=False)
    assert unpaced.of("dropped") and len(unpaced.events) < len(want)
