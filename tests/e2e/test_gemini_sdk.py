"""Gemini's own API on BurnCloud's port, driven by Google's official `google-genai` SDK (what Gemini
CLI is built on) against an OpenAI-format channel: generate and stream, system instructions, tools,
JSON output, token counts, embeddings, the model list, errors in Gemini's shape, and each call logged
and charged."""

import json

import pytest
from google import genai
from google.genai import errors, types

from conftest import REPLY, poll


def client(app, key):
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=app.base, api_version="v1beta"))


def test_the_google_genai_sdk_generates_streams_calls_tools_and_embeds(burncloud):
    app = burncloud
    app.console("PUT", "/console/api/prices/gpt-4o-mini", {"input_per_mtok": "1.5", "output_per_mtok": "6"})
    gemini = client(app, app.token())

    names = [model.name for model in gemini.models.list()]
    assert {"models/gpt-4o-mini", "models/text-embedding-3-small"} <= set(names), names

    reply = gemini.models.generate_content(
        model="gpt-4o-mini", contents="hi", config=types.GenerateContentConfig(system_instruction="Be brief."))
    assert reply.text == REPLY
    assert reply.candidates[0].finish_reason == types.FinishReason.STOP
    assert reply.usage_metadata.prompt_token_count > 0 and reply.usage_metadata.candidates_token_count > 0

    streamed = list(gemini.models.generate_content_stream(model="gpt-4o-mini", contents="hi"))
    assert "".join(chunk.text or "" for chunk in streamed) == REPLY
    assert streamed[-1].usage_metadata.total_token_count > 0

    structured = gemini.models.generate_content(
        model="gpt-4o-mini", contents="hi", config=types.GenerateContentConfig(response_mime_type="application/json"))
    assert json.loads(structured.text) == {"answer": REPLY}

    weather = types.FunctionDeclaration(
        name="weather", description="The weather in a city.",
        parameters=types.Schema(type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)},
                                required=["city"]))
    tools = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[weather])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
    called = gemini.models.generate_content(model="gpt-4o-mini", contents="Weather in Paris?", config=tools)
    (call, *_) = called.function_calls
    assert call.name == "weather" and isinstance(call.args, dict)
    # The result goes back by name, as Gemini clients send it; the conversation continues.
    follow_up = gemini.models.generate_content(model="gpt-4o-mini", config=tools, contents=[
        types.Content(role="user", parts=[types.Part.from_text(text="Weather in Paris?")]),
        called.candidates[0].content,
        types.Content(role="user", parts=[types.Part.from_function_response(name="weather", response={"sky": "clear"})]),
    ])
    assert follow_up.candidates[0].finish_reason == types.FinishReason.STOP

    counted = gemini.models.count_tokens(model="gpt-4o-mini", contents="How many tokens is this sentence?")
    assert 3 < counted.total_tokens < 30

    embedded = gemini.models.embed_content(model="text-embedding-3-small", contents=["a", "b"])
    assert [len(e.values) for e in embedded.embeddings] == [3, 3]

    rows = poll(lambda: app.console("GET", "/console/api/logs?limit=50")["items"], lambda rows: len(rows) >= 6)
    endpoints = {row["endpoint"] for row in rows}
    assert endpoints == {"/v1beta/models:generateContent", "/v1beta/models:streamGenerateContent",
                         "/v1beta/models:batchEmbedContents"}, endpoints
    assert all(row["status"] == 200 for row in rows) and sum(row["prompt_tokens"] for row in rows) > 0


