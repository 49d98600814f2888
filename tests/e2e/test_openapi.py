"""The OpenAPI document (`GET /console/api/openapi.json`, built from the code: the console API and
the data plane's routes) drives schemathesis against the real `burncloud serve`: thousands of
generated requests, valid and not, find no server error and no answer the document does not
describe. The data plane answers the admin key with 401 in each protocol's shape; its calls with
real tokens are driven by the official SDKs and clients in the other end-to-end tests."""

import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ADMIN_KEY, TINY_FILE, TINY_REPO, UPSTREAM_KEY, BurnCloud, poll, stop

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.fixture
def seeded(tiny_hub, tiny_gguf, upstream, tmp_path):
    """A server with one of each thing, so that the examples reach real items (id 1) too."""
    app = BurnCloud(tmp_path / "data", extra_env=tiny_hub.env())
    try:
        channel = app.console("POST", "/console/api/channels", {
            "name": "mock", "kind": "openai", "base_url": upstream + "/v1", "api_key": UPSTREAM_KEY,
            "models": ["gpt-4o-mini"]})
        app.token(name="seed")
        app.console("POST", "/console/api/groups", {
            "name": "seed", "strategy": "priority", "members": [{"channel_id": channel["id"]}]})
        app.console("PUT", "/console/api/prices/gpt-4o-mini", {"input_per_mtok": "1", "output_per_mtok": "2"})
        # A copy: the fuzzer may delete the local model, and deleting removes its file.
        copy = tmp_path / "tiny-copy.gguf"
        shutil.copyfile(tiny_gguf, copy)
        app.console("POST", "/console/api/models/local/import", {"path": str(copy)})
        download = app.console("POST", "/console/api/downloads",
                               {"source": "huggingface", "repo": TINY_REPO, "path": TINY_FILE})
        poll(lambda: app.console("GET", f"/console/api/downloads/{download['id']}"),
             lambda d: d["state"] in ("done", "failed"))
        yield app
    finally:
        assert stop(app.process) == 0


def test_the_document_is_the_console_api_and_needs_the_admin_key(seeded):
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(seeded.base + "/console/api/openapi.json", timeout=5)
    assert caught.value.code == 401
    document = seeded.console("GET", "/console/api/openapi.json")
    assert document["openapi"].startswith("3.1")
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert ("POST", "/console/api/channels") in operations and ("GET", "/console/api/usage") in operations
    # 56 console operations (the document itself among them) and 40 of the data plane (OpenAI's,
    # Anthropic's, Gemini's and Ollama's doors).
    assert len(operations) == 96
    assert ("POST", "/console/api/prices/presets/apply") in operations
    assert ("GET", "/console/api/openapi.json") in operations
    assert ("POST", "/console/api/runtimes/install") in operations
    assert {("POST", "/v1/audio/transcriptions"), ("POST", "/api/generate"),
            ("POST", "/v1beta/models/{model}:streamGenerateContent"), ("GET", "/v1/key")} <= operations


def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(seeded):
    if not SCHEMATHESIS.exists():
        pytest.skip(f"schemathesis is not installed next to {sys.executable} (scripts/test installs it)")
    run = subprocess.run(
        [str(SCHEMATHESIS), "run", seeded.base + "/console/api/openapi.json",
         "--header", f"Authorization: Bearer {ADMIN_KEY}",
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
         # Rotating the admin key mid-run would lock the rest of the run out.
         "--exclude-path", "/console/api/admin-key/rotate",
         # Ollama's model management answers 501 to everyone, by design: not a server error.
         "--exclude-path-regex", "^/api/(pull|push|create|copy|delete)$",
         "--phases", "examples,coverage,fuzzing", "--max-examples", "50", "--workers", "1"],
        capture_output=True, text=True, timeout=900, env=dict(os.environ, NO_COLOR="1"),
    )
    print(run.stdout[-3000:])
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "generated" in run.stdout and " passed" in run.stdout
    # The server lived through it.
    with urllib.request.urlopen(seeded.base + "/health", timeout=5) as response:
        assert response.status == 200
