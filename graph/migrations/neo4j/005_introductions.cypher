// Introductions: (:Introduction {id, a_id, b_id, status, created_at, created_by, message_a, message_b, score,
// steps})-[:INTRODUCES {side: 'a'|'b'}]->(:Business), with (:Introduction)-[:HAS_STEP]->
// (:IntroStep {seq, status, at, by, note}) and -[:HAS_FEEDBACK]->(:IntroFeedback {seq,
// business_id, rating, comment, at, by}). Mirrors graph/migrations/sqlite/005_introductions.sql.
CREATE CONSTRAINT introduction_id IF NOT EXISTS FOR (i:Introduction) REQUIRE i.id IS UNIQUE;
CREATE INDEX introduction_created IF NOT EXISTS FOR (i:Introduction) ON (i.created_at);
