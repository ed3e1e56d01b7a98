"""The event roll of one model: a row per class, time scrolling right to left, a time axis.

Each cell is one column of the terminal and covers a fixed group of F frames aligned to absolute
frame numbers (F = frames per column for the requested seconds), so the picture moves by whole
columns as time passes instead of re-binning (and shimmering) on every redraw. A cell shows the
largest smoothed posterior of its frames as an eighth block (readable without colour) and is
highlighted where the class was in an event. Lines are built once per data change or resize and
served from a cache (textual's line API), so a redraw is cheap.
"""

from __future__ import annotations

import math

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from hark.live.ui.state import ModelView

LEVELS = " ▁▂▃▄▅▆▇█"  # index = round(posterior * 8)
_LEVEL_CHARS = np.array(list(LEVELS))
LABEL_MAX = 12  # label column width cap
ROW_BG = "#161b22"  # seen cells
SELECTED_BG = "#26303d"  # seen cells of the selected class
ACTIVE_BG = "#6b3200"  # cells inside an event
INACTIVE_FG = "#5fa8d3"  # one colour: the bar height already shows the level (fewer runs)
_ACTIVE_FG = "#ffbf3f"
TICK_STEPS_S = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


def format_time(t: float, step: float) -> str:
    """A tick label: seconds below a minute ('12s', '1.5s'), m:ss above ('1:05')."""
    if t < 60:
        return f"{t:.1f}s" if step < 1 else f"{t:.0f}s"
    m, s = divmod(int(round(t)), 60)
    if m < 60:
        return f"{m}:{s:02d}"
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


