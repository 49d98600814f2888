"""The data key in a real OS keyring: `burncloud serve` inside a D-Bus session with GNOME Keyring's
Secret Service keeps the key that seals channel API keys there (no key file in the data dir), and a
later session finds it again, so sealed keys still open and calls still go through."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import urllib.request
from pathlib import Path

import pytest

from conftest import ADMIN_KEY, BURNCLOUD_BIN, UPSTREAM_KEY

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ["dbus-run-session", "gnome-keyring-daemon"]),
    reason="needs dbus-run-session and gnome-keyring-daemon (scripts/test installs dbus and gnome-keyring)",
)

# Unlocks (on first use, creates) the login keyring with a test password, then becomes the server.
IN_SESSION = 'printf burncloud-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec "$@"'


class KeyringSession:
    def __init__(self, home, data_dir):
        env = {k: v for k, v in os.environ.items() if k not in ("BURNCLOUD_KEYRING", "DBUS_SESSION_BUS_ADDRESS")}
        env.update(HOME=str(home), BURNCLOUD_ADMIN_KEY=ADMIN_KEY, BURNCLOUD_LOG="warn")
        self.process = subprocess.Popen(
            ["dbus-run-session", "--", "bash", "-c", IN_SESSION, "session",
             BURNCLOUD_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        line = self.process.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.process.kill()
            raise RuntimeError(f"burncloud did not start in the D-Bus session: {line!r}")
        self.base = line.removeprefix("listening on ")

    def request(self, path, body=None, key=ADMIN_KEY):
        request = urllib.request.Request(
            self.base + path, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def stop(self):
        # dbus-run-session's child is the server itself (`exec`): stop it, and the session ends.
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        for child in children:
            os.kill(int(child), signal.SIGTERM)
        assert self.process.wait(timeout=20) == 0


def chat(session, key):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    return session.request("/v1/chat/completions", body, key=key)


def test_the_data_key_lives_in_the_keyring_and_survives_a_restart(upstream, tmp_path):
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    first = KeyringSession(home, data)
    try:
        assert first.request("/console/internal/health")["secrets"] == "keyring"
        first.request("/console/api/channels", {
            "name": "mock", "kind": "openai", "base_url": upstream + "/v1", "api_key": UPSTREAM_KEY,
            "models": ["gpt-4o-mini"]})
        key = first.request("/console/api/tokens", {"name": "keyring"})["key"]
        assert chat(first, key)["choices"][0]["message"]["content"]
    finally:
        first.stop()
    assert not (data / "secret.key").exists(), "with a keyring, no key file is written"
    with sqlite3.connect(data / "burncloud.db") as connection:
        (stored,) = connection.execute("SELECT api_key FROM channels").fetchone()
    assert stored.startswith("bc-enc:v1:") and UPSTREAM_KEY not in stored
    assert (home / ".local/share/keyrings").is_dir(), "the key went to this HOME's keyring"

    second = KeyringSession(home, data)
    try:
        assert second.request("/console/internal/health")["secrets"] == "keyring"
        # The upstream only answers its own key: the sealed key opened with the key from the keyring.
        assert chat(second, key)["choices"][0]["message"]["content"]
    finally:
        second.stop()
