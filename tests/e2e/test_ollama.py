"""Ollama's API on BurnCloud's port, driven by the official `ollama` Python client: list, show,
chat and generate streamed and not, tools, JSON format, embeddings, errors in Ollama's shape, and
the calls logged and charged like any other; routed to an OpenAI-format channel and to a local
model on the real llama-server."""

import json
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import ollama
import pytest

from conftest import FILL, REPLY, BurnCloud, poll, stop
from test_inference import make_tiny


def client(app, key):
    return ollama.Client(host=app.base, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def test_the_ollama_client_lists_chats_generates_and_embeds_through_an_openai_channel(burncloud):
    app = burncloud
    app.console("PUT", "/console/api/prices/gpt-4o-mini", {"input_per_mtok": "1.5", "output_per_mtok": "6"})
    ollama_client = client(app, app.token())

    names = [model.model for model in ollama_client.list().models]
    assert {"gpt-4o-mini", "text-embedding-3-small"} <= set(names), names
    shown = ollama_client.show("gpt-4o-mini")
    assert "completion" in shown.capabilities

    reply = ollama_client.chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=False)
    assert reply.message.role == "assistant" and reply.message.content == REPLY
    assert reply.done and reply.done_reason == "stop"
    assert reply.prompt_eval_count > 0 and reply.eval_count > 0 and reply.total_duration > 0

    chunks = list(ollama_client.chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert "".join(chunk.message.content for chunk in chunks) == REPLY
    assert [chunk.done for chunk in chunks].count(True) == 1 and chunks[-1].done
    assert chunks[-1].eval_count > 0 and chunks[-1].eval_duration is not None

    generated = ollama_client.generate(model="gpt-4o-mini", prompt="hi", system="Be brief.", stream=False)
    assert generated.response == REPLY and generated.done
    pieces = list(ollama_client.generate(model="gpt-4o-mini", prompt="hi", stream=True))
    assert "".join(piece.response for piece in pieces) == REPLY

    # Fill-in-the-middle, as editor plugins ask for code at the cursor: a completion with the suffix.
    filled = ollama_client.generate(model="gpt-4o-mini", prompt="def add(a, b):\n    return",
                                    suffix="\n\nprint(add(1, 2))", stream=False, options={"num_predict": 16})
    assert (filled.response, filled.done, filled.eval_count) == (FILL, True, 9)
    filled_pieces = list(ollama_client.generate(model="gpt-4o-mini", prompt="def add(a, b):\n    return",
                                                suffix="\n", stream=True))
    assert "".join(piece.response for piece in filled_pieces) == FILL and filled_pieces[-1].eval_count == 9

    structured = ollama_client.chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                    format="json", stream=False)
    assert json.loads(structured.message.content) == {"answer": REPLY}

    def weather(city: str) -> str:
        """The weather in a city.

        Args:
          city: The city's name
        """
        return "sunny"

    called = ollama_client.chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "Weather in Paris?"}],
                                tools=[weather], stream=False)
    calls = called.message.tool_calls
    assert calls and calls[0].function.name == "weather" and isinstance(calls[0].function.arguments, dict)
    # The result goes back without an id, as Ollama clients send it; the answer continues.
    follow_up = ollama_client.chat(model="gpt-4o-mini", stream=False, messages=[
        {"role": "user", "content": "Weather in Paris?"}, called.message,
        {"role": "tool", "tool_name": "weather", "content": "sunny"}])
    assert follow_up.done
    streamed_calls = [chunk for chunk in ollama_client.chat(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Weather?"}], tools=[weather], stream=True)
        if chunk.message.tool_calls]
    assert streamed_calls and streamed_calls[0].message.tool_calls[0].function.name == "weather"

    embedded = ollama_client.embed(model="text-embedding-3-small", input=["a", "b"])
    assert len(embedded.embeddings) == 2 and len(embedded.embeddings[0]) == 3
    legacy = ollama_client.embeddings(model="text-embedding-3-small", prompt="a")
    assert len(legacy.embedding) == 3

    # Rows are written in batches: wait for every one of the calls above.
    rows = poll(lambda: app.console("GET", "/console/api/logs?limit=50")["items"], lambda rows: len(rows) >= 12)
    endpoints = {row["endpoint"] for row in rows}
    assert {"/api/chat", "/api/generate", "/api/embed", "/api/embeddings"} == endpoints, endpoints
    chat_rows = [row for row in rows if row["endpoint"] == "/api/chat" and row["status"] == 200]
    assert chat_rows and all(row["prompt_tokens"] > 0 for row in chat_rows)


def test_ollama_errors_come_in_ollamas_shape_with_the_right_status(burncloud):
    app = burncloud
    good = client(app, app.token())
    with pytest.raises(ollama.ResponseError) as wrong_key:
        client(app, "sk-bc-wrong").chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=False)
    assert wrong_key.value.status_code == 401 and "API key" in wrong_key.value.error
    with pytest.raises(ollama.ResponseError) as unknown:
        good.chat(model="no-such-model", messages=[{"role": "user", "content": "hi"}], stream=False)
    assert unknown.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as unknown_show:
        good.show("no-such-model")
    assert unknown_show.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as fim:
        good.generate(model="gpt-4o-mini", prompt="def f(", suffix="return 1", stream=False, images=[b"\x89PNG"])
    assert fim.value.status_code == 400 and "fill-in-the-middle takes text only" in fim.value.error
    with pytest.raises(ollama.ResponseError) as pull:
        good.pull("llama3")
    assert pull.value.status_code == 501 and "Models and Deployments" in pull.value.error
    # A stream that cannot start answers with the error, not an empty stream.
    with pytest.raises(ollama.ResponseError) as streamed:
        list(good.chat(model="no-such-model", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert streamed.value.status_code == 404

    limited = client(app, app.token(name="one a minute", rpm_limit=1))
    limited.chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=False)
    with pytest.raises(ollama.ResponseError) as over:
        limited.chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=False)
    assert over.value.status_code == 429

    request = urllib.request.Request(app.base + "/api/chat", method="POST", data=b"{not json",
                                     headers={"Authorization": f"Bearer {app.token()}"})
    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(request, timeout=10)
    assert bad.value.code == 400 and set(json.loads(bad.value.read())) == {"error"}
    # Past the 32 MiB body limit: 413 in Ollama's shape.
    huge = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "' + b"x" * (33 << 20) + b'"}]}'
    request = urllib.request.Request(app.base + "/api/chat", method="POST", data=huge,
                                     headers={"Authorization": f"Bearer {app.token()}"})
    with pytest.raises(urllib.error.HTTPError) as too_large:
        urllib.request.urlopen(request, timeout=30)
    assert too_large.value.code == 413 and isinstance(json.loads(too_large.value.read())["error"], str)
    with urllib.request.urlopen(app.base + "/api/version", timeout=10) as response:
        assert json.loads(response.read())["version"]


