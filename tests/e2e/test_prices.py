"""Published prices and prices that change with the prompt's length or the hour, through the real
binary: the shipped presets are listed with their sources, applied in the account's currency, and a
call is charged at the tier or the peak rate its prompt and its start time call for."""

import datetime
import json
import urllib.error
import urllib.request

import openai
import pytest

from conftest import UPSTREAM_KEY, poll


def console_error(app, method, path, body):
    """The status and `error` object of a console call that must fail."""
    with pytest.raises(urllib.error.HTTPError) as failed:
        app.console(method, path, body)
    return failed.value.code, json.loads(failed.value.read())["error"]


def mock_mode(upstream, mode):
    request = urllib.request.Request(upstream + "/_mock/mode", method="POST",
                                     data=json.dumps({"mode": mode}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()


def in_deepseek_peak(ms):
    """DeepSeek's peak hours: 01:00-04:00 and 06:00-10:00 UTC, Monday to Friday."""
    at = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    minute = at.hour * 60 + at.minute
    return at.weekday() < 5 and (60 <= minute < 240 or 360 <= minute < 600)


@pytest.fixture
def priced(burncloud, upstream):
    """A channel serving DeepSeek's model names from the mock, whose usage has cache reads."""
    burncloud.console("POST", "/console/api/channels", {
        "name": "deepseek", "kind": "deepseek", "base_url": upstream + "/v1", "api_key": UPSTREAM_KEY,
        "models": ["deepseek-flash"],
    })
    mock_mode(upstream, "cached_usage")
    return burncloud


def test_presets_are_listed_with_their_source_and_the_day_checked(burncloud):
    presets = burncloud.console("GET", "/console/api/prices/presets")
    providers = {preset["provider"] for preset in presets}
    assert {"Anthropic", "DeepSeek", "OpenAI", "Qwen"} <= providers
    for preset in presets:
        assert preset["source"].startswith("https://"), preset
        datetime.date.fromisoformat(preset["checked"])
        assert preset["cache_read_per_mtok"] is not None, preset
    flash = {p["currency"]: p for p in presets if p["model"] == "deepseek-flash"}
    assert set(flash) == {"USD", "CNY"}
    assert flash["USD"]["peak"]["windows_utc"] == ["01:00-04:00", "06:00-10:00"]
    assert flash["USD"]["peak"]["input_per_mtok"] == "0.3" and flash["USD"]["input_per_mtok"] == "0.15"
    haiku = next(p for p in presets if p["model"] == "claude-haiku-5-5")
    assert haiku["tiers"][0]["above_prompt_tokens"] == 100000 and haiku["tiers"][0]["input_per_mtok"] == "0.5"


def test_a_preset_applied_charges_the_published_peak_or_off_peak_rate(priced):
    applied = priced.console("POST", "/console/api/prices/presets/apply", {"models": ["deepseek-flash"]})
    assert [price["model"] for price in applied] == ["deepseek-flash"]
    listed = {price["model"]: price for price in priced.console("GET", "/console/api/prices")}
    assert listed["deepseek-flash"]["cache_read_per_mtok"] == "0.003"
    assert listed["deepseek-flash"]["peak"]["output_per_mtok"] == "1.2"

    client = openai.OpenAI(base_url=priced.base + "/v1", api_key=priced.token(), max_retries=0)
    answer = client.chat.completions.create(model="deepseek-flash", messages=[{"role": "user", "content": "Hi"}])
    # DeepSeek's own cache field reaches the client as DeepSeek sent it.
    assert answer.usage.model_extra["prompt_cache_hit_tokens"] == 15
    row = poll(lambda: priced.console("GET", "/console/api/logs?limit=1")["items"], lambda rows: len(rows) == 1)[0]
    assert (row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"]) == (21, 15, 9)
    if in_deepseek_peak(row["created_at_ms"]):
        # 6 × 0.30 + 15 × 0.006 + 9 × 1.20, per million tokens.
        assert row["cost"] == "0.00001269", row
    else:
        # 6 × 0.15 + 15 × 0.003 + 9 × 0.60, per million tokens.
        assert row["cost"] == "0.000006345", row


def test_a_long_prompt_pays_its_tier_on_every_token(burncloud, upstream):
    mock_mode(upstream, "cached_usage")
    price = {"input_per_mtok": "3", "output_per_mtok": "15", "cache_read_per_mtok": "0.3",
             "tiers": [{"above_prompt_tokens": 20, "input_per_mtok": "30", "output_per_mtok": "150",
                        "cache_read_per_mtok": "3"}]}
    stored = burncloud.console("PUT", "/console/api/prices/gpt-4o-mini", price)
    assert stored["tiers"] == [{"above_prompt_tokens": 20, "input_per_mtok": "30", "output_per_mtok": "150",
                                "cache_read_per_mtok": "3", "cache_write_per_mtok": None,
                                "cache_write_1h_per_mtok": None}]
    client = openai.OpenAI(base_url=burncloud.base + "/v1", api_key=burncloud.token(), max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
    row = poll(lambda: burncloud.console("GET", "/console/api/logs?limit=1")["items"], lambda rows: len(rows) == 1)[0]
    # The prompt (21 tokens) is over 20: 6 × 30 + 15 × 3 + 9 × 150, per million tokens.
    assert row["cost"] == "0.001575"
    token = burncloud.console("GET", "/console/api/tokens")[0]
    assert token["used_quota"] == row["cost"]


def test_presets_follow_the_account_currency_and_refuse_what_has_no_price_in_it(burncloud):
    burncloud.console("PUT", "/console/api/account", {"currency": "CNY"})
    applied = burncloud.console("POST", "/console/api/prices/presets/apply", {"models": ["deepseek-flash", "qwen3-max"]})
    assert [(p["model"], p["input_per_mtok"]) for p in applied] == [("deepseek-flash", "1"), ("qwen3-max", "2.5")]
    status, error = console_error(burncloud, "POST", "/console/api/prices/presets/apply",
                                  {"models": ["claude-opus-5-5", "no-such-model"]})
    assert status == 400
    assert "claude-opus-5-5 (published in USD only)" in error["message"], error
    assert "no-such-model (no published price)" in error["message"], error
    assert not any(p["model"] == "claude-opus-5-5" for p in burncloud.console("GET", "/console/api/prices"))


@pytest.mark.parametrize("price, says", [
    ({"tiers": [{"above_prompt_tokens": 1, "input_per_mtok": "1", "output_per_mtok": "1"}],
      "peak": {"windows_utc": ["01:00-02:00"], "input_per_mtok": "1", "output_per_mtok": "1"}}, "not both"),
    ({"peak": {"windows_utc": ["10:00-09:00"], "input_per_mtok": "1", "output_per_mtok": "1"}}, "10:00-09:00"),
    ({"peak": {"windows_utc": [], "input_per_mtok": "1", "output_per_mtok": "1"}}, "at least one window"),
    ({"tiers": [{"above_prompt_tokens": 5, "input_per_mtok": "1", "output_per_mtok": "1"},
                {"above_prompt_tokens": 5, "input_per_mtok": "2", "output_per_mtok": "2"}]}, "same above_prompt_tokens"),
    ({"tiers": [{"above_prompt_tokens": 5, "input_per_mtok": "-1", "output_per_mtok": "1"}]}, "negative"),
])
def test_schedules_that_cannot_be_billed_get_a_clear_400(burncloud, price, says):
    status, error = console_error(burncloud, "PUT", "/console/api/prices/m",
                                  {"input_per_mtok": "1", "output_per_mtok": "1", **price})
    assert status == 400 and says in error["message"], error
    assert burncloud.console("GET", "/console/api/prices") == []
