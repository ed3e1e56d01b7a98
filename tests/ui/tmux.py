"""A private tmux server for one test: run a command in a fixed-size pane, read the screen.

Its own socket (-L), so it never touches anyone's tmux; kill() ends the server it started.
With CI=true a missing tmux is a failure, not a skip: the real terminal must be tested.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence

import pytest


def require_tmux() -> str:
    path = shutil.which("tmux")
    if path is not None:
        return path
    message = "tmux not found (apt-get install tmux): the real-terminal UI tests need it"
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(message + " [CI=true: the terminal UI must be tested]", pytrace=False)
    pytest.skip(message)


class Tmux:
    """`command` runs in a WIDTHxHEIGHT pane; after it ends the pane shows `HARK-EXIT=<code>`
    and stays (so the exit summary can be read)."""

    def __init__(self, command: Sequence[str], width: int, height: int,
                 env: Mapping[str, str] | None = None, cwd: str | None = None) -> None:
        self.tmux = require_tmux()
        self.socket = f"hark-ui-test-{uuid.uuid4().hex[:8]}"
        assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        shell = (f"{'cd ' + shlex.quote(cwd) + ' && ' if cwd else ''}"
                 f"{'env ' + assigns + ' ' if assigns else ''}{shlex.join(command)}; "
                 "echo HARK-EXIT=$?; sleep 600")
        self._run("new-session", "-d", "-x", str(width), "-y", str(height), "-s", "t", shell)
        self.socket_path = self._run("display-message", "-p", "#{socket_path}").strip()
        self.history: list[str] = []

    def _run(self, *args: str) -> str:
        out = subprocess.run([self.tmux, "-L", self.socket, *args], capture_output=True,
                             text=True, timeout=10, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"tmux {args[0]} failed: {out.stderr.strip()}")
        return out.stdout

    def capture(self) -> str:
        text = self._run("capture-pane", "-p", "-J", "-t", "t")  # -J: join wrapped lines
        self.history.append(text)
        return text

    def pane_pid(self) -> int:
        """The pid of the pane's shell (the command runs as its child)."""
        return int(self._run("display-message", "-p", "-t", "t", "#{pane_pid}").strip())

    def send(self, *keys: str) -> None:
        self._run("send-keys", "-t", "t", *keys)

    def wait_for(self, what: str | Callable[[str], bool], timeout_s: float = 20.0) -> str:
        """Poll the screen (every 50 ms) until it contains the regex `what` / what(screen)."""
        check = what if callable(what) else (lambda s: re.search(what, s) is not None)
        deadline = time.monotonic() + timeout_s
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if check(screen):
                return screen
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what!r}; "
                             f"screen:\n{screen}")

    def kill(self) -> None:
        """End this test's server (and what runs in it); remove its socket file."""
        subprocess.run([self.tmux, "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=10, check=False)
        with contextlib.suppress(OSError):
            os.unlink(self.socket_path)
