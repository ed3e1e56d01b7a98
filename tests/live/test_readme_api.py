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
