"""The real desktop window, under a virtual display."""

import json
import sqlite3
import subprocess
import time
import tempfile
import urllib.request
from pathlib import Path

import pytest

from conftest import BURNCLOUD_BIN
from window import VirtualDisplay, Window, missing_tools, pixel_spread

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=f"window tools missing: {missing_tools()}")


@pytest.fixture
def display():
    screen = VirtualDisplay()
    yield screen
    screen.close()


def free_port():
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_the_window_opens_hides_to_the_tray_and_a_second_launch_brings_it_back(display, tmp_path):
    listen = f"127.0.0.1:{free_port()}"
    window = Window(display, tmp_path / "data", listen=listen)
    assert window.geometry() == (1280, 800)
    with urllib.request.urlopen(window.base + "/health", timeout=5) as response:
        assert json.loads(response.read()) == {"status": "ok"}
    # The webview paints a moment after the window maps, longer on a busy machine: look again until
    # the page is there, for up to 30 s.
    shot = window.screenshot(tmp_path / "dashboard.png")
    wait_for(lambda: pixel_spread(window.screenshot(shot, settle=0.5)) > 0.05)
    assert pixel_spread(shot) > 0.05, "the window shows something, not a blank screen"

    # A loaded machine can keep the window's event loop busy for a while: ask again if needed.
    window.request_close()
    if not wait_for(lambda: not window.visible(), seconds=10):
        window.request_close()
    assert wait_for(lambda: not window.visible()), "closing hides the window to the tray"
    assert window.process.poll() is None, "and the gateway keeps serving"
    with urllib.request.urlopen(window.base + "/health", timeout=5) as response:
        assert response.status == 200

    second = subprocess.run([BURNCLOUD_BIN, "--listen", listen, "--data-dir", str(tmp_path / "data")],
                            env=window.env, capture_output=True, text=True, timeout=30)
    assert second.returncode == 0, second.stderr
    assert "already running" in second.stdout
    assert wait_for(window.visible), "the second launch brought the first window back"

    window.process.terminate()
    assert window.process.wait(timeout=20) == 0
    database = sqlite3.connect(tmp_path / "data" / "burncloud.db")
    assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_sigterm_takes_the_window_down_with_the_gateway(display, tmp_path):
    window = Window(display, tmp_path / "data", page="settings", lang="zh-CN")
    window.process.terminate()
    assert window.process.wait(timeout=20) == 0
