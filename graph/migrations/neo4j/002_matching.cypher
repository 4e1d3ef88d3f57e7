// Suggestions are (:Business)-[:SUGGESTED {rank, score, reasons, other_reasons, computed_at}]->(:Business);
// feedback is (:Business)-[:FEEDBACK {kind, reason, at, salesperson_id}]->(:Business);
// embeddings are Business properties <field>_vector and <field>_hash.
CREATE INDEX suggested_rank IF NOT EXISTS FOR ()-[r:SUGGESTED]-() ON (r.rank);
