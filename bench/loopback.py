"""End-to-end decision latency through the real audio stack (--loopback).

Path: probe samples -> pacat (a playback stream, as a player's) -> PulseAudio null sink -> its
monitor source -> ALSA pulse plugin -> PortAudio -> MicSource's callback queue -> Engine.feed
-> the smoother shows the event. No sound card is needed.

The daemon: this module starts its own private PulseAudio (`pulseaudio -n` with only the native
protocol and a null sink at the model's rate; HOME / XDG_RUNTIME_DIR in a temp dir, so it never
touches a desktop session) and stops it by its PID. Needs `apt-get install pulseaudio
pulseaudio-utils libportaudio2`. The player writes silence continuously, so the sink never idles
(an idle null sink renders in 2 s blocks: NOTES.md).

What is measured, per probe, all on one clock (time.monotonic, which is system-wide on Linux):
  t_write  just before the write() that hands the probe's first sample to pacat. The player
           writes 1 ms chunks on an absolute schedule (a continuous source, as a microphone
           hears one) and every probe starts on a chunk boundary. The null sink has no output
           delay, so this is when the sound exists; a real speaker would add its own buffer.
  t_arrive when MicSource yielded the block holding the probe's first sample to the consumer.
  t_onset  when Engine.feed returned and the model's smoother first showed the probe's event
           as active (smoother.active: what the UI draws).
  t_final  when Engine.feed returned that event finished.
A probe counts as detected only when a finished event of the expected label follows it (an onset
the smoother shows and then drops as shorter than min_on_ms is not an event).
onset_latency = t_onset - t_write, with nothing subtracted: pacat's buffer (--latency-msec),
the sink, the capture block, queueing, the audio the model needs (window, smoothing) and compute.
Breakdown: audio_path = t_arrive - t_write; stream_delay = audio the engine had consumed at
t_onset past the probe's first sample (stream clock: samples / rate): what the model needed to
hear (its window, smoothing, and how much of the word it takes to be sure);
pipeline = onset_latency - stream_delay: what the system added on top of the audio itself
(audio stack buffers, queueing, compute). The probe's first sample is found in the captured
stream (the null sink is bit-exact, silence is exact zeros), so the stream position is exact,
not inferred from wall time. The components overlap (audio_path includes the part of the first
capture block after the onset, which stream_delay counts too): they do not add up.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import numpy as np

from hark.bench.timing import Dist
from hark.live.errors import HarkError

TOOLS = ("pulseaudio", "pacat")
SINK = "hark_bench"
INSTALL_HINT = "apt-get install pulseaudio pulseaudio-utils libportaudio2"


class LoopbackError(HarkError):
    """The audio loopback could not be set up."""


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


class PulseDaemon:
    """A private PulseAudio daemon with one null sink whose monitor is the default source."""

    def __init__(self, rate: int, sink: str = SINK) -> None:
        self.rate, self.sink = rate, sink
        self.env: dict[str, str] = {}
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._silence: subprocess.Popen[bytes] | None = None

    def start(self) -> PulseDaemon:
        missing = missing_tools()
        if missing:
            raise LoopbackError(f"--loopback needs {', '.join(missing)}: {INSTALL_HINT}")
        self._dir = Path(tempfile.mkdtemp(prefix="hark-bench-pa-"))  # socket path <= 108 bytes
        home, run = self._dir / "home", self._dir / "run"
        home.mkdir(mode=0o700)
        run.mkdir(mode=0o700)
        socket = run / "native"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
        env |= {"HOME": str(home), "XDG_RUNTIME_DIR": str(run)}
        log = open(self._dir / "pulseaudio.log", "wb")  # noqa: SIM115 - the daemon's stdout
        self._proc = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
             "--disallow-exit", f"--load=module-native-protocol-unix socket={socket}",
             f"--load=module-null-sink sink_name={self.sink} rate={self.rate} channels=1"],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
        log.close()
        self.env = {"PULSE_SERVER": f"unix:{socket}",
                    "PULSE_COOKIE": str(home / ".config" / "pulse" / "cookie")}
        try:
            self._wait_ready()
            self._pactl("set-default-sink", self.sink)
            self._pactl("set-default-source", f"{self.sink}.monitor")
        except BaseException:
            self.stop()
            raise
        return self

    def keep_awake(self, timeout_s: float = 6.0) -> float:
        """Play silence into the sink until stop(); wait until its monitor delivers audio.

        An idle null sink renders in 2 s blocks; a fresh recorder would wait for the next one.
        Returns the wait in seconds.
        """
        import select

        t0 = time.monotonic()
        server = f"--server={self.env['PULSE_SERVER']}"
        raw = ["--raw", "--format=s16le", f"--rate={self.rate}", "--channels=1"]
        self._silence = subprocess.Popen(
            ["pacat", server, "--playback", "--latency-msec=20", "-d", self.sink, *raw,
             "/dev/zero"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        if shutil.which("parec") is None:
            time.sleep(2.5)  # longer than one 2 s idle block
            return time.monotonic() - t0
        rec = subprocess.Popen(["parec", server, "--latency-msec=10", "-d",
                                f"{self.sink}.monitor", *raw],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
        try:
            assert rec.stdout is not None
            fd, got = rec.stdout.fileno(), 0
            while got < 2 * self.rate // 100:  # 10 ms of s16
                left = t0 + timeout_s - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    raise LoopbackError(f"the sink's monitor gave no audio in {timeout_s} s")
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise LoopbackError("parec exited before any audio arrived")
                got += len(chunk)
        finally:
            rec.kill()
            rec.wait()
        return time.monotonic() - t0

    def stop_silence(self) -> None:
        if self._silence is not None and self._silence.poll() is None:
            self._silence.terminate()
            self._silence.wait(timeout=5)
        self._silence = None

    def _pactl(self, *args: str) -> None:
        if shutil.which("pactl") is None:
            raise LoopbackError(f"pactl not found: {INSTALL_HINT}")
        out = subprocess.run(["pactl", f"--server={self.env['PULSE_SERVER']}", *args],
                             capture_output=True, text=True, timeout=10, check=False)
        if out.returncode != 0:
            raise LoopbackError(f"pactl {' '.join(args)} failed: {out.stderr.strip()}")

    def _wait_ready(self, timeout_s: float = 10.0) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise LoopbackError("pulseaudio exited at start: " + self.log_tail())
            try:
                self._pactl("info")
                return
            except LoopbackError:
                time.sleep(0.05)
        raise LoopbackError(f"pulseaudio did not answer in {timeout_s} s: {self.log_tail()}")

    def log_tail(self) -> str:
        p = None if self._dir is None else self._dir / "pulseaudio.log"
        return p.read_text(errors="replace")[-800:] if p is not None and p.exists() else ""

    def stop(self) -> None:
        self.stop_silence()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> PulseDaemon:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def child_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}


def reinit_portaudio(sd: ModuleType) -> None:
    """PortAudio enumerates devices (and reads PULSE_SERVER) only in Pa_Initialize."""
    sd._terminate()
    sd._initialize()


# ---- probes --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Probe:
    """A probe sound and the label it should cause (None: any event counts).

    The audio starts at its first sample: leading silence is trimmed.
    """

    spec: str
    audio: np.ndarray
    label: str | None


def _trim(x: np.ndarray) -> np.ndarray:
    """Cut leading/trailing audio below -40 dB of the peak; short fades, exact zeros around."""
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak == 0:
        raise LoopbackError("the probe sound is silent")
    loud = np.flatnonzero(np.abs(x) >= 0.01 * peak)
    y = x[loud[0] : loud[-1] + 1].astype(np.float32)
    return np.clip(y / max(peak, 1e-9) * 0.5, -1, 1).astype(np.float32)


def _say(word: str, rate: int) -> np.ndarray:
    import soundfile as sf
    import soxr

    if shutil.which("espeak-ng") is None:
        raise LoopbackError("probe say:WORD needs espeak-ng (apt-get install espeak-ng)")
    wav = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout"], input=word.encode(),
                         capture_output=True, check=True, timeout=30).stdout
    x, sr = sf.read(io.BytesIO(wav), dtype="float32")
    return soxr.resample(x, sr, rate).astype(np.float32)


def make_probe(spec: str, card: Any, label: str | None = None) -> Probe:
    """Probe from a spec: beep[:HZ[:MS]] | say:WORD | event:CLASS | PATH.wav (not auto)."""
    rate = card.sample_rate
    kind, _, arg = spec.partition(":")
    if kind == "beep":
        parts = arg.split(":") if arg else []
        hz = float(parts[0]) if parts else 1000.0
        ms = float(parts[1]) if len(parts) > 1 else 300.0
        t = np.arange(int(rate * ms / 1000)) / rate
        ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.004)
        x = np.sin(2 * np.pi * hz * t) * ramp
        x[0] = 1e-3  # starts exactly here (the ramp makes sample 0 zero)
        return Probe(spec, (0.5 * x).astype(np.float32), label)
    if kind == "say":
        return Probe(spec, _trim(_say(arg, rate)), label or arg)
    if kind == "event":
        try:
            from hark.models.data.sound_events import synth_event
        except ImportError as e:
            raise LoopbackError(f"probe {spec}: models.data is not importable ({e})") from e
        return Probe(spec, _trim(synth_event(arg, np.random.default_rng(3), rate)), label or arg)
    path = Path(spec)
    if path.is_file():
        from hark.bench.audio import AudioSpec, load

        return Probe(spec, _trim(load(AudioSpec(path=path), rate)), label)
    raise LoopbackError(f"unknown probe {spec!r} (beep[:HZ[:MS]], say:WORD, event:CLASS, a .wav)")


def candidate_probes(card: Any) -> list[tuple[str, str | None]]:
    """Probes the model may detect, best first: its sound classes, else its words, else a beep."""
    labels = [lb for lb in card.event_labels if not lb.startswith("_")]
    out: list[tuple[str, str | None]] = [
        (f"event:{c}", c) for c in ("beep", "whistle", "clap", "knock") if c in labels
    ]
    if shutil.which("espeak-ng"):
        out += [(f"say:{w}", w) for w in labels if w.isalpha() and w != "speech"]
    return out + [("beep:1000", None)]


def detected_offline(model: Any, probe: Probe) -> bool:
    """Whether the engine alone turns the probe, between silences, into one event of its label.

    With such a probe the loopback measures timing, not recognition.
    """
    from hark.live.engine import Engine

    rate = model.card.sample_rate
    x = np.zeros(rate + probe.audio.size + 2 * rate, np.float32)
    x[rate : rate + probe.audio.size] = probe.audio
    engine = Engine([model])
    block = rate // 100
    events = [ev for i in range(0, x.size, block) for ev in engine.feed(x[i : i + block])]
    events += engine.close()
    return len(events) == 1 and (probe.label is None or events[0].label == probe.label)


def label_probes(model: Any, per_label: int, seed: int = 0) -> list[Probe]:
    """Probes for every label of the model that can be made here, per_label each, interleaved.

    Words are spoken by held-out voices (espeak-ng test-split voices, flite), sound classes come
    from models.data's synthesiser (bench.decision.label_clips); the order cycles through the
    labels, so every label is probed early and late in the run. Empty when none can be made.
    """
    from hark.bench.decision import label_clips

    clips = label_clips(model.card, per_label, seed)
    probes: list[Probe] = []
    for i in range(per_label):
        for label, cs in clips.items():
            if i < len(cs):
                try:
                    probes.append(Probe(f"{label}#{i}", _trim(cs[i]), label))
                except LoopbackError:  # a silent clip
                    continue
    return probes


def auto_probe(model: Any) -> Probe:
    """The first candidate probe the model detects offline (else the first candidate)."""
    cands = candidate_probes(model.card)
    for spec, label in cands:
        try:
            probe = make_probe(spec, model.card, label)
        except LoopbackError:
            continue
        if detected_offline(model, probe):
            return probe
    return make_probe(cands[0][0], model.card, cands[0][1])


# ---- the player ----------------------------------------------------------------------------------
class Player:
    """Plays a timeline into pacat from a child process (hark.bench.player), 1 ms at a time.

    Chunks of 1 ms: the audio stack then receives the probe about as a continuous source makes
    it, so the capture block holding the probe's first sample is complete only when the rest of
    that block has been played too, as with a real microphone (10 ms writes would hand the
    engine up to 10 ms of sound before it "happened").
    """

    def __init__(self, daemon: PulseDaemon, timeline: np.ndarray, chunk: int, rate: int,
                 marks: list[int], latency_ms: int) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="hark-bench-player-"))
        np.save(self._dir / "pcm.npy", (np.clip(timeline, -1, 1) * 32767).astype("<i2"))
        job = {
            "pcm": str(self._dir / "pcm.npy"), "chunk": chunk, "rate": rate, "marks": marks,
            "out": str(self._dir / "out.json"),
            "pacat": ["pacat", f"--server={daemon.env['PULSE_SERVER']}", "--playback", "-d",
                      daemon.sink, "--raw", "--format=s16le", f"--rate={rate}",
                      "--channels=1", f"--latency-msec={latency_ms}"],
        }
        (self._dir / "job.json").write_text(json.dumps(job))
        self._cmd = [sys.executable, "-m", "hark.bench.player", str(self._dir / "job.json")]
        self.proc: subprocess.Popen[bytes] | None = None
        self.write_times: dict[int, float] = {}
        self.late_blocks = self.blocked_writes = self.skipped = 0
        self.max_write_ms = 0.0

    def start(self) -> None:
        self.proc = subprocess.Popen(self._cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    @property
    def error(self) -> str | None:
        """Why the player stopped early, if it did."""
        if self.proc is None or self.proc.poll() is None or self.proc.returncode == 0:
            return None
        err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
        return f"exit {self.proc.returncode}: {err.strip()[-300:]}"

    def stop(self) -> None:
        """End the playback (if still running) and collect what it recorded."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        out = self._dir / "out.json"
        if out.exists():
            res = json.loads(out.read_text())
            self.write_times = {int(k): float(v) for k, v in res["write_times"].items()}
            self.late_blocks = int(res["late_chunks"])
            self.blocked_writes = int(res["blocked_writes"])
            self.skipped = int(res["skipped_silent_chunks"])
            self.max_write_ms = float(res["max_write_ms"])
        shutil.rmtree(self._dir, ignore_errors=True)


