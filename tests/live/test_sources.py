"""FileSource on generated recordings, MicSource and device resolution on a fake PortAudio.

The reference for every decoded file is the offline path: one soundfile read of the whole file,
the mean of its channels, one soxr.resample call. The streaming resampler gives the same samples
bit for bit (measured max |diff| = 0 with soxr 1.1, any block size); ATOL = 1e-6 only leaves room
for another soxr build and is still 30x below one 16-bit step (3.1e-5).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import soxr
from hypothesis import given, settings
from hypothesis import strategies as st

from hark.live.devices import (
    NO_INPUT_DEVICE,
    PORTAUDIO_MISSING,
    DeviceError,
    format_devices,
    list_input_devices,
    resolve_device,
)
from hark.live.sources import AudioError, FileSource, MicSource, SourceStats

ATOL = 1e-6
REPO = Path(__file__).resolve().parents[2]


# -- generated recordings ----------------------------------------------------------------------
def _signal(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A tone sweep + noise, different per channel, below full scale (int16 safe)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    cols = []
    for c in range(channels):
        f = 220.0 * (c + 1)
        cols.append(0.4 * np.sin(2 * np.pi * f * t * (1 + t)) + 0.05 * rng.standard_normal(t.size))
    return np.stack(cols, axis=1).astype(np.float32)


def _write(path: Path, x: np.ndarray, rate: int, subtype: str | None = None) -> Path:
    sf.write(path, x, rate, subtype=subtype)
    return path


def _offline(path: Path, sample_rate: int) -> np.ndarray:
    """What an offline pipeline computes: whole-file read, channel mean, one-shot resample."""
    x, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = x.mean(axis=1, dtype=np.float32) if x.shape[1] > 1 else x[:, 0]
    if rate == sample_rate:
        return mono
    return soxr.resample(mono, rate, sample_rate)


def _stream(src: FileSource) -> np.ndarray:
    blocks = list(src.blocks())
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


# -- FileSource: formats, rates, depths, channels --------------------------------------------
@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
@pytest.mark.parametrize("channels", [1, 2])
def test_wav_blocks_equal_offline_decode(
    tmp_path: Path, rate: int, subtype: str, channels: int
) -> None:
    path = _write(tmp_path / "a.wav", _signal(1.37, rate, channels), rate, subtype)
    with FileSource(path, 16000) as src:
        assert (src.input_rate, src.sample_rate, src.channels) == (rate, 16000, channels)
        assert src.duration_s == pytest.approx(round(1.37 * rate) / rate)
        y = _stream(src)
        ref = _offline(path, 16000)
        assert y.shape == ref.shape
        np.testing.assert_allclose(y, ref, rtol=0, atol=ATOL)
        assert src.stats.samples == y.size
        assert src.stats.blocks >= 1
        assert src.stats.nonfinite_samples == 0 and not src.stats.truncated


@pytest.mark.parametrize("fmt", ["flac", "ogg"])
@pytest.mark.parametrize("rate", [16000, 44100])
def test_flac_and_ogg(tmp_path: Path, fmt: str, rate: int) -> None:
    path = _write(tmp_path / f"a.{fmt}", _signal(2.0, rate, channels=2), rate)
    with FileSource(path, 16000) as src:
        y = _stream(src)
    ref = _offline(path, 16000)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=0, atol=ATOL)


def test_stereo_is_the_mean_of_channels(tmp_path: Path) -> None:
    left = np.full(1600, 0.5, np.float32)
    right = np.full(1600, -0.25, np.float32)
    path = _write(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000, "FLOAT")
    y = _stream(FileSource(path, 16000))
    np.testing.assert_array_equal(y, np.full(1600, 0.125, np.float32))


def test_streaming_resampler_is_bit_exact_against_one_shot(tmp_path: Path) -> None:
    """The number behind ATOL: print it so a soxr upgrade that changes it is visible."""
    path = _write(tmp_path / "a.wav", _signal(3.0, 44100, 2), 44100, "FLOAT")
    y = _stream(FileSource(path, 16000, block_s=0.01))
    ref = _offline(path, 16000)
    diff = float(np.max(np.abs(y - ref)))
    print(f"\nstreaming vs one-shot soxr (44.1k->16k, 10 ms blocks): max |diff| = {diff:.3g}")
    assert diff <= ATOL


# -- chunking ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stereo_44k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("chunks")
    return _write(d / "c.wav", _signal(1.5, 44100, 2, seed=3), 44100, "PCM_24")


@pytest.mark.parametrize("block_s", [0.001, 0.01, 0.0371, 0.1, 1.0, 10.0])
def test_block_size_does_not_change_samples(stereo_44k: Path, block_s: float) -> None:
    ref = _stream(FileSource(stereo_44k, 16000, block_s=0.1))
    y = _stream(FileSource(stereo_44k, 16000, block_s=block_s))
    np.testing.assert_array_equal(y, ref)


@settings(max_examples=25, deadline=None)
@given(block_s=st.floats(min_value=0.0005, max_value=0.5), out_rate=st.sampled_from([8000, 16000]))
def test_block_size_property(stereo_44k: Path, block_s: float, out_rate: int) -> None:
    y = _stream(FileSource(stereo_44k, out_rate, block_s=block_s))
    np.testing.assert_allclose(y, _offline(stereo_44k, out_rate), rtol=0, atol=ATOL)


def test_blocks_restarts_from_the_beginning(stereo_44k: Path) -> None:
    with FileSource(stereo_44k, 16000) as src:
        first, second = _stream(src), _stream(src)
        np.testing.assert_array_equal(first, second)
        assert src.stats.samples == second.size  # stats describe the latest pass


def test_close_ends_a_running_iteration_and_holds_no_handle(stereo_44k: Path) -> None:
    src = FileSource(stereo_44k, 16000, block_s=0.1)
    blocks = src.blocks()
    next(blocks)
    src.close()
    assert list(blocks) == []
    with pytest.raises(ValueError, match="closed"):
        next(src.blocks())


def test_many_sources_can_be_open_at_once(stereo_44k: Path) -> None:
    """`hark replay *.wav` validates every file first: no file handle may be kept per source."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    sources = [FileSource(stereo_44k, 16000) for _ in range(min(soft, 4096) + 10)]
    assert sum(b.size for b in sources[-1].blocks()) == 24000


