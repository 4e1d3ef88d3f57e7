// Unique ids for every node that is MERGEd, plus the lookups the app filters on.
// One statement per ';'. Mirrors graph/migrations/sqlite/001_customer_graph.sql.
CREATE CONSTRAINT salesperson_id IF NOT EXISTS FOR (s:Salesperson) REQUIRE s.id IS UNIQUE;
CREATE CONSTRAINT business_id IF NOT EXISTS FOR (b:Business) REQUIRE b.id IS UNIQUE;
CREATE CONSTRAINT category_slug IF NOT EXISTS FOR (c:Category) REQUIRE c.slug IS UNIQUE;
CREATE CONSTRAINT place_id IF NOT EXISTS FOR (p:Place) REQUIRE p.id IS UNIQUE;
CREATE INDEX business_name IF NOT EXISTS FOR (b:Business) ON (b.name);
CREATE INDEX place_metro IF NOT EXISTS FOR (p:Place) ON (p.metro);
