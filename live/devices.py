"""Audio input devices: the `hark devices` listing, and `--device` resolved to a PortAudio index.

sounddevice is imported lazily (only when a microphone is actually used), so that `hark replay`
works on machines without the PortAudio library; a missing library becomes one DeviceError.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from hark.live.errors import HarkError

PORTAUDIO_MISSING = (
    "PortAudio library not found: install it (Debian/Ubuntu: apt-get install libportaudio2)"
)
NO_INPUT_DEVICE = (
    "no audio input device found; to run on a recording instead, use: hark replay FILE"
)


class DeviceError(HarkError):
    """No usable audio input: PortAudio missing, no device, or a device spec that matches none."""


@dataclass(frozen=True)
class DeviceInfo:
    """One PortAudio input device as `hark devices` shows it.

    channels is the maximum number of input channels; default_samplerate is the rate the device
    runs at natively (opening it at another rate may resample inside the driver).
    """

    index: int
    name: str
    hostapi: str
    channels: int
    default_samplerate: float
    is_default: bool


def import_sounddevice() -> ModuleType:
    """Import sounddevice; a missing PortAudio library becomes a DeviceError naming the package.

    sounddevice raises a bare OSError at import when libportaudio is absent.
    """
    try:
        return importlib.import_module("sounddevice")
    except OSError as e:
        raise DeviceError(PORTAUDIO_MISSING) from e
    except ImportError as e:
        raise DeviceError(
            "the Python package sounddevice is not installed: pip install sounddevice"
        ) from e


def list_input_devices() -> list[DeviceInfo]:
    """Every device with at least one input channel, in PortAudio index order."""
    sd = import_sounddevice()
    hostapis = sd.query_hostapis()
    default_index = _default_input_index(sd)
    devices: list[DeviceInfo] = []
    for index, dev in enumerate(sd.query_devices()):
        if dev["max_input_channels"] <= 0:
            continue
        devices.append(
            DeviceInfo(
                index=index,
                name=str(dev["name"]),
                hostapi=str(hostapis[dev["hostapi"]]["name"]),
                channels=int(dev["max_input_channels"]),
                default_samplerate=float(dev["default_samplerate"]),
                is_default=index == default_index,
            )
        )
    return devices


def format_devices(devices: list[DeviceInfo] | None = None) -> str:
    """The `hark devices` listing: one line per input device, the default marked with '*'."""
    if devices is None:
        devices = list_input_devices()
    if not devices:
        return NO_INPUT_DEVICE
    name_width = max(len(d.name) for d in devices)
    api_width = max(len(d.hostapi) for d in devices)
    lines = ["input devices (* = default; select with --device INDEX or a part of the name):"]
    for d in devices:
        mark = "*" if d.is_default else " "
        lines.append(
            f"{mark} {d.index:>3}  {d.name:<{name_width}}  {d.hostapi:<{api_width}}  "
            f"{d.channels:>3} ch  {d.default_samplerate:>7.0f} Hz"
        )
    return "\n".join(lines)


def resolve_device(spec: str | int | None) -> int | None:
    """Turn a device spec into a PortAudio input device index.

    None means the default input device (returned as None so PortAudio picks it, or the first
    input device when PortAudio has no default). An int or a string of digits is an index; any
    other string is a case-insensitive part of the device name (an exact name wins over partial
    matches). Unknown or ambiguous specs raise a DeviceError that lists the input devices.
    """
    devices = list_input_devices()
    if not devices:
        raise DeviceError(NO_INPUT_DEVICE)
    if spec is None:
        if any(d.is_default for d in devices):
            return None
        return devices[0].index
    if isinstance(spec, int) or spec.strip().isdigit():
        index = int(spec)
        for d in devices:
            if d.index == index:
                return index
        raise DeviceError(f"no input device with index {index}; {_available(devices)}")
    wanted = spec.strip().lower()
    if not wanted:
        raise DeviceError(f"empty device name; {_available(devices)}")
    exact = [d for d in devices if d.name.lower() == wanted]
    if len(exact) == 1:
        return exact[0].index
    partial = exact or [d for d in devices if wanted in f"{d.name}, {d.hostapi}".lower()]
    if len(partial) == 1:
        return partial[0].index
    if not partial:
        raise DeviceError(f"no input device matches {spec!r}; {_available(devices)}")
    raise DeviceError(
        f"device name {spec!r} is ambiguous, it matches: {_describe(partial)}; "
        "give more of the name or the index"
    )


def _default_input_index(sd: Any) -> int | None:
    index = sd.default.device[0]  # -1 when PortAudio has no default input
    if isinstance(index, int) and index >= 0:
        return index
    return None


def _describe(devices: list[DeviceInfo]) -> str:
    return ", ".join(f"[{d.index}] {d.name} ({d.hostapi})" for d in devices)


def _available(devices: list[DeviceInfo]) -> str:
    return f"input devices: {_describe(devices)} (see: hark devices)"
