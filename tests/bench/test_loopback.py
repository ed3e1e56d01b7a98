"""`hark bench --loopback --startup` on a private PulseAudio: probes detected, latency measured.

Slow but run in CI, where a missing pulseaudio is a failure (tests.virtual_mic), not a skip. The
model is the deterministic band-energy detector and the probe a 6 kHz beep: every probe must be
detected, and the latencies must be positive and plausible
(never compared with a target: the machine is shared).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hark.cli import main
from tests.virtual_mic import require_virtual_mic


@pytest.mark.slow
def test_loopback_and_mic_startup(bench_models: dict[str, Path], tmp_path: Path) -> None:
    require_virtual_mic()
    out = tmp_path / "lb.json"
    code = main(["bench", "--model", str(bench_models["bands"]), "--synth", "1", "--quick",
                 "--baselines", "none", "--loopback", "--probe", "beep:6000", "--probe-label",
                 "high", "--probes", "3", "--startup", "--json", str(out)])
    assert code == 0
    r = json.loads(out.read_text())
    (lb,) = r["loopback"]["models"]
    assert lb["probes"] == 3 and lb["detected"] == 3
    # the null sink is bit-exact, but a loaded machine may starve the 10 ms player buffer and
    # put a few ms of silence into a probe (counted, not hidden): every sample still arrives,
    # unchanged and in order, with only runs of zeros between them
    assert lb["samples_intact"] == 3, lb["per_probe"]
    assert lb["bit_exact"] == sum(p["inserted_zeros"] == 0 for p in lb["per_probe"])
    assert lb["mic_stats"]["dropped_blocks"] == 0
    on, path, delay = lb["onset_latency_us"], lb["audio_path_us"], lb["stream_delay_us"]
    assert on["n"] == 3 and 0 < on["p50"] < 1e6  # under a second through the whole stack
    assert 0 < path["p50"] <= on["p50"]
    assert 0 < delay["p50"] < 0.1e6  # a band detector needs a window (25 ms), not much more
    assert lb["pipeline_us"]["n"] == 3 and lb["pipeline_us"]["p50"] < on["p50"]
    assert lb["detected_offline"] is True and len(lb["per_probe"]) == 3
    assert lb["final_event_latency_us"]["p50"] > lb["probe_s"] * 1e6 * 0.9  # after the beep ends
    st = r["startup"]
    assert st["mode"] == "mic" and st["failures"] == 0
    assert 0 < st["start_to_first_block_us"]["p50"] < 30e6
    assert st["peak_rss_mb_max"] > 20
    targets = {t["target"] for t in r["targets"]}
    assert "end-to-end onset latency p50 (virtual mic)" in targets


@pytest.mark.slow
def test_loopback_cycles_through_labels(bench_models: dict[str, Path]) -> None:
    """A list of probes of two labels, interleaved: each event goes to its own probe, results
    come per label and overall; a probe of the wrong band is not credited to the other label."""
    from hark.bench.loopback import make_probe, run_loopback
    from hark.live.model import OnnxModel

    require_virtual_mic()
    model = OnnxModel.load(bench_models["bands"])
    low = make_probe("beep:300:300", model.card, "low")
    high = make_probe("beep:6000:300", model.card, "high")
    probes = [low, high, low, high]
    lb = run_loopback(model, probes)
    assert lb["probe"] == "labels" and lb["labels"] == ["low", "high"]
    assert lb["probes"] == 4 and lb["detected"] == 4
    for label in ("low", "high"):
        row = lb["per_label"][label]
        assert row["probes"] == 2 and row["detected"] == 2 and row["detected_offline"] == 2
        assert 0 < row["onset_latency_us"]["p50"] < 1e6
    assert [p["expected"] for p in lb["per_probe"]] == ["low", "high", "low", "high"]
    assert [p["label"] for p in lb["per_probe"]] == ["low", "high", "low", "high"]
    assert lb["onset_latency_us"]["n"] == 4
    assert isinstance(lb["words_met"], bool)
    assert lb["words_target_s"] == lb["algorithmic_latency_s"] + 0.080


def test_inserted_silence_is_counted_and_anything_else_breaks_the_match() -> None:
    """A starved player inserts runs of zeros; a gain, a changed or a lost sample is not that."""
    import numpy as np

    from hark.bench.loopback import _inserted_silence, _s16

    rng = np.random.default_rng(0)
    want = _s16(np.concatenate([np.zeros(3), rng.uniform(-0.5, 0.5, 200), np.zeros(2)]))
    tail = np.zeros(50, np.float32)
    assert _inserted_silence(np.concatenate([want, tail]), want) == 0
    gap = np.concatenate([want[:80], np.zeros(37, np.float32), want[80:], tail])
    assert _inserted_silence(gap, want) == 37
    two = np.concatenate([want[:1], np.zeros(5, np.float32), want[1:150],
                          np.zeros(9, np.float32), want[150:]])
    assert _inserted_silence(two, want) == 14
    assert _inserted_silence(np.concatenate([want * 0.9, tail]), want) is None
    changed = np.concatenate([want, tail])
    changed[100] += 1 / 32768
    assert _inserted_silence(changed, want) is None
    assert _inserted_silence(np.concatenate([want[:100], want[101:], tail]), want) is None
    assert _inserted_silence(want[:150], want) is None