def test_keyless_calls_from_this_machine_are_charged_to_the_token_the_user_picked(burncloud):
    app = burncloud
    keyless = ollama.Client(host=app.base, timeout=60)
    with pytest.raises(ollama.ResponseError) as refused:
        keyless.chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=False)
    assert refused.value.status_code == 401, "off until the user picks a token"

    tokens = {name: app.console("POST", "/console/api/tokens", {"name": name})["id"] for name in ["first", "second"]}
    for name in ["first", "second"]:
        app.console("PUT", f"/console/api/tokens/{tokens[name]}", {"keyless_local": True})
    picked = [t["name"] for t in app.console("GET", "/console/api/tokens") if t["keyless_local"]]
    assert picked == ["second"], "one token at most: picking another moves it"

    assert [model.model for model in keyless.list().models]
    reply = keyless.chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=False)
    assert reply.message.content == REPLY
    rows = poll(lambda: app.console("GET", "/console/api/logs?limit=5")["items"], lambda rows: len(rows) == 1)
    assert (rows[0]["token_name"], rows[0]["endpoint"]) == ("second", "/api/chat")
    # A wrong key is still wrong: only a call with no key at all is let in this way.
    with pytest.raises(ollama.ResponseError) as wrong:
        client(app, "sk-bc-wrong").chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=False)
    assert wrong.value.status_code == 401
    # The OpenAI routes always want a key.
    request = urllib.request.Request(app.base + "/v1/models")
    with pytest.raises(urllib.error.HTTPError) as openai_route:
        urllib.request.urlopen(request, timeout=10)
    assert openai_route.value.code == 401

    app.console("PUT", f"/console/api/tokens/{tokens['second']}", {"keyless_local": False})
    with pytest.raises(ollama.ResponseError) as off_again:
        keyless.chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=False)
    assert off_again.value.status_code == 401


