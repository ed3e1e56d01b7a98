"""The hand-written event metric (models.metrics) held equal to sed_eval's on random event lists.

hark scores events itself because tuning re-scores thousands of smoothing candidates (sed_eval
builds dcase_util containers per call, far too slow for that loop); this test is what allows it:
the same files give the same overall and per-class counts as sed_eval's EventBasedMetrics with
its defaults (t_collar 0.2 s, percentage_of_length 0.5, onset and offset, optimal matching).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hark.live.events import Event
from hark.models.metrics import EventScores

LABELS = ("yes", "no", "up")


def _events(rng: np.random.Generator, n: int, jitter_of: list[Event] | None) -> list[Event]:
    if jitter_of is not None:  # estimates near the truth, some far off, some dropped, some added
        out = []
        for e in jitter_of:
            if rng.random() < 0.15:
                continue
            on = e.onset_s + rng.normal(0, 0.15)
            off = e.offset_s + rng.normal(0, 0.25)
            label = e.label if rng.random() < 0.85 else str(rng.choice(LABELS))
            out.append(Event(label, on, max(off, on + 0.05), 0.9, 0.9))
        return out + _events(rng, int(rng.integers(0, 3)), None)
    out = []
    for _ in range(n):
        on = float(rng.uniform(0, 20))
        out.append(Event(str(rng.choice(LABELS)), on, on + float(rng.uniform(0.1, 1.5)), 1, 1))
    return out


def _container(files: list[list[Event]]) -> Any:
    import dcase_util

    return dcase_util.containers.MetaDataContainer([
        {"filename": f"f{i}.wav", "event_label": e.label, "onset": e.onset_s, "offset": e.offset_s}
        for i, evs in enumerate(files) for e in evs])


@pytest.mark.parametrize("seed", range(6))
def test_event_scores_equal_sed_eval(seed: int) -> None:
    import sed_eval

    rng = np.random.default_rng(seed)
    refs = [_events(rng, int(rng.integers(0, 12)), None) for _ in range(5)]
    ests = [_events(rng, 0, r) for r in refs]
    ours = EventScores()
    lib = sed_eval.sound_event.EventBasedMetrics(event_label_list=list(LABELS))
    for i, (r, e) in enumerate(zip(refs, ests, strict=True)):
        ours.add_file(r, e, 20.0)
        ref_c, est_c = _container([r]), _container([e])
        # sed_eval scores one file per call; name both lists' file the same
        for c in (ref_c, est_c):
            for item in c:
                item["filename"] = f"f{i}.wav"
        lib.evaluate(reference_event_list=ref_c, estimated_event_list=est_c)
    overall = lib.overall
    assert (ours.overall.tp, ours.overall.fp, ours.overall.fn) == (
        overall["Ntp"], overall["Nsys"] - overall["Ntp"], overall["Nref"] - overall["Ntp"])
    res = lib.results_overall_metrics()["f_measure"]
    assert ours.overall.f1 == pytest.approx(res["f_measure"], abs=1e-12)
    assert ours.overall.precision == pytest.approx(res["precision"], abs=1e-12)
    assert ours.overall.recall == pytest.approx(res["recall"], abs=1e-12)
    for label in LABELS:
        c = ours.per_class.get(label)
        lc = lib.class_wise[label]
        got = (c.tp, c.fp, c.fn) if c else (0, 0, 0)
        assert got == (lc["Ntp"], lc["Nsys"] - lc["Ntp"], lc["Nref"] - lc["Ntp"]), label
    assert 0 < ours.overall.tp < ours.overall.tp + ours.overall.fp + ours.overall.fn  # not trivial
