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
