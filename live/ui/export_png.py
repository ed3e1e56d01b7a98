"""A PNG of the event roll (the 's' key): matplotlib's Agg canvas, imported only when asked.

No pyplot (no global figure state, safe off the main thread): a Figure with one panel per model,
smoothed posteriors as an image over stream time, events outlined.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hark.live.errors import HarkError
from hark.live.ui.state import Snapshot


def save_roll_png(snapshot: Snapshot, path: Path, roll_seconds: float) -> Path:
    """Draw the last `roll_seconds` of every model's roll into `path` (PNG).

    The title (also the PNG's Title text) counts the events in the picture: the finished ones
    that end inside the last `roll_seconds` (of the 50 newest the snapshot keeps).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # matplotlib is in the [train] extra, not the runtime
        raise HarkError("saving a PNG needs matplotlib: pip install 'hark[train]' "
                        "(or pip install matplotlib)") from e
    models = snapshot.models
    heights = [max(1.2, 0.32 * len(m.labels) + 0.6) for m in models]
    fig = Figure(figsize=(10, sum(heights) + 0.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(models), 1, squeeze=False, height_ratios=heights)[:, 0]
    shown = 0  # events drawn: the title counts what the picture holds, not the whole session
    for ax, m in zip(axes, models, strict=True):
        n_show = min(m.n_frames, m.roll.shape[1], max(1, round(roll_seconds / m.hop_s)))
        end = m.last_time_s + m.hop_s if m.last_time_s is not None else 0.0
        start = end - n_show * m.hop_s
        roll = m.roll[:, m.roll.shape[1] - n_show :] if n_show else np.zeros((len(m.labels), 1))
        active = m.roll_active[:, m.roll.shape[1] - n_show :] if n_show else None
        ax.imshow(roll, aspect="auto", origin="upper", cmap="viridis", vmin=0.0, vmax=1.0,
                  interpolation="nearest", extent=(start, end if n_show else 1.0,
                                                   len(m.labels) - 0.5, -0.5))
        if active is not None and active.any():
            overlay = np.zeros((*active.shape, 4))
            overlay[active] = (1.0, 0.55, 0.0, 0.45)  # active frames tinted orange
            ax.imshow(overlay, aspect="auto", origin="upper", interpolation="nearest",
                      extent=(start, end, len(m.labels) - 0.5, -0.5))
        for ev in snapshot.recent_events:
            if ev.model == m.name and ev.label in m.labels and ev.offset_s >= start:
                row = m.labels.index(ev.label)
                ax.add_patch(_rect(ev.onset_s, row, ev.offset_s - ev.onset_s))
                shown += 1
        ax.set_yticks(range(len(m.labels)), labels=m.labels)
        ax.set_title(f"{m.name}: smoothed posteriors, events outlined", fontsize=10, loc="left")
        ax.set_xlabel("stream time (s)")
    title = (f"hark · {snapshot.source_kind} {snapshot.source_name} · {shown} "
             f"event{'' if shown == 1 else 's'} in the last {roll_seconds:g} s")
    fig.suptitle(title, fontsize=11)
    fig.savefig(path, format="png", metadata={"Title": title})  # a PNG tEXt chunk
    return path


def _rect(x: float, row: int, width: float):  # noqa: ANN202 - a matplotlib Rectangle
    from matplotlib.patches import Rectangle

    return Rectangle((x, row - 0.45), width, 0.9, fill=False, edgecolor="white", linewidth=1.0)
