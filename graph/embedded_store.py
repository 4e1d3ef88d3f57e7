"""The embedded backend: the customer graph in one local SQLite file.

The default when no Neo4j is configured, so the app runs with nothing else
installed. Nodes are tables keyed by their stable ids, relationships are link
tables (see graph/migrations/sqlite). Each thread gets its own connection; every
write is one transaction (BEGIN IMMEDIATE ... COMMIT) that lands whole or not at all.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

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

# SQLite limits bound variables per statement; stay well below it.
_CHUNK = 500


def _chunks(items: Sequence, size: int = _CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _like_pattern(search: str) -> str:
    escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class EmbeddedStore(GraphStore):
    backend = "embedded"

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    # Connections and transactions
    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    # Schema
    def migrate(self) -> list[str]:
        applied_now = []
        with self._write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            done = {row["name"] for row in conn.execute("SELECT name FROM schema_migrations")}
            for migration in load_migrations("sqlite", ".sql"):
                if migration.name in done:
                    continue
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                    (migration.name, _iso(datetime.now(UTC))),
                )
                applied_now.append(migration.name)
        return applied_now

    def applied_migrations(self) -> list[str]:
        rows = self._connection().execute("SELECT name FROM schema_migrations ORDER BY name")
        return [row["name"] for row in rows]

    # Salespeople
    def upsert_salespeople(self, people: Sequence[Salesperson]) -> None:
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO salespeople (id, name, email) VALUES (?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email",
                [(p.id, p.name, p.email) for p in people],
            )

    def list_salespeople(self) -> list[SalespersonSummary]:
        rows = self._connection().execute(
            "SELECT s.id, s.name, s.email, count(b.id) AS n FROM salespeople s"
            " LEFT JOIN businesses b ON b.salesperson_id = s.id"
            " GROUP BY s.id ORDER BY s.name, s.id"
        )
        return [SalespersonSummary(Salesperson(r["id"], r["name"], r["email"]), r["n"]) for r in rows]

    # Businesses
    def upsert_businesses(self, records: Sequence[BusinessRecord], now: datetime) -> list[UpsertOutcome]:
        stamp = _iso(now)
        with self._write() as conn:
            known: dict[str, str] = {}
            for chunk in _chunks([r.id for r in records]):
                marks = ",".join("?" * len(chunk))
                for row in conn.execute(f"SELECT id, content_hash FROM businesses WHERE id IN ({marks})", chunk):
                    known[row["id"]] = row["content_hash"]
            outcomes = []
            for record in records:
                digest = record.content_hash()
                if record.id not in known:
                    outcomes.append(UpsertOutcome.CREATED)
                elif known[record.id] != digest:
                    outcomes.append(UpsertOutcome.UPDATED)
                else:
                    outcomes.append(UpsertOutcome.UNCHANGED)
                    continue
                self._write_business(conn, record, digest, stamp)
                known[record.id] = digest
        return outcomes

    @staticmethod
    def _write_business(conn: sqlite3.Connection, record: BusinessRecord, digest: str, stamp: str) -> None:
        conn.execute(
            "INSERT INTO salespeople (id, name) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
            (record.salesperson_id, record.salesperson_id),
        )
        place = record.place
        if place is not None:
            conn.execute(
                "INSERT INTO places (id, city, region, country, metro, lat, lon) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET city = excluded.city, region = excluded.region,"
                " country = excluded.country, metro = excluded.metro,"
                " lat = coalesce(excluded.lat, places.lat), lon = coalesce(excluded.lon, places.lon)",
                (place.id, place.city, place.region, place.country, place.metro, place.lat, place.lon),
            )
        conn.execute(
            "INSERT INTO businesses (id, name, description, customers, needs, website, email, contact_name,"
            " employees, opted_out, salesperson_id, place_id, content_hash, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description,"
            " customers = excluded.customers, needs = excluded.needs, website = excluded.website,"
            " email = excluded.email, contact_name = excluded.contact_name, employees = excluded.employees,"
            " opted_out = excluded.opted_out, salesperson_id = excluded.salesperson_id,"
            " place_id = excluded.place_id, content_hash = excluded.content_hash,"
            " updated_at = excluded.updated_at",
            (
                record.id, record.name, record.description, record.customers, record.needs,
                record.website, record.email, record.contact_name, record.employees,
                int(record.opted_out), record.salesperson_id, place.id if place else None,
                digest, stamp, stamp,
            ),
        )  # fmt: skip
        conn.execute("DELETE FROM business_categories WHERE business_id = ? AND source = 'given'", (record.id,))
        for position, name in enumerate(record.categories):
            category = Category(name)
            conn.execute(
                "INSERT INTO categories (slug, name) VALUES (?, ?) ON CONFLICT (slug) DO NOTHING",
                (category.slug, category.name),
            )
            conn.execute(
                "INSERT INTO business_categories (business_id, category_slug, source, confidence, position)"
                " VALUES (?, ?, 'given', 1.0, ?) ON CONFLICT (business_id, category_slug) DO UPDATE"
                " SET source = 'given', confidence = 1.0, position = excluded.position",
                (record.id, category.slug, position),
            )

    _SELECT_BUSINESS = (
        "SELECT b.*, p.city, p.region, p.country, p.metro, p.lat, p.lon,"
        " (SELECT json_group_array(c.name) FROM"
        "   (SELECT c.name FROM business_categories bc JOIN categories c ON c.slug = bc.category_slug"
        "    WHERE bc.business_id = b.id AND bc.source = 'given' ORDER BY bc.position) AS c"
        " ) AS category_names"
        " FROM businesses b LEFT JOIN places p ON p.id = b.place_id"
    )

    @staticmethod
    def _to_stored(row: sqlite3.Row) -> StoredBusiness:
        place = None
        if row["place_id"] is not None:
            place = Place(
                city=row["city"], region=row["region"], country=row["country"],
                metro=row["metro"], lat=row["lat"], lon=row["lon"],
            )  # fmt: skip
        record = BusinessRecord(
            id=row["id"],
            name=row["name"],
            salesperson_id=row["salesperson_id"],
            description=row["description"],
            customers=row["customers"],
            needs=row["needs"],
            website=row["website"],
            email=row["email"],
            contact_name=row["contact_name"],
            employees=row["employees"],
            categories=tuple(json.loads(row["category_names"])),
            place=place,
            opted_out=bool(row["opted_out"]),
        )
        return StoredBusiness(
            record,
            datetime.fromisoformat(row["created_at"]),
            datetime.fromisoformat(row["updated_at"]),
        )

    def get_business(self, business_id: str) -> StoredBusiness | None:
        row = self._connection().execute(self._SELECT_BUSINESS + " WHERE b.id = ?", (business_id,)).fetchone()
        return self._to_stored(row) if row else None

    @staticmethod
    def _filters(salesperson_id: str | None, search: str | None) -> tuple[str, list]:
        clauses, params = [], []
        if salesperson_id is not None:
            clauses.append("b.salesperson_id = ?")
            params.append(salesperson_id)
        if search:
            clauses.append("lower(b.name) LIKE ? ESCAPE '\\'")
            params.append(_like_pattern(search))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def list_businesses(
        self,
        *,
        salesperson_id: str | None = None,
        search: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[StoredBusiness]:
        where, params = self._filters(salesperson_id, search)
        rows = self._connection().execute(
            self._SELECT_BUSINESS + where + " ORDER BY lower(b.name), b.id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [self._to_stored(row) for row in rows]

    def count_businesses(self, *, salesperson_id: str | None = None, search: str | None = None) -> int:
        where, params = self._filters(salesperson_id, search)
        return self._connection().execute("SELECT count(*) FROM businesses b" + where, params).fetchone()[0]

    # Ties and opt-outs
    def _require_businesses(self, conn: sqlite3.Connection, ids: set[str]) -> None:
        found: set[str] = set()
        id_list = sorted(ids)
        for chunk in _chunks(id_list):
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in conn.execute(f"SELECT id FROM businesses WHERE id IN ({marks})", chunk))
        if missing := ids - found:
            raise UnknownBusinessError(sorted(missing))

    def add_ties(self, ties: Sequence[Tie], now: datetime) -> int:
        normalised = {t.normalised() for t in ties if t.a != t.b}
        with self._write() as conn:
            self._require_businesses(conn, {i for t in normalised for i in (t.a, t.b)})
            before = conn.total_changes
            conn.executemany(
                "INSERT INTO ties (business_a, business_b, kind, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                [(t.a, t.b, t.kind.value, _iso(now)) for t in sorted(normalised, key=lambda t: (t.a, t.b, t.kind))],
            )
            return conn.total_changes - before

    def ties_of(self, business_id: str) -> list[Tie]:
        rows = self._connection().execute(
            "SELECT business_a, business_b, kind FROM ties WHERE business_a = ? OR business_b = ?"
            " ORDER BY business_a, business_b, kind",
            (business_id, business_id),
        )
        return [Tie(r[0], r[1], TieKind(r[2])) for r in rows]

    def add_do_not_introduce(self, a: str, b: str, reason: str, now: datetime) -> bool:
        low, high = sorted((a, b))
        with self._write() as conn:
            self._require_businesses(conn, {low, high})
            cursor = conn.execute(
                "INSERT INTO do_not_introduce (business_a, business_b, reason, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (low, high, reason, _iso(now)),
            )
            return cursor.rowcount == 1

    def is_do_not_introduce(self, a: str, b: str) -> bool:
        low, high = sorted((a, b))
        row = (
            self._connection()
            .execute("SELECT 1 FROM do_not_introduce WHERE business_a = ? AND business_b = ?", (low, high))
            .fetchone()
        )
        return row is not None

    def all_ties(self) -> list[Tie]:
        rows = self._connection().execute("SELECT business_a, business_b, kind FROM ties ORDER BY 1, 2, 3")
        return [Tie(r[0], r[1], TieKind(r[2])) for r in rows]

    def do_not_introduce_pairs(self) -> set[tuple[str, str]]:
        return {(r[0], r[1]) for r in self._connection().execute("SELECT business_a, business_b FROM do_not_introduce")}

    def stats(self) -> GraphStats:
        conn = self._connection()

        def count(table: str) -> int:
            return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # table names are constants

        by_category = {
            r[0]: r[1]
            for r in conn.execute(
                "SELECT c.name, count(*) FROM business_categories bc JOIN categories c ON c.slug = bc.category_slug"
                " GROUP BY c.slug ORDER BY count(*) DESC, c.name"
            )
        }
        return GraphStats(
            businesses=count("businesses"),
            salespeople=count("salespeople"),
            categories=count("categories"),
            places=count("places"),
            ties=count("ties"),
            opted_out_pairs=count("do_not_introduce"),
            by_category=by_category,
        )

    # Matching
    @staticmethod
    def _check_field(field: str) -> None:
        if field not in EMBEDDING_FIELDS:
            raise ValueError(f"unknown embedding field {field!r}; expected one of {EMBEDDING_FIELDS}")

    def embedding_hashes(self, field: str, ids: Sequence[str] | None = None) -> dict[str, str]:
        self._check_field(field)
        conn = self._connection()
        query = "SELECT business_id, text_hash FROM embeddings WHERE field = ?"
        if ids is None:
            return {r[0]: r[1] for r in conn.execute(query, (field,))}
        found: dict[str, str] = {}
        for chunk in _chunks(sorted(set(ids))):
            marks = ",".join("?" * len(chunk))
            found.update((r[0], r[1]) for r in conn.execute(query + f" AND business_id IN ({marks})", (field, *chunk)))
        return found

    def save_embeddings(self, field: str, items: Sequence[tuple[str, str, np.ndarray]]) -> None:
        self._check_field(field)
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO embeddings (business_id, field, text_hash, vector) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (business_id, field) DO UPDATE"
                " SET text_hash = excluded.text_hash, vector = excluded.vector",
                [(i, field, h, np.asarray(v, dtype="<f4").tobytes()) for i, h, v in items],
            )

    def load_embeddings(self, field: str, ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        self._check_field(field)
        conn = self._connection()
        query = "SELECT business_id, vector FROM embeddings WHERE field = ?"
        order = " ORDER BY business_id"

        def cursors() -> Iterator[sqlite3.Cursor]:
            if ids is None:
                yield conn.execute(query + order, (field,))
                return
            for chunk in _chunks(sorted(set(ids))):
                yield conn.execute(
                    query + f" AND business_id IN ({','.join('?' * len(chunk))})" + order, (field, *chunk)
                )

        found: list[str] = []
        packed = bytearray()  # filled a batch at a time: one copy of the vectors in memory, not two
        for cursor in cursors():
            while batch := cursor.fetchmany(10_000):
                found.extend(r[0] for r in batch)
                packed.extend(b"".join(r[1] for r in batch))
        if not found:
            return [], np.zeros((0, 0), dtype=np.float32)
        return found, np.frombuffer(packed, dtype="<f4").reshape(len(found), -1).astype(np.float32, copy=False)

    def save_inferred_categories(self, business_ids: Sequence[str], inferred: Sequence[InferredCategory]) -> None:
        with self._write() as conn:
            for chunk in _chunks(list(business_ids)):
                marks = ",".join("?" * len(chunk))
                conn.execute(
                    f"DELETE FROM business_categories WHERE source = 'inferred' AND business_id IN ({marks})", chunk
                )
            conn.executemany(
                "INSERT INTO categories (slug, name) VALUES (?, ?) ON CONFLICT (slug) DO NOTHING",
                sorted({(Category(i.category).slug, i.category) for i in inferred}),
            )
            conn.executemany(
                "INSERT INTO business_categories (business_id, category_slug, source, confidence)"
                " VALUES (?, ?, 'inferred', ?) ON CONFLICT (business_id, category_slug) DO NOTHING",
                [(i.business_id, Category(i.category).slug, i.confidence) for i in inferred],
            )

    def inferred_categories(self) -> dict[str, list[InferredCategory]]:
        found: dict[str, list[InferredCategory]] = {}
        rows = self._connection().execute(
            "SELECT bc.business_id, c.name, bc.confidence FROM business_categories bc"
            " JOIN categories c ON c.slug = bc.category_slug WHERE bc.source = 'inferred'"
            " ORDER BY bc.business_id, bc.confidence DESC, c.name"
        )
        for business_id, name, confidence in rows:
            found.setdefault(business_id, []).append(InferredCategory(business_id, name, confidence))
        return found

    def replace_suggestions(self, business_ids: Sequence[str], suggestions: Sequence[Suggestion]) -> None:
        with self._write() as conn:
            for chunk in _chunks(list(business_ids)):
                marks = ",".join("?" * len(chunk))
                conn.execute(f"DELETE FROM suggestions WHERE business_id IN ({marks})", chunk)
            conn.executemany(
                "INSERT INTO suggestions (business_id, other_id, rank, score, reasons, other_reasons, computed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        s.business_id, s.other_id, s.rank, s.score, json.dumps(list(s.reasons)),
                        json.dumps(list(s.other_reasons)), _iso(s.computed_at),
                    )
                    for s in suggestions
                ],
            )  # fmt: skip

    def _suggestions(self, where: str, params: tuple) -> list[Suggestion]:
        rows = self._connection().execute(
            "SELECT business_id, other_id, rank, score, reasons, other_reasons, computed_at FROM suggestions"
            + where
            + " ORDER BY business_id, rank",
            params,
        )
        return [
            Suggestion(
                r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), tuple(json.loads(r[5])), datetime.fromisoformat(r[6])
            )
            for r in rows
        ]

    def suggestions_for(self, business_id: str) -> list[Suggestion]:
        return self._suggestions(" WHERE business_id = ?", (business_id,))

    def businesses_suggesting(self, other_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(list(other_ids)):
            marks = ",".join("?" * len(chunk))
            rows = self._connection().execute(
                f"SELECT DISTINCT business_id FROM suggestions WHERE other_id IN ({marks})", chunk
            )
            found.update(r[0] for r in rows)
        return found

    def all_suggestions(self) -> list[Suggestion]:
        return self._suggestions("", ())

    def record_feedback(self, feedback: Feedback) -> None:
        with self._write() as conn:
            self._require_businesses(conn, {feedback.a, feedback.b})
            conn.execute(
                "INSERT INTO feedback (business_a, business_b, kind, reason, salesperson_id, at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (feedback.a, feedback.b, feedback.kind.value, feedback.reason, feedback.salesperson_id,
                 _iso(feedback.at)),
            )  # fmt: skip

    def list_feedback(self) -> list[Feedback]:
        rows = self._connection().execute(
            "SELECT business_a, business_b, kind, at, reason, salesperson_id FROM feedback ORDER BY at, id"
        )
        return [Feedback(r[0], r[1], FeedbackKind(r[2]), datetime.fromisoformat(r[3]), r[4], r[5]) for r in rows]
