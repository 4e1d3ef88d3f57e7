-- The weekly email: when each salesperson wants it (hour and time zone), every digest recorded
-- before it is sent (one per salesperson and ISO week), and one-time links already used.
-- Mirrors graph/migrations/neo4j/011_digests.cypher.
ALTER TABLE digest_preferences ADD COLUMN hour INTEGER NOT NULL DEFAULT 8;
ALTER TABLE digest_preferences ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE digest_preferences ADD COLUMN note_when_empty INTEGER NOT NULL DEFAULT 0;

CREATE TABLE digests (
    salesperson_id  TEXT NOT NULL REFERENCES salespeople (id),
    week            TEXT NOT NULL,  -- ISO week, e.g. 2026-W48
    status          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    items           TEXT NOT NULL,  -- JSON: what it suggests and asks about
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_until     TEXT,
    next_attempt_at TEXT,
    sent_at         TEXT,
    last_error      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (salesperson_id, week)
);
CREATE INDEX digests_created ON digests (created_at);
CREATE INDEX digests_week ON digests (week, status);
CREATE INDEX digests_status ON digests (status);

CREATE TABLE used_links (
    id      TEXT PRIMARY KEY,
    used_at TEXT NOT NULL
);
