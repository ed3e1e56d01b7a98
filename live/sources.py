"""Audio sources: where the engine's samples come from (a recording or a microphone).

Both kinds yield 1-D float32 blocks, mono, at the model's sample rate, with NaN/Inf replaced by 0,
so the engine never cares where audio came from. A file is decoded block by block (a two-hour
recording is never loaded whole) and can be paced at wall-clock speed to pretend to be live. The
microphone's audio callback only copies each block into a queue; resampling and clean-up happen
on the consumer's side, on its own clock.
"""

from __future__ import annotations

import io
import os
import queue
import struct
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import numpy as np
import soundfile as sf
import soxr

from hark.live.devices import DeviceError, import_sounddevice, resolve_device
from hark.live.errors import HarkError

# libsndfile reports SF_COUNT_MAX frames when it cannot know the length (e.g. a pipe)
_UNKNOWN_FRAMES = 2**62
# what a header may claim: below 1 kHz is no recording hark can hear (a corrupt or hostile header
# would make the resampler produce thousands of samples per input sample), above 768 kHz none
MIN_RATE, MAX_RATE, MAX_CHANNELS = 1000, 768000, 64
STDIN_SPOOL_LIMIT = 2 * 1024**3  # bytes of non-raw audio read from stdin into a temp file
# a microphone whose delivered audio falls this far behind the wall clock has lost input
GAP_MIN_S = 0.5

_RAW_KINDS = {
    "s8": "PCM_S8", "u8": "PCM_U8", "s16": "PCM_16", "s24": "PCM_24", "s32": "PCM_32",
    "f32": "FLOAT", "f64": "DOUBLE",
}


@dataclass(frozen=True)
class RawFormat:
    """Headerless PCM: sample kind and endianness, rate, channels (`s16le:16000:1`)."""

    subtype: str
    endian: str
    sample_rate: int
    channels: int

    @classmethod
    def parse(cls, text: str) -> RawFormat:
        """Parse KIND[le|be]:RATE:CHANNELS, e.g. s16le:16000:1, f32le:48000:2, u8:8000:1."""
        parts = text.strip().lower().split(":")
        usage = (f"--raw-format {text!r}: expected KIND:RATE:CHANNELS with KIND one of "
                 "s8, u8, s16le, s16be, s24le, s32le, f32le, f64le (e.g. s16le:16000:1)")
        if len(parts) != 3:
            raise AudioError(usage)
        kind, rate_t, ch_t = parts
        endian = "FILE"
        if kind.endswith(("le", "be")):
            endian = "LITTLE" if kind.endswith("le") else "BIG"
            kind = kind[:-2]
        if kind not in _RAW_KINDS or (endian == "FILE" and kind not in ("s8", "u8")):
            raise AudioError(usage)
        try:
            rate, channels = int(rate_t), int(ch_t)
        except ValueError:
            raise AudioError(usage) from None
        if not MIN_RATE <= rate <= MAX_RATE or not 1 <= channels <= MAX_CHANNELS:
            raise AudioError(f"--raw-format {text!r}: rate must be {MIN_RATE}..{MAX_RATE} Hz "
                             f"and channels 1..{MAX_CHANNELS}")
        return cls(_RAW_KINDS[kind], endian, rate, channels)

    def soundfile_args(self) -> dict[str, Any]:
        """Keyword arguments for soundfile.SoundFile."""
        return {"format": "RAW", "subtype": self.subtype, "endian": self.endian,
                "samplerate": self.sample_rate, "channels": self.channels}


class AudioError(HarkError):
    """An audio file that is missing, unreadable, not audio, empty, or broken mid-stream."""


