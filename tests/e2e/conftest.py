"""Fixtures that start the real `burncloud` binary and a local OpenAI-format upstream."""

import json
import os
import signal
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BURNCLOUD_BIN = os.environ.get("BURNCLOUD_BIN", str(ROOT / "target/debug/burncloud"))
MOCK_BIN = os.environ.get("MOCK_UPSTREAM_BIN", str(ROOT / "target/debug/mock-upstream"))
ADMIN_KEY = "e2e-admin-key"
UPSTREAM_KEY = "sk-upstream-e2e-0123456789"
REPLY = "Hello! How can I help you today?"


def start(command, env=None):
    """Starts a process that prints `listening on http://ADDR`; returns (process, base URL)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        process.kill()
        raise RuntimeError(f"{command[0]} did not start: {line!r}")
    return process, line.removeprefix("listening on ")


def stop(process, sig=signal.SIGTERM):
    if process.poll() is None:
        process.send_signal(sig)
        try:
            return process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    return process.returncode


class BurnCloud:
    def __init__(self, data_dir):
        self.data_dir = data_dir
        env = dict(os.environ, BURNCLOUD_ADMIN_KEY=ADMIN_KEY, BURNCLOUD_LOG="warn")
        self.process, self.base = start(
            [BURNCLOUD_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)], env=env
        )

    def console(self, method, path, body=None):
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def token(self, **fields):
        return self.console("POST", "/console/api/tokens", {"name": "e2e", **fields})["key"]


@pytest.fixture
def upstream():
    process, base = start([MOCK_BIN, "--key", UPSTREAM_KEY])
    yield base
    stop(process, signal.SIGKILL)


@pytest.fixture
def burncloud(upstream):
    with tempfile.TemporaryDirectory() as data_dir:
        app = BurnCloud(Path(data_dir))
        app.console(
            "POST",
            "/console/api/channels",
            {
                "name": "local mock",
                "kind": "openai",
                "base_url": upstream + "/v1",
                "api_key": UPSTREAM_KEY,
                "models": ["gpt-4o-mini", "text-embedding-3-small"],
            },
        )
        yield app
        stop(app.process)
