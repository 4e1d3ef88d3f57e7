"""The Neo4j backend: one driver per app, managed transactions, parameterised Cypher.

Every write is a transaction function passed to `execute_write`, so the driver
retries it on transient errors; the functions MERGE on constrained ids, which
makes a retry (or a re-run of the same import) a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import numpy as np
from neo4j import Driver, GraphDatabase, ManagedTransaction, NotificationDisabledClassification

from graph.migrations import load_migrations
from graph.records import (
    EMBEDDING_FIELDS,
    BusinessRecord,
    Category,
    Feedback,
    FeedbackKind,
    GraphStats,
    InferredCategory,
    Place,
    Salesperson,
    SalespersonSummary,
    StoredBusiness,
    Suggestion,
    Tie,
    TieKind,
    UpsertOutcome,
)
from graph.store import GraphStore, UnknownBusinessError

T = TypeVar("T")

_BUSINESS_PROPS = (
    "name", "description", "customers", "needs", "website", "email",
    "contact_name", "employees", "opted_out",
)  # fmt: skip

_WRITE_BUSINESSES = """
UNWIND $rows AS row
MERGE (b:Business {id: row.id})
  ON CREATE SET b.created_at = $now
SET b += row.props, b.updated_at = $now
WITH b, row
CALL (b) { MATCH (b)<-[old:MANAGES]-(:Salesperson) DELETE old }
CALL (b, row) {
  MERGE (s:Salesperson {id: row.salesperson_id})
    ON CREATE SET s.name = row.salesperson_id
  MERGE (s)-[:MANAGES]->(b)
}
CALL (b) { MATCH (b)-[old:IN_CATEGORY {source: 'given'}]->(:Category) DELETE old }
CALL (b, row) {
  UNWIND row.categories AS category
  MERGE (c:Category {slug: category.slug})
    ON CREATE SET c.name = category.name
  MERGE (b)-[r:IN_CATEGORY]->(c)
  SET r.source = 'given', r.confidence = 1.0, r.position = category.position
}
CALL (b) { MATCH (b)-[old:LOCATED_IN]->(:Place) DELETE old }
CALL (b, row) {
  WITH row WHERE row.place IS NOT NULL
  MERGE (p:Place {id: row.place.id})
  SET p.city = row.place.city, p.region = row.place.region, p.country = row.place.country,
      p.metro = row.place.metro,
      p.lat = coalesce(row.place.lat, p.lat), p.lon = coalesce(row.place.lon, p.lon)
  MERGE (b)-[:LOCATED_IN]->(p)
}
"""

# Named properties only: a Business node also carries its embedding vectors, which are big.
_PROJECTION = ", ".join(f".{name}" for name in ("id", *_BUSINESS_PROPS, "created_at", "updated_at"))

# `$ids IS NULL OR b.id IN $ids` would scan every business: a lookup by id gets its own MATCH.
_ALL_BUSINESSES = "MATCH (b:Business)"
_BUSINESSES_BY_ID = "UNWIND $ids AS wanted MATCH (b:Business {id: wanted})"

_READ_BUSINESSES = """
WHERE ($salesperson_id IS NULL OR EXISTS { (:Salesperson {id: $salesperson_id})-[:MANAGES]->(b) })
  AND ($search IS NULL OR toLower(b.name) CONTAINS $search)
WITH b ORDER BY toLower(b.name), b.id SKIP $offset LIMIT $limit
OPTIONAL MATCH (s:Salesperson)-[:MANAGES]->(b)
OPTIONAL MATCH (b)-[:LOCATED_IN]->(p:Place)
RETURN b {PROJECTION} AS business, s.id AS salesperson_id, p {.*} AS place,
       COLLECT {
         MATCH (b)-[r:IN_CATEGORY {source: 'given'}]->(c:Category)
         RETURN c.name ORDER BY r.position
       } AS categories
