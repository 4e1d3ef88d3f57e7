-- Idempotency keys of API requests: a retried request gets the first answer, not a second write.
-- Mirrors graph/migrations/neo4j/006_idempotency.cypher.
CREATE TABLE idempotency_keys (
    token_id    TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    status      INTEGER,          -- NULL while the first request is being answered
    body        TEXT NOT NULL DEFAULT '',
    headers     TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (token_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
