"""bench.decision: offline decision latency for every label on generated held-out streams."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hark.bench import decision
from hark.live.model import OnnxModel


def test_every_sound_class_gets_a_latency_that_moves_with_threshold_on() -> None:
    model = OnnxModel.load("sounds")
    r = decision.measure(model, n_streams=1, per_label=6)
    assert set(r["per_label"]) == set(model.card.event_labels)
    assert r["reached"] + r["missed"] == sum(v["reached"] + v["missed"]
                                             for v in r["per_label"].values()) > 0
    d = r["latency_us"]
    assert d["n"] == r["reached"] > 0 and 0 <= d["p50"] <= d["p99"] < 2e6
    assert r["target_s"] == r["algorithmic_latency_s"] + 0.080
    assert isinstance(r["met"], bool)
    # a stricter threshold is reached by a subset of the events (the same streams: same seed)
    strict = replace(model.card, smoothing=replace(model.card.smoothing, threshold_on=0.95,
                                                   threshold_off=0.5))
    later = decision.measure(OnnxModel(model.path, strict, model.session, model.output),
                             n_streams=1, per_label=6)
    assert later["reached"] <= r["reached"] and later["missed"] >= r["missed"]
    lines = decision.format_lines(r)
    assert lines[0].startswith("  sounds: p50") and "clap" in "\n".join(lines)


def test_a_model_with_nothing_to_synthesise_is_skipped() -> None:
    model = OnnxModel.load("sounds")
    card = replace(model.card, labels=("_a_", "_b_", "_c_", "_d_", "_e_"),
                   ignore_labels=())
    r = decision.measure(OnnxModel(model.path, card, model.session, model.output))
    assert "skipped" in r and decision.format_lines(r)[0].endswith(")")
    assert np.isfinite(card.algorithmic_latency_s())
