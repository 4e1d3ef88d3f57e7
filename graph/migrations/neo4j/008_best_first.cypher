// A salesperson's best suggestions, read best first without sorting the whole book: each
// [:SUGGESTS] names the salesperson who managed its business when the list was written, and
// carries its business's and other business's ids, so that one index gives the order.
// Mirrors graph/migrations/sqlite/008_best_first.sql.
CREATE INDEX suggests_best IF NOT EXISTS FOR ()-[r:SUGGESTS]-() ON (r.salesperson_id, r.score, r.business_id, r.other_id);
MATCH (s:Salesperson)-[:MANAGES]->(b:Business)-[:HAS_LIST]->(:SuggestionList)-[r:SUGGESTS]->(o:Business)
WHERE r.salesperson_id IS NULL
CALL (s, b, r, o) { SET r.salesperson_id = s.id, r.business_id = b.id, r.other_id = o.id } IN TRANSACTIONS OF 10000 ROWS;
