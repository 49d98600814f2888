-- Deployments of local models: how each llama-server instance is configured. Whether it runs is
-- the supervisor's live state; after a restart of the app every instance starts out stopped.
CREATE TABLE instances (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id      INTEGER NOT NULL,
    alias         TEXT    NOT NULL UNIQUE,
    ctx_size      INTEGER NOT NULL,
    n_gpu_layers  INTEGER NOT NULL,
    parallel      INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL
);
