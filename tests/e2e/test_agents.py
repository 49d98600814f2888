"""The coding agents users point at BurnCloud, installed from npm by ./scripts/test and driven end to
end against the real binary: Codex CLI over /v1/responses to chat-only channels, Claude Code over
/v1/messages to an OpenAI-format channel under a non-Claude name, to a Claude channel, and to the
real local llama-server, and Gemini CLI over Gemini's own API to a chat-only channel. Each runs with its HOME in a temp dir and its non-essential traffic off.

The upstream answers as a model would (the mock's `agent` mode): asked to "run the probe", it calls
the agent's own shell tool with `echo burncloud-$((6*7))`, and once the result comes back it answers
with what the tool printed. `burncloud-42` in the agent's answer proves the whole tool turn went
through BurnCloud both ways and the agent really ran the command."""

import json
import os
import subprocess
import tempfile
import textwrap
import urllib.request
from pathlib import Path

import pytest

from conftest import REPLY, ROOT, UPSTREAM_KEY, poll

AGENTS = ROOT / "tests/agents/node_modules/.bin"
PROBE = "please run the probe"
PROBE_OUTPUT = "burncloud-42"


def agent(name):
    path = AGENTS / name
    if not path.exists():
        if os.environ.get("BURNCLOUD_REQUIRE_AGENTS"):
            pytest.fail(f"BURNCLOUD_REQUIRE_AGENTS is set but {path} is missing")
        pytest.skip(f"{name} is not installed: ./scripts/test installs it under tests/agents")
    return str(path)


