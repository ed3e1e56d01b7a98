"""Write evaluation results: text, JSON and a confusion-matrix PNG (matplotlib, Agg backend)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hark.models.metrics import ClassificationReport


def write_json(path: str | Path, data: dict[str, Any]) -> Path:
    """Pretty JSON with a trailing newline."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data, indent=1) + "\n")
    return p


def confusion_png(report: ClassificationReport, path: str | Path, title: str = "") -> Path:
    """The confusion matrix as a heat map with counts; rows are normalised for the colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conf = report.confusion.astype(float)
    rows = conf.sum(axis=1, keepdims=True)
    frac = np.divide(conf, rows, out=np.zeros_like(conf), where=rows > 0)
    n = len(report.labels)
    size = max(4.0, 0.55 * n + 1.5)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n), report.labels, rotation=60, ha="right")
    ax.set_yticks(range(n), report.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            if conf[i, j]:
                ax.text(j, i, str(int(conf[i, j])), ha="center", va="center", fontsize=7,
                        color="white" if frac[i, j] > 0.5 else "black")
    ax.set_title(title or f"accuracy {report.accuracy:.3f} (n={report.n})")
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def write_classification(
    report: ClassificationReport, stem: str | Path, title: str = ""
) -> list[Path]:
    """STEM.txt (table + matrix), STEM.json and STEM.png."""
    s = Path(stem)
    s.parent.mkdir(parents=True, exist_ok=True)
    txt = s.with_suffix(".txt")
    txt.write_text((f"{title}\n\n" if title else "") + report.format() + "\n")
    return [txt, write_json(s.with_suffix(".json"), report.to_json()),
            confusion_png(report, s.with_suffix(".png"), title)]


def format_events(d: dict[str, Any]) -> str:
    """A few lines for an event-based result (the JSON of StreamEvaluation)."""
    lines = [
        f"event F1 {d['event_f1']:.4f}  precision {d['precision']:.4f}  recall {d['recall']:.4f}"
        f"  (tp {d['tp']}, fp {d['fp']}, fn {d['fn']}; {d['files']} files, "
        f"{d['minutes']:.2f} min)",
        f"false events/min {d['false_events_per_minute']:.3f}  events/min "
        f"{d.get('events_per_minute', 0):.3f}  label flips/min {d.get('flips_per_minute', 0):.3f}",
    ]
    for lb, c in d.get("per_class", {}).items():
        lines.append(f"  {lb:<10} F1 {c['f1']:.3f}  P {c['precision']:.3f}  R {c['recall']:.3f}"
                     f"  (tp {c['tp']}, fp {c['fp']}, fn {c['fn']})")
    if d.get("reference_set_aside"):
        lines.append(f"truth events set aside (labels the model does not have): "
                     f"{d['reference_set_aside']}")
    return "\n".join(lines)
