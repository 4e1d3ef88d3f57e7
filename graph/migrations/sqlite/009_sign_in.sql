-- The web app's sign-in: an argon2 hash of each salesperson's password, never the password.
-- Mirrors graph/migrations/neo4j/009_sign_in.cypher.
CREATE TABLE credentials (
    salesperson_id TEXT PRIMARY KEY REFERENCES salespeople (id),
    password_hash  TEXT NOT NULL,
    changed_at     TEXT NOT NULL
);