""".replace("PROJECTION", _PROJECTION)


def _business_row(record: BusinessRecord) -> dict[str, Any]:
    place = record.place
    return {
        "id": record.id,
        "salesperson_id": record.salesperson_id,
        "props": {
            **{name: getattr(record, name) for name in _BUSINESS_PROPS},
            "content_hash": record.content_hash(),
        },
        "categories": [
            {"slug": Category(name).slug, "name": name, "position": i} for i, name in enumerate(record.categories)
        ],
        "place": None
        if place is None
        else {
            "id": place.id, "city": place.city, "region": place.region, "country": place.country,
            "metro": place.metro, "lat": place.lat, "lon": place.lon,
        },
    }  # fmt: skip


def _to_stored(row: Any) -> StoredBusiness:
    props = row["business"]
    place = row["place"]
    record = BusinessRecord(
        id=props["id"],
        salesperson_id=row["salesperson_id"],
        categories=tuple(row["categories"]),
        place=None
        if place is None
        else Place(
            city=place["city"], region=place["region"], country=place["country"],
            metro=place["metro"], lat=place.get("lat"), lon=place.get("lon"),
        ),
        **{name: props.get(name) for name in _BUSINESS_PROPS},
    )  # fmt: skip
    return StoredBusiness(record, props["created_at"].to_native(), props["updated_at"].to_native())


class Neo4jStore(GraphStore):
    backend = "neo4j"

    def __init__(self, url: str, auth: tuple[str, str], database: str = "neo4j"):
        self.url = url
        self.database = database
        # "Unrecognized" notifications say a label or type does not exist yet, which is normal
        # for an empty graph; they would only clutter the logs.
        self.driver: Driver = GraphDatabase.driver(
            url, auth=auth, notifications_disabled_classifications=[NotificationDisabledClassification.UNRECOGNIZED]
        )

    def close(self) -> None:
        self.driver.close()

    def _read(self, work: Callable[..., T], **kwargs: Any) -> T:
        with self.driver.session(database=self.database) as session:
            return session.execute_read(work, **kwargs)

    def _write(self, work: Callable[..., T], **kwargs: Any) -> T:
        with self.driver.session(database=self.database) as session:
            return session.execute_write(work, **kwargs)

    def _query(self, cypher: str, **params) -> list:
        def work(tx: ManagedTransaction) -> list:
            return list(tx.run(cypher, params))

        return self._read(work)

    # Schema
    def migrate(self) -> list[str]:
        done = set(self.applied_migrations())
        applied_now = []
        for migration in load_migrations("neo4j", ".cypher"):
            if migration.name in done:
                continue
            # Schema statements may not share a transaction with data writes,
            # so each runs on its own; all are IF NOT EXISTS, hence re-runnable.
            for statement in migration.statements:
                self.driver.execute_query(statement, database_=self.database)
            self.driver.execute_query(
                "MERGE (m:SchemaMigration {name: $name}) ON CREATE SET m.applied_at = datetime()",
                name=migration.name,
                database_=self.database,
            )
            applied_now.append(migration.name)
        return applied_now

    def applied_migrations(self) -> list[str]:
        rows = self._query("MATCH (m:SchemaMigration) RETURN m.name AS name ORDER BY name")
        return [row["name"] for row in rows]

    # Salespeople
    def upsert_salespeople(self, people: Sequence[Salesperson]) -> None:
        def work(tx: ManagedTransaction) -> None:
            tx.run(
                "UNWIND $people AS p MERGE (s:Salesperson {id: p.id}) SET s.name = p.name, s.email = p.email",
                people=[{"id": p.id, "name": p.name, "email": p.email} for p in people],
            ).consume()

        self._write(work)

    def list_salespeople(self) -> list[SalespersonSummary]:
        rows = self._query(
            "MATCH (s:Salesperson) RETURN s.id AS id, s.name AS name, s.email AS email,"
            " COUNT { (s)-[:MANAGES]->(:Business) } AS n ORDER BY name, id"
        )
        return [SalespersonSummary(Salesperson(r["id"], r["name"], r["email"]), r["n"]) for r in rows]

    # Businesses
    def upsert_businesses(self, records: Sequence[BusinessRecord], now: datetime) -> list[UpsertOutcome]:
        rows = [_business_row(record) for record in records]

        def work(tx: ManagedTransaction) -> list[UpsertOutcome]:
            known = {
                r["id"]: r["hash"]
                for r in tx.run(
                    "UNWIND $ids AS id MATCH (b:Business {id: id}) RETURN b.id AS id, b.content_hash AS hash",
                    ids=[row["id"] for row in rows],
                )
            }
            outcomes, changed = [], []
            for row in rows:
                digest = row["props"]["content_hash"]
                if row["id"] not in known:
                    outcomes.append(UpsertOutcome.CREATED)
                elif known[row["id"]] != digest:
                    outcomes.append(UpsertOutcome.UPDATED)
                else:
                    outcomes.append(UpsertOutcome.UNCHANGED)
                    continue
                known[row["id"]] = digest
                changed.append(row)
            if changed:
                tx.run(_WRITE_BUSINESSES, rows=changed, now=now).consume()
            return outcomes

        return self._write(work)

    def _read_businesses(self, **params) -> list[StoredBusiness]:
        defaults = {"salesperson_id": None, "search": None, "ids": None, "offset": 0, "limit": 50}
        match = _ALL_BUSINESSES if params.get("ids") is None else _BUSINESSES_BY_ID
        return [_to_stored(row) for row in self._query(match + _READ_BUSINESSES, **{**defaults, **params})]

    def get_business(self, business_id: str) -> StoredBusiness | None:
        found = self._read_businesses(ids=[business_id], limit=1)
        return found[0] if found else None

    def list_businesses(
        self,
        *,
        salesperson_id: str | None = None,
        search: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[StoredBusiness]:
        return self._read_businesses(
            salesperson_id=salesperson_id,
            search=search.lower() if search else None,
            limit=limit,
            offset=offset,
        )

    def count_businesses(self, *, salesperson_id: str | None = None, search: str | None = None) -> int:
        rows = self._query(
            "MATCH (b:Business)"
            " WHERE ($salesperson_id IS NULL OR EXISTS { (:Salesperson {id: $salesperson_id})-[:MANAGES]->(b) })"
            " AND ($search IS NULL OR toLower(b.name) CONTAINS $search)"
            " RETURN count(b) AS n",
            salesperson_id=salesperson_id,
            search=search.lower() if search else None,
        )
        return rows[0]["n"]

    # Ties and opt-outs
    @staticmethod
    def _require_businesses(tx: ManagedTransaction, ids: set[str]) -> None:
        found = {
            r["id"] for r in tx.run("UNWIND $ids AS id MATCH (b:Business {id: id}) RETURN b.id AS id", ids=list(ids))
        }
        if missing := ids - found:
            raise UnknownBusinessError(sorted(missing))

    def add_ties(self, ties: Sequence[Tie], now: datetime) -> int:
        normalised = sorted({t.normalised() for t in ties if t.a != t.b}, key=lambda t: (t.a, t.b, t.kind))

        def work(tx: ManagedTransaction) -> int:
            self._require_businesses(tx, {i for t in normalised for i in (t.a, t.b)})
            created = 0
            # Relationship types cannot be parameters, so each kind has its own statement.
            for kind in TieKind:
                pairs = [{"a": t.a, "b": t.b} for t in normalised if t.kind is kind]
                if not pairs:
                    continue
                summary = tx.run(
                    f"UNWIND $pairs AS pair MATCH (a:Business {{id: pair.a}}), (b:Business {{id: pair.b}})"
                    f" MERGE (a)-[r:{kind.value}]-(b) ON CREATE SET r.created_at = $now",
                    pairs=pairs,
                    now=now,
                ).consume()
                created += summary.counters.relationships_created
            return created

        return self._write(work)

    def ties_of(self, business_id: str) -> list[Tie]:
        rows = self._query(
            "MATCH (b:Business {id: $id})-[r:KNOWS|PARTNERS_WITH]-(other:Business)"
            " RETURN b.id AS me, other.id AS other, type(r) AS kind",
            id=business_id,
        )
        ties = {Tie(r["me"], r["other"], TieKind(r["kind"])).normalised() for r in rows}
        return sorted(ties, key=lambda t: (t.a, t.b, t.kind.value))

    def add_do_not_introduce(self, a: str, b: str, reason: str, now: datetime) -> bool:
        low, high = sorted((a, b))

        def work(tx: ManagedTransaction) -> bool:
            self._require_businesses(tx, {low, high})
            summary = tx.run(
                "MATCH (a:Business {id: $low}), (b:Business {id: $high})"
                " MERGE (a)-[r:DO_NOT_INTRODUCE]-(b) ON CREATE SET r.reason = $reason, r.created_at = $now",
                low=low,
                high=high,
                reason=reason,
                now=now,
            ).consume()
            return summary.counters.relationships_created == 1

        return self._write(work)

    def is_do_not_introduce(self, a: str, b: str) -> bool:
        rows = self._query(
            "RETURN EXISTS { (:Business {id: $a})-[:DO_NOT_INTRODUCE]-(:Business {id: $b}) } AS blocked", a=a, b=b
        )
        return rows[0]["blocked"]

    def all_ties(self) -> list[Tie]:
        rows = self._query(
            "MATCH (a:Business)-[r:KNOWS|PARTNERS_WITH]->(b:Business) RETURN a.id AS a, b.id AS b, type(r) AS kind"
        )
        ties = {Tie(r["a"], r["b"], TieKind(r["kind"])).normalised() for r in rows}
        return sorted(ties, key=lambda t: (t.a, t.b, t.kind.value))

    def do_not_introduce_pairs(self) -> set[tuple[str, str]]:
        rows = self._query("MATCH (a:Business)-[:DO_NOT_INTRODUCE]->(b:Business) RETURN a.id AS a, b.id AS b")
        return {tuple(sorted((r["a"], r["b"]))) for r in rows}

    def stats(self) -> GraphStats:
        row = self._query(
            "RETURN COUNT { (:Business) } AS businesses, COUNT { (:Salesperson) } AS salespeople,"
            " COUNT { (:Category) } AS categories, COUNT { (:Place) } AS places,"
            " COUNT { ()-[:KNOWS|PARTNERS_WITH]->() } AS ties,"
            " COUNT { ()-[:DO_NOT_INTRODUCE]->() } AS opted_out_pairs"
        )[0]
        by_category = {
            r["name"]: r["n"]
            for r in self._query(
                "MATCH (c:Category)<-[:IN_CATEGORY]-(b:Business)"
                " RETURN c.name AS name, count(b) AS n ORDER BY n DESC, name"
            )
        }
        return GraphStats(**dict(row), by_category=by_category)

    # Matching
    @staticmethod
    def _vector_key(field: str) -> str:
        if field not in EMBEDDING_FIELDS:
            raise ValueError(f"unknown embedding field {field!r}; expected one of {EMBEDDING_FIELDS}")
        return f"{field}_vector"

    def embedding_hashes(self, field: str, ids: Sequence[str] | None = None) -> dict[str, str]:
        self._vector_key(field)
        rows = self._query(
            (_ALL_BUSINESSES if ids is None else _BUSINESSES_BY_ID)
            + " WITH b WHERE b[$key] IS NOT NULL RETURN b.id AS id, b[$key] AS hash",
            key=f"{field}_hash",
            ids=None if ids is None else sorted(set(ids)),
        )
        return {r["id"]: r["hash"] for r in rows}

    def save_embeddings(self, field: str, items: Sequence[tuple[str, str, np.ndarray]]) -> None:
        vector_key = self._vector_key(field)
        rows = [
            {"id": i, "hash": {f"{field}_hash": h}, "vector": np.asarray(v, dtype=np.float32).tolist()}
            for i, h, v in items
        ]

        def work(tx: ManagedTransaction) -> None:
            for start in range(0, len(rows), 2000):
                tx.run(
                    "UNWIND $rows AS row MATCH (b:Business {id: row.id}) SET b += row.hash"
                    " WITH b, row CALL db.create.setNodeVectorProperty(b, $key, row.vector)",
                    rows=rows[start : start + 2000],
                    key=vector_key,
                ).consume()

        self._write(work)

    def load_embeddings(self, field: str, ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        key = self._vector_key(field)
        rows = self._query(
            (_ALL_BUSINESSES if ids is None else _BUSINESSES_BY_ID)
            + " WITH b WHERE b[$key] IS NOT NULL RETURN b.id AS id, b[$key] AS vector ORDER BY id",
            key=key,
            ids=None if ids is None else sorted(set(ids)),
        )
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        return [r["id"] for r in rows], np.asarray([r["vector"] for r in rows], dtype=np.float32)

    has_vector_index = True

    @staticmethod
    def _vector_index(field: str) -> str:
        return f"business_{field}_vector"

    def ensure_vector_indexes(self, dimensions: int) -> None:
        existing = {
            r["name"]: r["options"]["indexConfig"].get("vector.dimensions")
            for r in self._query("SHOW VECTOR INDEXES YIELD name, options")
        }
        for field in EMBEDDING_FIELDS:
            name, key = self._vector_index(field), self._vector_key(field)
            if name in existing and existing[name] == dimensions:
                continue
            if name in existing:
                self.driver.execute_query(f"DROP INDEX {name}", database_=self.database)
            # Index names and property keys cannot be parameters; both come from EMBEDDING_FIELDS.
            self.driver.execute_query(
                f"CREATE VECTOR INDEX {name} IF NOT EXISTS FOR (b:Business) ON b.{key}"
                " OPTIONS {indexConfig: {`vector.dimensions`: $dimensions, `vector.similarity_function`: 'cosine'}}",
                dimensions=dimensions,
                database_=self.database,
            )
        self.driver.execute_query("CALL db.awaitIndexes(600)", database_=self.database)

    def nearest(self, field: str, vectors: np.ndarray, k: int) -> list[list[str]]:
        self._vector_key(field)
        vectors = np.asarray(vectors, dtype=np.float32)
        if not len(vectors):
            return []
        # Identical texts ask once; batches run on a few sessions at once (the server has cores).
        distinct, inverse = np.unique(vectors, axis=0, return_inverse=True)
        batches = [distinct[start : start + 250] for start in range(0, len(distinct), 250)]
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            answers = [ids for batch in pool.map(partial(self._nearest_batch, field, k), batches) for ids in batch]
        return [answers[n] for n in inverse.reshape(-1).tolist()]

    def _nearest_batch(self, field: str, k: int, vectors: np.ndarray) -> list[list[str]]:
        rows = self._query(
            "UNWIND range(0, size($vectors) - 1) AS n"
            " CALL db.index.vector.queryNodes($index, $k, $vectors[n]) YIELD node, score"
            " WITH n, node ORDER BY score DESC RETURN n, collect(node.id) AS ids",
            vectors=vectors.tolist(),
            index=self._vector_index(field),
            k=k,
        )
        found: list[list[str]] = [[] for _ in range(len(vectors))]
        for row in rows:
            found[row["n"]] = row["ids"]
        return found

    def save_inferred_categories(self, business_ids: Sequence[str], inferred: Sequence[InferredCategory]) -> None:
        rows = [
            {"id": i.business_id, "slug": Category(i.category).slug, "name": i.category, "confidence": i.confidence}
            for i in inferred
        ]

        def work(tx: ManagedTransaction) -> None:
            tx.run(
                "UNWIND $ids AS id MATCH (:Business {id: id})-[r:IN_CATEGORY {source: 'inferred'}]->() DELETE r",
                ids=list(business_ids),
            ).consume()
            tx.run(
                "UNWIND $rows AS row MATCH (b:Business {id: row.id})"
                " MERGE (c:Category {slug: row.slug}) ON CREATE SET c.name = row.name"
                " MERGE (b)-[r:IN_CATEGORY]->(c)"
                " ON CREATE SET r.source = 'inferred', r.confidence = row.confidence, r.position = 0",
                rows=rows,
            ).consume()

        self._write(work)

    def inferred_categories(self) -> dict[str, list[InferredCategory]]:
        rows = self._query(
            "MATCH (b:Business)-[r:IN_CATEGORY {source: 'inferred'}]->(c:Category)"
            " RETURN b.id AS id, c.name AS name, r.confidence AS confidence ORDER BY id, confidence DESC, name"
        )
        found: dict[str, list[InferredCategory]] = {}
        for r in rows:
            found.setdefault(r["id"], []).append(InferredCategory(r["id"], r["name"], r["confidence"]))
        return found

    def replace_suggestions(self, business_ids: Sequence[str], suggestions: Sequence[Suggestion]) -> None:
        rows = [
            {
                "a": s.business_id, "b": s.other_id, "rank": s.rank, "score": s.score,
                "reasons": list(s.reasons), "other_reasons": list(s.other_reasons), "at": s.computed_at,
            }
            for s in suggestions
        ]  # fmt: skip

        def work(tx: ManagedTransaction) -> None:
            tx.run(
                "UNWIND $ids AS id MATCH (:Business {id: id})-[r:SUGGESTED]->() DELETE r", ids=list(business_ids)
            ).consume()
            for start in range(0, len(rows), 5000):
                tx.run(
                    "UNWIND $rows AS row MATCH (a:Business {id: row.a}), (b:Business {id: row.b})"
                    " CREATE (a)-[:SUGGESTED {rank: row.rank, score: row.score, reasons: row.reasons,"
                    " other_reasons: row.other_reasons, computed_at: row.at}]->(b)",
                    rows=rows[start : start + 5000],
                ).consume()

        self._write(work)

    def _suggestions(self, where: str, **params: Any) -> list[Suggestion]:
        rows = self._query(
            "MATCH (a:Business)-[r:SUGGESTED]->(b:Business)"
            + where
            + " RETURN a.id AS a, b.id AS b, r.rank AS rank, r.score AS score, r.reasons AS reasons,"
            " r.other_reasons AS other_reasons, r.computed_at AS at ORDER BY a, rank",
            **params,
        )
        return [
            Suggestion(
                r["a"], r["b"], r["rank"], r["score"], tuple(r["reasons"]), tuple(r["other_reasons"]),
                r["at"].to_native(),
            )
            for r in rows
        ]  # fmt: skip

    def suggestions_for(self, business_id: str) -> list[Suggestion]:
        return self._suggestions(" WHERE a.id = $id", id=business_id)

    def businesses_suggesting(self, other_ids: Sequence[str]) -> set[str]:
        rows = self._query(
            "UNWIND $ids AS id MATCH (a:Business)-[:SUGGESTED]->(:Business {id: id}) RETURN DISTINCT a.id AS id",
            ids=list(other_ids),
        )
        return {r["id"] for r in rows}

    def all_suggestions(self) -> list[Suggestion]:
        return self._suggestions("")

    def record_feedback(self, feedback: Feedback) -> None:
        def work(tx: ManagedTransaction) -> None:
            self._require_businesses(tx, {feedback.a, feedback.b})
            tx.run(
                "MATCH (a:Business {id: $a}), (b:Business {id: $b})"
                " CREATE (a)-[:FEEDBACK {kind: $kind, reason: $reason, at: $at, salesperson_id: $salesperson}]->(b)",
                a=feedback.a,
                b=feedback.b,
                kind=feedback.kind.value,
                reason=feedback.reason,
                at=feedback.at,
                salesperson=feedback.salesperson_id,
            ).consume()

        self._write(work)

    def list_feedback(self) -> list[Feedback]:
        rows = self._query(
            "MATCH (a:Business)-[r:FEEDBACK]->(b:Business)"
            " RETURN a.id AS a, b.id AS b, r.kind AS kind, r.at AS at, r.reason AS reason,"
            " r.salesperson_id AS salesperson ORDER BY at, elementId(r)"
        )
        return [
            Feedback(r["a"], r["b"], FeedbackKind(r["kind"]), r["at"].to_native(), r["reason"], r["salesperson"])
            for r in rows
        ]
