"""The real desktop window, under a virtual display."""

import json
import sqlite3
import tempfile
import urllib.request
from pathlib import Path

import pytest

from window import VirtualDisplay, Window, missing_tools, pixel_spread

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=f"window tools missing: {missing_tools()}")


@pytest.fixture
def display():
    screen = VirtualDisplay()
    yield screen
    screen.close()


def test_the_window_opens_over_a_serving_gateway_and_closes_cleanly(display, tmp_path):
    window = Window(display, tmp_path / "data")
    assert window.geometry() == (1280, 800)
    with urllib.request.urlopen(window.base + "/health", timeout=5) as response:
        assert json.loads(response.read()) == {"status": "ok"}
    shot = window.screenshot(tmp_path / "dashboard.png")
    assert pixel_spread(shot) > 0.05, "the window shows something, not a blank screen"
    assert window.close() == 0
    database = sqlite3.connect(tmp_path / "data" / "burncloud.db")
    assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_sigterm_takes_the_window_down_with_the_gateway(display, tmp_path):
    window = Window(display, tmp_path / "data", page="settings", lang="zh-CN")
    window.process.terminate()
    assert window.process.wait(timeout=20) == 0
