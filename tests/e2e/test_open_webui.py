"""Open WebUI, the real one from PyPI, in front of the real binary as its users set it up: its OpenAI
connection and its Ollama connection (with a key, and keyless from this machine) list BurnCloud's
models and chat through them, streamed and not; its knowledge files are embedded through BurnCloud's
`/v1/embeddings`, and a chat that cites one carries the retrieved text to the provider; a local GGUF
that BurnCloud runs on llama-server answers there as an Ollama model; its pictures, read-aloud and
dictation are made by BurnCloud's `/v1/images/generations`, `/v1/audio/speech` and
`/v1/audio/transcriptions`; and in its own page, in chromium, a user's message goes out with Open
WebUI's tools to an OpenAI, an Anthropic and a Gemini channel, the model's tool calls and their
results round-trip, and the answer streams back. Every call is in BurnCloud's log under the token
Open WebUI was given."""

import io
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import wave
from pathlib import Path

import pytest

from conftest import MOCK_BIN, REPLY, ROOT, UPSTREAM_KEY, BurnCloud, poll, start, stop
from test_redis import free_port

OPEN_WEBUI = os.environ.get("BURNCLOUD_OPEN_WEBUI") or str(ROOT / ".venv-openwebui/bin/open-webui")
# The models Open WebUI's page talks to, each behind a channel of another kind, with the path the
# provider's own API is called on.
PROVIDERS = {
    "gpt-4o-mini": ("openai", "/v1/chat/completions"),
    "claude-sonnet-4-5": ("anthropic", "/v1/messages"),
    "gemini-2.5-flash": ("gemini", "/v1beta/models/gemini-2.5-flash"),
}
DOCUMENT = "BurnCloud keeps its call log in SQLite.\nThe gateway answers on port 3000 by default.\n"


def open_webui_command():
    if OPEN_WEBUI and Path(OPEN_WEBUI).exists():
        return OPEN_WEBUI
    if os.environ.get("BURNCLOUD_REQUIRE_OPEN_WEBUI"):
        pytest.fail(f"BURNCLOUD_REQUIRE_OPEN_WEBUI is set but Open WebUI is not at {OPEN_WEBUI!r}")
    pytest.skip("Open WebUI is not installed: ./scripts/test installs it into .venv-openwebui")


