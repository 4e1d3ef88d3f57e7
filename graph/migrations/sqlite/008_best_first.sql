-- A salesperson's best suggestions, read best first without sorting the whole book: each
-- suggestion names the salesperson who managed its business when the list was written.
-- Mirrors graph/migrations/neo4j/008_best_first.cypher.
ALTER TABLE suggestions ADD COLUMN salesperson_id TEXT;
UPDATE suggestions SET salesperson_id = (SELECT b.salesperson_id FROM businesses b WHERE b.id = suggestions.business_id);
CREATE INDEX suggestions_best ON suggestions (salesperson_id, score, business_id, other_id);
