"""A real microphone path without hardware: a private PulseAudio daemon with a null sink.

Whatever is played into the sink `hark_vmic` comes back, bit-exact at 16 kHz, from its monitor
source, which is made the default source; PortAudio reaches it through the ALSA `pulse` plugin
(sounddevice lists `pulse` and `default`). See NOTES.md, "A real microphone path with no hardware".

Choices (and why):
- The daemon runs as a child process with its own HOME and XDG_RUNTIME_DIR in a temp dir and an
  explicit socket path, so it never touches a real session; it is stopped by its PID.
- A silent playback (pacat from /dev/zero) runs all the time: an idle null sink renders in 2 s
  blocks, and a recorder opened then gets its first callback ~1.8 s late. start() then waits
  until the monitor really delivers audio (a parec probe), because the sink leaves its 2 s
  rhythm only at the end of the current block.
- PortAudio enumerates devices once, in Pa_Initialize. `activate()` sets PULSE_SERVER /
  PULSE_COOKIE in os.environ and re-initialises PortAudio (sd._terminate(); sd._initialize()),
  so it works whether or not sounddevice was imported before; on exit it restores the
  environment and re-initialises again. No stream may be open across activate()/exit.
- A child process (e.g. `hark mic`) needs only `vmic.env` merged into its environment.

With CI=true a missing pulseaudio is a failure, not a skip: the microphone path must be tested.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, TracebackType

import pytest

SINK = "hark_vmic"
RATE = 16000
_TOOLS = ("pulseaudio", "pactl", "pacat", "paplay", "parec")


class VirtualMicError(RuntimeError):
    """The virtual microphone could not be started."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing_tools() -> list[str]:
    return [t for t in _TOOLS if shutil.which(t) is None]


def require_virtual_mic() -> None:
    """Fail under CI, skip elsewhere, when the tools for a virtual mic are not installed."""
    missing = missing_tools()
    problems = []
    if missing:
        tools = ", ".join(missing)
        problems.append(f"{tools} not found (apt-get install pulseaudio pulseaudio-utils)")
    try:
        import sounddevice  # noqa: F401
    except OSError:
        problems.append("PortAudio library not found (apt-get install libportaudio2)")
    if not problems:
        return
    message = "virtual microphone unavailable: " + "; ".join(problems)
    if in_ci():
        pytest.fail(message + " [CI=true: the microphone path must be tested]", pytrace=False)
    pytest.skip(message)