def bin_roll(
    view: ModelView, width: int, frames_per_col: int, complete_only: bool = False
) -> tuple[np.ndarray, np.ndarray, int]:
    """Group the roll's frames into `width` columns aligned to absolute frame numbers.

    Returns (C, width) max posterior per column (-1 where no frame was seen), (C, width)
    any-active, and the absolute frame number of the first frame of column 0.
    complete_only: leave out the newest column until all its frames are in, so the picture
    changes once per column, not once per block (the Now panel shows the newest frame).
    """
    n, hist = view.n_frames, view.roll.shape[1]
    f = frames_per_col
    shown = (n // f) * f if complete_only else n
    last_bin = (shown - 1) // f if shown else 0
    first = (last_bin - width + 1) * f
    idx = np.arange(first, first + width * f)
    pos = hist - n + idx  # where frame idx sits in the roll (oldest -> newest)
    valid = (idx >= 0) & (idx < shown) & (pos >= 0)
    safe = np.clip(pos, 0, hist - 1)
    c = view.roll.shape[0]
    vals = np.where(valid, view.roll[:, safe], -1.0).reshape(c, width, f).max(axis=2)
    act = np.asarray(
        np.where(valid, view.roll_active[:, safe], False).reshape(c, width, f).any(axis=2),
        dtype=bool,
    )
    return vals, act, first


class RollSection(Widget):
    """Title line, `row_height` lines per class (label, on threshold, cells), a time axis line.

    show() bins the new data and repaints only if the picture changed (new column, a level
    crossing an eighth, selection, thresholds): most 20 Hz ticks change nothing here.
    """

    DEFAULT_CSS = """
    RollSection { height: auto; width: 1fr; }
    """

    def __init__(self, index: int, labels: tuple[str, ...], roll_seconds: float,
                 label_width: int | None = None,
                 id: str | None = None) -> None:  # noqa: A002 - textual's name
        """label_width: the same for every section keeps their time columns aligned."""
        super().__init__(id=id)
        self.index = index
        self.labels = labels
        self._label_width = label_width
        self.roll_seconds = roll_seconds
        self.view: ModelView | None = None
        self.selected: str | None = None
        self.row_height = 1  # lines per class: more lines = finer bars, when the screen allows
        self.repaints = 0
        self._lines: list[Strip] = []
        self._built_for: tuple[int, int] | None = None  # (width, row_height) of _lines
        self._key: tuple | None = None  # what the current lines show
        self._styles: dict[int, Style] = {}

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.labels) * self.row_height + 2

    def set_row_height(self, lines: int) -> None:
        if lines != self.row_height:
            self.row_height = lines
            self._built_for = None
            self.refresh(layout=True)

    def show(self, view: ModelView, selected: str | None) -> None:
        """New data (or a new selection): repaint if the picture changed."""
        self.view, self.selected = view, selected
        width = self.size.width
        if not width:
            return
        binned = self._bin(view, width)
        key = self._picture_key(view, width, binned)
        if key == self._key and self._built_for == (width, self.row_height):
            return
        self._lines = self._build(width, binned)
        self._built_for, self._key = (width, self.row_height), key
        self.repaints += 1
        self.refresh()

    # ---- drawing -----------------------------------------------------------------------------
    @property
    def label_width(self) -> int:
        return self._label_width or min(LABEL_MAX, max(len(lb) for lb in self.labels))

    def row_offset(self, label: str) -> int:
        """First line of a class's row inside this section."""
        return 1 + self.labels.index(label) * self.row_height

    @property
    def left_width(self) -> int:
        """Marker, label, space, threshold (4), space, bar."""
        return self.label_width + 8

    def frames_per_col(self, roll_width: int, hop_s: float) -> int:
        return max(1, round(self.roll_seconds / hop_s / max(1, roll_width)))

    def _bin(self, view: ModelView, width: int) -> tuple[np.ndarray, np.ndarray, int, int]:
        """(eighths per class and column, -1 unseen), (active), first frame, frames per column."""
        roll_w = max(1, width - self.left_width)
        f = self.frames_per_col(roll_w, view.hop_s)
        vals, act, first = bin_roll(view, roll_w, f, complete_only=True)
        eighths = np.where(vals >= 0, np.rint(vals * 8 * self.row_height), -1).astype(np.int16)
        return eighths, act, first, f

    def _picture_key(self, view: ModelView, width: int,
                     binned: tuple[np.ndarray, np.ndarray, int, int]) -> tuple:
        eighths, act, first, f = binned
        t0 = None if view.last_time_s is None else round(
            view.last_time_s - (view.n_frames - 1 - first) * view.hop_s, 4)
        return (width, self.row_height, self.selected, view.name, view.thresholds,
                tuple(sorted(view.active)), eighths.tobytes(), act.tobytes(), t0, f)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if self._built_for != (width, self.row_height):
            binned = self._bin(self.view, width) if self.view is not None else None
            self._lines = self._build(width, binned)
            self._built_for = (width, self.row_height)
            self._key = None
        if 0 <= y < len(self._lines):
            return self._lines[y]
        return Strip.blank(width)

    def _style(self, code: int) -> Style:
        """Cell style by code: -1 unseen; else 16 * active + 32 * selected."""
        style = self._styles.get(code)
        if style is None:
            if code < 0:
                style = Style()
            elif code & 16:
                style = Style(color=_ACTIVE_FG, bgcolor=ACTIVE_BG, bold=True)
            else:
                style = Style(color=INACTIVE_FG, bgcolor=SELECTED_BG if code & 32 else ROW_BG)
            self._styles[code] = style
        return style

    def _build(self, width: int,
               binned: tuple[np.ndarray, np.ndarray, int, int] | None) -> list[Strip]:
        lw = self.label_width
        left = self.left_width
        view = self.view
        h = self.row_height
        lines = [self._title(width, view, max(1, width - left))]
        if view is None or binned is None:
            for label in self.labels:
                lines.extend(Strip.blank(width) for _ in range(h - 1))
                text = f" {label[:lw]:<{lw}}"
                lines.append(Strip([Segment(text)]).crop_extend(0, width, None))
            lines.append(Strip.blank(width))
            return lines
        eighths, act, first, f = binned
        active_now = set(view.active)
        for c, label in enumerate(view.labels):
            selected = label == self.selected
            is_event = label in view.event_labels
            on = view.thresholds[c][0]
            thr = f"{on:4.2f}" if is_event else "   -"
            lab_style = Style(bold=True, color=_ACTIVE_FG) if label in active_now else Style()
            if selected:
                lab_style = Style(reverse=True, bold=True)
            elif not is_event:
                lab_style = Style(dim=True)
            # a bar of h lines: h * 8 eighths, filled from the bottom line up
            for k in range(h - 1, -1, -1):  # k = lines below this one
                if k == 0:
                    head = [
                        Segment("▸" if selected else " ", Style(bold=True)),
                        Segment(f"{label[:lw]:<{lw}}", lab_style),
                        Segment(" "),
                        Segment(thr, Style(dim=not selected, bold=selected)),
                    ]
                else:
                    head = [Segment(" " * (lw + 6))]
                levels = np.where(eighths[c] >= 0, np.clip(eighths[c] - 8 * k, 0, 8), -1)
                segs = [*head, Segment(" ▕", Style(dim=True))]
                segs.extend(self._cells(levels, act[c], selected))
                lines.append(Strip(segs).crop_extend(0, width, None))
        lines.append(self._axis(width, left, max(1, width - left), view, f, first))
        return lines

    def _cells(self, levels: np.ndarray, act: np.ndarray, selected: bool) -> list[Segment]:
        """One line of cells, as runs of equal style; levels: eighths 0..8, -1 unseen."""
        seen = levels >= 0
        lv = np.clip(levels, 0, 8)
        codes = np.where(seen, 16 * act + (32 if selected else 0), -1)
        text = "".join(_LEVEL_CHARS[np.where(seen, lv, 0)].tolist())
        cuts = [0, *(np.flatnonzero(np.diff(codes)) + 1).tolist(), len(codes)]
        return [Segment(text[a:b], self._style(int(codes[a])))
                for a, b in zip(cuts[:-1], cuts[1:], strict=True)]

    def _title(self, width: int, view: ModelView | None, roll_w: int) -> Strip:
        if view is None:
            return Strip([Segment(" waiting for audio…", Style(dim=True))]).crop_extend(
                0, width, None)
        f = self.frames_per_col(roll_w, view.hop_s)
        span = roll_w * f * view.hop_s
        info = f" · {len(view.labels)} classes · last {span:.0f} s · hop {view.hop_s * 1000:.0f} ms"
        segs = [Segment(f" {view.name}", Style(bold=True, color="#8bdcf5")),
                Segment(info, Style(dim=True))]
        if self.selected is not None and self.selected in view.labels:
            on, off = view.thresholds[view.labels.index(self.selected)]
            segs.append(Segment(f" · {self.selected}: on {on:.2f} off {off:.2f}", Style(bold=True)))
        return Strip(segs).crop_extend(0, width, None)

    def _axis(self, width: int, left: int, roll_w: int, view: ModelView, f: int,
              first: int) -> Strip:
        """Tick marks at round times with their labels, in stream time (seconds)."""
        n = view.n_frames
        if not n or view.last_time_s is None:
            return Strip.blank(width)
        hop = view.hop_s
        col_s = f * hop
        widest = len(format_time(view.last_time_s, 1.0)) + 2  # tick mark, label, a space
        step = next((s for s in TICK_STEPS_S if s / col_s >= widest + (s < 1) * 2),
                    TICK_STEPS_S[-1])
        t0 = view.last_time_s - (n - 1 - first) * hop  # time of column 0's first frame
        chars = [" "] * roll_w
        k = math.ceil((t0 - 1e-9) / step)
        while True:
            t = k * step
            col = int(math.floor((t - t0) / col_s + 1e-9))
            if col >= roll_w:
                break
            k += 1
            if col < 0 or t < 0 or first + (col + 1) * f <= 0:
                continue
            label = "╵" + format_time(t, step)
            if col + len(label) > roll_w:
                continue
            chars[col : col + len(label)] = list(label)
        segs = [Segment(" " * left), Segment("".join(chars), Style(dim=True))]
        return Strip(segs).crop_extend(0, width, None)
