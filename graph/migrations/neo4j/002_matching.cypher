// Suggestions are (:Business)-[:SUGGESTED {rank, score, reasons, other_reasons, computed_at}]->(:Business);
// feedback is (:Business)-[:FEEDBACK {kind, reason, at, salesperson_id}]->(:Business);
// embeddings are Business properties <field>_vector and <field>_hash. The vector indexes
// depend on the model's dimensions, so the matcher creates them (IF NOT EXISTS) itself.
CREATE INDEX suggested_rank IF NOT EXISTS FOR ()-[r:SUGGESTED]-() ON (r.rank);