@dataclass
class SourceStats:
    """What a source saw while it ran; the UI shows it and reports keep it.

    blocks / samples count what was yielded (at the output sample rate). overflows / underflows
    count the PortAudio status flags seen in the audio callback (input lost because we were late);
    dropped_blocks counts callback blocks thrown away because the queue was full (the consumer is
    too slow). nonfinite_samples counts NaN/Inf values replaced by 0 before downmixing.
    truncated is True when a file held fewer frames than its header announced. gaps lists
    (stream time s, seconds lost) for input a microphone lost; that much silence was yielded in
    its place, so the stream clock still counts it.
    """

    blocks: int = 0
    samples: int = 0
    overflows: int = 0
    underflows: int = 0
    dropped_blocks: int = 0
    nonfinite_samples: int = 0
    truncated: bool = False
    gaps: list[tuple[float, float]] = field(default_factory=list)


class Source(Protocol):
    """What the engine and the CLI need from any source."""

    @property
    def name(self) -> str: ...

    @property
    def sample_rate(self) -> int: ...

    @property
    def stats(self) -> SourceStats: ...

    def blocks(self) -> Iterator[np.ndarray]: ...

    def close(self) -> None: ...


class _Resampler:
    """Streaming mono resampler (soxr HQ, the same quality as soxr.resample).

    Fed block by block it gives the same samples as one soxr.resample call on the whole signal
    (measured bit-identical with soxr 1.1), so chunking never changes what the model hears.
    Equal rates pass samples through untouched.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self._stream: soxr.ResampleStream | None = None
        if in_rate != out_rate:
            self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32")

    def process(self, block: np.ndarray) -> np.ndarray:
        if self._stream is None:
            return block
        return self._stream.resample_chunk(block)

    def flush(self) -> np.ndarray:
        """The samples still held in the filter's delay line (call once, at the end)."""
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        return self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)


def _replace_nonfinite(block: np.ndarray, stats: SourceStats) -> np.ndarray:
    """Zero NaN/Inf in place and count them: one bad sample must not poison a whole filter."""
    finite = np.isfinite(block)
    if not finite.all():
        stats.nonfinite_samples += int(block.size - np.count_nonzero(finite))
        block[~finite] = 0.0
    return block


def _downmix(frames: np.ndarray) -> np.ndarray:
    """(n, channels) float32 -> contiguous (n,) float32, the mean of the channels."""
    if frames.shape[1] == 1:
        return np.ascontiguousarray(frames[:, 0])
    return frames.mean(axis=1, dtype=np.float32)


def _reason(e: Exception) -> str:
    """The error in libsndfile's own words, without soundfile's prefix or a final period."""
    text = str(getattr(e, "error_string", "") or e)
    return text.removeprefix("Error : ").strip().rstrip(".")


