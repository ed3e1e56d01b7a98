"""A path in a folder the user cannot search: one `hark: error:` line, never a traceback.

pathlib's is_file()/exists() raise PermissionError there (Python 3.11). Root ignores permissions,
so as root the commands run with the two capabilities that let it (CAP_DAC_OVERRIDE,
CAP_DAC_READ_SEARCH) dropped by util-linux's setpriv: the folder's mode 000 then holds for root
as for anyone. As another user, chmod alone does it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hark.live.model import bundled_dir

ROOT = Path(__file__).resolve().parents[2]
DEMO = bundled_dir() / "demo.wav"


def _unprivileged() -> list[str]:
    """The command prefix under which a folder's permissions hold for this process."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root ignores permissions and setpriv (util-linux) is not here to drop them")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}"]


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder (mode 000) holding a model, its card and a recording."""
    d = tmp_path_factory.mktemp("perm") / "locked"
    d.mkdir()
    for name in ("commands.onnx", "commands.json", "demo.wav"):
        shutil.copy(bundled_dir() / name, d / name)
    d.chmod(0)
    try:
        yield d
    finally:
        d.chmod(0o755)


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*_unprivileged(), sys.executable, *args], capture_output=True,
                          text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)


def test_the_folder_is_really_locked(locked: Path) -> None:
    """Without this, the tests below could not fail."""
    r = _run(["-c", f"import os; os.stat({str(locked / 'commands.onnx')!r})"])
    assert r.returncode != 0 and "PermissionError" in r.stderr, r.stderr


@pytest.mark.parametrize("args", [
    ["replay", "--no-ui", "--model", "{d}/commands.onnx"],
    ["replay", "--no-ui", "--model", "{d}/commands.json"],
    ["serve", "--port", "0", "--model", "{d}/commands.onnx"],
    ["replay", str(DEMO), "--no-ui", "--out", "{d}/ev.jsonl"],
    ["replay", "{d}/demo.wav", "--no-ui", "--out", "{d}/ev.jsonl"],
    ["replay", "{d}/demo.wav", "--no-ui"],
    ["client", "{d}/demo.wav", "--url", "ws://127.0.0.1:9"],
], ids=["model", "card-path", "serve-model", "out", "input-and-out", "input", "client-input"])
def test_a_path_in_a_locked_folder_is_one_line(locked: Path, args: list[str]) -> None:
    r = _run(["-m", "hark.cli", *(a.format(d=locked) for a in args)])
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hark: error: "), r.stderr
    assert str(locked) in lines[0] and "Permission denied" in lines[0], r.stderr


def test_load_card_in_a_locked_folder_is_a_card_error(locked: Path) -> None:
    code = ("from hark.live.card import CardError, load_card\n"
            f"try:\n    load_card({str(locked / 'commands.json')!r})\n"
            "except CardError as e:\n    print(e)\n")
    r = _run(["-c", code])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"cannot reach {locked / 'commands.json'}: Permission denied"