# -- NaN / Inf ---------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [16000, 8000])
def test_nonfinite_samples_become_zero_and_are_counted(tmp_path: Path, rate: int) -> None:
    x = _signal(1.0, rate, channels=2)
    bad = [(10, 0, np.nan), (11, 1, np.nan), (500, 0, np.inf), (rate // 2, 1, -np.inf)]
    clean = x.copy()
    for i, c, v in bad:
        x[i, c] = v
        clean[i, c] = 0.0
    path = _write(tmp_path / "nan.wav", x, rate, "FLOAT")
    clean_path = _write(tmp_path / "clean.wav", clean, rate, "FLOAT")
    src = FileSource(path, 16000)
    y = _stream(src)
    assert np.isfinite(y).all()
    assert src.stats.nonfinite_samples == len(bad)
    # zeroed before downmix and resampling: identical to a file that had zeros there
    np.testing.assert_array_equal(y, _stream(FileSource(clean_path, 16000)))


# -- bad input: one AudioError, one line, with the file name ---------------------------------
def _audio_error(path: Path, **kwargs: Any) -> str:
    with pytest.raises(AudioError) as info:
        src = FileSource(path, 16000, **kwargs)
        for _ in src.blocks():
            pass
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    assert "no such file" in _audio_error(tmp_path / "nope.wav")


def test_directory(tmp_path: Path) -> None:
    assert "directory" in _audio_error(tmp_path)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    assert "empty" in _audio_error(path)


def test_text_renamed_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 50)
    assert "not a readable audio file" in _audio_error(path)


def test_garbage_renamed_wav(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "garbage.wav"
    path.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert "not a readable audio file" in _audio_error(path)


def test_wav_with_zero_frames(tmp_path: Path) -> None:
    path = _write(tmp_path / "zero.wav", np.zeros((0, 1), np.float32), 16000)
    assert "no audio" in _audio_error(path)


def test_wav_header_without_data(tmp_path: Path) -> None:
    full = _write(tmp_path / "full.wav", _signal(1.0, 16000), 16000, "PCM_16")
    path = tmp_path / "header.wav"
    path.write_bytes(full.read_bytes()[:40])  # cut inside the data chunk header
    _audio_error(path)


def test_truncated_wav_plays_what_is_there(tmp_path: Path) -> None:
    """libsndfile clips a truncated WAV to its bytes: that is the end, flagged in stats."""
    x = _signal(1.0, 16000)
    full = _write(tmp_path / "full.wav", x, 16000, "PCM_16")
    data = full.read_bytes()
    path = tmp_path / "cut.wav"
    path.write_bytes(data[: len(data) // 2 + 1])  # header intact: it still announces 1 s
    src = FileSource(path, 16000)
    assert src.stats.truncated  # known at open from the header
    y = _stream(src)
    assert src.stats.truncated
    n_present = (len(data) // 2 + 1 - 44) // 2
    assert y.size == n_present
    np.testing.assert_allclose(y, x[:n_present, 0], atol=1 / 32768)


def test_complete_wav_is_not_flagged_truncated(tmp_path: Path) -> None:
    path = _write(tmp_path / "ok.wav", _signal(0.5, 16000), 16000, "PCM_16")
    src = FileSource(path, 16000)
    _stream(src)
    assert not src.stats.truncated


def test_truncated_flac_raises_mid_stream(tmp_path: Path) -> None:
    full = _write(tmp_path / "full.flac", _signal(2.0, 16000), 16000)
    path = tmp_path / "cut.flac"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    src = FileSource(path, 16000)  # the header is fine: the error comes while decoding
    assert "decoding failed" in _audio_error(path)
    src.close()


def test_truncated_ogg(tmp_path: Path) -> None:
    full = _write(tmp_path / "full.ogg", _signal(2.0, 16000), 16000)
    path = tmp_path / "cut.ogg"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    _audio_error(path)


def test_bad_options_are_value_errors(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.wav", _signal(0.1, 16000), 16000)
    with pytest.raises(ValueError):
        FileSource(path, 0)
    with pytest.raises(ValueError):
        FileSource(path, 16000, block_s=0)


# -- pacing ------------------------------------------------------------------------------------
def test_realtime_paces_at_wall_clock_speed(tmp_path: Path) -> None:
    path = _write(tmp_path / "one.wav", _signal(1.0, 44100), 44100)
    src = FileSource(path, 16000, block_s=0.05, realtime=True)
    t0 = time.monotonic()
    late = []
    done = 0
    for block in src.blocks():
        done += block.size
        late.append(time.monotonic() - t0 - done / 16000)  # >= 0: never before its end time
    elapsed = time.monotonic() - t0
    print(f"\nrealtime 1 s file: {elapsed:.3f} s, max lateness {max(late) * 1000:.1f} ms")
    assert elapsed >= 0.9
    assert elapsed < 5.0  # generous: only catches "not paced at all" or "paced twice"
    assert min(late) > -0.005


def test_fast_mode_is_not_paced(tmp_path: Path) -> None:
    path = _write(tmp_path / "ten.wav", _signal(10.0, 16000), 16000)
    t0 = time.monotonic()
    _stream(FileSource(path, 16000))
    assert time.monotonic() - t0 < 2.0


# -- memory ------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("out_rate", [16000, 8000])
def test_long_file_is_never_loaded_whole(tmp_path: Path, out_rate: int) -> None:
    rate, minutes = 16000, 10
    path = tmp_path / "long.wav"
    chunk = (0.3 * np.sin(2 * np.pi * 440 * np.arange(10 * rate) / rate)).astype(np.float32)
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as f:
        for _ in range(minutes * 6):
            f.write(chunk)
    full_bytes = minutes * 60 * rate * 4  # the whole file as float32: 38.4 MB
    tracemalloc.start()
    try:
        src = FileSource(path, out_rate)
        n = 0
        for block in src.blocks():
            n += block.size
        src.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(
        f"\n10-min file -> {out_rate} Hz: tracemalloc peak {peak / 1e3:.0f} kB "
        f"vs {full_bytes / 1e6:.1f} MB decoded"
    )
    assert n == pytest.approx(minutes * 60 * out_rate, abs=2)
    assert peak < full_bytes / 50


# -- lazy PortAudio ----------------------------------------------------------------------------
def _run_python(code: str, tmp_path: Path, fake_sounddevice: str | None = None) -> str:
    env = dict(os.environ)
    paths = [str(REPO)]
    if fake_sounddevice is not None:
        fake_dir = tmp_path / "fake"
        fake_dir.mkdir()
        (fake_dir / "sounddevice.py").write_text(fake_sounddevice)
        paths.insert(0, str(fake_dir))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_sources_do_not_import_sounddevice(tmp_path: Path) -> None:
    out = _run_python(
        """
        import sys
        import hark.live.sources, hark.live.devices
        print('sounddevice' in sys.modules)
        """,
        tmp_path,
    )
    assert out.strip() == "False"


def test_missing_portaudio_is_one_clear_error_and_files_still_work(tmp_path: Path) -> None:
    wav = _write(tmp_path / "a.wav", _signal(0.5, 16000), 16000)
    out = _run_python(
        f"""
        from hark.live.sources import FileSource, MicSource
        from hark.live.devices import DeviceError, list_input_devices
        print(sum(b.size for b in FileSource({str(wav)!r}, 16000).blocks()))
        for f in (lambda: MicSource(16000), list_input_devices):
            try:
                f()
            except DeviceError as e:
                print(e)
        """,
        tmp_path,
        fake_sounddevice="raise OSError('PortAudio library not found')\n",
    )
    assert out.splitlines() == ["8000", PORTAUDIO_MISSING, PORTAUDIO_MISSING]


# -- a fake PortAudio: device resolution and MicSource without hardware ------------------------
class _Flags:
    def __init__(self, overflow: bool = False, underflow: bool = False) -> None:
        self.input_overflow = overflow
        self.input_underflow = underflow


class FakePortAudio:
    """Just enough of sounddevice: devices, a default, rate checks, a stream fed by a thread.

    The stream reuses one indata buffer for every callback, like PortAudio does, so a callback
    that kept a view instead of a copy would see its data overwritten.
    """

    class PortAudioError(Exception):
        pass

    def __init__(
        self,
        devices: list[tuple[str, int, float]],
        default: int = -1,
        rates: tuple[int, ...] = (),
    ) -> None:
        self.devices = [
            {"name": n, "hostapi": 0, "max_input_channels": ch, "default_samplerate": sr}
            for n, ch, sr in devices
        ]
        self.default = types.SimpleNamespace(device=[default, default])
        self.rates = rates  # rates the devices accept besides their default
        self.signal = np.zeros(0, np.float32)
        self.flags: dict[int, _Flags] = {}  # callback number -> status flags
        self.callback_delay_s = 0.0
        self.stream: Any = None

    def module(self) -> types.ModuleType:
        mod = types.ModuleType("sounddevice")
        for name in (
            "PortAudioError",
            "query_devices",
            "query_hostapis",
            "check_input_settings",
            "InputStream",
            "default",
        ):
            setattr(mod, name, getattr(self, name))
        return mod

    def query_hostapis(self) -> list[dict[str, Any]]:
        return [{"name": "FakeAPI"}]

    def query_devices(self, device: int | None = None, kind: str | None = None) -> Any:
        if device is None and kind is None:
            return self.devices
        index = self.default.device[0] if device is None else device
        if index < 0:
            raise self.PortAudioError("Error querying device -1")
        return self.devices[index]

    def check_input_settings(
        self, device: int | None = None, samplerate: float = 0, **_: Any
    ) -> None:
        dev = self.query_devices(device, "input")
        if samplerate not in (dev["default_samplerate"], *self.rates):
            raise self.PortAudioError("Invalid sample rate")

    def InputStream(self, **kw: Any) -> Any:  # noqa: N802 - sounddevice's name
        self.stream = _FakeStream(self, **kw)
        return self.stream


class _FakeStream:
    def __init__(
        self,
        pa: FakePortAudio,
        *,
        samplerate: float,
        blocksize: int,
        callback: Any,
        channels: int,
        dtype: str,
        **_: Any,
    ) -> None:
        assert channels == 1 and dtype == "float32"
        self.pa, self.rate, self.blocksize, self.callback = pa, samplerate, blocksize, callback
        self.active = False
        self.aborted = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.active = True
        self._thread.start()

    def _run(self) -> None:
        buf = np.empty((self.blocksize, 1), np.float32)
        x = self.pa.signal
        for k, i in enumerate(range(0, x.size - self.blocksize + 1, self.blocksize)):
            if self.aborted.is_set():
                break
            buf[:, 0] = x[i : i + self.blocksize]
            self.callback(buf, self.blocksize, None, self.pa.flags.get(k, _Flags()))
            if self.pa.callback_delay_s:
                time.sleep(self.pa.callback_delay_s)
        self.active = False  # like PortAudio after the device went away

    def abort(self, ignore_errors: bool = True) -> None:
        self.aborted.set()
        self._thread.join(timeout=5)

    def close(self, ignore_errors: bool = True) -> None:
        pass


@pytest.fixture
def fake_pa(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePortAudio]:
    pa = FakePortAudio(
        [
            ("USB Mic", 1, 44100.0),
            ("USB Mic Pro", 2, 48000.0),
            ("Speakers", 0, 48000.0),
            ("default", 32, 44100.0),
        ],
        default=3,
    )
    monkeypatch.setitem(sys.modules, "sounddevice", pa.module())
    yield pa


def test_list_and_format_devices(fake_pa: FakePortAudio) -> None:
    devices = list_input_devices()
    assert [d.index for d in devices] == [0, 1, 3]  # Speakers has no input
    assert [d.is_default for d in devices] == [False, False, True]
    assert devices[1].channels == 2 and devices[1].default_samplerate == 48000.0
    text = format_devices()
    assert "Speakers" not in text
    assert any(line.startswith("*") and "default" in line for line in text.splitlines())


@pytest.mark.parametrize(
    ("spec", "index"),
    [
        (None, None),
        (0, 0),
        ("1", 1),
        (" 3 ", 3),
        ("usb mic pro", 1),
        ("PRO", 1),
        ("usb mic", 0),
        ("DEFAULT", 3),
        ("fakeapi", None),
    ],
)
def test_resolve_device(fake_pa: FakePortAudio, spec: str | int | None, index: int | None) -> None:
    if spec == "fakeapi":  # matches every device through the host API name: ambiguous
        with pytest.raises(DeviceError, match="ambiguous"):
            resolve_device(spec)
        return
    assert resolve_device(spec) == index


@pytest.mark.parametrize("spec", ["nosuchmic", 2, "7", ""])
def test_unknown_device_lists_the_inputs(fake_pa: FakePortAudio, spec: str | int) -> None:
    with pytest.raises(DeviceError) as info:
        resolve_device(spec)
    message = str(info.value)
    assert "[0] USB Mic" in message and "[3] default" in message
    assert "Speakers" not in message
    assert "\n" not in message


def test_ambiguous_name_lists_the_matches(fake_pa: FakePortAudio) -> None:
    fake_pa.devices[3]["name"] = "USB Mic (2)"
    with pytest.raises(DeviceError, match=r"ambiguous.*\[0\] USB Mic.*\[3\] USB Mic \(2\)"):
        resolve_device("usb")


def test_no_default_picks_the_first_input(fake_pa: FakePortAudio) -> None:
    fake_pa.default.device = [-1, -1]
    assert resolve_device(None) == 0


def test_no_input_device_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    pa = FakePortAudio([("Speakers", 0, 48000.0)])
    monkeypatch.setitem(sys.modules, "sounddevice", pa.module())
    for call in (lambda: resolve_device(None), lambda: MicSource(16000)):
        with pytest.raises(DeviceError) as info:
            call()
        assert str(info.value) == NO_INPUT_DEVICE
    assert format_devices() == NO_INPUT_DEVICE


def test_mic_resamples_on_the_consumer_side(fake_pa: FakePortAudio) -> None:
    """44.1 kHz device that refuses 16 kHz: resampled by us, equal to one-shot soxr."""
    x = _signal(1.0, 44100)[:, 0]
    fake_pa.signal = x
    with MicSource(16000, device="usb mic", max_seconds=1.0) as mic:
        assert (mic.input_rate, mic.block_frames, mic.name) == (44100, 441, "USB Mic")
        y = np.concatenate(list(mic.blocks()))
    ref = soxr.resample(x, 44100, 16000)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=0, atol=ATOL)
    assert mic.stats == SourceStats(blocks=mic.stats.blocks, samples=16000)


def test_mic_uses_the_model_rate_when_the_device_takes_it(fake_pa: FakePortAudio) -> None:
    fake_pa.rates = (16000,)
    x = _signal(0.5, 16000)[:, 0]
    fake_pa.signal = x
    with MicSource(16000, max_seconds=0.5) as mic:
        assert mic.input_rate == 16000 and mic.name == "default"
        y = np.concatenate(list(mic.blocks()))
    np.testing.assert_array_equal(y, x)  # no resampler at all


def test_mic_max_seconds_is_exact(fake_pa: FakePortAudio) -> None:
    fake_pa.signal = _signal(2.0, 44100)[:, 0]
    with MicSource(16000, max_seconds=0.333) as mic:
        n = sum(b.size for b in mic.blocks())
    assert n == soxr.resample(fake_pa.signal[: round(0.333 * 44100)], 44100, 16000).size


def test_mic_counts_flags_and_nonfinite(fake_pa: FakePortAudio) -> None:
    fake_pa.rates = (16000,)
    x = _signal(1.0, 16000)[:, 0]
    x[[5, 900, 901]] = [np.nan, np.inf, -np.inf]
    fake_pa.signal = x
    fake_pa.flags = {3: _Flags(overflow=True), 7: _Flags(overflow=True, underflow=True)}
    with MicSource(16000, max_seconds=1.0) as mic:
        y = np.concatenate(list(mic.blocks()))
    assert np.isfinite(y).all() and y[5] == 0 and y[900] == 0
    assert (mic.stats.overflows, mic.stats.underflows, mic.stats.nonfinite_samples) == (2, 1, 3)


def test_mic_full_queue_drops_and_counts(fake_pa: FakePortAudio) -> None:
    fake_pa.rates = (16000,)
    fake_pa.signal = _signal(1.0, 16000)[:, 0]  # 100 blocks of 10 ms into a 5-block queue
    mic = MicSource(16000, queue_blocks=5)
    mic.start()
    fake_pa.stream._thread.join(timeout=5)  # the consumer has not read anything yet
    got = []
    with pytest.raises(DeviceError, match="stopped delivering"):  # the fake device ends
        for block in mic.blocks():
            got.append(block)
    mic.close()
    assert mic.stats.dropped_blocks == 95
    assert sum(b.size for b in got) == mic.stats.samples == 5 * 160


def test_mic_stop_from_another_thread(fake_pa: FakePortAudio) -> None:
    fake_pa.rates = (16000,)
    fake_pa.signal = _signal(30.0, 16000)[:, 0]
    fake_pa.callback_delay_s = 0.01  # a live-ish 10 ms cadence: 30 s if nobody stops it
    with MicSource(16000) as mic:
        threading.Timer(0.3, mic.stop).start()
        t0 = time.monotonic()
        n = sum(b.size for b in mic.blocks())
        elapsed = time.monotonic() - t0
    assert 0.25 < elapsed < 3.0
    assert 0 < n < 30 * 16000
    assert fake_pa.stream.aborted.is_set()


def test_mic_bad_options(fake_pa: FakePortAudio) -> None:
    for kwargs in ({"block_ms": 0}, {"queue_blocks": 0}, {"max_seconds": 0}):
        with pytest.raises(ValueError):
            MicSource(16000, **kwargs)


def test_mic_overrun_is_filled_with_silence_and_reported(fake_pa: FakePortAudio) -> None:
    """PortAudio flags an overflow after 3 s without callbacks: 3 s of silence keep the clock."""
    from types import SimpleNamespace

    fake_pa.rates = (16000,)
    fake_pa.signal = np.zeros(0, np.float32)  # the fake device delivers nothing by itself
    mic = MicSource(16000)
    mic.start()
    fake_pa.stream._thread.join(timeout=5)
    block = np.full((160, 1), 0.25, np.float32)
    for k in range(10):  # 100 ms of audio captured at ADC time 1.00 .. 1.09 s
        mic._callback(block, 160, SimpleNamespace(inputBufferAdcTime=1.0 + k / 100), _Flags())
    mic._callback(block, 160, SimpleNamespace(inputBufferAdcTime=4.10), _Flags(overflow=True))
    got = []
    with pytest.raises(DeviceError):
        for b in mic.blocks():
            got.append(b)
    mic.close()
    y = np.concatenate(got)
    assert mic.stats.gaps == [(pytest.approx(0.1), pytest.approx(3.0))]
    assert y.size == 1600 + 48000 + 160
    assert (y[:1600] == 0.25).all() and (y[1600:49600] == 0).all() and (y[49600:] == 0.25).all()
