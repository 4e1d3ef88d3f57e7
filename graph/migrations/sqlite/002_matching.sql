-- What the matcher keeps: text embeddings with the hash of the text they came from,
-- ranked suggestions with reasons for both sides, and feedback on pairs.
-- Mirrors graph/migrations/neo4j/002_matching.cypher.
CREATE TABLE embeddings (
    business_id TEXT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    field       TEXT NOT NULL CHECK (field IN ('offers', 'customers', 'needs')),
    text_hash   TEXT NOT NULL,
    vector      BLOB NOT NULL,  -- float32, little-endian
    PRIMARY KEY (business_id, field)
);

CREATE TABLE suggestions (
    business_id   TEXT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    other_id      TEXT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    rank          INTEGER NOT NULL,
    score         REAL NOT NULL,
    reasons       TEXT NOT NULL,  -- JSON list of sentences for business_id
    other_reasons TEXT NOT NULL,  -- JSON list of sentences for other_id
    computed_at   TEXT NOT NULL,
    PRIMARY KEY (business_id, other_id)
);
CREATE INDEX suggestions_rank ON suggestions (business_id, rank);
CREATE INDEX suggestions_other ON suggestions (other_id);

CREATE TABLE feedback (
    id             INTEGER PRIMARY KEY,
    business_a     TEXT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    business_b     TEXT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('dismissed', 'intro_made', 'intro_accepted', 'intro_declined')),
    reason         TEXT NOT NULL DEFAULT '',
    salesperson_id TEXT,
    at             TEXT NOT NULL
);
CREATE INDEX feedback_pair ON feedback (business_a, business_b);
