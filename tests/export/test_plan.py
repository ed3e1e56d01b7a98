"""The card side of an export (pure Python, no TensorFlow): presets, specs, frontends, windows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hark.export.analysis import KerasInput, input_role
from hark.export.errors import ExportError, FrontendMismatchError
from hark.export.modelcard import (
    load_normalization,
    plan_frontends,
    read_labels,
    resolve_normalization,
)
from hark.export.presets import PRESETS, FrontendChoice, parse_frontend_spec
from hark.live.card import FrontendSpec


def test_presets_match_the_issue() -> None:
    k = PRESETS["kaggle-specgram"]
    assert (k.sample_rate, k.frontend.kind, k.frontend.n_bins(8000)) == (8000, "specgram", 81)
    assert (k.window_s, k.stride_s) == (1.0, 0.1)
    m = PRESETS["logmel40"]
    assert (m.sample_rate, m.frontend.n_fft, m.frontend.n_mels) == (16000, 512, 40)
    assert PRESETS["mfcc13"].frontend.n_bins(16000) == 13
    assert PRESETS["raw16k"].frontend.kind == "raw"
    for p in PRESETS.values():
        p.frontend.validate(p.sample_rate)


def test_parse_frontend_spec() -> None:
    assert parse_frontend_spec("logmel40") == FrontendChoice("logmel40", {})
    assert parse_frontend_spec("logmel40,n_mels=64") == FrontendChoice("logmel40", {"n_mels": 64})
    c = parse_frontend_spec("kind=logmel,window-ms=25,n_fft=256,fmax=none")
    assert c.overrides == {"kind": "logmel", "window_ms": 25.0, "n_fft": 256, "fmax": None}
    with pytest.raises(ExportError, match="unknown preset"):
        parse_frontend_spec("nope")
    with pytest.raises(ExportError, match="unknown field"):
        parse_frontend_spec("logmel40,bins=3")


@pytest.mark.parametrize("shape,out_rank,role", [
    ((None, 40), 3, "frames"), ((1, 40), 3, "frames"), ((1, 40), 2, "window"),
    ((99, 81), 2, "window"), ((99, 81, 1), 2, "window"), ((16000,), 2, "window"),
    ((16000, 1), 2, "window"),
])
def test_input_roles(shape: tuple[int | None, ...], out_rank: int, role: str) -> None:
    # a fixed shape is "window" until its frontend says raw samples or which feature layout
    assert input_role(shape, "x", out_rank) == role


def test_window_derived_from_the_model() -> None:
    plan = plan_frontends([KerasInput("x", (98, 40), "window")], "logmel40")
    assert plan.window_s == 1.0 and plan.stride_s == 0.1  # the preset's, consistent with 98
    plan = plan_frontends([KerasInput("x", (49, 40), "window")], "logmel40")
    assert plan.window_s == pytest.approx(0.51)  # the roundest length with 49 frames (0.505-0.5149)
    plan = plan_frontends([KerasInput("w", (8000, 1), "window")], "raw16k")
    assert plan.window_s == 0.5


def test_explicit_fields_override_the_preset() -> None:
    inp = KerasInput("x", (None, 64), "frames")
    plan = plan_frontends([inp], FrontendChoice("logmel40", {"n_mels": 64}))
    assert plan.frontends["main"].n_mels == 64 and plan.sample_rate == 16000
    with pytest.raises(FrontendMismatchError,
                       match="of 64 bins but the logmel40 frontend gives 40: set --n-mels 64"):
        plan_frontends([inp], "logmel40")
    plan = plan_frontends([inp], FrontendSpec(kind="logmel", n_mels=64), sample_rate=8000)
    assert plan.sample_rate == 8000


def test_multi_input_frontends() -> None:
    inputs = [KerasInput("spec", (99, 81, 1), "window"), KerasInput("seq", (98, 40), "window")]
    plan = plan_frontends(inputs, {"*": "kaggle-specgram",
                                   "seq": "kind=logmel,window_ms=25,n_fft=256"})
    assert set(plan.frontends) == {"spec", "seq"}
    assert plan.input_frontend == {"spec": "spec", "seq": "seq"}
    assert plan.sample_rate == 8000 and plan.window_s == 1.0
    with pytest.raises(ExportError, match="unknown input"):
        plan_frontends(inputs, {"*": "kaggle-specgram", "other": "logmel40"})
    with pytest.raises(ExportError, match="different sample rates"):
        plan_frontends(inputs, {"spec": "kaggle-specgram", "seq": "logmel40"})


def test_labels(tmp_path: Path) -> None:
    p = tmp_path / "l.txt"
    p.write_text("yes\nno\n\n# comment\n_silence_\n")
    assert read_labels(p) == ("yes", "no", "_silence_")
    assert read_labels("a,b") == ("a", "b")
    with pytest.raises(ExportError, match="duplicate"):
        read_labels(["a", "a"])
    with pytest.raises(ExportError, match="not found"):
        read_labels(tmp_path / "missing.txt")


def test_normalization_files(tmp_path: Path) -> None:
    np.savez(tmp_path / "s.npz", mean=np.arange(40.0), std=np.full(40, 2.0))
    n = load_normalization(tmp_path / "s.npz")
    assert len(n.mean) == 40 and n.std[0] == 2.0
    (tmp_path / "s.json").write_text(json.dumps({"main": {"mean": [0.0] * 3, "std": [1.0] * 3}}))
    assert load_normalization(tmp_path / "s.json", "main").mean == (0.0, 0.0, 0.0)
    fronts = {"main": PRESETS["logmel40"].frontend}
    assert resolve_normalization(tmp_path / "s.npz", fronts)["main"] == n
    with pytest.raises(ExportError, match="unknown frontend"):
        resolve_normalization({"other": tmp_path / "s.npz"}, fronts)
