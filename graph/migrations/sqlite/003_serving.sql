-- Serving: account lifecycle, roles, pending changes, generations of suggestions, jobs,
-- the history of suggestions shown or acted on, and contact-sharing consents.
-- Mirrors graph/migrations/neo4j/003_serving.cypher.

-- A business's own place as its row gave it: a place (a city) is shared, so its fields
-- cannot be each business's (writing one business's metro or coordinates would move every
-- other business of the city). Older rows take their place's once, here.
ALTER TABLE businesses ADD COLUMN city TEXT;
ALTER TABLE businesses ADD COLUMN region TEXT;
ALTER TABLE businesses ADD COLUMN country TEXT;
ALTER TABLE businesses ADD COLUMN metro TEXT;
ALTER TABLE businesses ADD COLUMN lat REAL;
ALTER TABLE businesses ADD COLUMN lon REAL;
ALTER TABLE businesses ADD COLUMN postal_code TEXT NOT NULL DEFAULT '';
UPDATE businesses SET
    city = (SELECT p.city FROM places p WHERE p.id = businesses.place_id),
    region = (SELECT p.region FROM places p WHERE p.id = businesses.place_id),
    country = (SELECT p.country FROM places p WHERE p.id = businesses.place_id),
    metro = (SELECT p.metro FROM places p WHERE p.id = businesses.place_id),
    lat = (SELECT p.lat FROM places p WHERE p.id = businesses.place_id),
    lon = (SELECT p.lon FROM places p WHERE p.id = businesses.place_id);

-- The digest of the file row a business was last imported from: a re-import takes an equal
-- row as unchanged without validating it again.
ALTER TABLE businesses ADD COLUMN source_digest TEXT;

-- Netweave's own state beside the CRM record (not part of its content hash).
ALTER TABLE businesses ADD COLUMN archived_at TEXT;
ALTER TABLE businesses ADD COLUMN opted_out_at TEXT;
ALTER TABLE businesses ADD COLUMN opt_out_reason TEXT NOT NULL DEFAULT '';
CREATE INDEX businesses_archived ON businesses (archived_at);

ALTER TABLE salespeople ADD COLUMN role TEXT NOT NULL DEFAULT 'salesperson'
    CHECK (role IN ('salesperson', 'manager'));

-- Businesses a change may have affected, written in the change's own transaction.
-- No foreign key: a pending change outlives nothing, but must never block a write.
CREATE TABLE pending_changes (
    business_id TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    first_at    TEXT NOT NULL,
    at          TEXT NOT NULL
);

-- Suggestions are published a generation at a time (see graph/store.py, MatchState).
CREATE TABLE generations (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('full', 'incremental')),
    status          TEXT NOT NULL CHECK (status IN ('building', 'published', 'abandoned')),
    model           TEXT NOT NULL,
    rules_digest    TEXT NOT NULL,
    settings_digest TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    published_at    TEXT,
    lists           INTEGER NOT NULL DEFAULT 0,
    suggestions     INTEGER NOT NULL DEFAULT 0,
    job_id          TEXT
);

CREATE TABLE match_state (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    published INTEGER REFERENCES generations (id),
    base      INTEGER REFERENCES generations (id)
);
INSERT INTO match_state (id) VALUES (1);

CREATE TABLE suggestion_lists (
    business_id TEXT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    generation  INTEGER NOT NULL REFERENCES generations (id),
    computed_at TEXT NOT NULL,
    PRIMARY KEY (business_id, generation)
);
CREATE INDEX suggestion_lists_generation ON suggestion_lists (generation);

-- Suggestions are derived data: the first refresh after this migration recomputes them.
DROP TABLE suggestions;
CREATE TABLE suggestions (
    business_id   TEXT NOT NULL,
    generation    INTEGER NOT NULL,
    rank          INTEGER NOT NULL,
    other_id      TEXT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    score         REAL NOT NULL,
    reasons       TEXT NOT NULL,  -- JSON list of sentences for business_id
    other_reasons TEXT NOT NULL,  -- JSON list of sentences for other_id
    PRIMARY KEY (business_id, generation, rank),
    FOREIGN KEY (business_id, generation) REFERENCES suggestion_lists (business_id, generation) ON DELETE CASCADE
);
CREATE INDEX suggestions_other ON suggestions (other_id);

CREATE TABLE suggestion_events (
    id             INTEGER PRIMARY KEY,
    business_id    TEXT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    other_id       TEXT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('shown', 'acted')),
    channel        TEXT NOT NULL,
    salesperson_id TEXT,
    detail         TEXT NOT NULL DEFAULT '',
    at             TEXT NOT NULL,
    generation     INTEGER NOT NULL,
    model          TEXT NOT NULL,
    rules_digest   TEXT NOT NULL,
    rank           INTEGER NOT NULL,
    score          REAL NOT NULL,
    reasons        TEXT NOT NULL,
    other_reasons  TEXT NOT NULL,
    computed_at    TEXT NOT NULL
);
CREATE INDEX suggestion_events_business ON suggestion_events (business_id);
CREATE INDEX suggestion_events_other ON suggestion_events (other_id);

CREATE TABLE contact_consents (
    business_id TEXT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    other_id    TEXT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    granted_by  TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (business_id, other_id)
);

CREATE TABLE jobs (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    coalesce_key  TEXT UNIQUE,  -- held while queued: requests made meanwhile share the job
    requested_by  TEXT,
    created_at    TEXT NOT NULL,
    started_at    TEXT,
    finished_at   TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    summary       TEXT NOT NULL DEFAULT '',
    error         TEXT NOT NULL DEFAULT '',
    progress      TEXT  -- JSON {stage, done, total}
);
CREATE INDEX jobs_status ON jobs (status, created_at);
CREATE INDEX jobs_created ON jobs (created_at);

CREATE INDEX feedback_b ON feedback (business_b);
