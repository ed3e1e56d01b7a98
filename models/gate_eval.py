"""`hark eval --vad compare`: the same recordings scored with the gate off, webrtc and silero.

Each gate runs with the card's own settings for it (webrtcvad mode, silero threshold, hangover,
pre-roll) and the card's smoothing, through the live engine as `hark replay` runs. Reported per
gate: event F1, precision, recall, false events per hour (fp over the audio's duration), and the
share of model calls the gate saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hark.live.errors import HarkError
from hark.live.model import OnnxModel
from hark.live.workers import WorkerError, Workers

GATES = ("off", "webrtc", "silero")


def compare_gates(
    model: OnnxModel, pairs: Sequence[tuple[str | Path, str | Path]],
    workers: Workers | None = None,
) -> dict[str, Any]:
    """{gate: figures} for every gate on (audio, truth) pairs; a gate that cannot run: skipped.

    workers: where the recordings are replayed (hark.live.workers); a dead worker is an error,
    not a skipped gate.
    """
    from hark.models.evaluation import evaluate_streams

    out: dict[str, Any] = {}
    for gate in GATES:
        try:
            if gate == "off":
                ev = evaluate_streams(model, pairs, vad=False, workers=workers)
            else:
                ev = evaluate_streams(model, pairs, vad=True, vad_kind=gate,  # type: ignore[arg-type]
                                      workers=workers)
        except WorkerError:
            raise
        except HarkError as e:
            out[gate] = {"skipped": str(e)}
            continue
        d = ev.to_json()
        out[gate] = {
            "event_f1": d["event_f1"], "precision": d["precision"], "recall": d["recall"],
            "false_events_per_hour": round(60.0 * d["false_events_per_minute"], 2),
            "false_events": d["fp"], "minutes": d["minutes"],
        }
    return out


def format_gates(result: dict[str, Any]) -> str:
    """A table, one line per gate."""
    lines = [f"{'gate':8s} {'event F1':>9s} {'P':>7s} {'R':>7s} {'false/hour':>11s}"]
    for gate, r in result.items():
        if "skipped" in r:
            lines.append(f"{gate:8s} skipped: {r['skipped']}")
            continue
        lines.append(f"{gate:8s} {r['event_f1']:9.4f} {r['precision']:7.4f} {r['recall']:7.4f} "
                     f"{r['false_events_per_hour']:11.1f}")
    return "\n".join(lines)
