"""Fixtures that start the real `burncloud` binary and a local OpenAI-format upstream."""

import http.server
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BURNCLOUD_BIN = os.environ.get("BURNCLOUD_BIN", str(ROOT / "target/debug/burncloud"))
MOCK_BIN = os.environ.get("MOCK_UPSTREAM_BIN", str(ROOT / "target/debug/mock-upstream"))
MOCK_HUB_BIN = os.environ.get("MOCK_HUB_BIN", str(ROOT / "target/debug/mock-hub"))
ADMIN_KEY = "e2e-admin-key"
UPSTREAM_KEY = "sk-upstream-e2e-0123456789"
REPLY = "Hello! How can I help you today?"
# What the mock upstream puts between a prompt and its suffix (fill-in-the-middle).
FILL = " a + b"


class NoReleases(http.server.BaseHTTPRequestHandler):
    """llama.cpp's releases API with no releases, so no test reaches GitHub: an install answers a
    plain 404 ("no llama.cpp release offers …")."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        listing = self.path.split("?")[0].endswith("/releases")
        body = b"[]" if listing else b'{"message": "Not Found"}'
        self.send_response(200 if listing else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


NO_RELEASES = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NoReleases)
threading.Thread(target=NO_RELEASES.serve_forever, daemon=True).start()
os.environ.setdefault(
    "BURNCLOUD_LLAMACPP_RELEASES", f"http://127.0.0.1:{NO_RELEASES.server_port}/repos/ggml-org/llama.cpp/releases")


def start(command, env=None, stderr=subprocess.DEVNULL):
    """Starts a process that prints `listening on http://ADDR`; returns (process, base URL)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        process.kill()
        raise RuntimeError(f"{command[0]} did not start: {line!r}")
    return process, line.removeprefix("listening on ")


def poll(fetch, done, timeout=60):
    """Calls `fetch` until `done` holds for its answer; returns that answer."""
    deadline = time.time() + timeout
    value = None
    while time.time() < deadline:
        value = fetch()
        if done(value):
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s; last: {value}")


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
    def __init__(self, data_dir, extra_env=None, stderr=subprocess.DEVNULL):
        self.data_dir = data_dir
        env = dict(os.environ, BURNCLOUD_ADMIN_KEY=ADMIN_KEY, BURNCLOUD_LOG="warn", **(extra_env or {}))
        self.process, self.base = start(
            [BURNCLOUD_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)], env=env, stderr=stderr
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


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory):
    """The reproducible tiny llama GGUF from tests/fixtures/make_tiny_gguf.py."""
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    subprocess.run([sys.executable, str(ROOT / "tests/fixtures/make_tiny_gguf.py"), str(path)], check=True)
    return path


@pytest.fixture
def llama_server():
    """The llama-server binary the local inference tests run (./scripts/test installs one)."""
    path = os.environ.get("BURNCLOUD_LLAMA_SERVER")
    if not path:
        if os.environ.get("BURNCLOUD_REQUIRE_LLAMA"):
            pytest.fail("BURNCLOUD_REQUIRE_LLAMA is set but BURNCLOUD_LLAMA_SERVER is not")
        pytest.skip("BURNCLOUD_LLAMA_SERVER is not set: ./scripts/test installs llama-server")
    return path


TINY_REPO = "burncloud/Tiny-GGUF"
TINY_FILE = "tiny-F32.gguf"


@pytest.fixture
def tiny_hub(tiny_gguf):
    """A local hub serving the tiny GGUF as TINY_REPO:TINY_FILE."""
    mock = MockHub({f"{TINY_REPO}:{TINY_FILE}": tiny_gguf})
    yield mock
    mock.close()


class MockHub:
    """The local hub (Hugging Face and ModelScope API shapes plus a CDN host) serving given files."""

    def __init__(self, files):
        command = [MOCK_HUB_BIN]
        for remote, local in files.items():
            command += ["--file", f"{remote}={local}"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        words = self.process.stdout.readline().split()
        if len(words) != 4 or words[0] != "hub":
            self.process.kill()
            raise RuntimeError(f"mock-hub did not start: {words!r}")
        self.endpoint, self.cdn = words[1], words[3]

    def env(self):
        return {
            "BURNCLOUD_HF_ENDPOINT": self.endpoint,
            "BURNCLOUD_HF_MIRROR_ENDPOINT": self.endpoint,
            "BURNCLOUD_MODELSCOPE_ENDPOINT": self.endpoint,
        }

    def faults(self, **faults):
        request = urllib.request.Request(
            self.endpoint + "/_mock/faults", method="POST", data=json.dumps(faults).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=5).read()

    def cdn_requests(self):
        with urllib.request.urlopen(self.endpoint + "/_mock/cdn-requests", timeout=5) as response:
            return json.loads(response.read())

    def close(self):
        stop(self.process, signal.SIGKILL)