class OpenWebUI:
    """`open-webui serve` with a fresh data dir, signed up as its first (admin) user."""

    def __init__(self, command, burncloud, key, data_dir):
        self.base = f"http://127.0.0.1:{free_port()}"
        env = dict(
            os.environ,
            DATA_DIR=str(data_dir),
            WEBUI_SECRET_KEY=uuid.uuid4().hex,
            # Nothing fetched from the internet: no version check, no embedding model download.
            OFFLINE_MODE="true",
            HF_HUB_OFFLINE="1",
            ENABLE_VERSION_UPDATE_CHECK="false",
            # As the user guide sets it up: both connections point at BurnCloud, and so do documents'
            # embeddings, pictures, read-aloud and dictation.
            ENABLE_OPENAI_API="true",
            ENABLE_OLLAMA_API="true",
            OLLAMA_BASE_URL=burncloud.base,
            RAG_EMBEDDING_ENGINE="openai",
            RAG_EMBEDDING_MODEL="text-embedding-3-small",
            ENABLE_IMAGE_GENERATION="true",
            IMAGE_GENERATION_ENGINE="openai",
            IMAGE_GENERATION_MODEL="dall-e-3",
            AUDIO_TTS_ENGINE="openai",
            AUDIO_TTS_MODEL="tts-1",
            AUDIO_TTS_VOICE="alloy",
            AUDIO_STT_ENGINE="openai",
            AUDIO_STT_MODEL="whisper-1",
            # Its own ffmpeg step before the upload is not ours to test (and ffmpeg is not installed).
            BYPASS_PYDUB_PREPROCESSING="true",
            # The model a new chat starts with.
            DEFAULT_MODELS="gpt-4o-mini",
        )
        for setting in ("", "RAG_", "IMAGES_", "AUDIO_TTS_", "AUDIO_STT_"):
            env[f"{setting}OPENAI_API_BASE_URL"] = burncloud.base + "/v1"
            env[f"{setting}OPENAI_API_KEY"] = key
        self.log = open(Path(data_dir) / "open-webui.log", "w")
        port = self.base.rsplit(":", 1)[1]
        self.process = subprocess.Popen([command, "serve", "--host", "127.0.0.1", "--port", port], env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 180
        while not self.healthy():
            if self.process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"Open WebUI did not start; see {self.log.name}")
            time.sleep(0.5)
        self.token = None
        self.token = self.call("POST", "/api/v1/auths/signup",
                               {"name": "Ada", "email": "ada@example.com", "password": "a-long-password"})["token"]

    def healthy(self):
        try:
            with urllib.request.urlopen(self.base + "/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError):
            return False

    def request(self, method, path, body=None, files=None):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        data = None
        if files is not None:
            boundary = uuid.uuid4().hex
            name, content, media_type = files
            data = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                    f"Content-Type: {media_type}\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        return urllib.request.urlopen(urllib.request.Request(self.base + path, data=data, method=method,
                                                             headers=headers), timeout=60)

    def call(self, method, path, body=None, files=None):
        with self.request(method, path, body, files) as response:
            return json.loads(response.read())

    def models(self):
        return {m["id"]: m for m in self.call("GET", "/api/models?refresh=true")["data"]}

    def chat(self, model, stream, **extra):
        """Open WebUI's own chat API; a stream is read to its end and its text joined."""
        body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}], **extra}
        if not stream:
            return self.call("POST", "/api/chat/completions", body)
        text = []
        with self.request("POST", "/api/chat/completions", body) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream"), response.headers
            for line in response.read().decode().splitlines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    for choice in json.loads(line.removeprefix("data: ")).get("choices") or []:
                        text.append(choice.get("delta", {}).get("content") or "")
        return "".join(text)

    def use_ollama_key(self, key):
        """Admin → Settings → Connections → Ollama: the connection's key (none for keyless)."""
        config = self.call("GET", "/ollama/config")
        config["OLLAMA_API_CONFIGS"] = {"0": {"key": key, "prefix_id": "bc"}} if key else {"0": {"prefix_id": "bc"}}
        self.call("POST", "/ollama/config/update", config)

    def close(self):
        stop(self.process)
        self.log.close()


class Stack:
    def __init__(self, upstream, burncloud, open_webui):
        self.upstream, self.burncloud, self.open_webui = upstream, burncloud, open_webui

    def stored(self):
        """BurnCloud's log rows, newest first, once the writer has stored every call that ended (a
        call's row is queued as its answer ends)."""
        time.sleep(0.2)
        poll(lambda: self.burncloud.console("GET", "/console/internal/health")["log_writer"]["queued"],
             lambda queued: queued == 0, timeout=10)
        return self.burncloud.console("GET", "/console/api/logs?limit=200")["items"]

    def calls_since(self, last_id):
        """BurnCloud's log rows after `last_id`, oldest first."""
        return sorted((row for row in self.stored() if row["id"] > last_id), key=lambda row: row["id"])

    def last_log_id(self):
        items = self.stored()
        return items[0]["id"] if items else 0

    def upstream_calls(self):
        with urllib.request.urlopen(self.upstream + "/_mock/received", timeout=10) as response:
            return json.loads(response.read())


