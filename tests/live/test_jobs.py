"""`hark replay FILE... --jobs N / --ray`: byte for byte the serial run, and its fault rules.

Real subprocesses, real worker processes (spawn), a real local Ray cluster (one run: Ray takes
seconds to start).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import soundfile as sf

from tests.corpus import CMD, cut_flac, hark, long_files, replay_files


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return replay_files(tmp_path_factory.mktemp("jobs"))


def _errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("hark: error:")]


@pytest.mark.parametrize("fmt", ["jsonl", "tsv"])
def test_jobs_2_equals_the_serial_run(corpus: list[Path], tmp_path: Path, fmt: str) -> None:
    runs = {}
    for name, extra in (("serial", []), ("jobs", ["--jobs", "2"])):
        out = tmp_path / f"{name}.{fmt}"
        r = hark("replay", *corpus, "--format", fmt, "--out", out, *extra)
        assert r.returncode == 0, r.stderr
        runs[name] = (r.stdout, out.read_bytes(), r.stderr)
    assert runs["jobs"] == runs["serial"]
    stdout = runs["serial"][0]
    files = ([json.loads(x)["file"] for x in stdout.splitlines()] if fmt == "jsonl"
             else [x.split("\t")[0] for x in stdout.splitlines()[1:]])
    assert len(files) > 10  # real events, from several files, listed in input order
    order = [str(p) for p in corpus]
    assert [order.index(f) for f in files] == sorted(order.index(f) for f in files)
    assert len(set(files)) >= 4


def test_corrupt_file_in_the_middle_like_serial(corpus: list[Path], tmp_path: Path) -> None:
    cut = cut_flac(tmp_path)
    files = [*corpus[:3], cut, *corpus[3:]]
    runs = {}
    for name, extra in (("serial", []), ("jobs", ["--jobs", "2"]), ("ray", ["--ray", "--jobs",
                                                                            "2"])):
        out = tmp_path / f"{name}.jsonl"
        r = hark("replay", *files, "--out", out, *extra)
        runs[name] = (r.returncode, r.stdout, out.read_bytes(), _errors(r.stderr))
    assert runs["jobs"] == runs["serial"]
    assert runs["ray"] == runs["serial"]  # the file's bytes travel: same decoder, same message
    code, stdout, _, errors = runs["serial"]
    assert code == 2
    [err] = errors
    assert f"{cut}: decoding failed at" in err and "events up to there were written" in err
    seen = {json.loads(x)["file"] for x in stdout.splitlines()}
    earlier = seen - {str(cut)}
    assert earlier and earlier <= {str(p) for p in corpus[:3]}  # earlier files, nothing after
    assert str(cut) in seen  # and the events of the broken file up to the break


def test_bad_combinations_are_usage_errors(corpus: list[Path]) -> None:
    cases = [
        (["--jobs", "0"], "--jobs must be at least 1, not 0"),
        (["--jobs", "-3"], "--jobs must be at least 1, not -3"),
        (["--jobs", "2", "--realtime"], "--realtime paces one live stream"),
        (["--ray", "--realtime"], "--realtime paces one live stream"),
    ]
    for extra, msg in cases:
        r = hark("replay", corpus[0], *extra)
        assert r.returncode == 2 and r.stdout == "", (extra, r.stdout)
        [err] = _errors(r.stderr)
        assert msg in err, (extra, err)
    r = hark("replay", "-", "--jobs", "2")
    assert r.returncode == 2 and "not stdin" in _errors(r.stderr)[0]
    r = hark("replay", corpus[0], "--ray", "127.0.0.1:1")
    assert r.returncode == 1
    [err] = _errors(r.stderr)
    assert "--ray 127.0.0.1:1: no Ray head answers there" in err


def test_ray_missing_is_one_line(corpus: list[Path]) -> None:
    """`import ray` blocked by a meta path finder, then the real CLI: the extra's hint."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'ray' or name.startswith('ray.'):\n"
        "            raise ModuleNotFoundError(\"No module named 'ray'\", name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from hark.cli import main\n"
        f"sys.exit(main(['replay', {str(corpus[0])!r}, '--ray']))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    assert _errors(r.stderr) == [
        "hark: error: --ray needs the cluster extra: pip install 'hark[cluster]'"]


def _workers(proc: psutil.Process, timeout_s: float = 60) -> list[psutil.Process]:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        kids = [c for c in proc.children() if "spawn_main" in " ".join(c.cmdline())]
        if len(kids) == 2:
            return kids
        time.sleep(0.1)
    raise AssertionError("the worker processes did not start")


@pytest.fixture(scope="module")
def long_corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return long_files(tmp_path_factory.mktemp("long"), 16, 60.0)


def _start(files: list[Path], out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*CMD, "replay", *map(str, files), "--jobs", "2", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)


def test_a_killed_worker_is_one_line_and_no_hang(long_corpus: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "ev.jsonl"
    p = _start(long_corpus, out)
    try:
        workers = _workers(psutil.Process(p.pid))
        workers[0].send_signal(signal.SIGKILL)
        stdout, stderr = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 1, stderr
    [err] = _errors(stderr)
    assert "a worker process died" in err and "events up to there were written" in err
    assert out.read_text() == stdout  # whatever was written is whole and in both outputs
    for w in workers:
        assert not w.is_running() or w.status() == psutil.STATUS_ZOMBIE


def test_sigint_stops_the_pool(long_corpus: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "ev.jsonl"
    p = _start(long_corpus, out)
    try:
        workers = _workers(psutil.Process(p.pid))
        while not out.exists() or not out.read_text():  # the first files are written
            assert p.poll() is None, p.stderr.read() if p.stderr else ""
            time.sleep(0.05)
        os.kill(p.pid, signal.SIGINT)
        stdout, stderr = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "hark: stopped by SIGINT;" in stderr
    n = len(stdout.splitlines())
    assert f"; {n} events written" in stderr and out.read_text() == stdout
    files = [json.loads(x)["file"] for x in stdout.splitlines()]
    assert files == sorted(files, key=lambda f: [str(x) for x in long_corpus].index(f))
    psutil.wait_procs(workers, timeout=10)
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)


def test_truncated_and_nan_files_report_like_serial(corpus: list[Path], tmp_path: Path) -> None:
    """A WAV cut short (the run goes on, exit 2 at the end) and NaN samples (a warning)."""
    x, rate = sf.read(corpus[0], dtype="float32")
    nan = tmp_path / "nan.wav"
    x[1000:1010] = np.nan
    sf.write(nan, x, rate, subtype="FLOAT")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(corpus[0].read_bytes()[: 44 + 2 * 3 * rate])  # 16-bit PCM: 3 s of 6
    files = [corpus[1], cut, nan, corpus[4]]
    runs = [hark("replay", *files, "--format", "csv", *extra) for extra in ([], ["--jobs", "2"])]
    assert [(r.returncode, r.stdout, r.stderr) for r in runs[1:]] == [
        (runs[0].returncode, runs[0].stdout, runs[0].stderr)]
    assert runs[0].returncode == 2
    assert "nan.wav: 10 NaN/Inf samples replaced by silence" in runs[0].stderr
    assert "truncated audio: " in _errors(runs[0].stderr)[0]
    assert str(corpus[4]) in runs[0].stdout  # the run went on past the cut file
