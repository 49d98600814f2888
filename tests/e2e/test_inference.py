"""Local inference through the real `burncloud serve`: no llama-server outlives BurnCloud (SIGKILL it
while a model is deployed and the server process dies with it; the next start cleans up what the
killed run left), and models load when a call names them: embeddings through the official SDK and
rerank in the shape RAG clients send."""

import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, BurnCloud, poll, stop


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def deploy(app, gguf):
    model = app.console("POST", "/console/api/models/local/import", {"path": str(gguf)})
    instance = app.console("POST", "/console/api/instances", {"model_id": model["id"], "ctx_size": 256, "parallel": 1})
    instance = poll(lambda: app.console("GET", f"/console/api/instances/{instance['id']}"),
                    lambda i: i["state"] in ("ready", "failed"))
    assert instance["state"] == "ready", instance
    return instance


def test_sigkill_of_the_app_takes_llama_server_with_it(llama_server, tiny_gguf):
    with tempfile.TemporaryDirectory() as data_dir:
        app = BurnCloud(Path(data_dir))
        instance = deploy(app, tiny_gguf)
        pid = instance["pid"]
        assert alive(pid)
        stop(app.process, signal.SIGKILL)
        deadline = time.time() + 5
        while alive(pid) and time.time() < deadline:
            time.sleep(0.05)
        assert not alive(pid), "llama-server outlived the killed app"

        app = BurnCloud(Path(data_dir))
        try:
            channels = app.console("GET", "/console/api/channels")
            assert [c for c in channels if c["kind"] == "local"] == [], "the killed run's route is gone"
            again = app.console("GET", f"/console/api/instances/{instance['id']}")
            assert again["state"] == "stopped" and again["pid"] is None
        finally:
            stop(app.process)


def test_a_graceful_exit_stops_every_instance(llama_server, tiny_gguf):
    with tempfile.TemporaryDirectory() as data_dir:
        app = BurnCloud(Path(data_dir))
        pid = deploy(app, tiny_gguf)["pid"]
        assert stop(app.process, signal.SIGTERM) == 0
        assert not alive(pid)


def test_a_llama_server_left_by_a_killed_run_is_stopped_at_start(llama_server, tiny_gguf):
    with tempfile.TemporaryDirectory() as data_dir:
        run_dir = Path(data_dir) / "run"
        run_dir.mkdir()
        port = free_port()
        leftover = subprocess.Popen(
            [llama_server, "-m", str(tiny_gguf), "--host", "127.0.0.1", "--port", str(port), "-c", "256",
             "--alias", "left-behind", "--api-key", "bc-local-old"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            (run_dir / "llama-server-7.pid").write_text(f"{leftover.pid}\n")
            app = BurnCloud(Path(data_dir))
            try:
                # A killed multi-threaded process shows as a zombie before it can be reaped: wait for it.
                try:
                    code = leftover.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    code = None
                assert code == -signal.SIGKILL, "the leftover llama-server was stopped"
                assert not (run_dir / "llama-server-7.pid").exists()
            finally:
                stop(app.process)
        finally:
            if leftover.poll() is None:
                leftover.kill()
            leftover.wait()


def test_a_missing_llama_server_is_explained(tiny_gguf):
    with tempfile.TemporaryDirectory() as data_dir:
        env = {"BURNCLOUD_LLAMA_SERVER": "/nonexistent/llama-server", "PATH": "/usr/bin:/bin"}
        app = BurnCloud(Path(data_dir), env)
        try:
            with pytest.raises(urllib.error.HTTPError) as refused:
                app.console("GET", "/console/api/llama-server")
            assert refused.value.code == 503
            error = json.loads(refused.value.read())["error"]
            assert error["code"] == "llama_server_missing"
            assert "Install llama.cpp on the Deployments page" in error["message"], error
            assert "/nonexistent/llama-server (env) does not exist" in error["message"], error

            model = app.console("POST", "/console/api/models/local/import", {"path": str(tiny_gguf)})
            instance = app.console("POST", "/console/api/instances", {"model_id": model["id"]})
            failed = poll(lambda: app.console("GET", f"/console/api/instances/{instance['id']}"),
                          lambda i: i["state"] in ("ready", "failed"))
            assert failed["state"] == "failed" and "llama-server was not found" in failed["error"], failed
        finally:
            stop(app.process)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_tiny(tmp_path, kind):
    path = tmp_path / f"tiny-{kind}.gguf"
    subprocess.run([sys.executable, str(ROOT / "tests/fixtures/make_tiny_gguf.py"), str(path), kind], check=True)
    return path


def test_the_official_sdk_embeds_and_a_rag_client_reranks_with_local_models_loaded_on_demand(llama_server, tiny_gguf, tmp_path):
    import openai

    with tempfile.TemporaryDirectory() as data_dir:
        app = BurnCloud(Path(data_dir))
        try:
            deployed = {}
            for path in (tiny_gguf, make_tiny(tmp_path, "embedding"), make_tiny(tmp_path, "rerank")):
                model = app.console("POST", "/console/api/models/local/import", {"path": str(path)})
                instance = app.console("POST", "/console/api/instances",
                                       {"model_id": model["id"], "ctx_size": 512, "start": False})
                assert instance["state"] == "stopped", instance
                deployed[instance["alias"]] = instance
            assert {alias: i["kind"] for alias, i in deployed.items()} == {
                "tiny": "chat", "tiny-embedding": "embedding", "tiny-rerank": "rerank"}
            key = app.token()
            client = openai.OpenAI(base_url=app.base + "/v1", api_key=key, max_retries=0, timeout=60)
            assert {"tiny", "tiny-embedding", "tiny-rerank"} <= {m.id for m in client.models.list()}

            embedded = client.embeddings.create(model="tiny-embedding", input=["hello world", "the local model"])
            assert [len(item.embedding) for item in embedded.data] == [64, 64]
            assert embedded.usage.prompt_tokens > 0

            # The shape Cherry Studio, Dify and Open WebUI send (Jina / Cohere), over plain HTTP.
            request = urllib.request.Request(
                app.base + "/v1/rerank", method="POST", headers={
                    "Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                data=json.dumps({"model": "tiny-rerank", "query": "hello", "top_n": 2, "return_documents": True,
                                 "documents": ["hello world", "the model is local", "no"]}).encode())
            with urllib.request.urlopen(request, timeout=60) as response:
                ranked = json.load(response)
            results = ranked["results"]
            assert len(results) == 2, ranked
            assert results[0]["relevance_score"] >= results[1]["relevance_score"]
            documents = ["hello world", "the model is local", "no"]
            assert all(r["document"]["text"] == documents[r["index"]] for r in results), ranked

            # A stream to a stopped chat model: nothing until it is loaded, then a normal stream.
            stream = client.chat.completions.create(
                model="tiny", max_tokens=4, stream=True, messages=[{"role": "user", "content": "hi"}])
            chunks = list(stream)
            assert chunks[-1].choices[0].finish_reason == "length", chunks[-1]
            for alias in deployed:
                assert app.console("GET", f"/console/api/instances/{deployed[alias]['id']}")["state"] == "ready"
        finally:
            assert stop(app.process, signal.SIGTERM) == 0