def _wav_declared_frames(path: Path, data: bytes | None = None) -> int | None:
    """Frames a RIFF/WAVE header announces in its data chunk, or None if unknown / not WAV.

    libsndfile silently clips the frame count of a truncated WAV to the bytes present, so the
    header is read here to notice the truncation. A data size of 0 or 0xFFFFFFFF is the
    placeholder streaming writers leave: unknown, not truncated. data: the file's bytes, if the
    caller holds them (a file sent to another machine).
    """
    with open(path, "rb") if data is None else io.BytesIO(data) as f:
        riff = f.read(12)
        if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
            return None
        block_align = 0
        for _ in range(64):  # a real header has a handful of chunks before 'data'
            head = f.read(8)
            if len(head) < 8:
                return None
            chunk_id, size = head[:4], struct.unpack("<I", head[4:])[0]
            if chunk_id == b"data":
                if block_align <= 0 or size in (0, 0xFFFFFFFF):
                    return None
                return int(size // block_align)
            body_start = f.tell()
            if chunk_id == b"fmt ":
                fmt = f.read(min(size, 16))
                if len(fmt) >= 14:
                    block_align = struct.unpack("<H", fmt[12:14])[0]
            f.seek(body_start + size + (size & 1))  # chunks are padded to an even size
    return None


class FileSource:
    """A recording decoded block by block: mono float32 at `sample_rate`, optionally paced live.

    Any file libsndfile reads (wav, flac, ogg, ...), any rate, channel count and bit depth.
    Errors in the input (missing, not audio, empty, broken) are AudioError with the path in the
    message; opening happens here so a bad file fails before anything starts.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sample_rate: int,
        block_s: float = 0.1,
        realtime: bool = False,
        raw: RawFormat | None = None,
        data: bytes | None = None,
    ) -> None:
        """Open (and check) a recording; path "-" reads standard input.

        From stdin, raw PCM (raw=) streams as it comes; any other format is first copied to a
        temporary file (libsndfile must seek in most formats). data: the file's bytes, read
        elsewhere (`hark replay --ray` sends them to a worker on another machine); `path` then
        only names it, in the events and the messages, as if it had been read from there.
        """
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if block_s <= 0:
            raise ValueError(f"block_s must be positive, got {block_s}")
        self.path = Path(path)
        self.raw = raw
        self.stdin = str(path) == "-" and data is None
        self._data = data
        self._spool: Any = None
        self._stdin_used = False
        if self.path.suffix.lower() in (".raw", ".pcm") and raw is None and not self.stdin:
            raise AudioError(f"{self.path}: headerless audio: give its format, e.g. "
                             "--raw-format s16le:16000:1")
        if self.stdin and raw is None:
            self._spool = _spool_stdin()
        self.sample_rate = int(sample_rate)
        self.block_s = float(block_s)
        self.realtime = realtime
        self.stats = SourceStats()
        self._closed = False
        # Validate now (a bad file fails before anything starts), but keep no handle: `hark
        # replay` may be given thousands of files, more than the process may hold open at once.
        if self.stdin and raw is not None:  # a live pipe: nothing to validate but the format
            self.input_rate, self.channels = raw.sample_rate, raw.channels
            self._frames = _UNKNOWN_FRAMES
            self._header_truncated = False
        else:
            with self._open() as f:
                self.input_rate = int(f.samplerate)
                self.channels = int(f.channels)
                self._frames = int(f.frames)
                self._header_truncated = self._check_header(str(f.format))
        if not MIN_RATE <= self.input_rate <= MAX_RATE:
            raise AudioError(f"{self.name}: the header claims a sample rate of {self.input_rate} "
                             f"Hz (hark reads {MIN_RATE}..{MAX_RATE} Hz)")
        if not 1 <= self.channels <= MAX_CHANNELS:
            raise AudioError(f"{self.name}: the header claims {self.channels} channels "
                             f"(hark reads 1..{MAX_CHANNELS})")
        self.stats.truncated = self._header_truncated

    @property
    def name(self) -> str:
        return "stdin" if self.stdin else self.path.name

    @property
    def label(self) -> str:
        """The path as given ("-" for stdin): what a multi-file event listing names."""
        return "-" if self.stdin else str(self.path)

    @property
    def duration_s(self) -> float | None:
        """Length from the header, when the format tells it."""
        if self._frames >= _UNKNOWN_FRAMES:
            return None
        return self._frames / self.input_rate

    def _open(self) -> sf.SoundFile:
        where = self.name if self.stdin else str(self.path)
        raw = self.raw.soundfile_args() if self.raw is not None else {}
        if self._data is not None:
            if not self._data:
                raise AudioError(f"{where}: file is empty (0 bytes)")
            try:
                return self._checked(sf.SoundFile(io.BytesIO(self._data), **raw), where)
            except sf.LibsndfileError as e:
                raise AudioError(f"{where}: not a readable audio file ({_reason(e)})") from e
        if self.stdin:
            if self._spool is None:  # raw PCM straight from the pipe, read once
                if self._stdin_used:
                    raise AudioError("stdin can be read only once")
                self._stdin_used = True
                return sf.SoundFile(sys.stdin.fileno(), closefd=False, **raw)
            self._spool.seek(0)
            if not self._spool.read(1):
                raise AudioError("stdin: no data (0 bytes)")
            self._spool.seek(0)
            try:
                return self._checked(sf.SoundFile(self._spool, **raw), where)
            except sf.LibsndfileError as e:
                raise AudioError(f"{where}: not a readable audio stream ({_reason(e)})") from e
        try:
            if not self.path.exists():
                raise AudioError(f"{where}: no such file")
            if self.path.is_dir():
                raise AudioError(f"{where}: is a directory, not an audio file")
            with open(self.path, "rb") as f:
                empty = not f.read(1)
        except OSError as e:
            raise AudioError(f"{where}: cannot read ({e.strerror})") from None
        if empty:
            raise AudioError(f"{where}: file is empty (0 bytes)")
        try:
            audio = sf.SoundFile(self.path, **raw)
        except sf.LibsndfileError as e:
            raise AudioError(f"{where}: not a readable audio file ({_reason(e)})") from e
        return self._checked(audio, where)

    @staticmethod
    def _checked(audio: sf.SoundFile, where: str) -> sf.SoundFile:
        if audio.frames == 0:
            audio.close()
            raise AudioError(f"{where}: contains no audio (0 frames; empty or truncated)")
        return audio

    def _check_header(self, fmt: str) -> bool:
        if fmt not in ("WAV", "WAVEX") or self.stdin:
            return False
        declared = _wav_declared_frames(self.path, self._data)
        return declared is not None and declared > self._frames

    def blocks(self) -> Iterator[np.ndarray]:
        """Yield the whole file from its start as blocks of about block_s (last one shorter).

        Each call starts over (stats too). With realtime=True each block is held back until its
        end time relative to the first block, like a microphone would deliver it; the schedule is
        absolute, so a slow consumer catches up instead of accumulating drift.
        """
        if self._closed:
            raise ValueError(f"{self.path}: source is closed")
        self.stats = SourceStats(truncated=self._header_truncated)
        resampler = _Resampler(self.input_rate, self.sample_rate)
        block_frames = max(1, round(self.block_s * self.input_rate))
        start = time.monotonic()
        n_read = 0
        # opened again (and only for the iteration): it may have changed since __init__, and the
        # handle is closed by the with-block even when the consumer abandons the generator
        with self._open() as f:
            while True:
                if self._closed:  # close() from elsewhere: stop here, nothing more to give
                    return
                try:
                    frames = f.read(block_frames, dtype="float32", always_2d=True)
                except sf.SoundFileError as e:
                    raise AudioError(
                        f"{self.label if not self.stdin else self.name}: decoding failed at "
                        f"{n_read / self.input_rate:.2f} s "
                        f"({_reason(e)})"
                    ) from e
                if len(frames) == 0:
                    break
                n_read += len(frames)
                mono = _downmix(_replace_nonfinite(frames, self.stats))
                yield from self._emit(resampler.process(mono), start)
        yield from self._emit(resampler.flush(), start)
        if n_read == 0:
            raise AudioError(f"{self.name if self.stdin else self.path}: contains no audio "
                             "(0 frames decoded)")
        if self._frames < _UNKNOWN_FRAMES and n_read < self._frames:
            self.stats.truncated = True

    def _emit(self, block: np.ndarray, start: float) -> Iterator[np.ndarray]:
        if block.size == 0:
            return
        self.stats.blocks += 1
        self.stats.samples += block.size
        if self.realtime:
            delay = start + self.stats.samples / self.sample_rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield block

    def close(self) -> None:
        """End the source: a running blocks() stops at its next block, and no new one starts.

        Only a flag: the handle belongs to the iteration, so no thread closes a file that
        another is reading.
        """
        self._closed = True

    def __enter__(self) -> FileSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ArraySource:
    """Samples already in memory, as a source (evaluation, tests, the Python API)."""

    def __init__(self, samples: np.ndarray, sample_rate: int, name: str = "array",
                 block: int | None = None) -> None:
        self.samples = samples
        self.sample_rate = int(sample_rate)
        self.name = name
        self.block = block
        self.stats = SourceStats()

    def blocks(self) -> Iterator[np.ndarray]:
        """The whole array at once, or in blocks of `block` samples."""
        step = self.block or max(1, len(self.samples))
        for i in range(0, len(self.samples), step):
            self.stats.blocks += 1
            yield self.samples[i : i + step]

    def close(self) -> None:
        """Nothing to release."""


def _spool_stdin() -> Any:
    """Standard input copied to an anonymous temporary file (on disk), at most STDIN_SPOOL_LIMIT."""
    spool = tempfile.TemporaryFile(prefix="hark-stdin-")  # noqa: SIM115 - lives with the source
    src = sys.stdin.buffer
    total = 0
    while True:
        chunk = src.read(1 << 20)
        if not chunk:
            break
        total += len(chunk)
        if total > STDIN_SPOOL_LIMIT:
            spool.close()
            raise AudioError(f"stdin: more than {STDIN_SPOOL_LIMIT >> 30} GiB; for a long stream "
                             "pipe raw PCM with --raw-format (it is read as it comes)")
        spool.write(chunk)
    spool.flush()
    return spool


class MicSource:
    """A live microphone through PortAudio, resampled on the consumer side to `sample_rate`.

    The audio callback only copies channel 0 into a bounded queue and counts the overflow /
    underflow flags; a full queue drops the block and counts it (never blocks the audio thread).
    `blocks()` drains the queue until `stop()` (safe from another thread or a signal handler) or
    `max_seconds` of captured audio (None: no limit). Use as a context manager so the stream is
    always closed.
    """

    def __init__(
        self,
        sample_rate: int,
        device: int | str | None = None,
        block_ms: float = 10.0,
        latency: str | float = "low",
        queue_blocks: int = 500,
        max_seconds: float | None = None,
    ) -> None:
        # queue_blocks=500 holds 5 s of 10 ms blocks: room for a slow first model call, not for a
        # consumer that is permanently behind (that shows up as dropped_blocks instead).
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if block_ms <= 0 or queue_blocks <= 0:
            raise ValueError("block_ms and queue_blocks must be positive")
        if max_seconds is not None and max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        self._sd = import_sounddevice()
        self.device = resolve_device(device)
        info = self._sd.query_devices(self.device, "input")
        self._name = str(info["name"])
        self.sample_rate = int(sample_rate)
        self.input_rate = self._pick_rate(float(info["default_samplerate"]))
        self.block_frames = max(1, round(block_ms * self.input_rate / 1000))
        self.latency = latency
        self.max_seconds = max_seconds
        self.stats = SourceStats()
        self._queue: queue.Queue[tuple[int, np.ndarray]] = queue.Queue(maxsize=queue_blocks)
        self._stream: Any = None
        self._stopping = False
        # callback-side clock: frames accounted for (delivered or lost) since the first callback
        self._t0: float | None = None
        self._accounted = 0
        self._lost = 0  # frames lost and not yet handed to the consumer

    @property
    def name(self) -> str:
        return self._name

    @property
    def duration_s(self) -> float | None:
        """A microphone has no known length."""
        return None

    def _pick_rate(self, default_rate: float) -> int:
        """The model rate if the device takes it (no resampling at all), else its own rate."""
        try:
            self._sd.check_input_settings(
                device=self.device, channels=1, dtype="float32", samplerate=self.sample_rate
            )
        except (self._sd.PortAudioError, ValueError):
            return int(round(default_rate))
        return self.sample_rate

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # Runs on PortAudio's thread: copy, enqueue, count; and notice input that never came.
        # The first callback starts a clock (the block's capture time when the host API gives
        # one, else the wall clock). When PortAudio says input overflowed (the process was
        # stopped or starved) and the frames accounted for fall more than GAP_MIN_S behind that
        # clock, the shortfall is lost input: the consumer puts that much silence before this
        # block. A backend that buffered everything (no overflow) loses nothing and adds nothing.
        adc = float(getattr(time_info, "inputBufferAdcTime", 0.0) or 0.0)
        now = adc if adc > 0 else time.monotonic()
        if status.input_overflow:
            self.stats.overflows += 1
        if status.input_underflow:
            self.stats.underflows += 1
        if self._t0 is None:
            self._t0 = now - frames / self.input_rate
        if status.input_overflow:
            behind = round((now - self._t0) * self.input_rate) - self._accounted - frames
            if behind > GAP_MIN_S * self.input_rate:
                self._lost += behind
                self._accounted += behind
        self._accounted += frames
        try:
            self._queue.put_nowait((self._lost, indata[:, 0].copy()))
            self._lost = 0
        except queue.Full:
            self.stats.dropped_blocks += 1
            self._lost += frames

    def start(self) -> None:
        """Open and start the input stream (blocks() calls it if needed)."""
        if self._stream is not None:
            return
        self._stopping = False
        self._t0, self._accounted, self._lost = None, 0, 0
        try:
            stream = self._sd.InputStream(
                samplerate=self.input_rate,
                blocksize=self.block_frames,
                device=self.device,
                channels=1,
                dtype="float32",
                latency=self.latency,
                callback=self._callback,
            )
            stream.start()
        except (self._sd.PortAudioError, ValueError) as e:
            raise DeviceError(f"cannot open input device {self._name!r}: {e}") from e
        self._stream = stream

    def stop(self) -> None:
        """Ask blocks() to finish. Only sets a flag, so it is safe in a signal handler."""
        self._stopping = True

    def blocks(self) -> Iterator[np.ndarray]:
        """Yield mono float32 blocks at sample_rate until stop() or max_seconds of audio.

        max_seconds counts captured samples, not wall time, so the amount of audio is exact.
        Blocks still queued when stop() is called are discarded (stop should be prompt).
        """
        self.start()
        limit = None if self.max_seconds is None else round(self.max_seconds * self.input_rate)
        resampler = _Resampler(self.input_rate, self.sample_rate)
        # how long to wait for a block before looking at the stop flag again
        poll_s = min(0.1, max(0.01, 2 * self.block_frames / self.input_rate))
        captured = 0
        while not self._stopping and (limit is None or captured < limit):
            try:
                lost, block = self._queue.get(timeout=poll_s)
            except queue.Empty:
                stream = self._stream
                if stream is None:  # close() from another thread
                    break
                if not stream.active:  # PortAudio gave up (device gone, server died)
                    raise DeviceError(
                        f"input device {self._name!r} stopped delivering audio"
                    ) from None
                continue
            if lost:
                if limit is not None:
                    lost = min(lost, limit - captured)
                self.stats.gaps.append((captured / self.input_rate, lost / self.input_rate))
                for start in range(0, lost, self.input_rate):  # silence, a second at a time
                    n = min(self.input_rate, lost - start)
                    yield from self._emit(resampler.process(np.zeros(n, dtype=np.float32)))
                captured += lost
                if limit is not None and captured >= limit:
                    break
            if limit is not None:
                block = block[: limit - captured]
            captured += block.size
            yield from self._emit(resampler.process(_replace_nonfinite(block, self.stats)))
        yield from self._emit(resampler.flush())

    def _emit(self, block: np.ndarray) -> Iterator[np.ndarray]:
        if block.size == 0:
            return
        self.stats.blocks += 1
        self.stats.samples += block.size
        yield block

    def close(self) -> None:
        """Stop and close the stream (idempotent)."""
        self._stopping = True
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.abort(ignore_errors=True)
            stream.close(ignore_errors=True)

    def __enter__(self) -> MicSource:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