def test_gemini_errors_come_in_geminis_shape_with_the_right_status(burncloud):
    app = burncloud
    # Each client is kept in a name: a client left to the garbage collector closes its connection.
    wrong = client(app, "sk-bc-wrong")
    with pytest.raises(errors.ClientError) as wrong_key:
        wrong.models.generate_content(model="gpt-4o-mini", contents="hi")
    assert wrong_key.value.code == 401 and wrong_key.value.status == "UNAUTHENTICATED"
    good = client(app, app.token())
    with pytest.raises(errors.ClientError) as unknown:
        good.models.generate_content(model="no-such-model", contents="hi")
    assert unknown.value.code == 404 and unknown.value.status == "NOT_FOUND"
    with pytest.raises(errors.ClientError) as google_only:
        good.models.generate_content(model="gpt-4o-mini", contents="hi", config=types.GenerateContentConfig(
            tools=[types.Tool(google_search=types.GoogleSearch())]))
    assert google_only.value.code == 400 and "googleSearch" in google_only.value.message
    limited = client(app, app.token(name="one a minute", rpm_limit=1))
    limited.models.generate_content(model="gpt-4o-mini", contents="hi")
    with pytest.raises(errors.ClientError) as over:
        limited.models.generate_content(model="gpt-4o-mini", contents="hi")
    assert over.value.code == 429 and over.value.status == "RESOURCE_EXHAUSTED"
    # Past the 32 MiB body limit: 413 in Gemini's shape.
    with pytest.raises(errors.ClientError) as too_large:
        good.models.generate_content(model="gpt-4o-mini", contents="x" * (33 << 20))
    assert too_large.value.code == 413 and too_large.value.status == "INVALID_ARGUMENT"


def test_the_key_in_the_query_and_the_json_array_stream_without_alt_sse(burncloud):
    import urllib.request

    app = burncloud
    key = app.token()
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}).encode()
    url = f"{app.base}/v1beta/models/gpt-4o-mini:streamGenerateContent?key={key}"
    request = urllib.request.Request(url, method="POST", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=20) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        elements = json.loads(response.read())
    assert isinstance(elements, list) and len(elements) > 1
    assert "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in elements
                   if e["candidates"][0]["content"]["parts"]) == REPLY
    assert elements[-1]["candidates"][0]["finishReason"] == "STOP" and elements[-1]["usageMetadata"]["totalTokenCount"]


def test_a_gemini_channel_gets_the_callers_own_request_and_its_answer_comes_back_untouched(burncloud, upstream):
    """Google Search grounding has no OpenAI form: it reaches a Gemini channel as sent, and what
    Gemini answers about it (grounding metadata) reaches the caller; other channels refuse it."""
    from conftest import UPSTREAM_KEY

    app = burncloud
    app.console("POST", "/console/api/channels", {
        "name": "gemini", "kind": "gemini", "base_url": upstream, "api_key": UPSTREAM_KEY,
        "models": ["gemini-2.5-flash", "flash"], "model_mapping": {"flash": "gemini-2.5-flash"}})
    app.console("PUT", "/console/api/prices/gemini-2.5-flash", {"input_per_mtok": "0.3", "output_per_mtok": "2.5"})
    gemini = client(app, app.token())
    search = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])

    grounded = gemini.models.generate_content(model="flash", contents="What is BurnCloud?", config=search)
    assert grounded.text == REPLY
    metadata = grounded.candidates[0].grounding_metadata
    assert metadata.web_search_queries == ["burncloud gateway"]
    assert metadata.grounding_chunks[0].web.uri == "https://example.invalid/burncloud"

    streamed = list(gemini.models.generate_content_stream(model="flash", contents="What is BurnCloud?", config=search))
    assert "".join(chunk.text or "" for chunk in streamed) == REPLY
    assert streamed[-1].candidates[0].grounding_metadata.web_search_queries == ["burncloud gateway"]

    # An OpenAI-format channel cannot run Google's search: refused in Gemini's shape, with the reason.
    with pytest.raises(errors.ClientError) as refused:
        gemini.models.generate_content(model="gpt-4o-mini", contents="What is BurnCloud?", config=search)
    assert refused.value.code == 400 and "Gemini channel" in refused.value.message

    rows = poll(lambda: app.console("GET", "/console/api/logs?limit=10")["items"], lambda rows: len(rows) >= 3)
    served = [row for row in rows if row["status"] == 200]
    assert len(served) == 2 and all(row["upstream_model"] == "gemini-2.5-flash" for row in served)
    assert all(row["prompt_tokens"] > 0 and row["completion_tokens"] > 0 and row["priced"] for row in served), served
