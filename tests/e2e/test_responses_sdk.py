"""The official `openai` SDK's Responses API (`responses.create`, `responses.stream`) against the real
binary, in front of every channel kind: OpenAI's own Responses API (passed through), an
OpenAI-compatible server without it, DeepSeek, Qwen, Claude and Gemini (converted to and from chat)."""

import json
import urllib.request

import openai
import pytest
from pydantic import BaseModel

from conftest import REPLY, UPSTREAM_KEY, poll

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}
NATIVE = "gpt-native"
CONVERTED = ["gpt-compatible", "deepseek-chat", "qwen-plus", "claude-sonnet-4-5", "gemini-2.5-flash"]


class City(BaseModel):
    name: str


def sdk(app, key):
    return openai.OpenAI(base_url=app.base + "/v1", api_key=key, max_retries=0, timeout=20)


@pytest.fixture
def every_kind(burncloud, upstream):
    channels = [
        ("openai", "openai", upstream + "/v1", NATIVE, True),
        ("compatible", "openai", upstream + "/v1", "gpt-compatible", False),
        ("deepseek", "deepseek", upstream + "/v1", "deepseek-chat", False),
        ("qwen", "qwen", upstream + "/v1", "qwen-plus", False),
        ("claude", "anthropic", upstream, "claude-sonnet-4-5", False),
        ("gemini", "gemini", upstream, "gemini-2.5-flash", False),
    ]
    for name, kind, base_url, model, native in channels:
        burncloud.console("POST", "/console/api/channels", {"name": name, "kind": kind, "base_url": base_url,
                                                            "api_key": UPSTREAM_KEY, "models": [model],
                                                            "native_responses": native})
    return burncloud


@pytest.mark.parametrize("model", [NATIVE, *CONVERTED])
def test_create_and_stream_text(every_kind, model):
    client = sdk(every_kind, every_kind.token())
    response = client.responses.create(model=model, input="Say hello", instructions="Be brief.")
    assert response.output_text == REPLY
    assert response.status == "completed"
    assert response.usage.input_tokens == 21 and response.usage.output_tokens == 9

    with client.responses.stream(model=model, input=[{"role": "user", "content": "Say hello"}]) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == REPLY
    assert final.output_text == REPLY
    assert final.usage.output_tokens == 9


@pytest.mark.parametrize("model", CONVERTED)
def test_tool_calls_json_schema_and_previous_response_id(every_kind, model):
    client = sdk(every_kind, every_kind.token())
    response = client.responses.create(model=model, input="Weather in Paris and Tokyo?", tools=[WEATHER])
    calls = [item for item in response.output if item.type == "function_call"]
    assert [json.loads(c.arguments) for c in calls] == [{"location": "Paris"}, {"location": "Tokyo"}]

    with client.responses.stream(model=model, input="Weather?", tools=[WEATHER]) as stream:
        final = stream.get_final_response()
    calls = [item for item in final.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather", "get_weather"]
    # The tool results go back as function_call_output items, and the model answers.
    follow_up = [*[{"type": "function_call", "call_id": c.call_id, "name": c.name, "arguments": c.arguments}
                   for c in calls],
                 *[{"type": "function_call_output", "call_id": c.call_id, "output": "sunny"} for c in calls]]
    answer = client.responses.create(model=model, input=follow_up, tools=[WEATHER])
    assert answer.status == "completed"

    if model != "claude-sonnet-4-5":
        # Claude channels take no response schema; the others are asked for it and answer in it.
        parsed = client.responses.parse(model=model, input="Name a city", text_format=City)
        assert parsed.output_parsed == City(name="Paris")

    first = client.responses.create(model=model, input="Remember: blue.")
    second = client.responses.create(model=model, input="What colour?", previous_response_id=first.id)
    assert second.output_text == REPLY and second.previous_response_id == first.id
    assert client.responses.retrieve(first.id).id == first.id
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)


def test_bad_requests_raise_the_sdks_own_errors(every_kind):
    client = sdk(every_kind, every_kind.token())
    with pytest.raises(openai.BadRequestError) as hosted:
        client.responses.create(model="deepseek-chat", input="x", tools=[{"type": "web_search"}])
    assert "web_search" in hosted.value.message
    with pytest.raises(openai.BadRequestError) as missing:
        client.responses.create(model="deepseek-chat", input="x", previous_response_id="resp_missing")
    assert "resp_missing" in missing.value.message
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="deepseek-chat", input=[{"type": "no_such_item"}])
    with pytest.raises(openai.APIStatusError) as too_big:
        client.responses.create(model="deepseek-chat", input="x" * (33 * 1024 * 1024))
    assert too_big.value.status_code == 413


def test_cache_usage_reaches_each_sdk_in_its_own_shape(every_kind, upstream):
    """With the upstream reporting prompt-cache hits, the Responses API shows cached_tokens and the
    log row carries them."""
    request = urllib.request.Request(upstream + "/_mock/mode", method="POST",
                                     data=json.dumps({"mode": "cached_usage"}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()
    client = sdk(every_kind, every_kind.token())
    for model in [NATIVE, "gpt-compatible", "gemini-2.5-flash"]:
        response = client.responses.create(model=model, input="Say hello")
        assert response.usage.input_tokens_details.cached_tokens == 15, model
    logs = poll(lambda: every_kind.console("GET", "/console/api/logs?limit=3")["items"], lambda rows: len(rows) == 3)
    assert [row["cached_tokens"] for row in logs] == [15, 15, 15]


@pytest.mark.parametrize("model", [NATIVE, "deepseek-chat", "claude-sonnet-4-5"])
def test_compact_shortens_a_conversation_that_then_goes_on(every_kind, model):
    client = sdk(every_kind, every_kind.token())
    conversation = [
        {"role": "user", "content": "Fix the failing test"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"role": "assistant", "content": "Done: the test passes."},
    ]
    compacted = client.responses.compact(model=model, input=conversation)
    assert compacted.object == "response.compaction"
    kinds = [item.type for item in compacted.output]
    assert kinds[-1] == "compaction" and kinds.count("compaction") == 1, kinds
    user_turns = [item for item in compacted.output if item.type == "message"]
    assert [turn.role for turn in user_turns] == ["user"]
    # The compacted items are the next turn's history.
    next_input = [item.model_dump(exclude_none=True) for item in compacted.output]
    next_input.append({"role": "user", "content": "What next?"})
    answer = client.responses.create(model=model, input=next_input)
    assert answer.output_text == REPLY
