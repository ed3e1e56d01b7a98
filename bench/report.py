"""The bench's outputs: targets judged, the text table, Markdown for the README, JSON, the plot.

`python -m hark.bench.report RESULT.json` prints the Markdown tables of a saved run.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

STAGE_ROWS = ("vad", "features", "inference", "model_call", "smoothing", "stages_sum", "feed",
              "feed_cpu")
STAGE_NAMES = {"stages_sum": "sum of stages", "feed": "feed (total, wall)",
               "feed_cpu": "feed (total, CPU)", "model_call": "  of which session.run"}

# the issue's targets (measured and reported, met or not; never asserted)
HOP_P50_US, HOP_P99_US, RTF_MAX = 100.0, 300.0, 0.01
STRIDE_US = 1000.0
VS_KERAS, VS_ONNX_WINDOW = 100.0, 5.0
STREAMS = 500
FEED_OVER_BARE = 1.3  # Engine.feed of one 10 ms block / the bare onnxruntime call (issue 14)
E2E_SLACK_S = 0.030
FIRST_BLOCK_S = 1.5
RSS_MB = 150.0


def _get(d: Any, *path: str) -> Any:
    for k in path:
        if not isinstance(d, dict) or d.get(k) is None:
            return None
        d = d[k]
    return d


def _row(name: str, model: str, goal: str, measured: Any, met: bool | None, unit: str = ""
         ) -> dict[str, Any]:
    return {"target": name, "model": model, "goal": goal,
            "measured": measured, "unit": unit, "met": met}


def _at_best(search: Any) -> dict[str, Any] | None:
    """The trial at the largest real-time n of a capacity search (else its smallest trial)."""
    trials = (search or {}).get("trials") or []
    if not trials:
        return None
    best = [t for t in trials if t["n"] == search.get("max_realtime_streams")]
    return best[0] if best else min(trials, key=lambda t: t["n"])


def _le(x: float | None, limit: float) -> bool | None:
    return None if x is None else bool(x <= limit)


def _ge(x: float | None, limit: float) -> bool | None:
    return None if x is None else bool(x >= limit)


def judge_targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of the issue with what this run measured (None: not measured)."""
    rows = []
    for m in result["models"]:
        name = m["name"]
        if m["kind"] == "frame":
            p50 = _get(m, "per_hop_us", "feed", "p50")
            p99 = _get(m, "per_hop_us", "feed", "p99")
            c99 = _get(m, "per_hop_us", "feed_cpu", "p99")
            r50 = _get(m, "per_inference_hop_us", "feed", "p50")
            fb = _get(m, "overhead", "feed_over_bare_cpu")
            rows.append(_row("feed / bare onnxruntime call, p50 (CPU time)", name,
                             f"<= {FEED_OVER_BARE}", fb, _le(fb, FEED_OVER_BARE), "x"))
            rows += [
                _row("per-hop compute p50", name, f"<= {HOP_P50_US:.0f} us", p50,
                     _le(p50, HOP_P50_US), "us"),
                _row("  same, hops where the model ran", name, f"<= {HOP_P50_US:.0f} us", r50,
                     _le(r50, HOP_P50_US), "us"),
                _row("per-hop compute p99 (wall)", name, f"<= {HOP_P99_US:.0f} us", p99,
                     _le(p99, HOP_P99_US), "us"),
                _row("per-hop compute p99 (CPU time)", name, f"<= {HOP_P99_US:.0f} us",
                     c99, _le(c99, HOP_P99_US), "us"),
                _row("real-time factor (wall)", name, f"<= {RTF_MAX}", m["rtf"],
                     _le(m["rtf"], RTF_MAX)),
                _row("real-time factor (CPU time)", name, f"<= {RTF_MAX}", m["rtf_cpu"],
                     _le(m["rtf_cpu"], RTF_MAX)),
            ]
        else:
            s50 = _get(m, "per_stride_us", "feed", "p50")
            rows.append(_row("compute per stride p50", name, f"<= {STRIDE_US:.0f} us", s50,
                             _le(s50, STRIDE_US), "us"))
        ka = _get(m, "ratios", "keras_naive_over_engine")
        ob = _get(m, "ratios", "onnx_window_over_engine")
        rows += [
            _row("less compute per decision than (a) Keras naive", name, f">= {VS_KERAS:.0f}x",
                 ka, _ge(ka, VS_KERAS), "x"),
            _row("less compute per decision than (b) ONNX whole window", name,
                 f">= {VS_ONNX_WINDOW:.0f}x", ob, _ge(ob, VS_ONNX_WINDOW), "x"),
        ]
    for c in (result.get("capacity") or {}).get("models", []):
        best = max((_get(c, "search", mode, "max_realtime_streams") or 0
                    for mode in ("unbatched", "batched")), default=None)
        if c.get("search") is None:
            best = None
        rows.append(_row("concurrent real-time streams, one core", c["model"], f">= {STREAMS}",
                         best, _ge(best, STREAMS) if c["kind"] == "frame" else None))
        big = _at_best(_get(c, "search", "batched"))
        ob = None if big is None else big.get("over_bare_call")
        if big is not None:
            rows.append(_row(f"batched per hop / bare batched call (n={big['n']})", c["model"],
                             "<= 1.5", ob, _le(ob, 1.5), "x"))
    for lb in (result.get("loopback") or {}).get("models", []):
        p50 = _get(lb, "onset_latency_us", "p50")
        goal = lb.get("target_s")
        rows.append(_row("end-to-end onset latency p50 (virtual mic)", lb.get("model", "?"),
                         "<= algorithmic + 30 ms" + (f" = {goal * 1e3:.0f} ms" if goal else ""),
                         None if p50 is None else p50 / 1e3, lb.get("met"), "ms"))
        if lb.get("probe") == "labels":
            wt = lb.get("words_target_s")
            rows.append(_row("decision latency p50 over every label (virtual mic)",
                             lb.get("model", "?"), "<= algorithmic + 80 ms" +
                             (f" = {wt * 1e3:.0f} ms" if wt else ""),
                             None if p50 is None else p50 / 1e3, lb.get("words_met"), "ms"))
        pipe = _get(lb, "pipeline_us", "p50")
        pipe_ms = None if pipe is None else pipe / 1e3
        rows.append(_row("  of which pipeline (onset latency - audio the model heard) p50",
                         lb.get("model", "?"), f"<= {E2E_SLACK_S * 1e3:.0f} ms", pipe_ms,
                         _le(pipe_ms, E2E_SLACK_S * 1e3), "ms"))
    for d in result.get("decision_latency") or []:
        if "skipped" in d:
            continue
        p50 = _get(d, "latency_us", "p50")
        rows.append(_row("decision latency p50, every label, offline (held-out streams)",
                         d["model"], f"<= algorithmic + 80 ms = {d['target_s'] * 1e3:.0f} ms",
                         None if p50 is None else p50 / 1e3, d["met"], "ms"))
    st = result.get("startup")
    if st and "skipped" not in st:
        first = _get(st, "start_to_first_block_us", "p50")
        first_s = None if first is None else first / 1e6
        rows.append(_row(f"hark {st['mode']}: start to first processed block", "all",
                         f"<= {FIRST_BLOCK_S} s", first_s, _le(first_s, FIRST_BLOCK_S), "s"))
        rows.append(_row("peak RSS", "all", f"<= {RSS_MB:.0f} MB", st["peak_rss_mb_max"],
                         _le(st["peak_rss_mb_max"], RSS_MB), "MB"))
    return rows


