"""False accepts per hour, the DET curve and the operating point, through `hark eval`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from hark.live.model import OnnxModel, bundled_dir
from hark.models import false_accepts as F
from hark.models.data.audio import write_wav
from hark.models.data.tts import espeak_voices, synth_clip

SENTENCES = (
    "the weather today is mild with a light breeze from the west",
    "please write a note to the shop about the broken lamp",
    "yeah I know the goal was to finish before dawn",
)


def _negatives(folder: Path) -> Path:
    voice = espeak_voices(("en-us",), ("f3",))[0]
    parts = []
    for s in SENTENCES:
        parts += [synth_clip(s, voice), np.zeros(8000, np.float32)]
    audio = np.concatenate(parts) * np.float32(0.5)
    return write_wav(folder / "talk.wav", audio, 16000)


def test_pick_threshold_and_det_points() -> None:
    fa = F.FalseAccepts(seconds=3600.0, files=1)
    from hark.live.events import Event

    fa.events = [("x", Event("no", 0, 1, p, p)) for p in (0.3, 0.5, 0.9)]
    pos = F.Positives([0.0, 0.4, 0.95, 0.8])
    pts = F.det_curve(fa, pos, 0.2, steps=9)
    at = {p.threshold: p for p in pts}
    assert at[0.3].fa_per_hour == 3 and at[0.5].fa_per_hour == 2 and at[1.0].fa_per_hour == 0
    assert at[0.5].miss_rate == 0.5  # 0.0 and 0.4 missed
    best = F.pick_threshold(pts, 1.0)
    assert best.fa_per_hour <= 1.0 and best.threshold > 0.5
    assert all(p.fa_per_hour >= q.fa_per_hour for p, q in zip(pts, pts[1:], strict=False))


def test_hark_eval_negatives_det_and_target(tmp_path: Path) -> None:
    neg = _negatives(tmp_path / "neg")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for ext in (".onnx", ".json"):
        shutil.copy2(bundled_dir() / f"commands{ext}", model_dir / f"commands{ext}")
    onnx = model_dir / "commands.onnx"
    demo = bundled_dir() / "demo.wav"
    out = subprocess.run(
        [sys.executable, "-m", "hark.cli", "eval", "--model", str(onnx), "--negatives",
         str(neg.parent), "--audio", str(demo), "--det", str(tmp_path / "det"),
         "--target-fa-per-hour", "1000", "--json", str(tmp_path / "r.json"),
         "--write-card", "negatives_test"],
        capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert "per hour" in out.stdout and "operating point" in out.stdout
    res = json.loads((tmp_path / "r.json").read_text())
    bundled = OnnxModel.load(bundled_dir() / "commands.onnx")
    fa = F.false_accepts(bundled, [neg])
    assert res["false_accepts"] == len(fa.events)
    assert abs(res["hours"] - fa.hours) < 1e-3
    assert res["threshold_on"] == bundled.card.smoothing.threshold_on  # the count's threshold
    det = json.loads((tmp_path / "det.json").read_text())["points"]
    assert det and (tmp_path / "det.png").stat().st_size > 1000
    assert any(p["miss_rate"] is not None and p["miss_rate"] < 1.0 for p in det)  # demo words found
    card = json.loads((model_dir / "commands.json").read_text())
    assert "negatives_test" in card["evaluation"]
    th = res["operating_point"]["threshold"]
    assert abs(card["smoothing"]["threshold_on"] - th) < 1e-9


def test_bad_negatives_path_is_one_clear_error(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "hark.cli", "eval", "--negatives",
                          str(tmp_path / "nope")], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode != 0
    assert out.stderr.strip().startswith("hark: error:") and "no such file" in out.stderr


def test_false_accepts_per_speech_gate(tmp_path: Path) -> None:
    """`--negatives ... --vad compare`: one row per gate; silence-padded talk shuts the gates."""
    talk = _negatives(tmp_path)
    out = tmp_path / "gates.json"
    r = subprocess.run([sys.executable, "-m", "hark.cli", "eval", "--model", "commands",
                        "--negatives", str(talk), "--vad", "compare", "--json", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    gates = json.loads(out.read_text())["gates"]
    assert set(gates) == {"off", "webrtc", "silero"}
    for g in gates.values():
        assert g["files"] == 1 and g["false_accepts_per_hour"] >= 0
    assert [ln.split()[0] for ln in r.stdout.splitlines()[2:]] == ["off", "webrtc", "silero"]