# ---- the measurement -----------------------------------------------------------------------------
@dataclass
class ProbeResult:
    index: int
    stream_onset_s: float | None = None
    t_write: float | None = None
    t_arrive: float | None = None
    t_onset: float | None = None
    t_final: float | None = None
    samples_at_onset: int | None = None
    event_onset_s: float | None = None
    label: str | None = None
    exact: bool = False
    starved: bool = False  # silence inserted mid-probe (a starved player buffer)
    extra: dict[str, Any] = field(default_factory=dict)


def run_loopback(model: Any, probe: Probe | list[Probe], n_probes: int = 8,
                 block_ms: float = 10.0, player_latency_ms: int = 10, lead_s: float = 3.0,
                 daemon: PulseDaemon | None = None, options: Any = None) -> dict[str, Any]:
    """Play probes through a (private) PulseAudio loopback into a live Engine.

    probe: one probe played n_probes times, or a list of probes played once each in order
    (label_probes: every label of the model); results per label and overall.
    """
    card = model.card
    rate = card.sample_rate
    probes = [probe] * n_probes if isinstance(probe, Probe) else list(probe)
    if not probes:
        raise LoopbackError("no probe to play")
    block = int(round(block_ms * rate / 1000))
    gap_s = 1.5 + float(card.window_s or 0.0) + card.smoothing.min_off_ms / 1000.0
    longest = max(p.audio.size for p in probes)
    spacing = int(np.ceil((longest / rate + gap_s) * rate / block)) * block
    lead = int(np.ceil(lead_s * rate / block)) * block
    total = lead + len(probes) * spacing
    timeline = np.zeros(total, np.float32)
    starts = [lead + k * spacing for k in range(len(probes))]
    for s, p in zip(starts, probes, strict=True):
        timeline[s : s + p.audio.size] = p.audio
    own = daemon is None
    pa = daemon or PulseDaemon(rate).start()
    try:
        if pa._silence is None:
            # a sink still in its idle 2 s rhythm would make the player's pipe fill up: a
            # standing backlog that every later probe would wait behind
            pa.keep_awake()
        res = _measure(model, probes, pa, timeline, starts, block, player_latency_ms, options)
        offline = {spec: detected_offline(model, p)
                   for spec, p in {p.spec: p for p in probes}.items()}
        res["detected_offline"] = all(offline.values())
        res["detected_offline_probes"] = sum(offline[p.spec] for p in probes)
        for label, row in res.get("per_label", {}).items():
            row["detected_offline"] = sum(offline[p.spec] for p in probes if p.label == label)
        return res
    finally:
        if own:
            pa.stop()


