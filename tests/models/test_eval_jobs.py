"""`hark eval --jobs 2` and `--ray` (a real local Ray, num_cpus=2) equal the serial eval exactly.

Event F1 and flips on recordings with truth; false accepts per hour, the DET curve and the
operating point on negatives (with misses from the recordings). The JSON files are compared
byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.corpus import cut_flac, eval_streams, hark, negatives
from tests.models.handmade import tone_tree, tone_window_model

RUNS: tuple[tuple[str, list[str]], ...] = (
    ("serial", []), ("jobs", ["--jobs", "2"]), ("ray", ["--ray", "--jobs", "2"]))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("evaljobs")
    return eval_streams(d / "streams"), negatives(d / "neg")


def test_event_scores_equal_the_serial_run(data: tuple[Path, Path], tmp_path: Path) -> None:
    streams, _ = data
    out = {}
    for name, extra in RUNS:
        js = tmp_path / f"{name}.json"
        r = hark("eval", "--model", "commands", "--audio", streams, "--json", js, *extra)
        assert r.returncode == 0, r.stderr
        out[name] = (r.stdout, js.read_bytes())
    assert out["jobs"] == out["serial"]
    assert out["ray"] == out["serial"]
    res = json.loads(out["serial"][1])
    assert res["tp"] > 10 and len(res["per_file"]) == 5
    assert [Path(f["audio"]).name for f in res["per_file"]] == [f"s{i}.wav" for i in range(5)]


def test_false_accepts_and_det_equal_the_serial_run(data: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    streams, neg = data
    out = {}
    for name, extra in RUNS:
        js, det = tmp_path / f"{name}.json", tmp_path / f"{name}-det"
        r = hark("eval", "--model", "commands", "--negatives", neg, "--audio", streams,
                 "--det", det, "--target-fa-per-hour", "100", "--json", js, *extra)
        assert r.returncode == 0, r.stderr
        stdout = r.stdout.replace(str(det), "DET")
        out[name] = (stdout, js.read_bytes(), det.with_suffix(".json").read_bytes())
    assert out["jobs"] == out["serial"]
    assert out["ray"] == out["serial"]
    res = json.loads(out["serial"][1])
    assert res["files"] == 4 and res["false_accepts"] > 0  # something to count
    assert "operating_point" in res


def test_a_broken_negative_fails_like_the_serial_run(data: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    _, neg = data
    files = [neg / "n0.wav", cut_flac(tmp_path), neg / "n1.wav"]
    runs = [hark("eval", "--negatives", *files, *extra) for _, extra in RUNS[:2]]
    assert [r.returncode for r in runs] == [2, 2]
    assert runs[0].stderr == runs[1].stderr
    assert "cut.flac: decoding failed at" in runs[0].stderr


def test_clip_accuracy_with_jobs_equals_serial(tmp_path: Path) -> None:
    """80 listed clips: two batches of work, the same confusion matrix."""
    model = tone_window_model(tmp_path / "m")
    tree = tone_tree(tmp_path / "tree")
    listing = tree / "testing_list.txt"
    listed = listing.read_text().split()
    more = []
    for name in listed:
        for k in range(9):
            copy = f"{name[:-4]}_copy{k}.wav"
            (tree / copy).write_bytes((tree / name).read_bytes())
            more.append(copy)
    listing.write_text("\n".join(listed + more) + "\n")
    out: list[tuple[str, bytes]] = []
    for _, extra in RUNS[:2]:
        js = tmp_path / f"{len(out)}.json"
        r = hark("eval", "--model", model, "--data", tree, "--json", js, *extra)
        assert r.returncode == 0, r.stderr
        out.append((r.stdout, js.read_bytes()))
    assert out[0] == out[1]
    res = json.loads(out[0][1])
    assert res["n"] == 80 and res["accuracy"] == 0.75


def test_gate_comparison_with_jobs_equals_serial(data: tuple[Path, Path], tmp_path: Path) -> None:
    streams, _ = data
    out: list[tuple[str, bytes]] = []
    for _, extra in RUNS[:2]:
        js = tmp_path / f"{len(out)}.json"
        r = hark("eval", "--audio", streams, "--vad", "compare", "--json", js, *extra)
        assert r.returncode == 0, r.stderr
        out.append((r.stdout, js.read_bytes()))
    assert out[0] == out[1]
    assert set(json.loads(out[0][1])["gates"]) == {"off", "webrtc", "silero"}
