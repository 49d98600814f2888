-- Prompt-cache aware usage and prices. A cache price left NULL charges those tokens as input (a
-- 1-hour write as a 5-minute one). The token columns are parts of prompt_tokens (cached reads,
-- cache writes, of which 1-hour writes) and of completion_tokens (reasoning).
ALTER TABLE prices ADD COLUMN cache_read_nano_per_mtok INTEGER;
ALTER TABLE prices ADD COLUMN cache_write_nano_per_mtok INTEGER;
ALTER TABLE prices ADD COLUMN cache_write_1h_nano_per_mtok INTEGER;

ALTER TABLE logs ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE logs ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE logs ADD COLUMN cache_write_1h_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE logs ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;

ALTER TABLE usage_hourly ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0;
