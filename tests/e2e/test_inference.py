"""No llama-server outlives BurnCloud: SIGKILL the real `burncloud serve` while a model is deployed,
and the server process dies with it; the next start cleans up what the killed run left."""

import os
import signal
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BurnCloud, poll, stop


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.fixture
def llama_server():
    path = os.environ.get("BURNCLOUD_LLAMA_SERVER")
    if not path:
        if os.environ.get("CI"):
            pytest.fail("CI must provide BURNCLOUD_LLAMA_SERVER")
        pytest.skip("BURNCLOUD_LLAMA_SERVER is not set: ./scripts/test installs llama-server")
    return path


def deploy(app, gguf):
    model = app.console("POST", "/console/api/models/local/import", {"path": str(gguf)})
    instance = app.console("POST", "/console/api/instances", {"model_id": model["id"], "ctx_size": 256, "parallel": 1})
    instance = poll(lambda: app.console("GET", f"/console/api/instances/{instance['id']}"),
                    lambda i: i["state"] in ("ready", "failed"))
    assert instance["state"] == "ready", instance
    return instance


def test_sigkill_of_the_app_takes_llama_server_with_it(llama_server, tiny_gguf):
    with tempfile.TemporaryDirectory() as data_dir:
        app = BurnCloud(Path(data_dir))
        instance = deploy(app, tiny_gguf)
        pid = instance["pid"]
        assert alive(pid)
        stop(app.process, signal.SIGKILL)
        deadline = time.time() + 5
        while alive(pid) and time.time() < deadline:
            time.sleep(0.05)
        assert not alive(pid), "llama-server outlived the killed app"

        app = BurnCloud(Path(data_dir))
        try:
            channels = app.console("GET", "/console/api/channels")
            assert [c for c in channels if c["kind"] == "local"] == [], "the killed run's route is gone"
            again = app.console("GET", f"/console/api/instances/{instance['id']}")
            assert again["state"] == "stopped" and again["pid"] is None
        finally:
            stop(app.process)


def test_a_graceful_exit_stops_every_instance(llama_server, tiny_gguf):
    with tempfile.TemporaryDirectory() as data_dir:
        app = BurnCloud(Path(data_dir))
        pid = deploy(app, tiny_gguf)["pid"]
        assert stop(app.process, signal.SIGTERM) == 0
        assert not alive(pid)
