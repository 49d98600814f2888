"""The `burncloud` command line: version, admin key, data dir."""

import json
import os
import stat
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from conftest import BURNCLOUD_BIN, start, stop


def run(*args, env=None):
    return subprocess.run([BURNCLOUD_BIN, *args], capture_output=True, text=True, timeout=30, env=env)


def test_version():
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("burncloud ")


def test_admin_key_is_generated_once_private_and_used_by_serve():
    env = {k: v for k, v in os.environ.items() if k != "BURNCLOUD_ADMIN_KEY"}
    with tempfile.TemporaryDirectory() as parent:
        data_dir = Path(parent) / "fresh" / "BurnCloud"
        first = run("admin-key", "--data-dir", str(data_dir), env=env)
        assert first.returncode == 0, first.stderr
        key = first.stdout.strip()
        assert key.startswith("bc-admin-") and len(key) > 40
        key_file = data_dir / "admin.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert run("admin-key", "--data-dir", str(data_dir), env=env).stdout.strip() == key

        process, base = start([BURNCLOUD_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)], env=env)
        try:
            assert (data_dir / "burncloud.db").exists()
            request = urllib.request.Request(base + "/console/api/account", headers={"Authorization": f"Bearer {key}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
        finally:
            assert stop(process) == 0

        override = run("admin-key", "--data-dir", str(data_dir), env={**env, "BURNCLOUD_ADMIN_KEY": "from-env"})
        assert override.stdout.strip() == "from-env"


def test_a_taken_port_is_a_clear_error():
    with tempfile.TemporaryDirectory() as data_dir:
        process, base = start([BURNCLOUD_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir])
        try:
            address = base.removeprefix("http://")
            result = run("serve", "--listen", address, "--data-dir", data_dir)
            assert result.returncode != 0
            assert "cannot listen on" in result.stderr
        finally:
            stop(process)


def console_status(base, key, method="GET", path="/console/api/account"):
    request = urllib.request.Request(base + path, method=method, headers={"Authorization": f"Bearer {key}"},
                                     data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_admin_key_rotates_and_the_old_one_stops_working():
    env = {k: v for k, v in os.environ.items() if k != "BURNCLOUD_ADMIN_KEY"}
    with tempfile.TemporaryDirectory() as data_dir:
        old = run("admin-key", "--data-dir", data_dir, env=env).stdout.strip()
        process, base = start([BURNCLOUD_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir], env=env)
        try:
            status, body = console_status(base, old, "POST", "/console/api/admin-key/rotate")
            assert status == 200
            new = body["admin_key"]
            assert new.startswith("bc-admin-") and new != old
            assert console_status(base, old)[0] == 401
            assert console_status(base, new)[0] == 200
            assert (Path(data_dir) / "admin.key").read_text().strip() == new
        finally:
            stop(process)
        pinned, pinned_base = start([BURNCLOUD_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir],
                                    env={**env, "BURNCLOUD_ADMIN_KEY": "pinned-key"})
        try:
            status, body = console_status(pinned_base, "pinned-key", "POST", "/console/api/admin-key/rotate")
            assert status == 409 and "BURNCLOUD_ADMIN_KEY" in body["error"]["message"]
        finally:
            stop(pinned)


def test_a_sigterm_right_after_the_port_is_announced_still_shuts_down_cleanly():
    """The signal handlers are in place before `listening on` is printed, so an early SIGTERM
    takes the graceful path (exit 0) instead of the default action (killed by the signal)."""
    for _ in range(5):
        with tempfile.TemporaryDirectory() as data:
            process, _ = start([BURNCLOUD_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", data])
            assert stop(process) == 0