def test_the_ollama_client_runs_local_models_on_llama_server_and_sees_them_loaded(llama_server, tiny_gguf, tmp_path):
    with tempfile.TemporaryDirectory() as data_dir:
        app = BurnCloud(Path(data_dir))
        try:
            for path in (tiny_gguf, make_tiny(tmp_path, "embedding")):
                model = app.console("POST", "/console/api/models/local/import", {"path": str(path)})
                app.console("POST", "/console/api/instances", {"model_id": model["id"], "ctx_size": 512, "start": False})
            ollama_client = client(app, app.token())
            listed = {model.model: model for model in ollama_client.list().models}
            assert {"tiny", "tiny-embedding"} <= set(listed), listed
            assert listed["tiny"].size == tiny_gguf.stat().st_size and listed["tiny"].details.format == "gguf"
            # From the GGUF's own metadata: its architecture and the size label its writer gave it.
            details = listed["tiny"].details
            assert (details.family, details.families, details.parameter_size) == ("llama", ["llama"], "121K")
            assert ollama_client.show("tiny").details.parameter_size == "121K"
            assert ollama_client.ps().models == [], "nothing is loaded before a call"

            chunks = list(ollama_client.chat(model="tiny", messages=[{"role": "user", "content": "hi"}], stream=True,
                                             options={"num_predict": 8, "temperature": 0}))
            assert chunks[-1].done and chunks[-1].eval_count > 0
            assert "".join(chunk.message.content for chunk in chunks)
            loaded = ollama_client.ps().models
            assert [model.model for model in loaded] == ["tiny"] and loaded[0].size_vram > 0

            embedded = ollama_client.embed(model="tiny-embedding", input="hello world")
            assert len(embedded.embeddings) == 1 and len(embedded.embeddings[0]) == 64
            assert ollama_client.show("tiny-embedding").capabilities == ["embedding"]

            # keep_alive, as Ollama clients send it: 0 unloads at once, a prompt-less generate only
            # loads, a negative one keeps the model loaded, a duration unloads it that long after.
            # Fill-in-the-middle on the local model: llama-server's own /infill, around the model's FIM tokens.
            filled = ollama_client.generate(model="tiny", prompt="def add(a, b):\n    return", suffix="\n",
                                            stream=False, options={"num_predict": 6, "temperature": 0})
            assert filled.done and filled.done_reason == "length" and filled.response
            assert filled.eval_count == 6 and filled.prompt_eval_count > 5
            filled_pieces = list(ollama_client.generate(model="tiny", prompt="x = ", suffix="\nprint(x)", stream=True,
                                                        options={"num_predict": 4}))
            assert filled_pieces[-1].done and filled_pieces[-1].eval_count == 4
            assert "".join(piece.response for piece in filled_pieces)

            unloaded = ollama_client.generate(model="tiny", prompt="", keep_alive=0)
            assert (unloaded.done, unloaded.done_reason, unloaded.response) == (True, "unload", "")
            poll(lambda: [m.model for m in ollama_client.ps().models], lambda names: "tiny" not in names, timeout=30)
            loaded = ollama_client.generate(model="tiny", prompt="", keep_alive=-1)
            assert loaded.done_reason == "load"
            (tiny,) = [m for m in ollama_client.ps().models if m.model == "tiny"]
            assert tiny.expires_at is None, "kept loaded: no unload time"
            reply = ollama_client.chat(model="tiny", messages=[{"role": "user", "content": "hi"}], stream=False,
                                       options={"num_predict": 4}, keep_alive="2s")
            assert reply.done
            (tiny,) = [m for m in ollama_client.ps().models if m.model == "tiny"]
            assert tiny.expires_at is not None
            poll(lambda: [m.model for m in ollama_client.ps().models], lambda names: "tiny" not in names, timeout=30)
            with pytest.raises(ollama.ResponseError) as bad:
                ollama_client.generate(model="tiny", prompt="hi", keep_alive="soon")
            assert bad.value.status_code == 400 and "keep_alive" in bad.value.error
        finally:
            stop(app.process)
