-- The view version: a token renewed by every write that may change what a suggestion sheet
-- shows, so each process reads a sheet again only when it has changed (graph/store.py).
-- Mirrors graph/migrations/neo4j/013_view_version.cypher.
ALTER TABLE match_state ADD COLUMN view TEXT;
UPDATE match_state SET view = lower(hex(randomblob(16))) WHERE id = 1;
