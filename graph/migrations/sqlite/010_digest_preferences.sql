-- Each salesperson's weekly-digest preferences (the web app's settings page sets them).
-- Mirrors graph/migrations/neo4j/010_digest_preferences.cypher.
CREATE TABLE digest_preferences (
    salesperson_id TEXT PRIMARY KEY REFERENCES salespeople (id),
    weekly         INTEGER NOT NULL DEFAULT 1,
    weekday        INTEGER NOT NULL DEFAULT 0,  -- 0 Monday .. 6 Sunday
    size           INTEGER NOT NULL DEFAULT 5
);
