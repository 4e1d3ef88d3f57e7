-- The customer graph as tables: nodes are tables keyed by their stable id,
-- relationships are link tables. Mirrors graph/migrations/neo4j/001_customer_graph.cypher.
CREATE TABLE salespeople (
    id    TEXT PRIMARY KEY,
    name  TEXT NOT NULL,
    email TEXT
);

CREATE TABLE places (
    id      TEXT PRIMARY KEY,
    city    TEXT NOT NULL,
    region  TEXT NOT NULL DEFAULT '',
    country TEXT NOT NULL DEFAULT '',
    metro   TEXT NOT NULL DEFAULT '',
    lat     REAL,
    lon     REAL
);
CREATE INDEX places_metro ON places (metro);

CREATE TABLE categories (
    slug TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

CREATE TABLE businesses (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    customers      TEXT NOT NULL DEFAULT '',
    needs          TEXT NOT NULL DEFAULT '',
    website        TEXT,
    email          TEXT,
    contact_name   TEXT,
    employees      INTEGER,
    opted_out      INTEGER NOT NULL DEFAULT 0,
    salesperson_id TEXT NOT NULL REFERENCES salespeople (id),
    place_id       TEXT REFERENCES places (id),
    content_hash   TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX businesses_salesperson ON businesses (salesperson_id);
CREATE INDEX businesses_name ON businesses (name COLLATE NOCASE);

-- IN_CATEGORY: 'given' by the CRM, or 'inferred' from the text with a confidence.
CREATE TABLE business_categories (
    business_id   TEXT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    category_slug TEXT NOT NULL REFERENCES categories (slug),
    source        TEXT NOT NULL CHECK (source IN ('given', 'inferred')),
    confidence    REAL NOT NULL DEFAULT 1.0,
    position      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (business_id, category_slug)
);
CREATE INDEX business_categories_category ON business_categories (category_slug);

-- KNOWS / PARTNERS_WITH, undirected: the smaller id is always business_a.
CREATE TABLE ties (
    business_a TEXT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    business_b TEXT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('KNOWS', 'PARTNERS_WITH')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (business_a, business_b, kind),
    CHECK (business_a < business_b)
);
CREATE INDEX ties_b ON ties (business_b);

-- DO_NOT_INTRODUCE for a pair; a whole customer opts out with businesses.opted_out.
CREATE TABLE do_not_introduce (
    business_a TEXT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    business_b TEXT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    reason     TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    PRIMARY KEY (business_a, business_b),
    CHECK (business_a < business_b)
);