@pytest.fixture(scope="module")
def stack():
    command = open_webui_command()
    upstream_process, upstream = start([MOCK_BIN, "--key", UPSTREAM_KEY])
    work = Path(tempfile.mkdtemp(prefix="burncloud-open-webui-"))
    burncloud = open_webui = None
    try:
        (work / "burncloud").mkdir()
        burncloud = BurnCloud(work / "burncloud")
        burncloud.console("POST", "/console/api/channels", {
            "name": "provider", "kind": "openai", "base_url": upstream + "/v1", "api_key": UPSTREAM_KEY,
            "models": ["gpt-4o-mini", "text-embedding-3-small", "dall-e-3", "tts-1", "whisper-1"]})
        for kind, model in (("anthropic", "claude-sonnet-4-5"), ("gemini", "gemini-2.5-flash")):
            burncloud.console("POST", "/console/api/channels", {
                "name": kind, "kind": kind, "base_url": upstream, "api_key": UPSTREAM_KEY, "models": [model]})
        key = burncloud.token(name="open-webui")
        (work / "open-webui").mkdir()
        open_webui = OpenWebUI(command, burncloud, key, work / "open-webui")
        yield Stack(upstream, burncloud, open_webui)
    finally:
        if open_webui:
            open_webui.close()
        if burncloud:
            stop(burncloud.process)
        stop(upstream_process, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


def test_the_openai_connection_lists_burncloud_models_and_chats_through_them(stack):
    open_webui = stack.open_webui
    models = open_webui.models()
    # The Ollama connection has no key yet and BurnCloud lets no keyless call in: only the OpenAI
    # connection's models are listed.
    assert {m: models[m]["owned_by"] for m in models} == {
        "gpt-4o-mini": "openai", "text-embedding-3-small": "openai", "dall-e-3": "openai", "tts-1": "openai",
        "whisper-1": "openai", "claude-sonnet-4-5": "openai", "gemini-2.5-flash": "openai"}, models

    before = stack.last_log_id()
    answer = open_webui.chat("gpt-4o-mini", stream=False)
    assert answer["choices"][0]["message"]["content"] == REPLY
    assert open_webui.chat("gpt-4o-mini", stream=True) == REPLY

    calls = stack.calls_since(before)
    assert [(c["endpoint"], c["is_stream"], c["status"]) for c in calls] == [
        ("/v1/chat/completions", False, 200), ("/v1/chat/completions", True, 200)], calls
    assert {c["token_name"] for c in calls} == {"open-webui"}
    assert answer["usage"]["prompt_tokens"] == calls[0]["prompt_tokens"] > 0
    assert answer["usage"]["completion_tokens"] == calls[0]["completion_tokens"] > 0


def test_the_ollama_connection_with_a_key_lists_and_chats_through_ollamas_api(stack):
    open_webui = stack.open_webui
    open_webui.use_ollama_key(stack.burncloud.token(name="open-webui ollama"))
    models = open_webui.models()
    assert models["bc.gpt-4o-mini"]["owned_by"] == "ollama", sorted(models)
    # The connection check Open WebUI's settings page makes, proxied to BurnCloud's /api/version.
    assert open_webui.call("GET", "/ollama/api/version")["version"]

    before = stack.last_log_id()
    answer = open_webui.chat("bc.gpt-4o-mini", stream=False)
    assert answer["choices"][0]["message"]["content"] == REPLY
    assert open_webui.chat("bc.gpt-4o-mini", stream=True) == REPLY

    calls = stack.calls_since(before)
    assert [(c["endpoint"], c["status"]) for c in calls] == [("/api/chat", 200), ("/api/chat", 200)], calls
    assert {c["token_name"] for c in calls} == {"open-webui ollama"}
    # Ollama's own counts (prompt_eval_count, eval_count) as BurnCloud logged them.
    assert answer["usage"]["prompt_tokens"] == calls[0]["prompt_tokens"] > 0
    assert answer["usage"]["completion_tokens"] == calls[0]["completion_tokens"] > 0


def test_a_keyless_ollama_connection_is_charged_to_the_token_picked_for_this_machine(stack):
    open_webui = stack.open_webui
    keyless = stack.burncloud.console("POST", "/console/api/tokens", {"name": "this machine"})
    stack.burncloud.console("PUT", f"/console/api/tokens/{keyless['id']}", {"keyless_local": True})
    open_webui.use_ollama_key(None)
    assert "bc.gpt-4o-mini" in open_webui.models()

    before = stack.last_log_id()
    assert open_webui.chat("bc.gpt-4o-mini", stream=True) == REPLY
    calls = stack.calls_since(before)
    assert [(c["endpoint"], c["status"], c["token_name"]) for c in calls] == [
        ("/api/chat", 200, "this machine")], calls


def test_a_local_model_burncloud_runs_on_llama_server_answers_in_open_webui(stack, llama_server, tiny_gguf):
    burncloud, open_webui = stack.burncloud, stack.open_webui
    model = burncloud.console("POST", "/console/api/models/local/import", {"path": str(tiny_gguf)})
    burncloud.console("POST", "/console/api/instances", {"model_id": model["id"], "ctx_size": 512, "start": False})
    open_webui.use_ollama_key(burncloud.token(name="open-webui local"))
    listed = open_webui.models()["bc.tiny"]
    # What BurnCloud's /api/tags read from the GGUF, as Open WebUI shows it.
    assert listed["ollama"]["details"]["parameter_size"] == "121K", listed

    before = stack.last_log_id()
    # Not loaded yet: the call starts it on llama-server and is answered once it is ready.
    answer = open_webui.chat("bc.tiny", stream=False, max_tokens=8, temperature=0)
    assert answer["choices"][0]["message"]["content"], answer
    assert answer["usage"]["completion_tokens"] > 0, answer
    calls = stack.calls_since(before)
    assert [(c["endpoint"], c["model"], c["status"], c["token_name"]) for c in calls] == [
        ("/api/chat", "tiny", 200, "open-webui local")], calls
    loaded = open_webui.call("GET", "/ollama/api/ps")["models"]
    assert [m["model"] for m in loaded] == ["bc.tiny"], loaded  # with the connection's prefix


def test_a_knowledge_file_is_embedded_through_burncloud_and_its_text_reaches_the_model(stack):
    open_webui = stack.open_webui
    before = stack.last_log_id()
    uploaded = open_webui.call("POST", "/api/v1/files/", files=("notes.txt", DOCUMENT.encode(), "text/plain"))
    status = poll(lambda: open_webui.call("GET", f"/api/v1/files/{uploaded['id']}/process/status"),
                  lambda s: s["status"] in ("completed", "failed"), timeout=60)
    assert status["status"] == "completed", status
    embedded = stack.calls_since(before)
    assert [(c["endpoint"], c["model"], c["status"], c["token_name"]) for c in embedded] == [
        ("/v1/embeddings", "text-embedding-3-small", 200, "open-webui")], embedded

    answer = open_webui.chat("gpt-4o-mini", stream=False, files=[{"type": "file", "id": uploaded["id"]}])
    assert answer["choices"][0]["message"]["content"] == REPLY
    # The chat reached the provider through BurnCloud with the document's text in its prompt.
    chats = [call for call in stack.upstream_calls() if call["path"] == "/v1/chat/completions"]
    prompt = json.dumps(chats[-1]["body"]["messages"])
    assert "The gateway answers on port 3000 by default." in prompt, prompt


def two_seconds_of_silence():
    wav = io.BytesIO()
    with wave.open(wav, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16_000)
        writer.writeframes(b"\0\0" * 32_000)
    return wav.getvalue()


def test_pictures_speech_and_dictation_go_through_burncloud(stack):
    open_webui = stack.open_webui
    before = stack.last_log_id()
    images = open_webui.call("POST", "/api/v1/images/generations", {"prompt": "a red dot"})
    assert len(images) == 1, images
    with open_webui.request("GET", images[0]["url"]) as response:
        assert response.read().startswith(b"\x89PNG"), "the picture BurnCloud returned, stored by Open WebUI"
    with open_webui.request("POST", "/api/v1/audio/speech", {"input": "Hello there", "voice": "alloy"}) as response:
        spoken = response.read()
    assert spoken, "the audio BurnCloud returned"
    recording = two_seconds_of_silence()
    heard = open_webui.call("POST", "/api/v1/audio/transcriptions", files=("dictation.wav", recording, "audio/wav"))
    assert heard["text"].startswith(f"transcribed {len(recording)} bytes of"), heard

    calls = stack.calls_since(before)
    assert [(c["endpoint"], c["model"], c["status"], c["token_name"]) for c in calls] == [
        ("/v1/images/generations", "dall-e-3", 200, "open-webui"),
        ("/v1/audio/speech", "tts-1", 200, "open-webui"),
        ("/v1/audio/transcriptions", "whisper-1", 200, "open-webui")], calls
    assert calls[0]["images"] == 1 and calls[1]["characters"] == len("Hello there"), calls
    assert calls[2]["audio_ms"] == 2000, calls
    sent = [c["body"] for c in stack.upstream_calls() if c["path"] == "/v1/images/generations"]
    assert sent[-1]["prompt"] == "a red dot" and sent[-1]["response_format"] == "b64_json", sent[-1]


def tool_round_trip(kind, sent):
    """The ids (Gemini: the names) of the tool calls the model made and of the results that came
    back to it, from the first request that carried results, in the provider's own shape."""
    if kind == "openai":
        turns = next(b["messages"] for b in sent if b["messages"][-1]["role"] == "tool")
        asked = [c["id"] for m in turns if m.get("tool_calls") for c in m["tool_calls"]]
        return asked, [m["tool_call_id"] for m in turns if m["role"] == "tool"]
    if kind == "anthropic":
        turns = next(b["messages"] for b in sent
                     if any(block.get("type") == "tool_result" for block in b["messages"][-1]["content"]))
        blocks = [block for m in turns if isinstance(m["content"], list) for block in m["content"]]
        return ([b["id"] for b in blocks if b["type"] == "tool_use"],
                [b["tool_use_id"] for b in blocks if b["type"] == "tool_result"])
    turns = next(b["contents"] for b in sent if any("functionResponse" in p for p in b["contents"][-1]["parts"]))
    parts = [part for content in turns for part in content["parts"]]
    return ([p["functionCall"]["name"] for p in parts if "functionCall" in p],
            [p["functionResponse"]["name"] for p in parts if "functionResponse" in p])


def test_a_user_chats_in_open_webuis_own_page_with_each_kind_of_provider(stack):
    # Its page offers the model tools by default: the model calls two, sees their results and
    # answers, streamed all the way through BurnCloud, whichever provider's format is behind it.
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    from test_browser_ui import CHROMIUM, MISSING
    if MISSING:
        pytest.skip(MISSING)
    open_webui = stack.open_webui
    before = stack.last_log_id()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(60_000)
            page.goto(open_webui.base + "/auth")
            page.locator("input[type=email]").fill("ada@example.com")
            page.locator("input[type=password]").fill("a-long-password")
            page.locator("button[type=submit]").click()
            page.get_by_role("button", name="Okay, Let's Go!").click()  # its release notes, on first sign-in
            for model in PROVIDERS:
                page.goto(f"{open_webui.base}/?models={model}")  # a new chat with this model picked
                page.locator("#chat-input").click()
                page.keyboard.type("hi")
                page.keyboard.press("Enter")
                page.locator("#messages-container").get_by_text(REPLY).wait_for()
        finally:
            browser.close()

    calls = stack.calls_since(before)
    assert {(c["status"], c["token_name"]) for c in calls} == {(200, "open-webui")}, calls
    received = stack.upstream_calls()
    for model, (kind, path) in PROVIDERS.items():
        # The tool round and the answer streamed; the page's own tasks (a title, follow-ups) are not.
        streamed = [c for c in calls if c["model"] == model and c["is_stream"]]
        assert len(streamed) >= 2, (model, calls)
        asked, answered = tool_round_trip(kind, [c["body"] for c in received if c["path"].startswith(path)])
        assert len(asked) == 2 and sorted(asked) == sorted(answered), (model, asked, answered)
