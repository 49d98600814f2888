"""`burncloud serve` killed with SIGKILL under load: after a restart the database is intact and the
books balance (every logged cost is in its token's used quota and the account's spend)."""

import http.client
import json
import signal
import sqlite3
import threading
import time
import urllib.error
import urllib.request

from conftest import UPSTREAM_KEY, BurnCloud, stop


def call(base, key, stream):
    body = {"model": "gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    request = urllib.request.Request(
        base + "/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
        return response.status


def test_kill_9_under_load_leaves_an_intact_database_whose_books_balance(upstream, tmp_path):
    app = BurnCloud(tmp_path)
    app.console(
        "POST",
        "/console/api/channels",
        {"name": "mock", "kind": "openai", "base_url": upstream + "/v1", "api_key": UPSTREAM_KEY, "models": ["gpt-4o-mini"]},
    )
    app.console("PUT", "/console/api/prices/gpt-4o-mini", {"input_per_mtok": "1.5", "output_per_mtok": "6"})
    keys = [app.token(name=f"load-{n}") for n in range(4)]

    answered = []
    stopping = threading.Event()

    def load(worker):
        n = 0
        while not stopping.is_set():
            try:
                answered.append(call(app.base, keys[worker % len(keys)], stream=n % 2 == 0))
            except (urllib.error.URLError, http.client.HTTPException, OSError):
                if stopping.is_set():
                    return
            n += 1

    workers = [threading.Thread(target=load, args=(w,)) for w in range(16)]
    for worker in workers:
        worker.start()
    time.sleep(2.0)
    app.process.send_signal(signal.SIGKILL)
    app.process.wait(timeout=10)
    stopping.set()
    for worker in workers:
        worker.join(timeout=15)
    assert answered.count(200) > 50, f"the load ran before the kill: {len(answered)} answers"

    database = tmp_path / "burncloud.db"
    restarted = BurnCloud(tmp_path)
    try:
        assert restarted.console("GET", "/console/api/account")  # serves again on the same data
        with sqlite3.connect(database) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            logged, count = connection.execute("SELECT COALESCE(SUM(cost_nano), 0), COUNT(*) FROM logs").fetchone()
            tokens = connection.execute("SELECT COALESCE(SUM(used_quota_nano), 0) FROM tokens").fetchone()[0]
            account = connection.execute("SELECT used_nano FROM account").fetchone()[0]
        assert count > 0 and logged > 0, "calls made before the kill were logged"
        assert logged == tokens, f"logged costs {logged} equal the tokens' used quota {tokens}"
        assert logged == account, f"logged costs {logged} equal the account's spend {account}"
        # And it keeps working: a new call is answered and billed on top.
        assert call(restarted.base, keys[0], stream=False) == 200
    finally:
        stop(restarted.process)