def agent_mode(upstream):
    request = urllib.request.Request(upstream + "/_mock/mode", method="POST", data=json.dumps({"mode": "agent"}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()


@pytest.fixture
def agents_app(burncloud, upstream):
    """BurnCloud with chat-only channels (DeepSeek, and an OpenAI-compatible server without its own
    Responses API) and a Claude channel, all on the local upstream in agent mode."""
    agent_mode(upstream)
    for channel in [
        {"name": "deepseek", "kind": "deepseek", "base_url": upstream + "/v1", "models": ["deepseek-chat"]},
        {"name": "compatible", "kind": "openai", "base_url": upstream + "/v1", "models": ["qwen3-coder"],
         "native_responses": False},
        {"name": "claude", "kind": "anthropic", "base_url": upstream, "models": ["claude-sonnet-4-5"]},
    ]:
        burncloud.console("POST", "/console/api/channels", {"api_key": UPSTREAM_KEY, **channel})
    return burncloud


def logged(app, token_name):
    def rows():
        return [r for r in app.console("GET", "/console/api/logs?limit=200")["items"] if r["token_name"] == token_name]
    return rows


def run(command, env, cwd, timeout=240):
    completed = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                               stdin=subprocess.DEVNULL)
    return completed.returncode, completed.stdout + completed.stderr


def codex(app, key, model, prompt):
    """`codex exec` with a custom provider at BurnCloud (wire_api = "responses"), as the README says."""
    home = Path(tempfile.mkdtemp(prefix="codex-home-"))
    work = Path(tempfile.mkdtemp(prefix="codex-work-"))
    (home / ".codex").mkdir()
    (home / ".codex/config.toml").write_text(textwrap.dedent(f"""\
        model = "{model}"
        model_provider = "burncloud"
        web_search = "disabled"
        check_for_update_on_startup = false

        [model_providers.burncloud]
        name = "BurnCloud"
        base_url = "{app.base}/v1"
        env_key = "BURNCLOUD_API_KEY"
        wire_api = "responses"

        [analytics]
        enabled = false

        [feedback]
        enabled = false
        """))
    env = dict(os.environ, HOME=str(home), CODEX_HOME=str(home / ".codex"), BURNCLOUD_API_KEY=key, NO_COLOR="1")
    # The temp dir is the whole workspace; the agent's own sandbox helper needs kernel features
    # a CI container may lack, so the commands the model asks for run unsandboxed there.
    return run([agent("codex"), "exec", "--skip-git-repo-check", "--sandbox", "danger-full-access", prompt], env, work)


def claude(app, key, model, prompt, *extra, env_extra=None):
    """`claude -p` with ANTHROPIC_BASE_URL at BurnCloud, as the README says."""
    home = Path(tempfile.mkdtemp(prefix="claude-home-"))
    work = Path(tempfile.mkdtemp(prefix="claude-work-"))
    env = dict(os.environ, HOME=str(home), ANTHROPIC_BASE_URL=app.base, ANTHROPIC_API_KEY=key,
               ANTHROPIC_MODEL=model, ANTHROPIC_DEFAULT_HAIKU_MODEL=model, ANTHROPIC_DEFAULT_SONNET_MODEL=model,
               CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_AUTOUPDATER="1", **(env_extra or {}))
    return run([agent("claude"), "-p", prompt, *extra], env, work)


def gemini_cli(app, key, model, prompt):
    """`gemini -p` with GOOGLE_GEMINI_BASE_URL at BurnCloud and the token as its API key, as the
    user guide says; tools approved as they come (`--yolo`), since nobody is there to approve them."""
    home = Path(tempfile.mkdtemp(prefix="gemini-home-"))
    work = Path(tempfile.mkdtemp(prefix="gemini-work-"))
    (home / ".gemini").mkdir()
    (home / ".gemini/settings.json").write_text(json.dumps({"security": {"auth": {"selectedType": "gemini-api-key"}}}))
    env = dict(os.environ, HOME=str(home), GEMINI_API_KEY=key, GOOGLE_GEMINI_BASE_URL=app.base,
               GEMINI_CLI_TRUST_WORKSPACE="true", NO_COLOR="1")
    return run([agent("gemini"), "-p", prompt, "-m", model, "--yolo"], env, work)


def test_gemini_cli_answers_and_completes_a_tool_turn_through_a_chat_only_channel(agents_app):
    key = agents_app.token(name="gemini-cli")
    code, output = gemini_cli(agents_app, key, "deepseek-chat", "say hi")
    assert code == 0, output
    assert REPLY in output, output

    code, output = gemini_cli(agents_app, key, "deepseek-chat", PROBE)
    assert code == 0, output
    assert "The probe printed:" in output and PROBE_OUTPUT in output, output
    rows = poll(logged(agents_app, "gemini-cli"), lambda rows: len(rows) >= 3)
    assert {(r["endpoint"], r["channel_name"], r["status"]) for r in rows} == {
        ("/v1beta/models:streamGenerateContent", "deepseek", 200)}, rows


@pytest.mark.parametrize("model", ["deepseek-chat", "qwen3-coder"])
def test_codex_answers_and_completes_a_tool_turn_through_a_chat_only_channel(agents_app, model):
    key = agents_app.token(name=f"codex-{model}")
    code, output = codex(agents_app, key, model, "say hi")
    assert code == 0, output
    assert REPLY in output, output

    code, output = codex(agents_app, key, model, PROBE)
    assert code == 0, output
    # Codex hands the model its exec tool's whole report (chunk id, exit code, then the output).
    assert "The probe printed:" in output and PROBE_OUTPUT in output, output
    rows = poll(logged(agents_app, f"codex-{model}"), lambda rows: len(rows) >= 3)
    assert {r["endpoint"] for r in rows} == {"/v1/responses"}, rows
    assert all(r["status"] == 200 and r["is_stream"] and r["end_reason"] == "completed" for r in rows), rows


def test_claude_code_runs_on_a_non_claude_model(agents_app):
    key = agents_app.token(name="claude-deepseek")
    code, output = claude(agents_app, key, "deepseek-chat", "say hi")
    assert code == 0, output
    assert REPLY in output, output

    code, output = claude(agents_app, key, "deepseek-chat", PROBE, "--allowedTools", "Bash")
    assert code == 0, output
    assert f"The probe printed: {PROBE_OUTPUT}" in output, output
    rows = poll(logged(agents_app, "claude-deepseek"), lambda rows: len(rows) >= 3)
    assert {(r["endpoint"], r["channel_name"], r["status"]) for r in rows} == {("/v1/messages", "deepseek", 200)}, rows


def test_claude_code_with_a_claude_model_reaches_the_claude_channel_natively(agents_app):
    key = agents_app.token(name="claude-native")
    code, output = claude(agents_app, key, "claude-sonnet-4-5", PROBE, "--allowedTools", "Bash")
    assert code == 0, output
    assert f"The probe printed: {PROBE_OUTPUT}" in output, output
    rows = poll(logged(agents_app, "claude-native"), lambda rows: len(rows) >= 2)
    assert {(r["endpoint"], r["channel_name"], r["status"]) for r in rows} == {("/v1/messages", "claude", 200)}, rows


def test_claude_code_reaches_the_real_local_llama_server(burncloud, llama_server, tiny_gguf):
    model = burncloud.console("POST", "/console/api/models/local/import", {"path": str(tiny_gguf)})
    instance = burncloud.console("POST", "/console/api/instances",
                                 {"model_id": model["id"], "alias": "tiny-coder", "ctx_size": 4096, "parallel": 1})
    instance = poll(lambda: burncloud.console("GET", f"/console/api/instances/{instance['id']}"),
                    lambda i: i["state"] in ("ready", "failed"))
    assert instance["state"] == "ready", instance
    key = burncloud.token(name="claude-local")
    # The tiny model's random weights never choose to stop, so every answer runs to the output
    # limit; Claude Code reads that stop reason from BurnCloud's stream and says so.
    code, output = claude(burncloud, key, "tiny-coder", "say hi", "--system-prompt", "Be brief.", "--tools", "",
                          env_extra={"CLAUDE_CODE_MAX_OUTPUT_TOKENS": "32"})
    assert "exceeded the 32 output token maximum" in output, (code, output)
    rows = poll(logged(burncloud, "claude-local"), lambda rows: len(rows) >= 1)
    for row in rows:
        assert (row["endpoint"], row["channel_name"], row["status"]) == ("/v1/messages", "local: tiny-coder", 200), row
        assert row["usage_source"] == "upstream" and row["completion_tokens"] == 32, row
        assert row["prompt_tokens"] > 500, "Claude Code's whole prompt reached llama-server"
