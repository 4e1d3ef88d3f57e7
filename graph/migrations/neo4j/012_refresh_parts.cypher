// Full refreshes split by market: (:RefreshPart {id: generation + ':' + part, generation, part,
// parts, status, snapshot, claimed_by, lease_until, state (bytes)}), claimed by workers.
// Mirrors graph/migrations/sqlite/012_refresh_parts.sql.
CREATE CONSTRAINT refresh_part_id IF NOT EXISTS FOR (p:RefreshPart) REQUIRE p.id IS UNIQUE;
CREATE INDEX refresh_part_generation IF NOT EXISTS FOR (p:RefreshPart) ON (p.generation);
