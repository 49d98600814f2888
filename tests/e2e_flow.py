"""The whole local-model flow through the real `burncloud serve`, with the official OpenAI SDK:
search a (local) hub → list files → download the tiny GGUF (sha256 verified) → deploy it on a real
llama-server → chat and stream with a BurnCloud token → the calls are logged on the local channel
with real usage → stop → the model leaves /v1/models → delete."""

import hashlib
import os
import sys
import tempfile
from pathlib import Path

import pytest
from openai import OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent / "e2e"))
from conftest import TINY_FILE as FILE, TINY_REPO as REPO, BurnCloud, poll, stop  # noqa: E402
from conftest import tiny_gguf, tiny_hub  # noqa: E402,F401 (fixtures)

def test_search_download_deploy_chat_stream_stop_delete(tiny_hub, tiny_gguf):
    if not os.environ.get("BURNCLOUD_LLAMA_SERVER"):
        if os.environ.get("BURNCLOUD_REQUIRE_LLAMA"):
            pytest.fail("BURNCLOUD_REQUIRE_LLAMA is set but BURNCLOUD_LLAMA_SERVER is not")
        pytest.skip("BURNCLOUD_LLAMA_SERVER is not set: ./scripts/test installs llama-server")
    expected_sha = hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    with tempfile.TemporaryDirectory() as data_dir:
        app = BurnCloud(Path(data_dir), tiny_hub.env())
        try:
            found = app.console("GET", "/console/api/hub/search?source=huggingface&q=tiny")
            assert [r["repo"] for r in found["data"]] == [REPO]
            files = app.console("GET", f"/console/api/hub/files?source=huggingface&repo={REPO}")["files"]
            assert [(f["path"], f["sha256"]) for f in files] == [(FILE, expected_sha)]

            started = app.console("POST", "/console/api/downloads", {"source": "huggingface", "repo": REPO, "path": FILE})
            download = poll(lambda: app.console("GET", f"/console/api/downloads/{started['id']}"),
                            lambda d: d["state"] in ("done", "failed"))
            assert download["state"] == "done", download
            model = app.console("GET", f"/console/api/models/local/{download['local_model_id']}")
            assert model["sha256"] == expected_sha
            assert hashlib.sha256(Path(model["path"]).read_bytes()).hexdigest() == expected_sha

            instance = app.console("POST", "/console/api/instances",
                                   {"model_id": model["id"], "alias": "tiny", "ctx_size": 512, "parallel": 1})
            instance = poll(lambda: app.console("GET", f"/console/api/instances/{instance['id']}"),
                            lambda i: i["state"] in ("ready", "failed"))
            assert instance["state"] == "ready", instance

            client = OpenAI(base_url=app.base + "/v1", api_key=app.token(), max_retries=0)
            assert "tiny" in [m.id for m in client.models.list()]
            reply = client.chat.completions.create(
                model="tiny", max_tokens=8, messages=[{"role": "user", "content": "hello world"}])
            assert reply.choices[0].finish_reason == "length"
            assert reply.usage.completion_tokens == 8 and reply.usage.prompt_tokens > 0
            pieces, usage = [], None
            for chunk in client.chat.completions.create(
                    model="tiny", max_tokens=6, stream=True, stream_options={"include_usage": True},
                    messages=[{"role": "user", "content": "say hi"}]):
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
                if chunk.usage:
                    usage = chunk.usage
            assert len(pieces) == 6 and usage.completion_tokens == 6, (pieces, usage)

            logs = poll(lambda: app.console("GET", "/console/api/logs?limit=10")["items"], lambda rows: len(rows) == 2)
            for row in logs:
                assert row["channel_name"] == "local: tiny" and row["status"] == 200, row
                assert row["usage_source"] == "upstream" and row["prompt_tokens"] > 0, row
            assert sorted(row["completion_tokens"] for row in logs) == [6, 8]

            stopped = app.console("POST", f"/console/api/instances/{instance['id']}/stop", {})
            assert stopped["state"] == "stopped"
            assert "tiny" in [m.id for m in client.models.list()], "a stopped deployment stays listed: a call loads it"
            app.console("DELETE", f"/console/api/instances/{instance['id']}")
            assert "tiny" not in [m.id for m in client.models.list()], "a deleted deployment is gone"
            app.console("DELETE", f"/console/api/models/local/{model['id']}")
            assert not Path(model["path"]).exists()
            assert app.console("GET", "/console/api/models/local") == []
        finally:
            stop(app.process)
