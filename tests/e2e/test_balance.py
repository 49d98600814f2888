"""What a key holder reads about their own key: `GET /v1/key`, and the balance routes one-api made
common (`/v1/dashboard/billing/subscription` and `/usage`) that NextChat-style clients and key
checkers call with nothing but the key."""

import json
import urllib.error
import urllib.request

import openai
import pytest

from conftest import poll


def get(app, path, key):
    request = urllib.request.Request(app.base + path, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_a_key_reads_its_own_limit_spend_and_expiry(burncloud):
    app = burncloud
    app.console("PUT", "/console/api/prices/gpt-4o-mini", {"input_per_mtok": "1000", "output_per_mtok": "2000"})
    key = app.token(name="laptop", quota_limit="5", rpm_limit=60, expires_at_ms=4_102_444_800_000)
    client = openai.OpenAI(base_url=app.base + "/v1", api_key=key, max_retries=0, timeout=20)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    # Charged when the call is accounted for; its log row is written in the next batch.
    (row,) = poll(lambda: app.console("GET", "/console/api/logs?limit=5")["items"], lambda rows: len(rows) == 1)
    mine = get(app, "/v1/key", key)
    assert mine["name"] == "laptop" and mine["group"] == "default" and key.startswith(mine["key_prefix"])
    assert (mine["quota_limit"], mine["used"]) == ("5", row["cost"])
    assert float(mine["remaining"]) == pytest.approx(5 - float(row["cost"]))
    assert (mine["rpm_limit"], mine["expires_at"], mine["currency"]) == (60, 4_102_444_800, "USD")

    subscription = get(app, "/v1/dashboard/billing/subscription", key)
    assert subscription["object"] == "billing_subscription"
    assert subscription["hard_limit_usd"] == subscription["soft_limit_usd"] == 5.0
    assert subscription["access_until"] == 4_102_444_800
    usage = get(app, "/v1/dashboard/billing/usage?start_date=2026-01-01&end_date=2026-12-31", key)
    assert usage == {"object": "list", "total_usage": pytest.approx(float(row["cost"]) * 100)}

    # A key without a limit of its own: the convention those clients read as unlimited.
    unlimited = app.token(name="no limit")
    assert get(app, "/v1/dashboard/billing/subscription", unlimited)["hard_limit_usd"] == 100_000_000
    assert get(app, "/v1/key", unlimited)["quota_limit"] is None
    assert get(app, "/v1/dashboard/billing/usage", unlimited)["total_usage"] == 0

    for path in ["/v1/key", "/v1/dashboard/billing/subscription", "/v1/dashboard/billing/usage"]:
        with pytest.raises(urllib.error.HTTPError) as refused:
            get(app, path, "sk-bc-not-a-key")
        assert refused.value.code == 401
        assert json.loads(refused.value.read())["error"]["code"] == "invalid_api_key"


def test_the_official_sdk_does_not_retry_a_spent_key(burncloud):
    # The SDK retries a 429 twice by default, with back-off; a spent key is told not to bother.
    app = burncloud
    key = app.token(name="spent", quota_limit="0")
    client = openai.OpenAI(base_url=app.base + "/v1", api_key=key, timeout=20)  # its default retries
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.code == "insufficient_quota"
    assert refused.value.response.headers["x-should-retry"] == "false"
    poll(lambda: app.console("GET", "/console/internal/health")["log_writer"]["queued"], lambda queued: queued == 0)
    rows = app.console("GET", "/console/api/logs?limit=10")["items"]
    assert [row["end_reason"] for row in rows] == ["rejected"], "one call, not three"
