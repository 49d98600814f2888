"""The database under `burncloud serve` misbehaves: another process holds its write lock, or the disk
fills up while calls are logged. Calls keep being answered, the console says what is wrong in its
own error shape, health shows the log writer failing, and once the fault clears every call is
stored and the books balance."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from conftest import ADMIN_KEY, UPSTREAM_KEY, BurnCloud, poll, stop

CALLS = 12


def call(app, key, stream):
    body = {"model": "gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    request = urllib.request.Request(
        app.base + "/v1/chat/completions", data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=20) as response:
        response.read()
        return response.status


def console_error(app, method, path, body):
    """(status, error JSON, Retry-After) of a console call that is expected to fail."""
    request = urllib.request.Request(
        app.base + path, method=method, data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    return caught.value.code, json.loads(caught.value.read()), caught.value.headers.get("Retry-After")


def log_writer(app):
    return app.console("GET", "/console/internal/health")["log_writer"]


def start_app(upstream, data_dir):
    app = BurnCloud(data_dir)
    app.console("POST", "/console/api/channels", {
        "name": "mock", "kind": "openai", "base_url": upstream + "/v1", "api_key": UPSTREAM_KEY,
        "models": ["gpt-4o-mini"]})
    app.console("PUT", "/console/api/prices/gpt-4o-mini", {"input_per_mtok": "1.5", "output_per_mtok": "6"})
    return app


def assert_every_call_stored_and_books_balance(app, database, calls):
    poll(lambda: log_writer(app), lambda writer: writer["queued"] == 0 and not writer["failing"], timeout=30)
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        count, logged = connection.execute("SELECT COUNT(*), COALESCE(SUM(cost_nano), 0) FROM logs").fetchone()
        used = connection.execute("SELECT COALESCE(SUM(used_quota_nano), 0) FROM tokens").fetchone()[0]
    assert count == calls, f"{count} of {calls} calls stored"
    assert logged > 0 and logged == used, f"logged costs {logged} equal the tokens' used quota {used}"


HOLD_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
connection.execute("COMMIT")
"""


def test_a_write_lock_held_by_another_process_delays_logging_but_loses_nothing(upstream, tmp_path):
    app = start_app(upstream, tmp_path)
    try:
        key = app.token()
        holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path / "burncloud.db")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "locked"
            # Calls are answered while the database is held: logging waits, the caller does not.
            assert [call(app, key, stream=n % 2 == 0) for n in range(CALLS)] == [200] * CALLS
            writer = poll(lambda: log_writer(app), lambda writer: writer["failing"], timeout=30)
            assert writer["queued"] > 0 and writer["write_errors"] > 0, writer
            # A console write says what is wrong, in the console's shape, with a hint to retry.
            status, error, retry_after = console_error(app, "POST", "/console/api/tokens", {"name": "later"})
            assert status == 503 and error["error"]["code"] == "database_busy", error
            assert "another program" in error["error"]["message"] and retry_after == "1"
        finally:
            holder.communicate("\n", timeout=10)
        assert_every_call_stored_and_books_balance(app, tmp_path / "burncloud.db", CALLS)
        assert app.console("POST", "/console/api/tokens", {"name": "now"})["key"].startswith("sk-bc-")
    finally:
        assert stop(app.process) == 0


needs_mount = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None, reason="a small tmpfs for the full disk needs root and mount"
)


@needs_mount
def test_a_full_disk_delays_logging_but_loses_nothing(upstream, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], check=True)
    try:
        app = start_app(upstream, disk)
        try:
            key = app.token()
            assert call(app, key, stream=False) == 200  # the WAL and the first pages exist
            poll(lambda: log_writer(app), lambda writer: writer["queued"] == 0, timeout=10)
            filler = disk / "filler"
            # Unbuffered: a buffered file would try again to write its unwritten rest on close,
            # and fail there once the disk is full.
            with open(filler, "wb", buffering=0) as out:
                try:
                    while out.write(b"\0" * 65536):
                        pass
                except OSError:
                    pass  # the disk is full now
            calls = 1 + CALLS
            assert [call(app, key, stream=n % 2 == 0) for n in range(CALLS)] == [200] * CALLS
            writer = poll(lambda: log_writer(app), lambda writer: writer["failing"], timeout=30)
            assert writer["queued"] > 0, writer
            status, error, _ = console_error(app, "POST", "/console/api/tokens", {"name": "later"})
            assert status == 507 and error["error"]["code"] == "insufficient_storage", error
            assert "full" in error["error"]["message"]
            filler.unlink()
            assert_every_call_stored_and_books_balance(app, disk / "burncloud.db", calls)
        finally:
            assert stop(app.process) == 0
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)
