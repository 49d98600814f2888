"""Upstream faults against the real `burncloud serve`: connections reset before and after the first
byte, stalls, malformed and truncated JSON and SSE, invalid UTF-8, a wrong content type and a
100 MB answer. Each reaches the OpenAI SDK as a clean error in OpenAI's shape (or, when a healthy
channel is left, as that channel's answer), is logged once with what happened, counts against the
failing channel's breaker, and never takes the server down."""

import json
import socket
import socketserver
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import openai
import pytest

from conftest import UPSTREAM_KEY, BurnCloud, poll, stop

BIG_REPLY_BYTES = 100 * 1024 * 1024
# The instance under test refuses whole answers above this, so a 100 MB one must be refused cleanly.
MAX_RESPONSE_MB = 64
# Each upstream attempt's total time; a trickling upstream is cut here.
REQUEST_TIMEOUT_S = 5
GOOD_CHUNK = {"id": "chatcmpl-f", "object": "chat.completion.chunk", "created": 1, "model": "m",
              "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello"}, "finish_reason": None}]}


def chunk_event(payload):
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def completion(content, model):
    return {"id": "chatcmpl-f", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}


class FaultyUpstream(socketserver.ThreadingTCPServer):
    """An OpenAI-compatible server that misbehaves at the wire level; the requested model names the
    fault."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FaultHandler)
        self.released = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self):
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def close(self):
        self.released.set()
        self.shutdown()
        self.server_close()


class FaultHandler(socketserver.BaseRequestHandler):
    def read_request(self):
        data = b""
        while b"\r\n\r\n" not in data:
            more = self.request.recv(65536)
            if not more:
                return None
            data += more
        head, body = data.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            body += self.request.recv(65536)
        return json.loads(body)

    def reset(self):
        # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.request.close()

    def answer(self, body, content_type=b"application/json", status=b"200 OK"):
        self.request.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: " + content_type
                             + b"\r\nContent-Length: " + str(len(body)).encode()
                             + b"\r\nConnection: close\r\n\r\n" + body)

    def stream_head(self):
        self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")

    def handle(self):
        try:
            self.misbehave()
        except OSError:
            pass  # BurnCloud hung up first (it stops reading answers that grow too large)

    def misbehave(self):
        request = self.read_request()
        if request is None:
            return
        fault = request["model"]
        if fault == "reset-before":
            self.reset()
        elif fault == "reset-after-first-byte":
            self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n{\"id\":")
            time.sleep(0.1)
            self.reset()
        elif fault == "stall":
            self.server.released.wait(60)
        elif fault == "trickle":
            # One byte every half second: never idle for long, never finished.
            self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            while not self.server.released.wait(0.5):
                self.request.sendall(b" ")
        elif fault == "malformed-json":
            self.answer(b'{"id": "chatcmpl-f", "choices": [{"message": {"content": oops}}]}')
        elif fault == "truncated-json":
            self.answer(json.dumps(completion("cut short", fault)).encode()[:40])
        elif fault == "invalid-utf8":
            self.answer(json.dumps(completion("MARK", fault)).encode().replace(b"MARK", b"\xff\xfe\xfd"))
        elif fault == "wrong-content-type":
            self.answer(b"<html><body><h1>Sign in to the proxy</h1></body></html>", b"text/html")
        elif fault.startswith("big-"):
            size = int(fault.removeprefix("big-"))
            body = json.dumps(completion("x" * size, fault)).encode()
            self.answer(body)
        elif fault == "sse-malformed":
            self.stream_head()
            self.request.sendall(chunk_event(GOOD_CHUNK) + b'data: {"id": "chatcmpl-f", "choices": [broken\n\n'
                                 + chunk_event(GOOD_CHUNK) + b"data: [DONE]\n\n")
        elif fault == "sse-truncated":
            self.stream_head()
            self.request.sendall(chunk_event(GOOD_CHUNK) + b'data: {"id": "chatcmpl-f", "choices": [{"delta": {"cont')
        elif fault == "sse-invalid-utf8":
            self.stream_head()
            self.request.sendall(chunk_event(GOOD_CHUNK)
                                 + chunk_event(GOOD_CHUNK).replace(b"Hello", b"\xc3\x28"))
        elif fault == "sse-endless-event":
            self.stream_head()
            self.request.sendall(chunk_event(GOOD_CHUNK) + b'data: "' + b"x" * (17 * 1024 * 1024))
            self.server.released.wait(60)
        elif fault == "sse-reset":
            self.stream_head()
            self.request.sendall(chunk_event(GOOD_CHUNK))
            time.sleep(0.1)
            self.reset()
        elif fault == "sse-stall":
            self.stream_head()
            self.request.sendall(chunk_event(GOOD_CHUNK))
            self.server.released.wait(60)
        else:
            self.answer(json.dumps(completion("healthy", fault)).encode())


FAULTS = {
    # model: (what the caller's error says, in part)
    "reset-before": "could not be reached",
    "reset-after-first-byte": "connection failed",
    "stall": "did not answer within",
    "trickle": f"took longer than {REQUEST_TIMEOUT_S} s in all",
    "malformed-json": "not a JSON object",
    "truncated-json": "cut short",
    "invalid-utf8": "not UTF-8",
    "wrong-content-type": "content type text/html",
    f"big-{BIG_REPLY_BYTES}": "larger than",
}
STREAM_FAULTS = {
    "sse-malformed": "not JSON",
    "sse-truncated": "not JSON",
    "sse-invalid-utf8": "not UTF-8",
    "sse-endless-event": "longer than 16 MiB",
    "sse-reset": "stream broke",
    "sse-stall": "went silent",
}


@pytest.fixture
def faulty():
    server = FaultyUpstream()
    yield server
    server.close()


@pytest.fixture
def app(faulty, upstream):
    with tempfile.TemporaryDirectory() as data_dir:
        log_path = Path(data_dir) / "stderr.log"
        with open(log_path, "w") as stderr:
            env = {"BURNCLOUD_UPSTREAM_TIMEOUT": "2", "BURNCLOUD_UPSTREAM_IDLE_TIMEOUT": "2",
                   "BURNCLOUD_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT_S),
                   "BURNCLOUD_MAX_RESPONSE_MB": str(MAX_RESPONSE_MB)}
            instance = BurnCloud(Path(data_dir), extra_env=env, stderr=stderr)
            # One channel per fault, so that each fault's breaker is its own.
            channels = {}
            for model in [*FAULTS, *STREAM_FAULTS, "big-41943040"]:
                channels[model] = instance.console("POST", "/console/api/channels", {
                    "name": f"faulty {model}", "kind": "openai", "base_url": faulty.base, "api_key": UPSTREAM_KEY,
                    "models": [model]})["id"]
            # A fault with a healthy channel behind it: the caller never sees the fault.
            channels["html-then-healthy"] = instance.console("POST", "/console/api/channels", {
                "name": "faulty first", "kind": "openai", "base_url": faulty.base, "api_key": UPSTREAM_KEY,
                "models": ["wrong-content-type"], "model_mapping": {"html-then-healthy": "wrong-content-type"},
                "priority": 10})["id"]
            instance.console("POST", "/console/api/channels", {
                "name": "healthy second", "kind": "openai", "base_url": upstream + "/v1", "api_key": UPSTREAM_KEY,
                "models": ["html-then-healthy"], "model_mapping": {"html-then-healthy": "gpt-4o-mini"}, "priority": 0})
            instance.channels = channels
            instance.stderr_path = log_path
            yield instance
            assert stop(instance.process) == 0
        assert "panicked" not in log_path.read_text(), log_path.read_text()[-3000:]


def health(app):
    return {channel["id"]: channel for channel in app.console("GET", "/console/internal/health")["channels"]}


def logs(app, expected):
    """The log rows once `expected` calls are stored (the writer batches), to check nothing more came."""
    poll(lambda: app.console("GET", "/console/api/logs?limit=200")["items"], lambda rows: len(rows) >= expected,
         timeout=10)
    time.sleep(0.6)  # longer than one log batch (250 ms), so a stray extra row would be stored by now
    return app.console("GET", "/console/api/logs?limit=200")["items"]


def test_every_whole_answer_fault_is_a_clean_openai_error(app):
    client = openai.OpenAI(base_url=app.base + "/v1", api_key=app.token(), max_retries=0, timeout=30)
    for model, says in FAULTS.items():
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        error = caught.value
        assert error.status_code in (502, 504), (model, error.status_code)
        assert says in error.message, (model, error.message)
        assert error.body["type"] and error.body["code"], (model, error.body)
        # Streaming callers get the same clean error before any byte of a stream.
        with pytest.raises(openai.APIStatusError) as caught:
            list(client.chat.completions.create(model=model, stream=True, messages=[{"role": "user", "content": "hi"}]))
        assert says in caught.value.message, (model, caught.value.message)

    # A 40 MiB answer is under the limit and arrives whole; the server is fine after all of it.
    reply = client.chat.completions.create(model="big-41943040", messages=[{"role": "user", "content": "hi"}])
    assert len(reply.choices[0].message.content) == 41943040
    # A fault in front of a healthy channel: the caller only sees the healthy answer.
    reply = client.chat.completions.create(model="html-then-healthy", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content.startswith("Hello")

    states = health(app)
    for model in FAULTS:
        channel = states[app.channels[model]]
        assert channel["consecutive_failures"] >= 2, (model, channel)
        assert channel["last_error"], (model, channel)
    assert states[app.channels["html-then-healthy"]]["consecutive_failures"] >= 1

    rows = logs(app, 2 * len(FAULTS) + 2)
    assert len(rows) == 2 * len(FAULTS) + 2, "every call is logged exactly once"
    for model, says in FAULTS.items():
        mine = [row for row in rows if row["model"] == model]
        assert len(mine) == 2 and all(row["status"] in (502, 504) and says in row["error"] for row in mine), mine
    healed = next(row for row in rows if row["model"] == "html-then-healthy")
    assert healed["status"] == 200 and healed["attempts"] == 2, healed
    with urllib.request.urlopen(app.base + "/health", timeout=5) as response:
        assert response.status == 200


def test_every_stream_fault_ends_the_stream_with_an_error_the_sdk_raises(app):
    client = openai.OpenAI(base_url=app.base + "/v1", api_key=app.token(), max_retries=0, timeout=30)
    for model, says in STREAM_FAULTS.items():
        received = []
        with pytest.raises(openai.APIError) as caught:
            for chunk in client.chat.completions.create(model=model, stream=True,
                                                        messages=[{"role": "user", "content": "hi"}]):
                received.extend(choice.delta.content for choice in chunk.choices if choice.delta.content)
        assert says in caught.value.message, (model, caught.value.message)
        assert received == ["Hello"], f"{model}: what came before the fault is delivered, nothing after it"

    rows = logs(app, len(STREAM_FAULTS))
    assert len(rows) == len(STREAM_FAULTS), "every call is logged exactly once"
    for model, says in STREAM_FAULTS.items():
        (row,) = [row for row in rows if row["model"] == model]
        assert row["end_reason"] == "upstream_cut" and says in row["error"], row
    states = health(app)
    for model in STREAM_FAULTS:
        assert states[app.channels[model]]["consecutive_failures"] >= 1, (model, states[app.channels[model]])
    with urllib.request.urlopen(app.base + "/health", timeout=5) as response:
        assert response.status == 200


def test_an_admin_can_read_why_a_channel_failed(app):
    """The console's breaker view carries the same readable reason the caller got, scrubbed of keys."""
    client = openai.OpenAI(base_url=app.base + "/v1", api_key=app.token(), max_retries=0, timeout=30)
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="wrong-content-type", messages=[{"role": "user", "content": "hi"}])
    channel = health(app)[app.channels["wrong-content-type"]]
    assert "text/html" in channel["last_error"] and UPSTREAM_KEY not in channel["last_error"]
    assert UPSTREAM_KEY not in app.stderr_path.read_text()
