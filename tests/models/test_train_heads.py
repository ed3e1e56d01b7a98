"""`hark train --frontend embedding`: a head on the frozen backbone trains, exports with parity,
caches its embedded windows, writes the enrolment set, and replays through the live engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.tf, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hark.models.synth import ensure_tree

    return ensure_tree(tmp_path_factory.mktemp("tree") / "espeak", 3, seed=5)


def _train(arch: str, out: Path, tree: Path, **kw: object):  # noqa: ANN202
    from hark.models.training import TrainOptions, train

    base: dict[str, object] = dict(epochs=2, seed=7, batch_size=16, tune_streams=2,
                                   test_streams=1, test_stream_s=8.0, verbose=0,
                                   frontend="embedding", windows_per_clip=2)
    opts = TrainOptions(arch=arch, out=out, data=tree, **{**base, **kw})  # type: ignore[arg-type]
    logs: list[str] = []
    return train(opts, log=logs.append), logs


@pytest.mark.parametrize("arch", ["dense", "conv"])
def test_head_trains_exports_and_replays(arch: str, tiny_tree: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from hark.cli import main
    from hark.live.backbone import backbone_info, window_seconds
    from hark.live.model import OnnxModel

    res, logs = _train(arch, tmp_path / arch, tiny_tree)
    name = "commands-emb" if arch == "dense" else f"commands-emb-{arch}"
    assert res.onnx_path == tmp_path / arch / f"{name}.onnx"
    model = OnnxModel.load(res.onnx_path)
    card = model.card
    assert card.frontends["main"].kind == "embedding" and card.backbone == backbone_info().ref()
    assert card.window_s == pytest.approx(window_seconds(8)) and card.stride_s == 0.08
    assert card.provenance["parity"]["max_abs_diff"] < 1e-4
    assert "openWakeWord" in card.provenance["backbone"]["attribution"]
    assert 0.0 <= card.evaluation["test_clips"]["accuracy"] <= 1.0
    with np.load(res.onnx_path.with_suffix(".enroll.npz")) as z:
        assert z["x"].shape[1:] == (8, 96) and z["x"].dtype == np.float16
        assert tuple(z["labels"]) == card.labels and len(z["y"]) == len(z["x"]) > 0
    def embedding(lines: list[str]) -> list[str]:
        return [m for m in lines if m.startswith(("train:", "validation:"))]

    assert all("windows embedded in" in m for m in embedding(logs)) and embedding(logs)
    # the embedded windows are cached: a second head on the same data embeds nothing
    again, logs2 = _train(arch, tmp_path / arch, tiny_tree, epochs=1, tune=False)
    assert len(embedding(logs2)) == 2
    assert all("embedded windows from" in m for m in embedding(logs2))
    wav = next((tiny_tree / "yes").glob("*.wav"))
    capsys.readouterr()
    assert main(["replay", str(wav), "--model", str(res.onnx_path), "--format", "jsonl"]) == 0
    for line in capsys.readouterr().out.splitlines():
        json.loads(line)


def test_sources_filter_and_wrong_arch(tiny_tree: Path, tmp_path: Path) -> None:
    from hark.models.head_training import select_sources, select_voices
    from hark.models.training import TrainOptions, train

    mask = select_sources(("espeak-en-m1", "flite-slt", "kokoro-jf-alpha", "noise-white_noise"),
                          "flite,kokoro")
    assert mask.tolist() == [False, True, True, True]  # silence clips stay
    assert select_voices(("flite-rms-f1", "flite-awb", "kokoro-x"), "flite-rms,kokoro").tolist() \
        == [True, False, True]
    assert not select_voices(("flite-rms",), None).any()
    with pytest.raises(ValueError, match="no training clip"):
        _train("lr", tmp_path / "none", tiny_tree, sources="flite")
    with pytest.raises(ValueError, match="heads for --frontend embedding"):
        train(TrainOptions(arch="dense", out=tmp_path / "x", data=tiny_tree), log=print)


def test_stream_window_labels_name_whole_words_only() -> None:
    from hark.live.events import Event
    from hark.models.head_training import stream_window_labels

    labels = ("yes", "no", "_silence_", "_unknown_")
    hop, win = 1280, 22112  # 80 ms, 1.382 s
    events = [Event("yes", 1.0, 1.5), Event("_unknown_", 3.0, 3.4), Event("no", 5.0, 5.6)]
    y = stream_window_labels(events, 100, win, hop, labels)
    starts = np.arange(100) * hop / 16000
    ends = starts + win / 16000
    for k in range(100):
        if starts[k] - 0.1 <= 1.0 and ends[k] >= 1.5:
            assert labels[y[k]] == "yes", k
        elif starts[k] - 0.1 <= 5.0 and ends[k] >= 5.6:
            assert labels[y[k]] == "no", k
        elif (starts[k] < 1.5 and ends[k] > 1.0) or (starts[k] < 3.4 and ends[k] > 3.0) or (
                starts[k] < 5.6 and ends[k] > 5.0):
            assert labels[y[k]] == "_unknown_", k  # a part of a word, or an unknown word
        else:
            assert labels[y[k]] == "_silence_", k
    assert {labels[i] for i in y} == set(labels)
