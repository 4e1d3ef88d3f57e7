-- Full refreshes split by market: the parts of a generation's refresh, claimed by workers.
-- Mirrors graph/migrations/neo4j/012_refresh_parts.cypher.
CREATE TABLE refresh_parts (
    generation  INTEGER NOT NULL,
    part        INTEGER NOT NULL,
    parts       INTEGER NOT NULL,
    status      TEXT NOT NULL,
    snapshot    TEXT NOT NULL,
    claimed_by  TEXT,
    lease_until TEXT,
    state       BLOB,
    PRIMARY KEY (generation, part)
);
