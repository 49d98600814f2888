-- Channel groups: a token routes within its group, by the group's strategy.
CREATE TABLE channel_groups (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    strategy      TEXT    NOT NULL DEFAULT 'priority',
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_id   INTEGER NOT NULL REFERENCES channel_groups (id) ON DELETE CASCADE,
    channel_id INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    weight     INTEGER NOT NULL DEFAULT 1,
    priority   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (group_id, channel_id)
);
CREATE INDEX group_members_channel ON group_members (channel_id);

-- `default` always exists; while it has no members it means every enabled channel.
INSERT INTO channel_groups (name, strategy, created_at_ms, updated_at_ms) VALUES ('default', 'priority', 0, 0);
