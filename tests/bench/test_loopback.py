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
    # the null sink is bit-exact, but a loaded machine may starve the 10 ms player buffer:
    # PulseAudio then plays silence mid-probe and ramps the volume around it (counted, not
    # hidden). Every probe that arrived without inserted silence must be bit-exact.
    assert lb["bit_exact"] == 3 - lb["starved"], lb["per_probe"]
    assert all(p["bit_exact"] != p["starved"] for p in lb["per_probe"]), lb["per_probe"]
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


def test_inserted_silence_is_told_from_the_probes_own_zeros() -> None:
    """A 6 kHz beep at 16 kHz has a zero every fourth sample; a starved player adds longer runs."""
    import numpy as np

    from hark.bench.loopback import _s16, _silence_inserted

    t = np.arange(4800) / 16000
    want = _s16(0.5 * np.sin(2 * np.pi * 6000 * t))
    assert not _silence_inserted(want, want)
    gap = np.concatenate([want[:900], np.zeros(2, np.float32), want[900:]])[: want.size]
    assert _silence_inserted(gap, want)
    ramp = want * np.linspace(1.0, 0.9, want.size).astype(np.float32)  # no gap: not starved
    assert not _silence_inserted(ramp, want)
    assert _silence_inserted(np.zeros_like(want), want)
