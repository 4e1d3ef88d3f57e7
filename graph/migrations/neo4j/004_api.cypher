// The JSON API's tokens: (:ApiToken {id, secret_hash, name, scopes, salesperson_id, created_by,
// created_at, revoked_at}); the secret is kept only as its SHA-256, looked up on every request.
// Mirrors graph/migrations/sqlite/004_api.sql.
CREATE CONSTRAINT api_token_id IF NOT EXISTS FOR (t:ApiToken) REQUIRE t.id IS UNIQUE;
CREATE CONSTRAINT api_token_secret IF NOT EXISTS FOR (t:ApiToken) REQUIRE t.secret_hash IS UNIQUE;
