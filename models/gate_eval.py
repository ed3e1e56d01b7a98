"""`hark eval --vad compare`: the same recordings scored with the gate off, webrtc and silero.

Each gate runs with the card's own settings for it (webrtcvad mode, silero threshold, hangover,
pre-roll) and the card's smoothing, through the live engine as `hark replay` runs. Reported per
gate: event F1, precision, recall, false events per hour (fp over the audio's duration); on negative
audio (`--negatives ... --vad compare`), false accepts per hour.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hark.live.errors import HarkError
from hark.live.model import OnnxModel
from hark.live.vad import GateKind
from hark.live.workers import WorkerError, Workers

GATES = ("off", "webrtc", "silero")


def per_gate(run: Callable[[bool, GateKind | None], dict[str, Any]]) -> dict[str, Any]:
    """{gate: run(vad, kind)} for off, webrtc and silero; a gate that cannot run: skipped.

    A dead worker (hark.live.workers) is an error, not a skipped gate.
    """
    out: dict[str, Any] = {}
    for gate in GATES:
        try:
            out[gate] = run(gate != "off", None if gate == "off" else gate)  # type: ignore[arg-type]
        except WorkerError:
            raise
        except HarkError as e:
            out[gate] = {"skipped": str(e)}
    return out


def compare_gates(
    model: OnnxModel, pairs: Sequence[tuple[str | Path, str | Path]],
    workers: Workers | None = None,
) -> dict[str, Any]:
    """{gate: figures} for every gate on (audio, truth) pairs (per_gate's rules).

    workers: where the recordings are replayed (hark.live.workers).
    """
    from hark.models.evaluation import evaluate_streams

    def run(vad: bool, kind: GateKind | None) -> dict[str, Any]:
        d = evaluate_streams(model, pairs, vad=vad, vad_kind=kind, workers=workers).to_json()
        return {
            "event_f1": d["event_f1"], "precision": d["precision"], "recall": d["recall"],
            "false_events_per_hour": round(60.0 * d["false_events_per_minute"], 2),
            "false_events": d["fp"], "minutes": d["minutes"],
        }

    return per_gate(run)


def false_accepts_per_gate(model: OnnxModel, files: Sequence[Path],
                           workers: Workers | None = None) -> dict[str, Any]:
    """{gate: false accepts (FalseAccepts.to_json)} on negative audio (per_gate's rules)."""
    from hark.models.false_accepts import false_accepts

    return per_gate(lambda vad, kind: false_accepts(model, files, vad, workers, kind).to_json())


def format_false_accepts_per_gate(result: dict[str, Any]) -> str:
    """A table, one line per gate."""
    lines = [f"{'gate':8s} {'false accepts':>14s} {'per hour':>9s}"]
    for gate, r in result.items():
        if "skipped" in r:
            lines.append(f"{gate:8s} skipped: {r['skipped']}")
        else:
            lines.append(f"{gate:8s} {r['false_accepts']:14d} {r['false_accepts_per_hour']:9.2f}")
    return "\n".join(lines)


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
