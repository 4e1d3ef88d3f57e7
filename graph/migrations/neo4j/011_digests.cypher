// The weekly email: (:Salesperson) gains digest_hour, digest_timezone and
// digest_note_when_empty; each digest is a (:Digest {id: week + ':' + salesperson_id,
// salesperson_id, week, status, created_at, items (JSON), recipient, subject, text_body,
// html_body, message_id, attempts, lease_until, next_attempt_at, sent_at, last_error}),
// recorded before it is sent; one-time links used are (:UsedLink {id, used_at}).
// Mirrors graph/migrations/sqlite/011_digests.sql.
CREATE CONSTRAINT digest_id IF NOT EXISTS FOR (d:Digest) REQUIRE d.id IS UNIQUE;
CREATE INDEX digest_created IF NOT EXISTS FOR (d:Digest) ON (d.created_at);
CREATE INDEX digest_week IF NOT EXISTS FOR (d:Digest) ON (d.week);
CREATE INDEX digest_salesperson IF NOT EXISTS FOR (d:Digest) ON (d.salesperson_id);
CREATE INDEX digest_status IF NOT EXISTS FOR (d:Digest) ON (d.status);
CREATE CONSTRAINT used_link_id IF NOT EXISTS FOR (u:UsedLink) REQUIRE u.id IS UNIQUE;
