-- Responses stored for `previous_response_id` (OpenAI's Responses API, `store` true) when
-- BurnCloud itself answered them through a chat channel. `items` is this turn's input and output,
-- as Responses input items; `previous_id` the response it continued, so a conversation is its
-- chain of turns and each turn is stored once. `response` is the object that
-- GET /v1/responses/{id} returns. Rows go with the call log's retention.
CREATE TABLE responses (
    id            TEXT    PRIMARY KEY,
    token_id      INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    previous_id   TEXT,
    items         TEXT    NOT NULL,
    response      TEXT    NOT NULL
);
CREATE INDEX responses_created_at ON responses (created_at_ms);

-- OpenAI channels pass /v1/responses through to the upstream's own Responses API unless this is
-- off (OpenAI-compatible servers without it get chat completions instead).
ALTER TABLE channels ADD COLUMN native_responses INTEGER NOT NULL DEFAULT 1;
