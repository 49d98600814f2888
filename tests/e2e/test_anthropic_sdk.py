"""The official `anthropic` SDK against BurnCloud's `/v1/messages`, in front of an OpenAI-format
channel and a Gemini channel (converted both ways) and an Anthropic channel (passed through natively)."""

import anthropic
import pytest

from conftest import REPLY, UPSTREAM_KEY

WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}


def sdk(app, key):
    return anthropic.Anthropic(base_url=app.base, api_key=key, max_retries=0, timeout=20)


@pytest.fixture
def claude(burncloud, upstream):
    for name, kind, model in [("claude", "anthropic", "claude-mock"), ("gemini", "gemini", "gemini-mock")]:
        burncloud.console("POST", "/console/api/channels", {
            "name": name, "kind": kind, "base_url": upstream, "api_key": UPSTREAM_KEY, "models": [model],
        })
    return burncloud


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-mock"])
def test_messages_answer_and_stream(claude, model):
    client = sdk(claude, claude.token())
    message = client.messages.create(model=model, max_tokens=100, system="Be brief.",
                                     messages=[{"role": "user", "content": "Hello"}])
    assert message.content[0].text == REPLY
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 21 and message.usage.output_tokens == 9

    with client.messages.stream(model=model, max_tokens=100, messages=[{"role": "user", "content": "Hello"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == REPLY
    assert final.usage.output_tokens == 9


@pytest.mark.parametrize("model", ["claude-mock", "gemini-mock", "gpt-4o-mini"])
def test_tool_use_streams_natively_from_claude_and_converted_from_gemini_and_openai(claude, model):
    client = sdk(claude, claude.token())
    with client.messages.stream(model=model, max_tokens=100, tools=[WEATHER],
                                messages=[{"role": "user", "content": "Weather in Paris and Tokyo?"}]) as stream:
        final = stream.get_final_message()
    tools = [block for block in final.content if block.type == "tool_use"]
    assert [t.input for t in tools] == [{"location": "Paris"}, {"location": "Tokyo"}]
    assert final.stop_reason == "tool_use"


def test_errors_come_in_anthropics_shape(claude):
    with pytest.raises(anthropic.AuthenticationError):
        sdk(claude, "sk-bc-wrong").messages.create(model="gpt-4o-mini", max_tokens=10,
                                                   messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.NotFoundError) as missing:
        sdk(claude, claude.token()).messages.create(model="nope", max_tokens=10,
                                                    messages=[{"role": "user", "content": "hi"}])
    assert missing.value.body["error"]["type"] == "not_found_error"


def test_count_tokens(claude):
    counted = sdk(claude, claude.token()).messages.count_tokens(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello world"}])
    assert counted.input_tokens == 2 + 3 * 2


def test_cache_usage_reaches_the_sdk_and_the_bill(claude, upstream):
    """Prompt-cache reads and writes, from a Claude channel (passed through) and from an OpenAI-format
    channel (converted), come out in Anthropic's usage fields, and each is billed at its own price."""
    import json
    import urllib.request

    from conftest import poll

    request = urllib.request.Request(upstream + "/_mock/mode", method="POST",
                                     data=json.dumps({"mode": "cached_usage"}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()
    for model in ["claude-mock", "gpt-4o-mini"]:
        claude.console("PUT", f"/console/api/prices/{model}", {
            "input_per_mtok": "3", "output_per_mtok": "15", "cache_read_per_mtok": "0.3",
            "cache_write_per_mtok": "3.75", "cache_write_1h_per_mtok": "6"})
    client = sdk(claude, claude.token())
    native = client.messages.create(model="claude-mock", max_tokens=100, messages=[{"role": "user", "content": "Hi"}])
    assert native.usage.input_tokens == 21
    assert native.usage.cache_read_input_tokens == 1000
    assert native.usage.cache_creation_input_tokens == 300
    converted = client.messages.create(model="gpt-4o-mini", max_tokens=100, messages=[{"role": "user", "content": "Hi"}])
    assert (converted.usage.input_tokens, converted.usage.cache_read_input_tokens) == (21 - 15, 15)

    rows = poll(lambda: claude.console("GET", "/console/api/logs?limit=2")["items"], lambda rows: len(rows) == 2)
    by_model = {row["model"]: row for row in rows}
    claude_row, openai_row = by_model["claude-mock"], by_model["gpt-4o-mini"]
    assert (claude_row["prompt_tokens"], claude_row["cached_tokens"], claude_row["cache_write_tokens"]) == (1321, 1000, 300)
    # 21 × 3 + 1000 × 0.3 + 100 × 3.75 + 200 × 6 + 9 × 15, per million tokens.
    assert claude_row["cost"] == "0.002073"
    # 6 × 3 + 15 × 0.3 + 9 × 15, per million tokens.
    assert openai_row["cost"] == "0.0001575"