# ---- text ----------------------------------------------------------------------------------------
def _us(x: float | None) -> str:
    """Microseconds as a bare number (tables say the unit)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def _dur(us: float | None) -> str:
    """Microseconds with a unit that reads well."""
    if us is None or (isinstance(us, float) and math.isnan(us)):
        return "-"
    if us >= 10000:
        return f"{us / 1000:.1f} ms"
    if us >= 1000:
        return f"{us / 1000:.2f} ms"
    return f"{us:.0f} us" if us >= 100 else f"{us:.1f} us"


def _fmt(x: Any, unit: str = "") -> str:
    if x is None:
        return "-"
    s = str(x) if not isinstance(x, float) else f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"
    return f"{s} {unit}".strip()


def _stage_block(title: str, dists: dict[str, Any]) -> list[str]:
    lines = [f"  {title:<24}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>10}"]
    for k in STAGE_ROWS:
        d = dists.get(k)
        if d is None:  # a result saved before the row existed
            continue
        lines.append(f"    {STAGE_NAMES.get(k, k):<22}{_us(d['p50']):>9}{_us(d['p95']):>9}"
                     f"{_us(d['p99']):>9}{_us(d['max']):>10}")
    return lines


def text_table(result: dict[str, Any]) -> str:
    cfg, mach = result["config"], result["machine"]
    audio = cfg["audio"]
    src = audio.get("path") or f"{audio.get('synth_s')} s synthetic"
    out = [f"hark bench: {src}; {cfg['block_ms']:g} ms blocks; onnxruntime threads "
           f"{cfg['threads']}; VAD {cfg['vad']}; {mach['cpu']} x{mach['cpu_count']}, load "
           f"{_fmt(mach['load_avg_1m'])} (shared machine: compare ratios, not absolute times)"]
    for m in result["models"]:
        out.append("")
        out.append(f"{m['name']}  ({m['kind']} model, {m['sample_rate']} Hz, decision every "
                   f"{m['decision_hop_s'] * 1e3:g} ms, algorithmic latency "
                   f"{m['algorithmic_latency_s'] * 1e3:.0f} ms)  [{m['path']}]")
        out += _stage_block("per hop, us", m["per_hop_us"])
        if m["kind"] == "window":
            out += _stage_block("per stride (CNN hop), us", m["per_stride_us"])
            out += _stage_block("other hops, us", m["other_hops_us"])
        elif m["hops_with_inference"] < 0.95 * m["hops"]:  # the gate shut for a while
            out += _stage_block("hops where it ran, us", m["per_inference_hop_us"])
        ov = m.get("overhead")
        if ov:
            fb = ov["feed_over_bare_cpu"]
            met = "n/a" if fb is None else "met" if fb <= FEED_OVER_BARE else "not met"
            out.append(f"  feed / bare model call p50: {_fmt(fb)}x CPU time (wall "
                       f"{_fmt(ov['feed_over_bare_wall'])}x; bare call "
                       f"{_dur(ov['bare_call_cpu_us']['p50'])} CPU) target <= {FEED_OVER_BARE}: "
                       f"{met}; feed / the same call inside feed "
                       f"{_fmt(ov['feed_over_model_call_in_feed'])}x (in feed "
                       f"{_dur(ov['model_call_in_feed_us']['p50'])})")
        out.append(f"  RTF {_fmt(m['rtf'])} (CPU time: {_fmt(m['rtf_cpu'])}); "
                   f"{_fmt(m['audio_s_per_compute_s'])} audio s per compute s; {m['hops']} hops, "
                   f"inference on {m['hops_with_inference']}; {m['events']} events")
        eng = _get(m, "per_decision_cpu_us", "p50")
        parts = [f"engine {_dur(eng)}"]
        for key, label in (("onnx_window", "(b) ONNX whole window"),
                           ("keras_naive", "(a) Keras naive")):
            b = m["baselines"].get(key) or {}
            if "skipped" in b:
                parts.append(f"{label}: skipped ({b['skipped']})")
            elif b:
                r = _get(m, "ratios", f"{key}_over_engine")
                rw = _get(m, "ratios", f"{key}_over_engine_wall")
                parts.append(f"{label} {_dur(_get(b, 'per_decision_cpu_us', 'p50'))} "
                             f"({_fmt(r)}x; wall {_fmt(rw)}x)")
        out.append("  compute per decision where the model ran, p50 (CPU time): "
                   + " | ".join(parts))
    tog = result.get("together")
    if tog:
        out.append("")
        out.append(f"all models on one engine: {', '.join(tog['models'])}")
        out += _stage_block("per hop, us", tog["per_hop_us"])
        out.append(f"  RTF {_fmt(tog['rtf'])} (CPU time: {_fmt(tog['rtf_cpu'])}); "
                   f"{_fmt(tog['audio_s_per_compute_s'])} audio s per compute s")
    cap = result.get("capacity")
    if cap:
        out.append("")
        out.append(f"streams on one core (cpu {cap['pinned_cpu']}), real time = p99 per-hop "
                   f"{cap['clock']} time for all streams < {cap['hop_us'] / 1e3:g} ms")
        for c in cap["models"]:
            out.append(f"  {c['model']}: batching: {c['batching']['reason']}")
            for mode in ("unbatched", "batched"):
                s = _get(c, "search", mode)
                if s:
                    out.append(f"    {mode:<10} max real-time streams {s['max_realtime_streams']}"
                               f" (first failing n {s['first_failing_n']}, {s['stopped_by']}; "
                               f"{len(s['trials'])} trials)")
                    big = _at_best(s)
                    if big and big.get("over_bare_call") is not None:
                        r = big["over_bare_call"]
                        out.append(f"      at n={big['n']}: per hop / bare batched session.run "
                                   f"{r:.2f}x CPU (target <= 1.5: "
                                   f"{'met' if r <= 1.5 else 'not met'})")
                t = _get(c, "at_n", mode)
                if t:
                    st = t["stages_p50_us"]
                    out.append(f"    {mode:<10} n={t['n']}: per hop CPU p50 "
                               f"{_dur(t['per_hop_cpu_us']['p50'])} p99 "
                               f"{_dur(t['per_hop_cpu_us']['p99'])}, wall p99 "
                               f"{_dur(t['per_hop_us']['p99'])}; real time: "
                               f"{t['realtime']}; stages p50 vad {_dur(st['vad'])}, features "
                               f"{_dur(st['features'])}, inference {_dur(st['inference'])}, "
                               f"smoothing {_dur(st['smoothing'])}")
    lb = result.get("loopback")
    if lb:
        out.append("")
        out.append("end-to-end through PulseAudio (probe written -> event shown), ms")
        for r in lb["models"]:
            if "skipped" in r:
                out.append(f"  {r.get('model', '?')}: skipped ({r['skipped']})")
                continue
            on = r["onset_latency_us"]
            out.append(
                f"  {r['model']}: probe {r['probe']} -> {_expects(r)}: "
                f"{r['detected']}/{r['probes']} detected; onset p50 {_ms(on['p50'])} p99 "
                f"{_ms(on['p99'])}; audio path p50 {_ms(r['audio_path_us']['p50'])}; stream "
                f"delay p50 {_ms(r['stream_delay_us']['p50'])}; pipeline p50 "
                f"{_ms(r['pipeline_us']['p50'])}; final event p50 "
                f"{_ms(r['final_event_latency_us']['p50'])}; algorithmic "
                f"{r['algorithmic_latency_s'] * 1e3:.0f}")
            if r.get("probe") == "labels":
                cells = [f"{lb} {v['detected']}/{v['probes']} {_ms(v['onset_latency_us']['p50'])}"
                         for lb, v in r["per_label"].items()]
                out.append(f"    per label (detected/probes, onset p50 ms; "
                           f"{r.get('detected_offline_probes', '?')}/{r['probes']} detected "
                           "offline):")
                for i in range(0, len(cells), 5):
                    out.append("      " + ", ".join(cells[i : i + 5]))
    st = result.get("startup")
    if st:
        out.append("")
        if "skipped" in st:
            out.append(f"start-up: skipped ({st['skipped']})")
        else:
            d = st["start_to_first_block_us"]
            out.append(f"start-up ({st['note']}): first processed block p50 {_ms(d['p50'])} "
                       f"ms, max {_ms(d['max'])} ms over {d['n']} runs; peak RSS "
                       f"{_fmt(st['peak_rss_mb_max'], 'MB')}")
    out.append("")
    out.append("targets (measured, not asserted)")
    for t in result["targets"]:
        mark = {True: "met", False: "MISSED", None: "n/a"}[t["met"]]
        out.append(f"  [{mark:>6}] {t['target']} ({t['model']}): {_fmt(t['measured'], t['unit'])}"
                   f"  goal {t['goal']}")
    return "\n".join(out)


def _expects(r: dict[str, Any]) -> str:
    if r.get("probe_label"):
        return str(r["probe_label"])
    return "each its own label" if r.get("probe") == "labels" else "any"


def _ms(us: float | None) -> str:
    return "-" if us is None else f"{us / 1000:.1f}"


# ---- markdown ------------------------------------------------------------------------------------
def markdown(result: dict[str, Any]) -> str:
    """README tables: per-stage per-hop times, ratios, and the other sections measured."""
    lines = ["| model | stage | p50 us | p95 us | p99 us | max us |", "|---|---|---|---|---|---|"]
    for m in result["models"]:
        blocks = [("per hop", m["per_hop_us"])]
        if m["kind"] == "window":
            blocks.append(("per stride", m["per_stride_us"]))
        elif m["hops_with_inference"] < 0.95 * m["hops"]:  # the gate shut for a while
            blocks.append(("hops where it ran", m["per_inference_hop_us"]))
        for title, dists in blocks:
            for k in STAGE_ROWS:
                d = dists.get(k)
                if d is None:
                    continue
                lines.append(f"| {m['name']} ({title}) | {STAGE_NAMES.get(k, k)} | {_us(d['p50'])} "
                             f"| {_us(d['p95'])} | {_us(d['p99'])} | {_us(d['max'])} |")
    lines += ["", "| model | RTF (CPU) | compute per decision p50 (CPU, model ran) | "
              "(b) ONNX whole window | (a) Keras naive |", "|---|---|---|---|---|"]
    for m in result["models"]:
        cells = []
        for key in ("onnx_window", "keras_naive"):
            b = m["baselines"].get(key) or {}
            r = _get(m, "ratios", f"{key}_over_engine")
            cells.append("skipped" if "skipped" in b or not b else
                         f"{_dur(_get(b, 'per_decision_cpu_us', 'p50'))} ({_fmt(r)}x)")
        lines.append(f"| {m['name']} | {_fmt(m['rtf_cpu'])} | "
                     f"{_dur(_get(m, 'per_decision_cpu_us', 'p50'))} | {cells[0]} | {cells[1]} |")
    lines += ["", "| target | model | goal | measured | met |", "|---|---|---|---|---|"]
    for t in result["targets"]:
        mark = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        lines.append(f"| {t['target']} | {t['model']} | {t['goal']} | "
                     f"{_fmt(t['measured'], t['unit'])} | {mark} |")
    return "\n".join(lines)


# ---- files ---------------------------------------------------------------------------------------
def write_json(result: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")


def plot(result: dict[str, Any], replays: dict[str, Any], path: Path) -> None:
    """Per-hop latency histograms (log x) and per-stage p50 bars with p99 whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from hark.bench.stages import STAGES

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    all_us = np.concatenate([r.column("feed") * 1e6 for r in replays.values()] or [np.ones(1)])
    lo, hi = max(1.0, all_us.min() * 0.8), max(all_us.max() * 1.2, 10.0)
    bins = np.geomspace(lo, hi, 60)
    for name, rep in replays.items():
        ax1.hist(rep.column("feed") * 1e6, bins=bins, histtype="step", linewidth=1.5,
                 label=f"{name} (n={len(rep.times)})")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("Engine.feed per 10 ms hop (us, log)")
    ax1.set_ylabel("hops")
    ax1.set_title("per-hop compute")
    ax1.legend(fontsize=8)
    groups: list[tuple[str, dict[str, Any]]] = []
    for m in result["models"]:
        groups.append((f"{m['name']}\nper hop", m["per_hop_us"]))
        if m["kind"] == "window":
            groups.append((f"{m['name']}\nper stride", m["per_stride_us"]))
        elif m["hops_with_inference"] < 0.95 * m["hops"]:  # the gate shut for a while
            groups.append((f"{m['name']}\nmodel ran", m["per_inference_hop_us"]))
    x = np.arange(len(groups))
    bottom = np.zeros(len(groups))
    for stage in STAGES:
        vals = np.array([g[1][stage]["p50"] or 0.0 for g in groups])
        ax2.bar(x, vals, bottom=bottom, label=stage)
        bottom += vals
    p99 = np.array([g[1]["feed"]["p99"] or 0.0 for g in groups])
    ax2.scatter(x, p99, marker="_", s=400, color="k", label="feed p99", zorder=3)
    ax2.set_xticks(x, [g[0] for g in groups], fontsize=8)
    ax2.set_ylabel("us")
    ax2.set_title("per-stage p50 (stacked), total p99")
    ax2.legend(fontsize=8)
    load = result["machine"]["load_avg_1m"]
    fig.suptitle(f"hark bench ({result['machine']['cpu']}, load "
                 f"{'-' if load is None else f'{load:.2f}'})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m hark.bench.report RESULT.json", file=sys.stderr)
        return 2
    print(markdown(json.loads(Path(args[0]).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
