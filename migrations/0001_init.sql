-- The gateway's configuration, the account and the call log.

CREATE TABLE channels (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    base_url      TEXT,
    api_key       TEXT    NOT NULL DEFAULT '',
    models        TEXT    NOT NULL DEFAULT '[]',
    model_mapping TEXT    NOT NULL DEFAULT '{}',
    priority      INTEGER NOT NULL DEFAULT 0,
    weight        INTEGER NOT NULL DEFAULT 1,
    enabled       INTEGER NOT NULL DEFAULT 1,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

CREATE TABLE tokens (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL,
    key_hash         TEXT    NOT NULL UNIQUE,
    key_prefix       TEXT    NOT NULL,
    group_name       TEXT    NOT NULL DEFAULT 'default',
    quota_limit_nano INTEGER,
    used_quota_nano  INTEGER NOT NULL DEFAULT 0,
    rpm_limit        INTEGER,
    tpm_limit        INTEGER,
    expires_at_ms    INTEGER,
    models           TEXT    NOT NULL DEFAULT '[]',
    enabled          INTEGER NOT NULL DEFAULT 1,
    created_at_ms    INTEGER NOT NULL,
    updated_at_ms    INTEGER NOT NULL
);

CREATE TABLE prices (
    model                 TEXT PRIMARY KEY,
    input_nano_per_mtok   INTEGER NOT NULL,
    output_nano_per_mtok  INTEGER NOT NULL,
    updated_at_ms         INTEGER NOT NULL
);

-- One row. credit_nano NULL means unlimited; the balance is credit minus used.
CREATE TABLE account (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    currency    TEXT    NOT NULL DEFAULT 'USD',
    credit_nano INTEGER,
    used_nano   INTEGER NOT NULL DEFAULT 0
);
INSERT INTO account (id) VALUES (1);

CREATE TABLE logs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id        TEXT    NOT NULL,
    created_at_ms     INTEGER NOT NULL,
    token_id          INTEGER,
    token_name        TEXT,
    channel_id        INTEGER,
    channel_name      TEXT,
    endpoint          TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    upstream_model    TEXT,
    is_stream         INTEGER NOT NULL,
    status            INTEGER NOT NULL,
    error             TEXT,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    usage_source      TEXT    NOT NULL,
    cost_nano         INTEGER NOT NULL,
    priced            INTEGER NOT NULL,
    latency_ms        INTEGER NOT NULL,
    first_token_ms    INTEGER,
    end_reason        TEXT    NOT NULL,
    attempts          INTEGER NOT NULL
);
CREATE INDEX logs_created_at ON logs (created_at_ms);
CREATE INDEX logs_model ON logs (model, id);
CREATE INDEX logs_token ON logs (token_id, id);
CREATE INDEX logs_channel ON logs (channel_id, id);
CREATE INDEX logs_request_id ON logs (request_id);