def _measure(model: Any, probes: list[Probe], pa: PulseDaemon, timeline: np.ndarray,
             starts: list[int], block: int, latency_ms: int, options: Any) -> dict[str, Any]:
    from hark.live.devices import import_sounddevice
    from hark.live.engine import Engine, EngineOptions
    from hark.live.sources import MicSource

    card = model.card
    rate = card.sample_rate
    spacing = starts[1] - starts[0] if len(starts) > 1 else timeline.size
    saved = {k: os.environ.get(k) for k in pa.env}
    os.environ.update(pa.env)
    sd = import_sounddevice()
    reinit_portaudio(sd)
    chunk = max(1, rate // 1000)  # 1 ms writes; probes start on a chunk boundary
    assert all(s % chunk == 0 for s in starts)
    player = Player(pa, timeline, chunk, rate, [s // chunk for s in starts], latency_ms)
    engine = Engine([model], options or EngineOptions())
    stream = engine.streams[0]
    results = [ProbeResult(k) for k in range(len(starts))]
    captured: list[np.ndarray] = []
    arrivals: list[tuple[int, float]] = []  # (samples captured incl. this block, t_yield)
    t_open = time.monotonic()
    first_block_s = None
    try:
        player.start()
        tail_s = 1.0 + card.algorithmic_latency_s()
        with MicSource(rate, block_ms=block * 1000 / rate, latency="low",
                       max_seconds=timeline.size / rate + tail_s + 2.0) as mic:
            if mic.input_rate != rate:
                raise LoopbackError(f"the virtual sink runs at {mic.input_rate} Hz, not {rate}")
            pos = 0
            located: list[int] = []  # stream sample of each probe's first sample
            shown: dict[tuple[str, float], tuple[float, int]] = {}  # event -> first seen active
            longest = max(p.audio.size for p in probes)
            window_s = longest / rate + 1.0  # an event this late is not the probe's
            refractory = (longest + spacing) // 2
            labels = [p.label for p in probes]
            for b in mic.blocks():
                t_got = time.monotonic()
                if first_block_s is None:
                    first_block_s = t_got - t_open
                captured.append(b)
                arrivals.append((pos + b.size, t_got))
                # find probe starts in this block (exact zeros between probes)
                if len(located) < len(starts):
                    nz = np.flatnonzero(b)
                    # refractory: a playback glitch (silence inserted mid-probe) must not make
                    # the rest of the probe look like the next one
                    if nz.size and (not located or pos + nz[0] >= located[-1] + refractory):
                        located.append(pos + int(nz[0]))
                        results[len(located) - 1].t_arrive = t_got
                pos += b.size
                finished = engine.feed(b)
                t_done = time.monotonic()
                for lb, (ev_onset, _) in stream.smoother.active.items():
                    shown.setdefault((lb, round(ev_onset, 6)), (t_done, engine.samples_in))
                for ev in finished:
                    owner = _owner(ev, labels, located, rate, window_s, results)
                    if owner is None:
                        continue
                    r = results[owner]
                    r.t_onset, r.samples_at_onset = shown.get(
                        (ev.label, round(ev.onset_s, 6)), (t_done, engine.samples_in))
                    r.label, r.event_onset_s, r.t_final = ev.label, ev.onset_s, t_done
                failed = player.error
                if failed is not None:
                    raise LoopbackError(f"the player failed: {failed}")
                if pos >= timeline.size + tail_s * rate + rate:  # everything played and judged
                    break
            stats = mic.stats
    finally:
        player.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reinit_portaudio(sd)
    y = np.concatenate(captured) if captured else np.zeros(0, np.float32)
    for r, loc, p in zip(results, located, probes, strict=False):
        r.stream_onset_s = loc / rate
        want = _s16(p.audio)
        seg = y[loc : loc + p.audio.size]
        r.exact = seg.size == p.audio.size and float(np.abs(seg - want).max()) < 1e-3
        r.starved = _silence_inserted(seg, want)
    for i, r in enumerate(results):
        r.t_write = player.write_times.get(starts[i] // chunk)
    # capture-side delay: how much later than its best-ever delivery each block came (the
    # earliest arrival relative to the stream clock is the audio stack at its quickest)
    ends = np.array([a[0] for a in arrivals], dtype=np.float64) / rate
    got = np.array([a[1] for a in arrivals])
    excess = (got - ends) - (got - ends).min() if got.size else got
    for r, loc in zip(results, located, strict=False):
        j = int(np.searchsorted(ends * rate, loc, side="right"))
        if j < excess.size:
            r.extra["capture_excess_ms"] = float(excess[j] * 1e3)
    return _summarize(card, probes, results, block, latency_ms, first_block_s, stats, player)


def _longest_zero_run(x: np.ndarray) -> int:
    """Length of the longest run of exact zeros in x."""
    z = np.concatenate(([0], (x == 0).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(z))
    return int((edges[1::2] - edges[::2]).max()) if edges.size else 0


def _silence_inserted(got: np.ndarray, want: np.ndarray) -> bool:
    """Whether the captured probe holds a run of zeros the probe itself does not have.

    A starved player buffer makes PulseAudio play silence mid-probe (and ramp the volume
    around it), so such a probe cannot be bit-exact; every other probe must be.
    """
    return _longest_zero_run(got) > _longest_zero_run(want)


def _probe_json(r: ProbeResult, rate: int) -> dict[str, Any]:
    """One probe's raw record: stream position, latencies in ms (None when missing)."""

    def ms(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else (a - b) * 1e3

    return {
        "stream_onset_s": r.stream_onset_s,
        "bit_exact": r.exact,
        "starved": r.starved,
        "label": r.label,
        "event_onset_s": r.event_onset_s,
        "onset_ms": ms(r.t_onset, r.t_write),
        "audio_path_ms": ms(r.t_arrive, r.t_write),
        "final_ms": ms(r.t_final, r.t_write),
        **r.extra,
    }


def _s16(x: np.ndarray) -> np.ndarray:
    """What comes back from the 16-bit sink."""
    return (np.clip(x, -1, 1) * 32767).astype(np.int16).astype(np.float32) / 32768.0


def _owner(ev: Any, labels: list[str | None], located: list[int], rate: int, window_s: float,
           results: list[ProbeResult]) -> int | None:
    """The probe a finished event belongs to, if any.

    The probe's label (if it expects one) and an onset from 0.25 s before the probe's first
    sample to window_s after it; the first such event wins.
    """
    for k, loc in enumerate(located):
        if labels[k] is not None and ev.label != labels[k]:
            continue
        start = loc / rate
        if start - 0.25 <= ev.onset_s <= start + window_s and results[k].t_final is None:
            return k
    return None


def _summarize(card: Any, probes: list[Probe], results: list[ProbeResult], block: int,
               latency_ms: int, first_block_s: float | None, stats: Any, player: Player
               ) -> dict[str, Any]:
    rate = card.sample_rate
    probe = probes[0]
    several = len({p.spec for p in probes}) > 1
    onset, final, path, delay, stamp, pipe = [], [], [], [], [], []
    by_label: dict[str, list[float]] = {}
    tried: dict[str, int] = {}
    for p in probes:
        tried[p.label or "any"] = tried.get(p.label or "any", 0) + 1
    for r, p in zip(results, probes, strict=True):
        if r.t_onset is None or r.t_write is None or r.stream_onset_s is None:
            continue
        onset.append(r.t_onset - r.t_write)
        by_label.setdefault(p.label or "any", []).append(onset[-1])
        if r.t_final is not None:
            final.append(r.t_final - r.t_write)
        if r.t_arrive is not None:
            path.append(r.t_arrive - r.t_write)
        if r.samples_at_onset is not None:
            delay.append(r.samples_at_onset / rate - r.stream_onset_s)
            pipe.append(onset[-1] - delay[-1])
        if r.event_onset_s is not None:
            stamp.append(r.event_onset_s - r.stream_onset_s)
    algo = card.algorithmic_latency_s()
    p50 = Dist.of(onset).p50 / 1e6 if onset else None
    return {
        "model": card.name,
        "probe": "labels" if several else probe.spec,
        "probe_label": None if several else probe.label,
        "probe_s": max(p.audio.size for p in probes) / rate,
        "labels": list(tried),
        "per_label": {lb: {"probes": n, "detected": len(by_label.get(lb, [])),
                           "onset_latency_us": Dist.of(by_label.get(lb, [])).to_json()}
                      for lb, n in tried.items()},
        "words_target_s": algo + 0.080,
        "words_met": None if p50 is None else p50 <= algo + 0.080,
        "probes": len(results),
        "detected": len(onset),
        "bit_exact": sum(r.exact for r in results),
        # probes with silence inserted mid-probe by a starved player buffer (never bit-exact)
        "starved": sum(r.starved for r in results),
        "block_ms": block * 1000 / rate,
        "player_latency_ms": latency_ms,
        "first_block_after_open_s": first_block_s,
        "onset_latency_us": Dist.of(onset).to_json(),
        "final_event_latency_us": Dist.of(final).to_json(),
        "audio_path_us": Dist.of(path).to_json(),
        "stream_delay_us": Dist.of(delay).to_json(),
        "pipeline_us": Dist.of(pipe).to_json(),
        "onset_stamp_error_us": Dist.of(stamp).to_json(),
        "algorithmic_latency_s": algo,
        "target_s": algo + 0.030,
        "met": None if p50 is None else p50 <= algo + 0.030,
        "mic_stats": {"overflows": stats.overflows, "dropped_blocks": stats.dropped_blocks},
        "player_late_chunks": player.late_blocks,
        "player_skipped_silent_chunks": player.skipped,
        "player_blocked_writes": player.blocked_writes,
        "player_max_write_ms": player.max_write_ms,
        "per_probe": [{"probe": p.spec, "expected": p.label, **_probe_json(r, rate)}
                      for r, p in zip(results, probes, strict=True)],
        "measured": "onset_latency = t_onset - t_write: from handing the probe's first sample "
        "to pacat to Engine.feed returning with the event active in the smoother; nothing "
        "subtracted",
    }
