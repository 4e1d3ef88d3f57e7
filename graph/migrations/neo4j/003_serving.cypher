// Serving: account lifecycle, roles, pending changes, generations of suggestions, jobs,
// the history of suggestions shown or acted on. Mirrors graph/migrations/sqlite/003_serving.sql.
//
// Businesses gain city, region, country, metro, lat and lon (their own place as their row gave
// it; a Place is shared by a city), source_digest (of the file row they were
// last imported from), archived_at, opted_out_at and opt_out_reason (Netweave's own state);
// salespeople a role. Lists are (:Business)-[:HAS_LIST]->(:SuggestionList {business_id,
// generation, computed_at})-[:SUGGESTS {rank, score, reasons, other_reasons}]->(:Business);
// consents are (:Business)-[:SHARES_CONTACT {granted_by, at}]->(:Business).
CREATE CONSTRAINT pending_change_business IF NOT EXISTS FOR (c:PendingChange) REQUIRE c.business_id IS UNIQUE;
CREATE CONSTRAINT generation_id IF NOT EXISTS FOR (g:Generation) REQUIRE g.id IS UNIQUE;
CREATE CONSTRAINT match_state_id IF NOT EXISTS FOR (m:MatchState) REQUIRE m.id IS UNIQUE;
CREATE CONSTRAINT counter_name IF NOT EXISTS FOR (c:Counter) REQUIRE c.name IS UNIQUE;
CREATE CONSTRAINT job_id IF NOT EXISTS FOR (j:Job) REQUIRE j.id IS UNIQUE;
CREATE CONSTRAINT job_coalesce_key IF NOT EXISTS FOR (j:Job) REQUIRE j.coalesce_key IS UNIQUE;
CREATE INDEX job_created IF NOT EXISTS FOR (j:Job) ON (j.created_at);
CREATE INDEX job_status IF NOT EXISTS FOR (j:Job) ON (j.status);
CREATE INDEX suggestion_list_generation IF NOT EXISTS FOR (l:SuggestionList) ON (l.generation);
CREATE INDEX suggestion_list_business IF NOT EXISTS FOR (l:SuggestionList) ON (l.business_id);
CREATE INDEX suggestion_event_business IF NOT EXISTS FOR (e:SuggestionEvent) ON (e.business_id);
CREATE INDEX suggestion_event_other IF NOT EXISTS FOR (e:SuggestionEvent) ON (e.other_id);
CREATE INDEX business_archived IF NOT EXISTS FOR (b:Business) ON (b.archived_at);
DROP INDEX suggested_rank IF EXISTS;
// Suggestions are derived data: the first refresh after this migration recomputes them.
MATCH ()-[r:SUGGESTED]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS;
MERGE (:MatchState {id: 'current'});
// A business's own place fields (a Place is shared by every business in its city).
MATCH (b:Business)-[:LOCATED_IN]->(p:Place) WHERE b.city IS NULL
CALL (b, p) {
  SET b.city = p.city, b.region = p.region, b.country = p.country, b.metro = p.metro, b.lat = p.lat, b.lon = p.lon
} IN TRANSACTIONS OF 10000 ROWS;
