"""The official `openai` SDK against the real `burncloud` binary."""

import signal
import sqlite3

import openai
import pytest

from conftest import REPLY, stop


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
