"""The official `openai` SDK against the real `burncloud` binary."""

import http.server
import signal
import sqlite3
import threading
import urllib.parse
import urllib.request

import openai
import pytest

from conftest import REPLY, UPSTREAM_KEY, BurnCloud, poll, stop


def client(app, key):
    return openai.OpenAI(base_url=app.base + "/v1", api_key=key, max_retries=0, timeout=20)


def test_chat_completion(burncloud):
    sdk = client(burncloud, burncloud.token())
    answer = sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}])
    assert answer.choices[0].message.content == REPLY
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage.prompt_tokens == 21 and answer.usage.completion_tokens == 9


def test_streaming_without_and_with_usage(burncloud):
    sdk = client(burncloud, burncloud.token())
    messages = [{"role": "user", "content": "Say hello"}]
    chunks = list(sdk.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY
    assert all(c.choices for c in chunks), "the usage chunk BurnCloud asked for is not shown"

    chunks = list(
        sdk.chat.completions.create(
            model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 9


def test_embeddings_and_models(burncloud):
    sdk = client(burncloud, burncloud.token())
    vectors = sdk.embeddings.create(model="text-embedding-3-small", input=["one", "two"])
    assert len(vectors.data) == 2 and vectors.usage.prompt_tokens == 8
    assert sorted(m.id for m in sdk.models.list()) == ["gpt-4o-mini", "text-embedding-3-small"]


def test_moderations_and_image_generations_pass_through_to_openai_channels(burncloud, upstream):
    import base64

    app = burncloud
    app.console("POST", "/console/api/channels", {
        "name": "images and moderation", "kind": "openai", "base_url": upstream + "/v1", "api_key": UPSTREAM_KEY,
        "models": ["omni-moderation-latest", "dall-e-3"]})
    app.console("POST", "/console/api/channels", {
        "name": "claude", "kind": "anthropic", "base_url": upstream, "api_key": UPSTREAM_KEY, "models": ["claude-draw"]})
    sdk = client(app, app.token())

    moderated = sdk.moderations.create(model="omni-moderation-latest", input=["hello there", "graphic violence"])
    assert [result.flagged for result in moderated.results] == [False, True]
    assert moderated.results[1].categories.violence and moderated.results[1].category_scores.violence > 0.5

    drawn = sdk.images.generate(model="dall-e-3", prompt="a lighthouse at dusk", n=2, response_format="b64_json")
    assert len(drawn.data) == 2 and base64.b64decode(drawn.data[0].b64_json).startswith(b"\x89PNG")
    linked = sdk.images.generate(model="dall-e-3", prompt="a lighthouse at dusk")
    assert linked.data[0].url.endswith(".png")

    # A channel that cannot draw says so in OpenAI's shape.
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.images.generate(model="claude-draw", prompt="a lighthouse")
    assert "/v1/images/generations" in refused.value.message
    rows = poll(lambda: app.console("GET", "/console/api/logs?limit=10")["items"], lambda rows: len(rows) == 4)
    assert sorted(row["endpoint"] for row in rows) == [
        "/v1/images/generations", "/v1/images/generations", "/v1/images/generations", "/v1/moderations"]


def test_sdk_raises_the_right_exceptions(burncloud):
    with pytest.raises(openai.AuthenticationError):
        client(burncloud, "sk-bc-wrong").models.list()
    sdk = client(burncloud, burncloud.token())
    with pytest.raises(openai.NotFoundError) as not_found:
        sdk.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert not_found.value.code == "model_not_found"

    burncloud.console("PUT", "/console/api/prices/gpt-4o-mini", {"input_per_mtok": "1000", "output_per_mtok": "1000"})
    limited = client(burncloud, burncloud.token(quota_limit="0.01"))
    limited.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.RateLimitError) as spent:
        limited.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert spent.value.code == "insufficient_quota"


def test_sigterm_stores_every_log_row_and_exits_cleanly(burncloud):
    sdk = client(burncloud, burncloud.token())
    burncloud.console("PUT", "/console/api/prices/gpt-4o-mini", {"input_per_mtok": "2", "output_per_mtok": "4"})
    calls = 25
    for _ in range(calls):
        sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert stop(burncloud.process, signal.SIGTERM) == 0
    database = sqlite3.connect(burncloud.data_dir / "burncloud.db")
    rows, logged_cost = database.execute("SELECT COUNT(*), SUM(cost_nano) FROM logs").fetchone()
    (used,) = database.execute("SELECT used_nano FROM account").fetchone()
    (integrity,) = database.execute("PRAGMA integrity_check").fetchone()
    assert rows == calls
    assert logged_cost == used == calls * (21 * 2000 + 9 * 4000)
    assert integrity == "ok"


WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}


def test_the_openai_sdk_reaches_a_claude_channel_with_streams_and_tools(burncloud, upstream):
    from conftest import UPSTREAM_KEY
    burncloud.console("POST", "/console/api/channels", {
        "name": "claude", "kind": "anthropic", "base_url": upstream, "api_key": UPSTREAM_KEY,
        "models": ["claude-sonnet-4-5"],
    })
    sdk = client(burncloud, burncloud.token())
    answer = sdk.chat.completions.create(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "Hi"}])
    assert answer.choices[0].message.content == REPLY
    assert answer.usage.prompt_tokens == 21

    stream = sdk.chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "Weather in Paris and Tokyo?"}],
        tools=[WEATHER_TOOL], stream=True,
    )
    arguments = {}
    finish = None
    for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or []:
            arguments[call.index] = arguments.get(call.index, "") + (call.function.arguments or "")
        finish = chunk.choices[0].finish_reason or finish
    assert arguments == {0: '{"location": "Paris"}', 1: '{"location": "Tokyo"}'}
    assert finish == "tool_calls"

    answer = sdk.chat.completions.create(
        model="claude-sonnet-4-5", tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    calls = answer.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_weather"]
    assert answer.choices[0].finish_reason == "tool_calls"


def test_the_openai_sdk_reaches_a_gemini_channel_with_streams_and_tools(burncloud, upstream):
    from conftest import UPSTREAM_KEY
    burncloud.console("POST", "/console/api/channels", {
        "name": "gemini", "kind": "gemini", "base_url": upstream, "api_key": UPSTREAM_KEY,
        "models": ["gemini-2.5-flash"],
    })
    sdk = client(burncloud, burncloud.token())
    chunks = list(sdk.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "Hi"}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY
    answer = sdk.chat.completions.create(
        model="gemini-2.5-flash", tools=[WEATHER_TOOL], messages=[{"role": "user", "content": "Weather?"}])
    assert [c.function.name for c in answer.choices[0].message.tool_calls] == ["get_weather", "get_weather"]


def test_upstream_calls_follow_the_proxy_settings(upstream, tmp_path):
    """A provider reachable only through the user's HTTP proxy works; NO_PROXY keeps a local one direct."""
    seen = []

    class ForwardProxy(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append((self.path, self.headers.get("Authorization")))
            body = self.rfile.read(int(self.headers["Content-Length"]))
            target = upstream + urllib.parse.urlsplit(self.path).path
            headers = {name: self.headers[name] for name in ("Authorization", "Content-Type")}
            with urllib.request.urlopen(urllib.request.Request(target, data=body, headers=headers)) as answer:
                payload, content_type = answer.read(), answer.headers["Content-Type"]
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ForwardProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    proxy_url = f"http://127.0.0.1:{proxy.server_port}"
    settings = {"HTTP_PROXY": proxy_url, "http_proxy": proxy_url, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    app = BurnCloud(tmp_path, extra_env=settings)
    try:
        for name, base_url, model in [
            ("behind the proxy", "http://provider.invalid/v1", "gpt-4o-mini"),
            ("on this machine", upstream + "/v1", "text-embedding-3-small"),
        ]:
            app.console(
                "POST",
                "/console/api/channels",
                {"name": name, "kind": "openai", "base_url": base_url, "api_key": UPSTREAM_KEY, "models": [model]},
            )
        sdk = client(app, app.token())
        answer = sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}])
        assert answer.choices[0].message.content == REPLY
        assert seen == [("http://provider.invalid/v1/chat/completions", f"Bearer {UPSTREAM_KEY}")]
        assert sdk.embeddings.create(model="text-embedding-3-small", input="hi").data[0].embedding
        assert len(seen) == 1, "the upstream NO_PROXY names was called directly"
    finally:
        stop(app.process)
        proxy.shutdown()
