-- Introductions: made from a suggestion, asked of each side first (double opt-in), moved
-- through their statuses step by step, with 1-5 feedback from either side.
-- Mirrors graph/migrations/neo4j/005_introductions.cypher.
CREATE TABLE introductions (
    id         TEXT PRIMARY KEY,
    business_a TEXT NOT NULL REFERENCES businesses (id),
    business_b TEXT NOT NULL REFERENCES businesses (id),
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    message_a  TEXT NOT NULL,
    message_b  TEXT NOT NULL,
    score      REAL NOT NULL DEFAULT 0,
    steps      INTEGER NOT NULL DEFAULT 0  -- how many steps: the version a move must expect
);
CREATE INDEX introductions_a ON introductions (business_a);
CREATE INDEX introductions_b ON introductions (business_b);
CREATE INDEX introductions_created ON introductions (created_at);

CREATE TABLE introduction_steps (
    introduction_id TEXT NOT NULL REFERENCES introductions (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    status          TEXT NOT NULL,
    at              TEXT NOT NULL,
    by_whom         TEXT NOT NULL,
    note            TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (introduction_id, seq)
);

CREATE TABLE introduction_feedback (
    introduction_id TEXT NOT NULL REFERENCES introductions (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    business_id     TEXT NOT NULL,
    rating          INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment         TEXT NOT NULL DEFAULT '',
    at              TEXT NOT NULL,
    by_whom         TEXT NOT NULL,
    PRIMARY KEY (introduction_id, seq)
);
