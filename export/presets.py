"""Named front ends for `hark export --preset`, and the `PRESET,field=value` spec syntax.

A preset fixes the sample rate, the frontend and the default window/stride of window models.
Every field can be overridden (`--n-mels 64`, or `--frontend logmel40,n_mels=64`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from hark.export.errors import ExportError
from hark.live.card import FRONTEND_KINDS, FrontendSpec


@dataclass(frozen=True)
class Preset:
    """A frontend with the sample rate it runs at and the usual window-model framing."""

    name: str
    sample_rate: int
    frontend: FrontendSpec
    window_s: float = 1.0
    stride_s: float = 0.1
    description: str = ""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "kaggle-specgram",
            8000,
            # n_fft = the 160-sample window -> 81 bins; the kernel's log(spec + 1e-10)
            FrontendSpec(kind="specgram", window_ms=20.0, hop_ms=10.0, log_floor=1e-10),
            description="Kaggle speech-commands log_specgram: 8 kHz, 20/10 ms, 99x81 per second",
        ),
        Preset(
            "logmel40",
            16000,
            FrontendSpec(kind="logmel", window_ms=25.0, hop_ms=10.0, n_fft=512, n_mels=40),
            description="16 kHz log-mel, 25/10 ms, n_fft 512, 40 mels",
        ),
        Preset(
            "mfcc13",
            16000,
            FrontendSpec(kind="mfcc", window_ms=25.0, hop_ms=10.0, n_fft=512, n_mels=40, n_mfcc=13),
            description="16 kHz MFCC: 13 coefficients of 40 log-mels, 25/10 ms, n_fft 512",
        ),
        Preset(
            "raw16k",
            16000,
            FrontendSpec(kind="raw"),
            description="raw waveform at 16 kHz, 1 s window",
        ),
    )
}

FRONTEND_FIELDS = tuple(f.name for f in dataclasses.fields(FrontendSpec))


@dataclass(frozen=True)
class FrontendChoice:
    """A frontend as the user asked for it: an optional preset plus field overrides."""

    preset: str | None = None
    overrides: dict[str, object] = field(default_factory=dict)

    def resolve(self) -> tuple[FrontendSpec, Preset | None]:
        """The FrontendSpec (preset fields, then overrides) and the preset it started from."""
        preset = get_preset(self.preset) if self.preset else None
        base = preset.frontend if preset else FrontendSpec()
        if not preset and "kind" not in self.overrides:
            raise ExportError(
                "a frontend needs a preset or a kind: --preset "
                f"{{{','.join(PRESETS)}}} or --kind {{{','.join(FRONTEND_KINDS)}}}"
            )
        try:
            spec = dataclasses.replace(base, **self.overrides)  # type: ignore[arg-type]
        except TypeError as e:
            raise ExportError(f"bad frontend field: {e}") from None
        return spec, preset


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ExportError(
            f"unknown preset {name!r} (known: {', '.join(PRESETS)})"
        ) from None


_FIELD_TYPES = {f.name: str(f.type) for f in dataclasses.fields(FrontendSpec)}


def convert_field(name: str, value: str) -> object:
    """A spec string value as the FrontendSpec field's type (read from its annotation)."""
    kind = _FIELD_TYPES.get(name, "float")
    low = value.strip().lower()
    if "None" in kind and low in ("none", ""):
        return None
    if kind.startswith("bool"):
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ValueError(value)
    if "Literal" in kind or kind.startswith("str"):
        literal = [v.strip().strip("'\"") for v in
                   kind.split("Literal[", 1)[-1].split("]", 1)[0].split(",")]
        if low in literal:
            return int(low) if low.lstrip("-").isdigit() else low
        if "int" in kind and low.lstrip("-").isdigit():
            return int(low)
        if "float" in kind:
            return float(value)
        if kind.startswith("str"):
            return value.strip()
        if all(v.lstrip("-").isdigit() for v in literal):
            return int(low)
        raise ValueError(value)
    if kind.startswith("int"):
        return int(value)
    return float(value)


def parse_frontend_spec(text: str) -> FrontendChoice:
    """Parse `PRESET`, `PRESET,field=value,...` or `field=value,...` (`kind=logmel,n_mels=64`)."""
    preset: str | None = None
    overrides: dict[str, object] = {}
    for i, part in enumerate(p.strip() for p in text.split(",")):
        if not part:
            continue
        if "=" not in part:
            if i != 0:
                raise ExportError(f"frontend spec {text!r}: {part!r} is not field=value")
            get_preset(part)
            preset = part
            continue
        key, value = (s.strip() for s in part.split("=", 1))
        key = key.replace("-", "_")
        if key not in FRONTEND_FIELDS:
            raise ExportError(
                f"frontend spec {text!r}: unknown field {key!r} "
                f"(fields: {', '.join(FRONTEND_FIELDS)})"
            )
        try:
            overrides[key] = convert_field(key, value)
        except ValueError:
            raise ExportError(f"frontend spec {text!r}: bad value for {key}: {value!r}") from None
    return FrontendChoice(preset, overrides)
