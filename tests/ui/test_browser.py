"""The browser page in a real headless Chromium, against a real `hark serve`.

Chromium's fake capture device plays the bundled demo recording into getUserMedia; the page's
AudioWorklet streams it (f32le at the AudioContext's rate) to the server, and the test reads the
page's event list: the demo's words must be there. A screenshot is kept (tmp_path, and
$HARK_ARTIFACTS when set). Chromium and chromedriver come from Debian (scripts/setup.sh dev); if
they are missing the test fails, it does not skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hark.live.model import bundled_dir

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DEMO_WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


def _start_server(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, "-m", "hark.cli", "serve", "--port", "0"],
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    m = re.search(r"ws://127\.0\.0\.1:(\d+)", line)
    assert m, line
    return proc, int(m.group(1))


def test_page_shows_the_demo_words(tmp_path: Path) -> None:
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not Path(exe).is_file():
            pytest.fail(f"{exe} is missing: apt-get install chromium chromium-driver "
                        "(scripts/setup.sh dev installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    wav = tmp_path / "demo.wav"  # 16-bit PCM mono: what the fake capture device reads
    shutil.copy(bundled_dir() / "demo.wav", wav)
    proc, port = _start_server(tmp_path)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={wav}", "--window-size=1280,720"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    shot = tmp_path / "browser.png"
    seen: list[str] = []
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        driver.find_element(By.ID, "start").click()  # a user gesture: the AudioContext may run
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            items = driver.find_elements(By.CSS_SELECTOR, "#events li")
            seen = [li.get_attribute("data-label") or "" for li in reversed(items)]
            if sum(w in seen for w in DEMO_WORDS) >= 5:
                break
            time.sleep(0.5)
        status = driver.find_element(By.ID, "status").text
        driver.save_screenshot(str(shot))
        if os.environ.get("HARK_ARTIFACTS"):
            out = Path(os.environ["HARK_ARTIFACTS"])
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, out / "browser.png")
    finally:
        driver.quit()
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert shot.stat().st_size > 0
    found = [w for w in DEMO_WORDS if w in seen]
    assert len(found) >= 5, (seen, status, err)
    # the words come in the demo's order (the fake device loops the file: take the first pass)
    first = [w for w in seen if w in DEMO_WORDS][: len(found)]
    assert first[:4] == DEMO_WORDS[:4], seen
    assert "listening" in status or "ended" in status, status
    assert proc.returncode == 0, err
    assert "Traceback" not in err
