-- Usage totals per UTC hour, model, token and channel, kept in step with `logs` by the log writer
-- (same transaction), so the dashboard's day, week and month figures read a few thousand rows
-- instead of millions. Token and channel keys are the names the usage report groups by.
CREATE TABLE usage_hourly (
    hour_ms           INTEGER NOT NULL,
    model             TEXT    NOT NULL,
    token_key         TEXT    NOT NULL,
    channel_key       TEXT    NOT NULL,
    requests          INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_nano         INTEGER NOT NULL,
    PRIMARY KEY (hour_ms, model, token_key, channel_key)
) WITHOUT ROWID;

INSERT INTO usage_hourly
SELECT (created_at_ms / 3600000) * 3600000, model,
       COALESCE(token_name, '#' || token_id, '-'), COALESCE(channel_name, '#' || channel_id, '-'),
       COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_nano)
FROM logs
GROUP BY 1, 2, 3, 4;
