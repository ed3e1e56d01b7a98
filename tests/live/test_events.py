"""Event writers (exact file contents, flushed per event) and reading DCASE tsv truth files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from hark.live.events import (
    CsvWriter,
    Event,
    EventError,
    JsonlWriter,
    TsvWriter,
    format_event_line,
    format_header,
    make_writer,
    open_writer,
    read_events_tsv,
)

EVENTS = [
    Event("dog", 0.5, 1.2345, peak=0.93127, mean=0.8, model="sounds"),
    Event("siren, far", 2.0004, 3.1, peak=0.7, mean=0.61234, model=""),
]


def test_event_duration() -> None:
    assert Event("a", 1.25, 2.0, 0.9, 0.8).duration_s == pytest.approx(0.75)


def test_jsonl_contents() -> None:
    buf = io.StringIO()
    w = make_writer("jsonl", buf)
    assert isinstance(w, JsonlWriter) and buf.getvalue() == ""  # jsonl has no header
    for e in EVENTS:
        w.write(e)
    w.close()
    assert buf.getvalue() == (
        '{"label": "dog", "onset": 0.5, "offset": 1.234, "peak": 0.931, "mean": 0.8, '
        '"model": "sounds"}\n'
        '{"label": "siren, far", "onset": 2.0, "offset": 3.1, "peak": 0.7, "mean": 0.612, '
        '"model": ""}\n'
    )
    first = json.loads(buf.getvalue().splitlines()[0])
    assert list(first) == ["label", "onset", "offset", "peak", "mean", "model"]


def test_csv_contents() -> None:
    buf = io.StringIO()
    w = make_writer("csv", buf)
    assert isinstance(w, CsvWriter)
    for e in EVENTS:
        w.write(e)
    w.close()
    assert buf.getvalue() == (
        "onset,offset,event_label,peak,mean,model\n"
        "0.500,1.234,dog,0.931,0.800,sounds\n"
        '2.000,3.100,"siren, far",0.700,0.612,\n'
    )


def test_tsv_contents_are_dcase() -> None:
    buf = io.StringIO()
    w = make_writer("tsv", buf)
    assert isinstance(w, TsvWriter)
    for e in EVENTS:
        w.write(e)
    w.write(Event("tab\there", 4.0, 5.0, 1.0, 1.0))
    w.close()
    assert buf.getvalue() == (
        "onset\toffset\tevent_label\n"
        "0.500\t1.234\tdog\n"
        "2.000\t3.100\tsiren, far\n"
        "4.000\t5.000\ttab here\n"
    )


def test_format_event_line_and_header() -> None:
    e = EVENTS[0]
    assert format_event_line(e, "tsv") == "0.500\t1.234\tdog"
    assert format_event_line(e, "csv") == "0.500,1.234,dog,0.931,0.800,sounds"
    assert json.loads(format_event_line(e, "jsonl"))["offset"] == 1.234
    assert format_header("jsonl") is None
    assert format_header("tsv") == "onset\toffset\tevent_label"
    with pytest.raises(EventError, match="unknown event format"):
        format_event_line(e, "xml")
    with pytest.raises(EventError, match="unknown event format"):
        make_writer("xml", io.StringIO())


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "tsv"])
def test_each_event_is_on_disk_before_the_next(tmp_path: Path, fmt: str) -> None:
    """Read the file through a second handle while the writer is still open: nothing buffered."""
    path = tmp_path / f"events.{fmt}"
    with path.open("w", encoding="utf-8") as f:
        w = make_writer(fmt, f)
        header = 0 if fmt == "jsonl" else 1
        assert len(path.read_text(encoding="utf-8").splitlines()) == header
        for i, e in enumerate(EVENTS, start=1):
            w.write(e)
            lines = path.read_text(encoding="utf-8").splitlines()
            assert len(lines) == header + i
            assert lines[-1] == format_event_line(e, fmt)
        w.close()
        assert not f.closed  # the caller's stream stays the caller's
    assert w.count == len(EVENTS)


def test_open_writer_owns_its_file(tmp_path: Path) -> None:
    path = tmp_path / "out.tsv"
    with open_writer(path) as w:
        w.write(EVENTS[0])
        assert path.read_text() == "onset\toffset\tevent_label\n0.500\t1.234\tdog\n"
    assert w.closed
    w.close()  # twice is fine
    with pytest.raises(ValueError):
        w.write(EVENTS[0])
    with pytest.raises(EventError, match="format"):
        open_writer(tmp_path / "out.txt")
    with pytest.raises(EventError, match="cannot write"):
        open_writer(tmp_path / "missing" / "out.csv")


def test_tsv_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "truth.tsv"
    with open_writer(path) as w:
        for e in EVENTS:
            w.write(e)
    got = read_events_tsv(path)
    assert [(e.label, e.onset_s, e.offset_s) for e in got] == [
        ("dog", 0.5, 1.234), ("siren, far", 2.0, 3.1)]
    assert all(e.peak == 1.0 and e.mean == 1.0 for e in got)


def test_read_tolerates_extra_columns_comments_and_empty_files_rows(tmp_path: Path) -> None:
    path = tmp_path / "meta.tsv"
    path.write_text(
        "filename\tonset\toffset\tevent_label\tconfidence\n"
        "# a comment\n"
        "a.wav\t0.100\t0.900\tSpeech\t1\n"
        "\n"
        "b.wav\t\t\t\n"  # DCASE: b.wav has no events
        "c.wav\t1.5\t2.25\tAlarm_bell_ringing\t0.5\n"
    )
    got = read_events_tsv(path)
    assert [(e.label, e.onset_s, e.offset_s) for e in got] == [
        ("Speech", 0.1, 0.9), ("Alarm_bell_ringing", 1.5, 2.25)]


def test_read_without_header_and_whitespace_separated(tmp_path: Path) -> None:
    tabs = tmp_path / "a.tsv"
    tabs.write_text("0.0\t1.0\tdog\textra\n2.0\t3.5\tcat\n")
    assert [(e.label, e.offset_s) for e in read_events_tsv(tabs)] == [("dog", 1.0), ("cat", 3.5)]
    spaces = tmp_path / "b.txt"
    spaces.write_text("0.5 1.0 dog bark\n")
    assert [e.label for e in read_events_tsv(spaces)] == ["dog bark"]


@pytest.mark.parametrize(
    "body,match",
    [
        ("onset\toffset\tevent_label\n0.1\t0.2\tdog\nzero\t0.5\tcat\n", r":3: onset 'zero'"),
        ("onset\toffset\tevent_label\n0.1\t0.2\tdog\n0.9\t0.5\tcat\n", r":3: offset 0.5 is before"),
        ("onset\toffset\tevent_label\n0.1\t0.2\n", r":2: missing event label"),
        ("onset\toffset\tevent_label\n\t0.2\tdog\n", r":2: expected onset, offset"),
        ("onset\toffset\tevent_label\n-1\t0.2\tdog\n", r":2: onset '-1' must be"),
        ("onset\tstart\tevent_label\n0.1\t0.2\tdog\n", r":1: header"),
    ],
)
def test_malformed_lines_name_the_line(tmp_path: Path, body: str, match: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(body)
    with pytest.raises(EventError, match=match):
        read_events_tsv(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EventError, match="cannot read events file"):
        read_events_tsv(tmp_path / "nope.tsv")