class VirtualMic:
    """A private PulseAudio daemon whose null sink's monitor is the default input device.

    Use as a context manager; `env` holds what a client needs (PULSE_SERVER, PULSE_COOKIE).
    """

    def __init__(self, sink: str = SINK, rate: int = RATE) -> None:
        self.sink = sink
        self.rate = rate
        self.source = f"{sink}.monitor"
        self._dir: Path | None = None
        self._daemon: subprocess.Popen[bytes] | None = None
        self._silence: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None
        self.env: dict[str, str] = {}
        self.warmup_s: float | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> VirtualMic:
        missing = missing_tools()
        if missing:
            raise VirtualMicError(f"{', '.join(missing)} not found: apt-get install pulseaudio")
        self._dir = Path(tempfile.mkdtemp(prefix="hark-vmic-"))  # short: socket paths <= 108 B
        home, runtime = self._dir / "home", self._dir / "run"
        for d in (home, runtime):
            d.mkdir(mode=0o700)
        socket = runtime / "native"
        self._log = self._dir / "pulseaudio.log"
        daemon_env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")} | {
            "HOME": str(home),
            "XDG_RUNTIME_DIR": str(runtime),
        }
        cmd = [
            "pulseaudio",
            "-n",  # no default.pa: only the modules below
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            "--disallow-exit",
            f"--load=module-native-protocol-unix socket={socket}",
            f"--load=module-null-sink sink_name={self.sink} rate={self.rate} channels=1",
        ]
        with open(self._log, "wb") as log:
            self._daemon = subprocess.Popen(
                cmd, env=daemon_env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        self.env = {
            "PULSE_SERVER": f"unix:{socket}",
            # the daemon's own cookie: clients then never create one in the real HOME
            "PULSE_COOKIE": str(home / ".config" / "pulse" / "cookie"),
        }
        try:
            self._wait_ready()
            self.pactl("set-default-sink", self.sink)
            self.pactl("set-default-source", self.source)
            self._silence = subprocess.Popen(
                [
                    *self._pa("pacat"),
                    "--playback",
                    "--latency-msec=20",
                    "-d",
                    self.sink,
                    *self._raw_args(),
                    "/dev/zero",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.warmup_s = self._wait_monitor_flowing()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the silence and the daemon by their PIDs, remove the temp dir."""
        for proc in (self._silence, self._daemon):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._silence = self._daemon = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> VirtualMic:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return None if self._daemon is None else self._daemon.pid

    # -- helpers ---------------------------------------------------------------------------------
    def _pa(self, tool: str) -> list[str]:
        return [tool, f"--server={self.env['PULSE_SERVER']}"]

    def _raw_args(self) -> list[str]:
        return ["--raw", "--format=s16le", f"--rate={self.rate}", "--channels=1"]

    def log_tail(self, n_chars: int = 2000) -> str:
        if self._log is None or not self._log.exists():
            return ""
        return self._log.read_text(errors="replace")[-n_chars:]

    def pactl(self, *args: str) -> str:
        out = subprocess.run(
            [*self._pa("pactl"), *args], capture_output=True, text=True, timeout=10, check=False
        )
        if out.returncode != 0:
            raise VirtualMicError(f"pactl {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def _wait_ready(self, timeout_s: float = 10.0) -> None:
        assert self._daemon is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._daemon.poll() is not None:
                raise VirtualMicError(f"pulseaudio exited at start:\n{self.log_tail()}")
            probe = subprocess.run(
                [*self._pa("pactl"), "info"], capture_output=True, timeout=5, check=False
            )
            if probe.returncode == 0:
                return
            time.sleep(0.05)
        raise VirtualMicError(f"pulseaudio did not answer in {timeout_s} s:\n{self.log_tail()}")

    def _wait_monitor_flowing(self, timeout_s: float = 6.0) -> float:
        """Block until the monitor delivers audio to a fresh recorder; return how long it took."""
        t0 = time.monotonic()
        rec = subprocess.Popen(
            [*self._pa("parec"), "--latency-msec=10", "-d", self.source, *self._raw_args()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert rec.stdout is not None
            fd = rec.stdout.fileno()
            got = 0
            while got < 320:  # 10 ms of s16 mono at 16 kHz
                left = t0 + timeout_s - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    raise VirtualMicError(f"the monitor delivered no audio in {timeout_s} s")
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise VirtualMicError("parec exited before any audio arrived")
                got += len(chunk)
        finally:
            rec.kill()
            rec.wait()
            if rec.stdout is not None:
                rec.stdout.close()
        return time.monotonic() - t0

    # -- use -------------------------------------------------------------------------------------
    def child_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment for a subprocess (e.g. `hark mic`) that records from this mic."""
        return {**(dict(os.environ) if base is None else base), **self.env}

    def play(self, wav_path: str | os.PathLike[str], wait: bool = True) -> subprocess.Popen[bytes]:
        """Play a sound file into the sink with paplay; wait for the end unless wait=False.

        With wait=False the caller owns the returned process: check `proc.wait() == 0`.
        """
        cmd = [*self._pa("paplay"), "-d", self.sink, "--latency-msec=20", str(wav_path)]
        err = subprocess.PIPE if wait else subprocess.DEVNULL
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
        )
        if wait:
            _, message = proc.communicate(timeout=60)  # also closes the pipe
            if proc.returncode != 0:
                raise VirtualMicError(f"paplay {wav_path} failed: {message.decode().strip()}")
        return proc

    @contextlib.contextmanager
    def activate(self) -> Iterator[None]:
        """Point this process's PortAudio at the virtual mic (env + PortAudio re-initialised)."""
        import sounddevice as sd

        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        _reinitialize_portaudio(sd)
        try:
            names = [d["name"] for d in sd.query_devices() if d["max_input_channels"] > 0]
            if "pulse" not in names:
                raise VirtualMicError(
                    f"PortAudio does not see the PulseAudio device (inputs: {names}); the ALSA "
                    "pulse plugin is missing? apt-get install libasound2-plugins"
                )
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            _reinitialize_portaudio(sd)


def _reinitialize_portaudio(sd: ModuleType) -> None:
    """Make PortAudio enumerate devices again (it does so only in Pa_Initialize)."""
    sd._terminate()
    sd._initialize()


@contextlib.contextmanager
def virtual_mic() -> Iterator[VirtualMic]:
    """Start a VirtualMic (fail in CI / skip elsewhere if impossible) and activate it in-process."""
    require_virtual_mic()
    with VirtualMic() as vmic, vmic.activate():
        yield vmic


@pytest.fixture(scope="module")
def vmic() -> Iterator[VirtualMic]:
    """Module-scoped: starting the daemon and warming the sink takes ~1-2 s."""
    with virtual_mic() as mic:
        yield mic
