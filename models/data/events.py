"""Labelled streams and per-frame training targets.

Streams of speech and sound events both carry hark's one `Event` (hark.live.events); per-frame
models train on the targets `frame_targets` derives from them; the DCASE tsv files beside each
stream are written and read by hark.live.events (`write_events_tsv`, `read_events_tsv`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

from hark.live.events import Event, write_events_tsv
from hark.models.data.audio import FloatArray, IntArray, write_wav


@dataclass
class Stream:
    """A long mono buffer and the events placed in it (sorted by onset)."""

    audio: FloatArray
    sample_rate: int
    events: list[Event] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds."""
        return self.audio.shape[-1] / self.sample_rate

    def write(self, wav_path: str | Path) -> tuple[Path, Path]:
        """Write the audio (16-bit wav) and a DCASE tsv with the same stem beside it."""
        wav = write_wav(wav_path, self.audio, self.sample_rate)
        tsv = write_events_tsv(wav.with_suffix(".tsv"), self.events)
        return wav, tsv


def frame_times(n_frames: int, hop_s: float, win_s: float) -> npt.NDArray[np.float64]:
    """Centre time of each analysis frame: i * hop_s + win_s / 2."""
    return np.arange(n_frames, dtype=np.float64) * hop_s + win_s / 2.0


@overload
def frame_targets(
    events: Iterable[Event],
    n_frames: int,
    hop_s: float,
    win_s: float,
    labels: Sequence[str],
    *,
    multilabel: Literal[False] = False,
    background: str | None = None,
    ignore: Collection[str] = (),
) -> IntArray: ...


@overload
def frame_targets(
    events: Iterable[Event],
    n_frames: int,
    hop_s: float,
    win_s: float,
    labels: Sequence[str],
    *,
    multilabel: Literal[True],
    background: str | None = None,
    ignore: Collection[str] = (),
) -> FloatArray: ...


@overload
def frame_targets(
    events: Iterable[Event],
    n_frames: int,
    hop_s: float,
    win_s: float,
    labels: Sequence[str],
    *,
    multilabel: bool,
    background: str | None = None,
    ignore: Collection[str] = (),
) -> IntArray | FloatArray: ...


def frame_targets(
    events: Iterable[Event],
    n_frames: int,
    hop_s: float,
    win_s: float,
    labels: Sequence[str],
    *,
    multilabel: bool = False,
    background: str | None = None,
    ignore: Collection[str] = (),
) -> IntArray | FloatArray:
    """Per-frame targets: a frame belongs to an event when its centre lies in [onset, offset).

    multilabel=False: int64 class index per frame; frames outside every event get the background
    index, `labels.index(background)` if given, else len(labels) (an extra class). Where events
    overlap the later one in `events` wins. multilabel=True: float32 multi-hot [n_frames, n_labels].
    Labels in `ignore` are skipped; any other label missing from `labels` is an error.
    """
    index = {label: i for i, label in enumerate(labels)}
    centres = frame_times(n_frames, hop_s, win_s)
    if multilabel:
        hot = np.zeros((n_frames, len(labels)), dtype=np.float32)
    else:
        bg = index[background] if background is not None else len(labels)
        classes = np.full(n_frames, bg, dtype=np.int64)
    for event in events:
        if event.label in ignore:
            continue
        if event.label not in index:
            raise ValueError(f"event label {event.label!r} is not in labels {list(labels)}")
        inside = (centres >= event.onset_s) & (centres < event.offset_s)
        if multilabel:
            hot[inside, index[event.label]] = 1.0
        else:
            classes[inside] = index[event.label]
    return hot if multilabel else classes
