-- The JSON API's tokens: the secret is kept only as its SHA-256, looked up on every request.
-- Mirrors graph/migrations/neo4j/004_api.cypher.
CREATE TABLE api_tokens (
    id             TEXT PRIMARY KEY,
    secret_hash    TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    scopes         TEXT NOT NULL,  -- JSON list
    salesperson_id TEXT REFERENCES salespeople (id),  -- NULL: an integration's token
    created_by     TEXT,
    created_at     TEXT NOT NULL,
    revoked_at     TEXT
);
