-- Model downloads (persisted so they continue after a restart) and the GGUF models on disk.
CREATE TABLE downloads (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    source         TEXT    NOT NULL,
    repo           TEXT    NOT NULL,
    path           TEXT    NOT NULL,
    -- JSON list of {path, size, sha256}: several files for a split model.
    files          TEXT    NOT NULL,
    revision       TEXT,
    state          TEXT    NOT NULL,
    bytes_done     INTEGER NOT NULL DEFAULT 0,
    bytes_total    INTEGER NOT NULL DEFAULT 0,
    error          TEXT,
    local_model_id INTEGER,
    created_at_ms  INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL
);

CREATE TABLE local_models (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    path        TEXT    NOT NULL UNIQUE,
    files       TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT,
    source      TEXT    NOT NULL,
    repo        TEXT,
    quant       TEXT,
    added_at_ms INTEGER NOT NULL
);
