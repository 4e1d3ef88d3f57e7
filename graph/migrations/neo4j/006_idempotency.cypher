// Idempotency keys of API requests: (:IdempotencyKey {id: token_id + ' ' + key, token_id, key,
// fingerprint, created_at, status, body, headers}). Mirrors graph/migrations/sqlite/006_idempotency.sql.
CREATE CONSTRAINT idempotency_key_id IF NOT EXISTS FOR (k:IdempotencyKey) REQUIRE k.id IS UNIQUE;
CREATE INDEX idempotency_key_created IF NOT EXISTS FOR (k:IdempotencyKey) ON (k.created_at);
