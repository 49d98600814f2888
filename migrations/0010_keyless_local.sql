-- The token that calls from this machine without a key are charged to (Ollama clients that cannot
-- send one); at most one token has it, and none does until the user picks one.
ALTER TABLE tokens ADD COLUMN keyless_local INTEGER NOT NULL DEFAULT 0;
