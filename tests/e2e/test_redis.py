"""Two real `burncloud serve` instances sharing rate limits through a real redis-server."""

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ADMIN_KEY, BURNCLOUD_BIN, MOCK_BIN, UPSTREAM_KEY, poll, start, stop

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Redis:
    def __init__(self, port):
        self.port = port
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
                    connection.sendall(b"PING\r\n")
                    if connection.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def close(self):
        self.process.kill()
        self.process.wait(timeout=5)


def serve(data_dir, redis_port):
    env = {"BURNCLOUD_ADMIN_KEY": ADMIN_KEY, "BURNCLOUD_LOG": "warn", "PATH": "/usr/bin:/bin"}
    return start(
        [BURNCLOUD_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir),
         "--redis-url", f"redis://127.0.0.1:{redis_port}"],
        env=env,
    )


def console(base, method, path, body=None):
    request = urllib.request.Request(
        base + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def chat(base, key):
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = urllib.request.Request(
        base + "/v1/chat/completions", data=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def setup():
    upstream, upstream_base = start([MOCK_BIN, "--key", UPSTREAM_KEY])
    with tempfile.TemporaryDirectory() as data:
        yield Path(data), upstream_base
    stop(upstream)


def configure(base, upstream_base, rpm):
    console(base, "POST", "/console/api/channels", {
        "name": "mock", "kind": "openai", "base_url": upstream_base + "/v1", "api_key": UPSTREAM_KEY,
        "models": ["gpt-4o-mini"],
    })
    return console(base, "POST", "/console/api/tokens", {"name": "shared", "rpm_limit": rpm})["key"]


def test_two_instances_admit_exactly_the_limit_together(setup):
    data, upstream_base = setup
    redis = Redis(free_port())
    first, first_base = serve(data, redis.port)
    try:
        key = configure(first_base, upstream_base, rpm=30)
        second, second_base = serve(data, redis.port)  # same data dir: same tokens, shared limits
        try:
            bases = [first_base, second_base] * 40
            with ThreadPoolExecutor(max_workers=16) as pool:
                statuses = list(pool.map(lambda base: chat(base, key), bases))
            assert statuses.count(200) == 30, statuses
            assert statuses.count(429) == 50
            for base in (first_base, second_base):
                assert console(base, "GET", "/console/internal/health")["redis"] == "ok"
        finally:
            stop(second)
    finally:
        stop(first)
        redis.close()


def test_without_redis_each_instance_limits_alone_and_recovers(setup):
    data, upstream_base = setup
    port = free_port()
    redis = Redis(port)
    app, base = serve(data, port)
    try:
        key = configure(base, upstream_base, rpm=1000)
        assert chat(base, key) == 200
        assert console(base, "GET", "/console/internal/health")["redis"] == "ok"
        redis.close()
        assert chat(base, key) == 200, "calls go on, limited by this instance alone"
        assert console(base, "GET", "/console/internal/health")["redis"] == "down"
        redis = Redis(port)
        time.sleep(1.2)  # the instance retries Redis a second after a failure
        assert chat(base, key) == 200
        assert console(base, "GET", "/console/internal/health")["redis"] == "ok"
    finally:
        stop(app)
        redis.close()


def set_mode(base, mode):
    request = urllib.request.Request(base + "/_mock/mode", data=json.dumps(mode).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).close()


def test_a_breaker_opened_on_one_instance_rests_the_channel_on_the_other(setup):
    data, steady_base = setup
    flaky, flaky_base = start([MOCK_BIN, "--key", UPSTREAM_KEY])
    set_mode(flaky_base, {"mode": "error", "status": 500})
    redis = Redis(free_port())
    first, first_base = serve(data, redis.port)
    try:
        for name, base, priority in [("flaky", flaky_base, 10), ("steady", steady_base, 0)]:
            console(first_base, "POST", "/console/api/channels", {
                "name": name, "kind": "openai", "base_url": base + "/v1", "api_key": UPSTREAM_KEY,
                "models": ["gpt-4o-mini"], "priority": priority,
            })
        key = console(first_base, "POST", "/console/api/tokens", {"name": "t"})["key"]
        second, second_base = serve(data, redis.port)
        try:
            for _ in range(5):  # five consecutive failures open the breaker on the first instance
                assert chat(first_base, key) == 200
            health = console(first_base, "GET", "/console/internal/health")
            assert [c["breaker"] for c in health["channels"] if c["name"] == "flaky"] == ["open"]
            time.sleep(1.2)  # the second instance reads shared breakers twice a second
            assert chat(second_base, key) == 200
            # Both instances log into the shared data dir: the first's five calls, then this one.
            logs = poll(lambda: console(second_base, "GET", "/console/api/logs?limit=10")["items"],
                        lambda rows: len(rows) == 6, timeout=10)
            assert logs[0]["attempts"] == 1 and logs[0]["channel_name"] == "steady", logs[0]
            health = console(second_base, "GET", "/console/internal/health")
            assert [c["breaker"] for c in health["channels"] if c["name"] == "flaky"] == ["open"]
        finally:
            stop(second)
    finally:
        stop(first)
        stop(flaky)
        redis.close()
