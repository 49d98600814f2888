"""A team's set-up: two real `burncloud serve` instances on one real PostgreSQL and one Redis,
sharing channels, tokens, quota and the call log."""

import json
from decimal import Decimal
import os
import secrets
import shutil
import signal
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
from test_redis import Redis, free_port


def server_bin():
    versions = sorted(
        (int(p.name), p / "bin") for p in Path("/usr/lib/postgresql").glob("*") if p.name.isdigit()
    ) if Path("/usr/lib/postgresql").is_dir() else []
    if versions:
        return versions[-1][1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


PG_BIN = server_bin()
REQUIRED = bool(os.environ.get("BURNCLOUD_REQUIRE_POSTGRES"))
if PG_BIN is None and REQUIRED:
    raise RuntimeError("BURNCLOUD_REQUIRE_POSTGRES is set but no PostgreSQL server (initdb) is installed")
pytestmark = [
    pytest.mark.skipif(PG_BIN is None, reason="PostgreSQL is not installed (apt install postgresql)"),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]


class Postgres:
    """A throwaway cluster: initdb into a temp dir, trust auth on 127.0.0.1 and a free port. The
    server refuses to run as root, so under root it runs as the `postgres` user."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="burncloud-pg-"))
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.dir, "postgres")
        self.port = free_port()
        self.run("initdb", "-D", self.dir / "data", "-U", "burncloud", "--auth=trust", "-E", "UTF8", "--no-sync",
                 "--locale=C")
        self.start()
        self.run("psql", "-h", "127.0.0.1", "-p", self.port, "-U", "burncloud", "-d", "postgres", "-q",
                 "-c", "CREATE DATABASE team")
        self.url = f"postgres://burncloud@127.0.0.1:{self.port}/team"

    def run(self, program, *args, check=True):
        command = [str(PG_BIN / program), *map(str, args)]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=check, capture_output=True, timeout=120)

    def start(self):
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        self.run("pg_ctl", "-D", self.dir / "data", "-l", self.dir / "server.log", "-w", "-t", "60", "-o", options,
                 "start")

    def stop(self, check=True):
        self.run("pg_ctl", "-D", self.dir / "data", "-m", "immediate", "-w", "stop", check=check)

    def close(self):
        try:
            self.stop(check=False)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class Instance:
    def __init__(self, data_dir, database_url, redis_port, secret_key):
        env = {
            "BURNCLOUD_ADMIN_KEY": ADMIN_KEY, "BURNCLOUD_LOG": "warn", "PATH": os.environ["PATH"],
            "BURNCLOUD_KEYRING": "off", "BURNCLOUD_SECRET_KEY": secret_key,
            "BURNCLOUD_DATABASE_URL": database_url,
        }
        self.process, self.base = start(
            [BURNCLOUD_BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir),
             "--redis-url", f"redis://127.0.0.1:{redis_port}"],
            env=env,
        )

    def console(self, method, path, body=None):
        request = urllib.request.Request(
            self.base + path, method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def chat(self, key, model="gpt-4o-mini"):
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
        request = urllib.request.Request(
            self.base + "/v1/chat/completions", data=body,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())


@pytest.fixture
def team():
    postgres = Postgres()
    redis = Redis(free_port())
    upstream, upstream_base = start([MOCK_BIN, "--key", UPSTREAM_KEY])
    secret_key = secrets.token_hex(32)
    dirs = [tempfile.mkdtemp(prefix="burncloud-team-") for _ in range(2)]
    instances = []
    try:
        instances = [Instance(d, postgres.url, redis.port, secret_key) for d in dirs]
        yield postgres, upstream_base, instances
    finally:
        for instance in instances:
            stop(instance.process)
        stop(upstream, signal.SIGKILL)
        redis.close()
        postgres.close()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def add_channel(instance, upstream_base, models=("gpt-4o-mini",)):
    return instance.console("POST", "/console/api/channels", {
        "name": "team upstream", "kind": "openai", "base_url": upstream_base + "/v1",
        "api_key": UPSTREAM_KEY, "models": list(models),
    })


def test_what_one_instance_configures_the_other_serves_within_a_second(team):
    _, upstream_base, (a, b) = team
    assert a.console("GET", "/console/internal/health")["database"] == "postgresql"
    add_channel(a, upstream_base)
    created = time.time()
    key = a.console("POST", "/console/api/tokens", {"name": "made on A"})["key"]
    status, answer = poll(lambda: b.chat(key), lambda r: r[0] == 200, timeout=5)
    assert time.time() - created < 1.0, "B took more than a second to learn A's token"
    assert answer["choices"][0]["message"]["content"]

    # A channel's sealed key, saved by A, opens on B (both were given the same secret key).
    channels = b.console("GET", "/console/api/channels")
    assert [c["name"] for c in channels] == ["team upstream"]

    # A price set on B charges calls through A.
    b.console("PUT", "/console/api/prices/gpt-4o-mini", {"input_per_mtok": "1000", "output_per_mtok": "2000"})
    priced_at = time.time()
    while time.time() - priced_at < 1.0:
        a.chat(key)
        time.sleep(0.05)
    # The log writer stores rows within a quarter second; the newest call is priced.
    newest = poll(lambda: a.console("GET", "/console/api/logs?limit=1")["items"],
                  lambda items: items and Decimal(items[0]["cost"]) > 0, timeout=2)
    assert newest[0]["priced"] is True

    # Disabled on A: B refuses it within a second too.
    token_id = a.console("GET", "/console/api/tokens")[0]["id"]
    a.console("PUT", f"/console/api/tokens/{token_id}", {"enabled": False})
    poll(lambda: b.chat(key), lambda r: r[0] == 401, timeout=1.5)


# How long the quota test's upstream takes to answer: real providers take hundreds of ms, and
# against an answer in microseconds the bound below would measure this machine's load, not how
# quickly one instance learns the other's charges.
PROVIDER_LATENCY_MS = 100


def test_calls_through_both_instances_share_one_log_and_one_quota(team):
    _, _, (a, b) = team
    upstream, upstream_base = start([MOCK_BIN, "--key", UPSTREAM_KEY, "--latency-ms", str(PROVIDER_LATENCY_MS)])
    try:
        spend_one_quota_from_both(a, b, upstream_base)
    finally:
        stop(upstream, signal.SIGKILL)


def spend_one_quota_from_both(a, b, upstream_base):
    add_channel(a, upstream_base)
    a.console("PUT", "/console/api/prices/gpt-4o-mini", {"input_per_mtok": "100000", "output_per_mtok": "100000"})
    key = a.console("POST", "/console/api/tokens", {"name": "shared", "quota_limit": "30"})["key"]
    first = poll(lambda: b.chat(key), lambda r: r[0] in (200, 429), timeout=5)

    def spend(instance):
        outcomes = []
        while True:
            status, answer = instance.chat(key)
            outcomes.append(status)
            if status != 200:
                assert answer["error"]["code"] == "insufficient_quota", answer
                return outcomes

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(spend, [a, b]))
    served = sum(o.count(200) for o in outcomes) + (first[0] == 200)
    assert all(o.count(200) > 0 for o in outcomes), outcomes

    # Every call from both is in the one log, seen from either instance, and the logged costs add
    # up to exactly what the token was charged.
    def logs(instance):
        return instance.console("GET", "/console/api/logs?limit=1000&status=200")["items"]

    items = poll(lambda: logs(b), lambda found: len(found) >= served, timeout=5)
    assert len(items) == served == len(logs(a))
    token = a.console("GET", "/console/api/tokens")[0]
    logged_cost = sum(Decimal(i["cost"]) for i in items)
    assert Decimal(token["used_quota"]) == logged_cost
    # Each call costs 3 units here; a quota of 30 allows 10. Each instance tells the other of every
    # charge as its call finishes, so at most the call each one had in flight slips past the limit.
    cost_per_call = logged_cost / served
    overspend = Decimal(token["used_quota"]) - 30
    assert overspend <= 2 * cost_per_call, (served, outcomes, token["used_quota"])

    # Once spent, the token is refused on both.
    for instance in (a, b):
        assert instance.chat(key)[0] == 429


def test_a_postgresql_restart_loses_no_call_and_keeps_answering(team):
    postgres, upstream_base, (a, b) = team
    add_channel(a, upstream_base)
    key = a.console("POST", "/console/api/tokens", {"name": "through a restart"})["key"]
    poll(lambda: b.chat(key), lambda r: r[0] == 200, timeout=5)

    answered = [200]  # the call that found the token on B
    stop_at = time.time() + 30

    def load(instance):
        while time.time() < stop_at:
            status, _ = instance.chat(key)
            answered.append(status)

    # A 30-second load through both instances; PostgreSQL goes down for 3 s in the middle of it.
    with ThreadPoolExecutor(2) as pool:
        running = [pool.submit(load, i) for i in (a, b)]
        time.sleep(10)
        postgres.stop()
        time.sleep(3)
        health = a.console("GET", "/console/internal/health")
        postgres.start()
        for future in running:
            future.result()
    # Calls were answered from the snapshot the whole time; the log writer said it was failing.
    assert answered and all(status == 200 for status in answered), set(answered)
    assert health["status"] == "degraded" and health["database_error"], health
    assert health["log_writer"]["failing"] or health["log_writer"]["queued"] > 0, health

    def logged():
        return a.console("GET", "/console/api/usage")["totals"]["requests"]

    # Every call answered is in the log once the database is back: none lost, none written twice.
    count = poll(logged, lambda found: found >= len(answered), timeout=30)
    time.sleep(0.5)
    assert logged() == count == len(answered)


def test_an_instance_killed_mid_load_leaves_logged_cost_equal_to_charged_quota(team):
    _, upstream_base, (a, b) = team
    add_channel(a, upstream_base)
    a.console("PUT", "/console/api/prices/gpt-4o-mini", {"input_per_mtok": "1000", "output_per_mtok": "3000"})
    key = a.console("POST", "/console/api/tokens", {"name": "through a crash"})["key"]
    poll(lambda: b.chat(key), lambda r: r[0] == 200, timeout=5)
    stop_at = time.time() + 3

    def load(instance):
        served = 0
        while time.time() < stop_at:
            try:
                served += instance.chat(key)[0] == 200
            except OSError:
                return served  # the instance is gone
        return served

    with ThreadPoolExecutor(2) as pool:
        running = [pool.submit(load, a), pool.submit(load, b)]
        time.sleep(1.5)
        a.process.kill()  # SIGKILL: whatever A had queued and not yet written is lost with it
        a.process.wait(timeout=5)
        served_by_b = running[1].result()
    assert served_by_b > 0

    # What was written is whole: each stored call's cost is in the token's and the account's
    # spending, and nothing else is.
    def books():
        usage = b.console("GET", "/console/api/usage")["totals"]
        token = b.console("GET", "/console/api/tokens")[0]
        account = b.console("GET", "/console/api/account")
        return Decimal(usage["cost"]), Decimal(token["used_quota"]), Decimal(account["used"]), usage["requests"]

    time.sleep(0.6)  # B's log writer stores its last batch
    logged, charged, account_used, requests = books()
    assert logged == charged == account_used, (logged, charged, account_used)
    assert requests >= served_by_b


def test_a_single_server_store_is_migrated_and_served_by_the_team(upstream):
    from conftest import BurnCloud

    postgres = Postgres()
    redis = Redis(free_port())
    try:
        with tempfile.TemporaryDirectory() as old_dir, tempfile.TemporaryDirectory() as team_dir:
            single = BurnCloud(Path(old_dir), extra_env={"BURNCLOUD_KEYRING": "off"})
            add_channel(single, upstream)
            key = single.token()
            for _ in range(3):
                status, _ = Instance.chat(single, key)
                assert status == 200
            time.sleep(0.5)
            assert stop(single.process) == 0

            secret_key = secrets.token_hex(32)
            env = dict(os.environ, BURNCLOUD_SECRET_KEY=secret_key, BURNCLOUD_KEYRING="off")
            copied = subprocess.run(
                [BURNCLOUD_BIN, "migrate", "--from-sqlite", str(Path(old_dir) / "burncloud.db"),
                 "--database-url", postgres.url, "--data-dir", team_dir],
                env=env, capture_output=True, text=True, timeout=60,
            )
            assert copied.returncode == 0, copied.stderr
            assert "logs  3 row(s)" in copied.stdout, copied.stdout

            again = subprocess.run(
                [BURNCLOUD_BIN, "migrate", "--from-sqlite", str(Path(old_dir) / "burncloud.db"),
                 "--database-url", postgres.url, "--data-dir", team_dir],
                env=env, capture_output=True, text=True, timeout=60,
            )
            assert again.returncode != 0 and "already holds" in again.stderr, again.stderr

            team = Instance(team_dir, postgres.url, redis.port, secret_key)
            try:
                # The old token and the old channel's sealed key work on the team store.
                status, answer = team.chat(key)
                assert status == 200, answer
                assert team.console("GET", "/console/api/usage")["totals"]["requests"] >= 3
            finally:
                stop(team.process)
    finally:
        redis.close()
        postgres.close()
