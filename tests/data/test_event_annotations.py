from pathlib import Path

import numpy as np
import pytest

from hark.live.events import Event, read_events_tsv, write_events_tsv
from hark.models.data.events import Stream, frame_targets, frame_times

LABELS = ("yes", "no")
HOP_S, WIN_S = 0.01, 0.025


def test_frame_times_are_frame_centres() -> None:
    np.testing.assert_allclose(frame_times(3, HOP_S, WIN_S), [0.0125, 0.0225, 0.0325])


def test_multiclass_targets_use_frame_centres_and_an_extra_background_class() -> None:
    events = [Event("yes", 0.1, 0.3), Event("no", 0.5, 0.6)]
    targets = frame_targets(events, 100, HOP_S, WIN_S, LABELS)
    centres = frame_times(100, HOP_S, WIN_S)
    assert targets.dtype == np.int64
    expected = np.full(100, 2)
    expected[(centres >= 0.1) & (centres < 0.3)] = 0
    expected[(centres >= 0.5) & (centres < 0.6)] = 1
    np.testing.assert_array_equal(targets, expected)
    # frame 9 is centred at 0.1025 (inside), frame 8 at 0.0925 (outside)
    assert targets[8] == 2 and targets[9] == 0


def test_multiclass_background_can_be_a_named_label_and_later_events_win() -> None:
    labels = ("_background_", "yes", "no")
    events = [Event("yes", 0.0, 0.5), Event("no", 0.2, 0.3)]
    targets = frame_targets(events, 60, HOP_S, WIN_S, labels, background="_background_")
    assert set(targets[:18].tolist()) == {1}
    assert set(targets[19:29].tolist()) == {2}
    assert targets[-1] == 0


def test_multilabel_targets_allow_overlap() -> None:
    events = [Event("yes", 0.0, 0.5), Event("no", 0.2, 0.3)]
    hot = frame_targets(events, 60, HOP_S, WIN_S, LABELS, multilabel=True)
    assert hot.shape == (60, 2) and hot.dtype == np.float32
    assert hot[25].tolist() == [1.0, 1.0]
    assert hot[10].tolist() == [1.0, 0.0]
    assert hot[55].tolist() == [0.0, 0.0]


def test_unknown_labels_fail_unless_ignored() -> None:
    events = [Event("_unknown_", 0.0, 0.5)]
    with pytest.raises(ValueError, match="_unknown_"):
        frame_targets(events, 10, HOP_S, WIN_S, LABELS)
    targets = frame_targets(events, 10, HOP_S, WIN_S, LABELS, ignore={"_unknown_"})
    assert set(targets.tolist()) == {2}


def test_dcase_tsv_round_trip(tmp_path: Path) -> None:
    events = [Event("clap", 0.5, 1.25), Event("speech", 1.0, 2.0)]
    path = write_events_tsv(tmp_path / "a.tsv", events)
    lines = path.read_text().splitlines()
    assert lines[0] == "onset\toffset\tevent_label"
    assert lines[1] == "0.500\t1.250\tclap"
    assert read_events_tsv(path) == events


def test_dcase_reader_accepts_a_filename_column_and_empty_rows(tmp_path: Path) -> None:
    path = tmp_path / "meta.tsv"
    path.write_text("filename\tonset\toffset\tevent_label\na.wav\t0.1\t0.2\tbeep\nb.wav\t\t\t\n")
    assert read_events_tsv(path) == [Event("beep", 0.1, 0.2)]
    bad = tmp_path / "bad.tsv"
    bad.write_text("start\tend\tlabel\n")
    with pytest.raises(ValueError, match="header"):
        read_events_tsv(bad)


def test_stream_writes_wav_and_tsv(tmp_path: Path) -> None:
    stream = Stream(np.zeros(1600, dtype=np.float32), 16000, [Event("beep", 0.01, 0.05)])
    wav, tsv = stream.write(tmp_path / "s.wav")
    assert wav.is_file() and tsv == tmp_path / "s.tsv"
    assert read_events_tsv(tsv) == stream.events
    assert stream.duration_s == pytest.approx(0.1)
