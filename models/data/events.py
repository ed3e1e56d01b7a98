"""Labelled time spans: the Event record, per-frame training targets and DCASE tsv files.

Streams of speech and sound events both produce `Event`s; per-frame models train on the targets
`frame_targets` derives from them, and evaluation reads/writes the DCASE tsv format.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

from hark.models.data.audio import FloatArray, IntArray, write_wav

DCASE_HEADER = ("onset", "offset", "event_label")


@dataclass(frozen=True)
class Event:
    """One labelled span of audio, in seconds from the start of its stream."""

    onset_s: float
    offset_s: float
    label: str


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
        tsv = write_dcase_tsv(wav.with_suffix(".tsv"), self.events)
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


def write_dcase_tsv(path: str | Path, events: Iterable[Event]) -> Path:
    """Write `onset<TAB>offset<TAB>event_label` rows (seconds, millisecond resolution)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(DCASE_HEADER)
        for event in events:
            writer.writerow((f"{event.onset_s:.3f}", f"{event.offset_s:.3f}", event.label))
    return out


def read_dcase_tsv(path: str | Path) -> list[Event]:
    """Read a DCASE tsv with an onset/offset/event_label header; other columns are ignored.

    Rows without an event (empty label, as DCASE uses for files with no events) are skipped.
    """
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = set(DCASE_HEADER) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: tsv header lacks {sorted(missing)}")
        return [
            Event(float(row["onset"]), float(row["offset"]), row["event_label"])
            for row in reader
            if row["event_label"] and row["onset"]
        ]
