"""The embedded backend: the customer graph in one local SQLite file.

The default when no Neo4j is configured, so the app runs with nothing else
installed. Nodes are tables keyed by their stable ids, relationships are link
tables (see graph/migrations/sqlite). Connections come from a small pool and are
all closed by `close()`; every write is one transaction (BEGIN IMMEDIATE ... COMMIT)
that lands whole or not at all, in WAL mode so readers never wait for a writer.
"""

from __future__ import annotations

import json
import math
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from graph.migrations import load_migrations
from graph.records import (
    EMBEDDING_FIELDS,
    ApiToken,
    BusinessRecord,
    BusinessStatus,
    Category,
    ContactConsent,
    Credentials,
    DeliveryStatus,
    Digest,
    DigestItem,
    DigestPreferences,
    DigestStatus,
    Feedback,
    FeedbackKind,
    Generation,
    GenerationKind,
    GenerationStatus,
    GraphStats,
    IdempotentRequest,
    InferredCategory,
    Introduction,
    IntroductionGap,
    IntroFeedback,
    IntroStatus,
    IntroStep,
    Job,
    JobProgress,
    JobStatus,
    OptOut,
    PartStatus,
    PendingChange,
    Place,
    RefreshPart,
    Role,
    Salesperson,
    SalespersonSummary,
    StoredBusiness,
    Suggestion,
    SuggestionEvent,
    SuggestionEventKind,
    SuggestionList,
    SuggestionSheet,
    Tie,
    TieKind,
    TokenScope,
    UpsertOutcome,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
    digest_items_from_json,
    digest_items_json,
)
from graph.store import (
    GraphStore,
    GraphWriter,
    MatchState,
    UnknownBusinessError,
    UnknownJobError,
    UnknownSalespersonError,
    each_pair_once,
    gave_up_message,
    tracking_view,
)

T = TypeVar("T")

# SQLite limits bound variables per statement; stay well below it.
_CHUNK = 500
_POOL_SIZE = 8  # idle connections kept; more are opened under load and closed when returned
_BUSY_TIMEOUT_S = 30
_PRUNE_BATCH = 5000


def _chunks(items: Sequence, size: int = _CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _like_pattern(search: str) -> str:
    escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _marks(items: Sequence) -> str:
    return ",".join("?" * len(items))


def _check_field(field: str) -> None:
    if field not in EMBEDDING_FIELDS:
        raise ValueError(f"unknown embedding field {field!r}; expected one of {EMBEDDING_FIELDS}")


# A business's suggestions are safe to show only while neither side is archived or opted
# out, the pair is neither blocked nor tied, and no feedback on the pair came after the list
# (or shortly before it: a list computed from a snapshot read just before the feedback
# committed, or on a machine whose clock runs ahead, must not show the pair either; any
# feedback rules a pair out in the engine too, so this never hides a pair a refresh would show).
_SAFE_SUGGESTION = """
  JOIN businesses a ON a.id = s.business_id
  JOIN businesses o ON o.id = s.other_id
  WHERE a.archived_at IS NULL AND o.archived_at IS NULL
    AND a.opted_out = 0 AND a.opted_out_at IS NULL AND o.opted_out = 0 AND o.opted_out_at IS NULL
    AND NOT EXISTS (SELECT 1 FROM do_not_introduce d WHERE d.business_a = min(s.business_id, s.other_id)
                    AND d.business_b = max(s.business_id, s.other_id))
    AND NOT EXISTS (SELECT 1 FROM ties t WHERE t.business_a = min(s.business_id, s.other_id)
                    AND t.business_b = max(s.business_id, s.other_id))
    AND NOT EXISTS (SELECT 1 FROM feedback f
                    WHERE ((f.business_a = s.business_id AND f.business_b = s.other_id)
                        OR (f.business_a = s.other_id AND f.business_b = s.business_id))
                      AND julianday(f.at) >= julianday(lst.computed_at) - 10.0 / 1440)
"""

_SUGGESTION_COLUMNS = (
    "s.business_id, s.other_id, s.rank, s.score, s.reasons, s.other_reasons, lst.computed_at,"
    " lst.generation, g.model, g.rules_digest"
)


def _read_only(path: Path) -> sqlite3.Connection:
    # As a URI, escaped: a '#', '?' or '%' in the name must not open another file.
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)


class BackupRefused(ValueError):
    """A file offered for restore that is not a sound backup of this store."""


def check_backup(path: Path, known_migrations: set[str]) -> list[str]:
    """A backup's applied migrations, after checking it is an intact SQLite file of Netweave's
    with no migration newer than this code knows."""
    if not path.is_file():
        raise BackupRefused(f"{path}: no such file")
    try:
        with closing(_read_only(path)) as backup:
            if (result := backup.execute("PRAGMA integrity_check").fetchone()[0]) != "ok":
                raise BackupRefused(f"{path}: the file is damaged ({result})")
            names = [r[0] for r in backup.execute("SELECT name FROM schema_migrations ORDER BY name")]
    except sqlite3.DatabaseError as error:
        raise BackupRefused(f"{path}: not a Netweave backup ({error})") from None
    if unknown := sorted(set(names) - known_migrations):
        raise BackupRefused(f"{path}: made by a newer Netweave (migrations {', '.join(unknown)}); upgrade first")
    return names


def _to_suggestion(r: sqlite3.Row) -> Suggestion:
    return Suggestion(
        r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), tuple(json.loads(r[5])),
        datetime.fromisoformat(r[6]), r[7], r[8], r[9],
    )  # fmt: skip


def _to_webhook(r: sqlite3.Row) -> WebhookSubscription:
    return WebhookSubscription(
        id=r["id"],
        url=r["url"],
        events=tuple(WebhookEvent(e) for e in json.loads(r["events"])),
        secret=r["secret"],
        created_at=datetime.fromisoformat(r["created_at"]),
        created_by=r["created_by"],
        salesperson_id=r["salesperson_id"],
        description=r["description"],
        disabled_at=_when(r["disabled_at"]),
    )


def _to_delivery(r: sqlite3.Row) -> WebhookDelivery:
    return WebhookDelivery(
        id=r["id"],
        subscription_id=r["subscription_id"],
        event=WebhookEvent(r["event"]),
        payload=r["payload"],
        created_at=datetime.fromisoformat(r["created_at"]),
        status=DeliveryStatus(r["status"]),
        attempts=r["attempts"],
        next_attempt_at=_when(r["next_attempt_at"]),
        last_attempt_at=_when(r["last_attempt_at"]),
        last_status=r["last_status"],
        last_error=r["last_error"],
    )


_DIGEST_COLUMNS_WITHOUT_BODIES = (
    "salesperson_id", "week", "status", "created_at", "items", "recipient", "subject", "'' AS text_body",
    "'' AS html_body", "message_id", "attempts", "lease_until", "next_attempt_at", "sent_at", "last_error",
)  # fmt: skip


def _to_digest(r: sqlite3.Row) -> Digest:
    return Digest(
        salesperson_id=r["salesperson_id"],
        week=r["week"],
        status=DigestStatus(r["status"]),
        created_at=datetime.fromisoformat(r["created_at"]),
        items=digest_items_from_json(r["items"]),
        recipient=r["recipient"],
        subject=r["subject"],
        text=r["text_body"],
        html=r["html_body"],
        message_id=r["message_id"],
        attempts=r["attempts"],
        lease_until=_when(r["lease_until"]),
        next_attempt_at=_when(r["next_attempt_at"]),
        sent_at=_when(r["sent_at"]),
        last_error=r["last_error"],
    )


def _to_part(r: sqlite3.Row) -> RefreshPart:
    return RefreshPart(
        generation=r["generation"],
        part=r["part"],
        parts=r["parts"],
        status=PartStatus(r["status"]),
        snapshot=r["snapshot"],
        claimed_by=r["claimed_by"],
        lease_until=_when(r["lease_until"]),
        state=r["state"],
    )


def _to_preferences(r: sqlite3.Row) -> DigestPreferences:
    return DigestPreferences(
        r["id"], bool(r["weekly"]), r["weekday"], r["size"], r["hour"], r["timezone"], bool(r["note_when_empty"])
    )


def _to_api_token(r: sqlite3.Row) -> ApiToken:
    return ApiToken(
        id=r["id"],
        name=r["name"],
        scopes=tuple(TokenScope(s) for s in json.loads(r["scopes"])),
        created_at=datetime.fromisoformat(r["created_at"]),
        salesperson_id=r["salesperson_id"],
        created_by=r["created_by"],
        revoked_at=_when(r["revoked_at"]),
    )


def _to_job(r: sqlite3.Row) -> Job:
    progress = json.loads(r["progress"]) if r["progress"] else None
    return Job(
        id=r["id"],
        kind=r["kind"],
        status=JobStatus(r["status"]),
        created_at=datetime.fromisoformat(r["created_at"]),
        requested_by=r["requested_by"],
        started_at=_when(r["started_at"]),
        finished_at=_when(r["finished_at"]),
        attempts=r["attempts"],
        summary=r["summary"],
        error=r["error"],
        progress=JobProgress(**progress) if progress else None,
    )


def _to_generation(r: sqlite3.Row) -> Generation:
    return Generation(
        id=r["id"],
        kind=GenerationKind(r["kind"]),
        status=GenerationStatus(r["status"]),
        model=r["model"],
        rules_digest=r["rules_digest"],
        settings_digest=r["settings_digest"],
        started_at=datetime.fromisoformat(r["started_at"]),
        published_at=_when(r["published_at"]),
        lists=r["lists"],
        suggestions=r["suggestions"],
        job_id=r["job_id"],
    )


class _Pool:
    """A few reusable connections; every connection opened is closed by `close()` or on return."""

    def __init__(self, path: Path):
        self.path = path
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._open = 0
        self._closed = False

    def _new(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT_S)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        with self._lock:
            self._open += 1
        return conn

    def _drop(self, conn: sqlite3.Connection) -> None:
        conn.close()
        with self._lock:
            self._open -= 1

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._new()
        try:
            yield conn
        finally:
            if conn.in_transaction:  # never hand on a connection mid-transaction
                conn.execute("ROLLBACK")
            with self._lock:
                keep = not self._closed and self._idle.qsize() < _POOL_SIZE
            if keep:
                self._idle.put(conn)
            else:
                self._drop(conn)

    @property
    def open_connections(self) -> int:
        return self._open

    def close(self) -> None:
        with self._lock:
            self._closed = True
        while True:
            try:
                self._drop(self._idle.get_nowait())
            except queue.Empty:
                return


class EmbeddedStore(GraphStore):
    backend = "embedded"

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pool = _Pool(self.path)
        self._pinned = threading.local()  # a connection this thread's reads share (see _snapshot)

    @property
    def open_connections(self) -> int:
        """Connections open right now (idle in the pool or in use); 0 after `close()`."""
        return self._pool.open_connections

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        pinned = getattr(self._pinned, "conn", None)
        if pinned is not None:
            yield pinned
        else:
            with self._pool.connection() as conn:
                yield conn

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """The reads of this thread inside the block see one moment: one read transaction."""
        with self._pool.connection() as conn:
            conn.execute("BEGIN")
            self._pinned.conn = conn
            try:
                yield
            finally:
                self._pinned.conn = None
                conn.execute("COMMIT")

    def _rows(self, sql: str, params: Sequence | dict = ()) -> list[sqlite3.Row]:
        with self._reading() as conn:
            return conn.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence | dict = ()) -> sqlite3.Row | None:
        with self._reading() as conn:
            return conn.execute(sql, params).fetchone()

    def ping(self) -> None:
        self._one("SELECT 1")

    def write(self, work: Callable[[GraphWriter], T]) -> T:
        with self._pool.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = tracking_view(work, _SqliteWriter(conn))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

    # Schema
    def migrate(self) -> list[str]:
        applied_now = []
        with self._pool.connection() as conn:
            # WAL once per file; retried because switching needs a moment alone with the file.
            for attempt in range(_BUSY_TIMEOUT_S * 10):
                try:
                    conn.execute("PRAGMA journal_mode = WAL")
                    break
                except sqlite3.OperationalError:
                    if attempt == _BUSY_TIMEOUT_S * 10 - 1:
                        raise
                    time.sleep(0.1)
            # BEGIN IMMEDIATE takes the write lock first: a second process starting at the same
            # time waits here, then finds every migration applied.
            conn.execute("BEGIN IMMEDIATE")
            try:
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
                if applied_now:  # a migration may change what sheets show
                    _SqliteWriter(conn).renew_view_version()
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return applied_now

    def applied_migrations(self) -> list[str]:
        return [row["name"] for row in self._rows("SELECT name FROM schema_migrations ORDER BY name")]

    # Backups
    def backup_to(self, target: Path) -> None:
        """Copy the whole store into `target` (a new file) with SQLite's online backup API: a
        consistent snapshot while the app keeps reading and writing."""
        target = Path(target)
        if target.exists():
            raise FileExistsError(f"{target} exists already: choose a new file")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        try:
            with self._pool.connection() as conn, closing(sqlite3.connect(partial)) as copy:
                conn.backup(copy)
                copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
            partial.replace(target)  # never a half-written backup under the name asked for
        finally:
            partial.unlink(missing_ok=True)

    def restore_from(self, source: Path) -> list[str]:
        """Replace everything in the store by a backup's content, in one transaction (readers see
        the old store or the new, never a mix), then apply migrations the backup predates.
        Raises BackupRefused, changing nothing, for a file that is not a sound Netweave backup."""
        check_backup(Path(source), {m.name for m in load_migrations("sqlite", ".sql")})
        try:
            with closing(_read_only(Path(source))) as backup, self._pool.connection() as conn:
                backup.backup(conn)
        except sqlite3.DatabaseError as error:  # e.g. another page size: the store is as it was
            raise BackupRefused(f"{source}: could not be restored here ({error})") from None
        applied = self.migrate()
        self.write(lambda tx: tx.renew_view_version())  # no process keeps a sheet read before
        return applied

    # Salespeople
    def list_salespeople(self) -> list[SalespersonSummary]:
        rows = self._rows(
            "SELECT s.id, s.name, s.email, s.role, count(b.id) AS n FROM salespeople s"
            " LEFT JOIN businesses b ON b.salesperson_id = s.id AND b.archived_at IS NULL"
            " GROUP BY s.id ORDER BY s.name, s.id"
        )
        return [SalespersonSummary(Salesperson(r["id"], r["name"], r["email"], Role(r["role"])), r["n"]) for r in rows]

    def get_salespeople(self, salesperson_ids: Sequence[str]) -> dict[str, Salesperson]:
        found = {}
        for chunk in _chunks(sorted(set(salesperson_ids))):
            for r in self._rows(f"SELECT id, name, email, role FROM salespeople WHERE id IN ({_marks(chunk)})", chunk):
                found[r["id"]] = Salesperson(r["id"], r["name"], r["email"], Role(r["role"]))
        return found

    def get_salesperson(self, salesperson_id: str) -> Salesperson | None:
        r = self._one("SELECT id, name, email, role FROM salespeople WHERE id = ?", (salesperson_id,))
        return None if r is None else Salesperson(r["id"], r["name"], r["email"], Role(r["role"]))

    # Businesses
    _SELECT_BUSINESS = (
        "SELECT b.*,"
        " (SELECT json_group_array(c.name) FROM"
        "   (SELECT c.name FROM business_categories bc JOIN categories c ON c.slug = bc.category_slug"
        "    WHERE bc.business_id = b.id AND bc.source = 'given' ORDER BY bc.position) AS c"
        " ) AS category_names"
        " FROM businesses b"
    )

    @staticmethod
    def _to_stored(row: sqlite3.Row) -> StoredBusiness:
        place = None
        if row["city"] is not None:
            place = Place(
                city=row["city"], region=row["region"], country=row["country"],
                metro=row["metro"], lat=row["lat"], lon=row["lon"], postal_code=row["postal_code"],
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
        opt_out = None
        if row["opted_out_at"] is not None:
            opt_out = OptOut(row["opt_out_reason"], datetime.fromisoformat(row["opted_out_at"]))
        return StoredBusiness(
            record,
            datetime.fromisoformat(row["created_at"]),
            datetime.fromisoformat(row["updated_at"]),
            _when(row["archived_at"]),
            opt_out,
        )

    def get_business(self, business_id: str) -> StoredBusiness | None:
        row = self._one(self._SELECT_BUSINESS + " WHERE b.id = ?", (business_id,))
        return self._to_stored(row) if row else None

    def get_businesses(self, business_ids: Sequence[str]) -> dict[str, StoredBusiness]:
        found: dict[str, StoredBusiness] = {}
        for chunk in _chunks(sorted(set(business_ids))):
            for row in self._rows(self._SELECT_BUSINESS + f" WHERE b.id IN ({_marks(chunk)})", chunk):
                found[row["id"]] = self._to_stored(row)
        return found

    def source_digests(self, business_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        found: dict[str, tuple[str, str]] = {}
        for chunk in _chunks(sorted(set(business_ids))):
            for r in self._rows(
                "SELECT id, source_digest, salesperson_id FROM businesses"
                f" WHERE source_digest IS NOT NULL AND id IN ({_marks(chunk)})",
                chunk,
            ):
                found[r[0]] = (r[1], r[2])
        return found

    def archived_ids(self, business_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(sorted(set(business_ids))):
            rows = self._rows(
                f"SELECT id FROM businesses WHERE archived_at IS NOT NULL AND id IN ({_marks(chunk)})", chunk
            )
            found.update(r[0] for r in rows)
        return found

    @staticmethod
    def _filters(
        salesperson_id: str | None,
        search: str | None,
        status: BusinessStatus | None,
        category: str | None = None,
        city: str | None = None,
        updated_since: datetime | None = None,
    ) -> tuple[str, list]:
        clauses, params = [], []
        if salesperson_id is not None:
            clauses.append("b.salesperson_id = ?")
            params.append(salesperson_id)
        if search:
            clauses.append("lower(b.name) LIKE ? ESCAPE '\\'")
            params.append(_like_pattern(search))
        if status is BusinessStatus.ACTIVE:
            clauses.append("b.archived_at IS NULL")
        elif status is BusinessStatus.ARCHIVED:
            clauses.append("b.archived_at IS NOT NULL")
        if category:
            clauses.append(
                "EXISTS (SELECT 1 FROM business_categories bc WHERE bc.business_id = b.id AND bc.category_slug = ?)"
            )
            params.append(Category(category).slug)
        if city:
            clauses.append("lower(b.city) = lower(?)")
            params.append(city)
        if updated_since is not None:
            clauses.append("b.updated_at >= ?")
            params.append(_iso(updated_since))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def list_businesses(
        self,
        *,
        salesperson_id: str | None = None,
        search: str | None = None,
        status: BusinessStatus | None = BusinessStatus.ACTIVE,
        category: str | None = None,
        city: str | None = None,
        updated_since: datetime | None = None,
        after: tuple[str, str] | None = None,
        limit: int | None = 50,
        offset: int = 0,
    ) -> list[StoredBusiness]:
        where, params = self._filters(salesperson_id, search, status, category, city, updated_since)
        if after is not None:
            where += (" AND " if where else " WHERE ") + (
                "(lower(b.name) > lower(?) OR (lower(b.name) = lower(?) AND b.id > ?))"
            )
            params += [after[0], after[0], after[1]]
        rows = self._rows(  # LIMIT -1: no limit
            self._SELECT_BUSINESS + where + " ORDER BY lower(b.name), b.id LIMIT ? OFFSET ?",
            [*params, -1 if limit is None else limit, offset],
        )
        return [self._to_stored(row) for row in rows]

    def count_businesses(
        self,
        *,
        salesperson_id: str | None = None,
        search: str | None = None,
        status: BusinessStatus | None = BusinessStatus.ACTIVE,
        category: str | None = None,
        city: str | None = None,
        updated_since: datetime | None = None,
    ) -> int:
        where, params = self._filters(salesperson_id, search, status, category, city, updated_since)
        return self._one("SELECT count(*) FROM businesses b" + where, params)[0]

    # Ties and blocks
    def ties_of(self, business_id: str) -> list[Tie]:
        return self.all_ties([business_id])

    def all_ties(self, business_ids: Sequence[str] | None = None) -> list[Tie]:
        query = "SELECT business_a, business_b, kind FROM ties"
        if business_ids is None:
            rows = self._rows(query)
        else:
            rows = []
            for chunk in _chunks(sorted(set(business_ids))):
                marks = _marks(chunk)
                rows += self._rows(
                    query + f" WHERE business_a IN ({marks}) OR business_b IN ({marks})", [*chunk, *chunk]
                )
        ties = {Tie(r[0], r[1], TieKind(r[2])) for r in rows}
        return sorted(ties, key=lambda t: (t.a, t.b, t.kind.value))

    def is_do_not_introduce(self, a: str, b: str) -> bool:
        low, high = sorted((a, b))
        return (
            self._one("SELECT 1 FROM do_not_introduce WHERE business_a = ? AND business_b = ?", (low, high)) is not None
        )

    def do_not_introduce_pairs(self, business_ids: Sequence[str] | None = None) -> set[tuple[str, str]]:
        query = "SELECT business_a, business_b FROM do_not_introduce"
        if business_ids is None:
            return {(r[0], r[1]) for r in self._rows(query)}
        found: set[tuple[str, str]] = set()
        for chunk in _chunks(sorted(set(business_ids))):
            marks = _marks(chunk)
            rows = self._rows(query + f" WHERE business_a IN ({marks}) OR business_b IN ({marks})", [*chunk, *chunk])
            found.update((r[0], r[1]) for r in rows)
        return found

    def stats(self) -> GraphStats:
        with self._pool.connection() as conn:

            def count(table: str, where: str = "") -> int:
                return conn.execute(f"SELECT count(*) FROM {table} {where}").fetchone()[0]  # constants only

            by_category = {
                r[0]: r[1]
                for r in conn.execute(
                    "SELECT c.name, count(*) FROM business_categories bc JOIN categories c ON c.slug = bc.category_slug"
                    " JOIN businesses b ON b.id = bc.business_id WHERE b.archived_at IS NULL"
                    " GROUP BY c.slug ORDER BY count(*) DESC, c.name"
                )
            }
            return GraphStats(
                businesses=count("businesses", "WHERE archived_at IS NULL"),
                salespeople=count("salespeople"),
                categories=count("categories"),
                places=count("places"),
                ties=count("ties"),
                opted_out_pairs=count("do_not_introduce"),
                by_category=by_category,
                archived=count("businesses", "WHERE archived_at IS NOT NULL"),
            )

    # Matching
    def embedding_hashes(self, field: str, ids: Sequence[str] | None = None) -> dict[str, str]:
        _check_field(field)
        query = "SELECT business_id, text_hash FROM embeddings WHERE field = ?"
        if ids is None:
            return {r[0]: r[1] for r in self._rows(query, (field,))}
        found: dict[str, str] = {}
        for chunk in _chunks(sorted(set(ids))):
            found.update(
                (r[0], r[1]) for r in self._rows(query + f" AND business_id IN ({_marks(chunk)})", (field, *chunk))
            )
        return found

    def load_embeddings(self, field: str, ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        _check_field(field)
        query = "SELECT business_id, vector FROM embeddings WHERE field = ?"
        order = " ORDER BY business_id"
        found: list[str] = []
        packed = bytearray()  # filled a batch at a time: one copy of the vectors in memory, not two
        with self._pool.connection() as conn:
            if ids is None:
                cursors: Iterator[sqlite3.Cursor] = iter([conn.execute(query + order, (field,))])
            else:
                cursors = (
                    conn.execute(query + f" AND business_id IN ({_marks(chunk)})" + order, (field, *chunk))
                    for chunk in _chunks(sorted(set(ids)))
                )
            for cursor in cursors:
                while batch := cursor.fetchmany(10_000):
                    found.extend(r[0] for r in batch)
                    packed.extend(b"".join(r[1] for r in batch))
        if not found:
            return [], np.zeros((0, 0), dtype=np.float32)
        return found, np.frombuffer(packed, dtype="<f4").reshape(len(found), -1).astype(np.float32, copy=False)

    def embedding_batches(self, field: str, size: int = 10_000) -> Iterator[tuple[list[str], np.ndarray]]:
        _check_field(field)
        with self._pool.connection() as conn:
            cursor = conn.execute(
                "SELECT business_id, vector FROM embeddings WHERE field = ? ORDER BY business_id", (field,)
            )
            while batch := cursor.fetchmany(size):
                vectors = np.frombuffer(b"".join(r[1] for r in batch), dtype="<f4").reshape(len(batch), -1)
                yield [r[0] for r in batch], vectors.astype(np.float32, copy=False)

    def inferred_categories(self) -> dict[str, list[InferredCategory]]:
        found: dict[str, list[InferredCategory]] = {}
        rows = self._rows(
            "SELECT bc.business_id, c.name, bc.confidence FROM business_categories bc"
            " JOIN categories c ON c.slug = bc.category_slug WHERE bc.source = 'inferred'"
            " ORDER BY bc.business_id, bc.confidence DESC, c.name"
        )
        for business_id, name, confidence in rows:
            found.setdefault(business_id, []).append(InferredCategory(business_id, name, confidence))
        return found

    def list_feedback(self, business_ids: Sequence[str] | None = None) -> list[Feedback]:
        query = "SELECT id, business_a, business_b, kind, at, reason, salesperson_id FROM feedback"
        if business_ids is None:
            rows = self._rows(query)
        else:
            by_id: dict[int, sqlite3.Row] = {}
            for chunk in _chunks(sorted(set(business_ids))):
                marks = _marks(chunk)
                for r in self._rows(
                    query + f" WHERE business_a IN ({marks}) OR business_b IN ({marks})", [*chunk, *chunk]
                ):
                    by_id[r[0]] = r
            rows = list(by_id.values())
        rows.sort(key=lambda r: (r[4], r[0]))
        return [Feedback(r[1], r[2], FeedbackKind(r[3]), datetime.fromisoformat(r[4]), r[5], r[6]) for r in rows]

    def match_state(self) -> MatchState:
        row = self._one("SELECT published, base FROM match_state WHERE id = 1")
        return MatchState(row["published"], row["base"]) if row else MatchState()

    def get_generation(self, generation: int) -> Generation | None:
        row = self._one("SELECT * FROM generations WHERE id = ?", (generation,))
        return _to_generation(row) if row else None

    def list_generations(self, limit: int = 20) -> list[Generation]:
        return [_to_generation(r) for r in self._rows("SELECT * FROM generations ORDER BY id DESC LIMIT ?", (limit,))]

    def prune_lists(self, *, abandoned: bool = False, superseded_by: int | None = None, below_base: int = 0) -> int:
        candidates: list[tuple[str, float]] = []  # (selection of rowids, most to remove)
        if abandoned:
            candidates.append(
                (
                    "SELECT l.rowid FROM suggestion_lists l"
                    " WHERE l.generation IN (SELECT id FROM generations WHERE status = 'abandoned')",
                    math.inf,
                )
            )
        if superseded_by is not None:
            candidates.append(
                (
                    "SELECT old.rowid FROM suggestion_lists new JOIN suggestion_lists old"
                    " ON old.business_id = new.business_id AND old.generation < new.generation"
                    f" WHERE new.generation = {int(superseded_by)}",
                    math.inf,
                )
            )
        if below_base:
            candidates.append(
                (
                    "SELECT l.rowid FROM suggestion_lists l, match_state s WHERE s.id = 1 AND l.generation < s.base",
                    below_base,
                )
            )
        removed = 0
        for select, most in candidates:
            left = most
            while left > 0:
                batch = int(min(_PRUNE_BATCH, left))
                with self._pool.connection() as conn:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        cursor = conn.execute(f"DELETE FROM suggestion_lists WHERE rowid IN ({select} LIMIT {batch})")
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
                    conn.execute("COMMIT")
                removed += cursor.rowcount
                left -= cursor.rowcount
                if cursor.rowcount < batch:
                    break
        return removed

    _PUBLISHED_LISTS = "WITH st AS (SELECT published, base FROM match_state WHERE id = 1)"

    def suggestions_for(self, business_id: str) -> list[Suggestion]:
        rows = self._rows(
            self._PUBLISHED_LISTS
            + ", lst AS (SELECT l.business_id, l.generation, l.computed_at FROM suggestion_lists l"
            "   JOIN generations pg ON pg.id = l.generation AND pg.status = 'published', st"
            "   WHERE l.business_id = ? AND l.generation BETWEEN st.base AND st.published"
            "   ORDER BY l.generation DESC LIMIT 1)"
            f" SELECT {_SUGGESTION_COLUMNS} FROM lst"
            " JOIN suggestions s ON s.business_id = lst.business_id AND s.generation = lst.generation"
            " JOIN generations g ON g.id = lst.generation" + _SAFE_SUGGESTION + " ORDER BY s.rank",
            (business_id,),
        )
        return [_to_suggestion(r) for r in rows]

    def suggestions_for_salesperson(self, salesperson_id: str, limit: int | None = None) -> list[Suggestion]:
        return [_to_suggestion(r) for r in self._best_rows(salesperson_id, limit)]

    def _best_rows(self, salesperson_id: str, limit: int | None) -> list[sqlite3.Row]:
        # Walks the salesperson's suggestions best first (index suggestions_best) and keeps
        # those of each business's current list that are still safe, so it stops at `limit`
        # instead of reading and sorting the whole book. A business moved to another
        # salesperson leaves their best at once and joins the new one's with its next list.
        rows = self._rows(
            self._PUBLISHED_LISTS + f" SELECT {_SUGGESTION_COLUMNS} FROM st, suggestions s"
            " JOIN suggestion_lists lst ON lst.business_id = s.business_id AND lst.generation = s.generation"
            " JOIN generations g ON g.id = s.generation AND g.status = 'published'"
            + _SAFE_SUGGESTION
            + " AND s.salesperson_id = ? AND a.salesperson_id = s.salesperson_id"
            " AND s.generation BETWEEN st.base AND st.published"
            " AND NOT EXISTS (SELECT 1 FROM suggestion_lists newer"
            "   JOIN generations ng ON ng.id = newer.generation AND ng.status = 'published'"
            "   WHERE newer.business_id = s.business_id AND newer.generation > s.generation"
            "     AND newer.generation <= st.published)"
            " ORDER BY s.score DESC, s.business_id DESC, s.other_id DESC LIMIT ?",
            (salesperson_id, -1 if limit is None else limit),
        )
        return rows

    def view_version(self) -> str | None:
        row = self._one("SELECT view FROM match_state WHERE id = 1")
        return row[0] if row else None

    def suggestion_sheet(self, business_id: str) -> SuggestionSheet:
        with self._snapshot():
            return self._sheet(self.suggestions_for(business_id), businesses=[business_id])

    def _read_best_sheet(self, salesperson_id: str, limit: int) -> SuggestionSheet:
        with self._snapshot():
            # A pair within the book is listed from both sides: 2 * limit rows hold `limit`
            # pairs. Only the rows kept are decoded, and only their businesses read.
            rows = self._best_rows(salesperson_id, 2 * limit)
            kept = each_pair_once(rows, limit, lambda r: (r[0], r[1]))
            return self._sheet([_to_suggestion(r) for r in kept], salespeople=[salesperson_id])

    def _sheet(
        self, suggestions: list[Suggestion], businesses: Sequence[str] = (), salespeople: Sequence[str] = ()
    ) -> SuggestionSheet:
        pairs = {(s.business_id, s.other_id) for s in suggestions}
        found = self.get_businesses(sorted({*businesses, *(i for pair in pairs for i in pair)}))
        people = self.get_salespeople(sorted({*salespeople, *(b.record.salesperson_id for b in found.values())}))
        consents = self.contact_consents_of(sorted({other for _, other in pairs})) if pairs else []
        shared = {(c.business_id, c.other_id) for c in consents if (c.other_id, c.business_id) in pairs}
        return SuggestionSheet(self.match_state().published, tuple(suggestions), found, people, frozenset(shared))

    def all_suggestions(self) -> list[Suggestion]:
        rows = self._rows(
            self._PUBLISHED_LISTS
            + ", newest AS (SELECT l.business_id, max(l.generation) AS generation FROM suggestion_lists l"
            "   JOIN generations pg ON pg.id = l.generation AND pg.status = 'published', st"
            "   WHERE l.generation BETWEEN st.base AND st.published GROUP BY l.business_id),"
            " lst AS (SELECT l.* FROM suggestion_lists l JOIN newest n"
            "   ON n.business_id = l.business_id AND n.generation = l.generation)"
            f" SELECT {_SUGGESTION_COLUMNS} FROM lst"
            " JOIN suggestions s ON s.business_id = lst.business_id AND s.generation = lst.generation"
            " JOIN generations g ON g.id = lst.generation" + _SAFE_SUGGESTION + " ORDER BY s.business_id, s.rank"
        )
        return [_to_suggestion(r) for r in rows]

    def pending_changes(self) -> list[PendingChange]:
        rows = self._rows(
            "SELECT business_id, version, first_at, at FROM pending_changes ORDER BY first_at, business_id"
        )
        return [PendingChange(r[0], r[1], datetime.fromisoformat(r[2]), datetime.fromisoformat(r[3])) for r in rows]

    def suggestion_events(self, business_id: str | None = None) -> list[SuggestionEvent]:
        query = "SELECT * FROM suggestion_events"
        rows = (
            self._rows(query + " ORDER BY at, id")
            if business_id is None
            else self._rows(
                query + " WHERE business_id = ? OR other_id = ? ORDER BY at, id", (business_id, business_id)
            )
        )
        return [self._to_event(r) for r in rows]

    @staticmethod
    def _to_event(r: sqlite3.Row) -> SuggestionEvent:
        suggestion = Suggestion(
            r["business_id"], r["other_id"], r["rank"], r["score"], tuple(json.loads(r["reasons"])),
            tuple(json.loads(r["other_reasons"])), datetime.fromisoformat(r["computed_at"]),
            r["generation"], r["model"], r["rules_digest"],
        )  # fmt: skip
        kind, at = SuggestionEventKind(r["kind"]), datetime.fromisoformat(r["at"])
        return SuggestionEvent(suggestion, kind, r["channel"], at, r["salesperson_id"], r["detail"])

    def contact_consents_of(self, business_ids: Sequence[str]) -> list[ContactConsent]:
        found = []
        for chunk in _chunks(sorted(set(business_ids))):
            found += self._rows(
                "SELECT business_id, other_id, granted_by, at FROM contact_consents"
                f" WHERE business_id IN ({_marks(chunk)}) ORDER BY business_id, other_id",
                chunk,
            )
        return [ContactConsent(r[0], r[1], r[2], datetime.fromisoformat(r[3])) for r in found]

    def contact_consents(self, business_id: str) -> list[ContactConsent]:
        rows = self._rows(
            "SELECT business_id, other_id, granted_by, at FROM contact_consents"
            " WHERE business_id = ? ORDER BY other_id",
            (business_id,),
        )
        return [ContactConsent(r[0], r[1], r[2], datetime.fromisoformat(r[3])) for r in rows]

    # Jobs
    def get_introduction(self, introduction_id: str) -> Introduction | None:
        found = self._introductions(" WHERE i.id = ?", [introduction_id], 1)
        return found[0] if found else None

    def list_introductions(
        self,
        *,
        business_id: str | None = None,
        salesperson_id: str | None = None,
        status: IntroStatus | None = None,
        limit: int = 50,
    ) -> list[Introduction]:
        clauses, params = [], []
        if business_id is not None:
            clauses.append("(i.business_a = ? OR i.business_b = ?)")
            params += [business_id, business_id]
        if salesperson_id is not None:
            clauses.append(
                "EXISTS (SELECT 1 FROM businesses b WHERE b.id IN (i.business_a, i.business_b)"
                " AND b.salesperson_id = ?)"
            )
            params.append(salesperson_id)
        if status is not None:
            clauses.append("i.status = ?")
            params.append(status.value)
        return self._introductions(" WHERE " + " AND ".join(clauses) if clauses else "", params, limit)

    def _introductions(self, where: str, params: list, limit: int) -> list[Introduction]:
        rows = self._rows(
            f"SELECT * FROM introductions i{where} ORDER BY i.created_at DESC, i.id DESC LIMIT ?", [*params, limit]
        )
        ids = [r["id"] for r in rows]
        steps: dict[str, list[IntroStep]] = {}
        feedback: dict[str, list[IntroFeedback]] = {}
        for chunk in _chunks(ids):
            marks = _marks(chunk)
            for r in self._rows(
                f"SELECT * FROM introduction_steps WHERE introduction_id IN ({marks}) ORDER BY seq", chunk
            ):
                steps.setdefault(r["introduction_id"], []).append(
                    IntroStep(IntroStatus(r["status"]), datetime.fromisoformat(r["at"]), r["by_whom"], r["note"])
                )
            for r in self._rows(
                f"SELECT * FROM introduction_feedback WHERE introduction_id IN ({marks}) ORDER BY seq", chunk
            ):
                feedback.setdefault(r["introduction_id"], []).append(
                    IntroFeedback(
                        r["business_id"], r["rating"], r["comment"], datetime.fromisoformat(r["at"]), r["by_whom"]
                    )
                )
        return [
            Introduction(
                id=r["id"],
                a_id=r["business_a"],
                b_id=r["business_b"],
                status=IntroStatus(r["status"]),
                created_at=datetime.fromisoformat(r["created_at"]),
                created_by=r["created_by"],
                message_a=r["message_a"],
                message_b=r["message_b"],
                score=r["score"],
                steps=tuple(steps.get(r["id"], ())),
                feedback=tuple(feedback.get(r["id"], ())),
            )
            for r in rows
        ]

    def new_in_generation(self, generation: int) -> list[tuple[str, str, int, float]]:
        rows = self._rows(
            "SELECT s.business_id, s.other_id, s.rank, s.score FROM suggestions s WHERE s.generation = ?"
            " AND NOT EXISTS (SELECT 1 FROM suggestions p WHERE p.business_id = s.business_id"
            "   AND p.other_id = s.other_id AND p.generation = (SELECT max(l.generation) FROM suggestion_lists l"
            "     WHERE l.business_id = s.business_id AND l.generation < ?))"
            " ORDER BY s.business_id, s.rank",
            (generation, generation),
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def refresh_parts(self, generation: int, *, states: bool = True) -> list[RefreshPart]:
        columns = "*" if states else "generation, part, parts, status, snapshot, claimed_by, lease_until, NULL AS state"
        rows = self._rows(f"SELECT {columns} FROM refresh_parts WHERE generation = ? ORDER BY part", (generation,))
        return [_to_part(r) for r in rows]

    def get_webhook(self, webhook_id: str) -> WebhookSubscription | None:
        row = self._one("SELECT * FROM webhooks WHERE id = ?", (webhook_id,))
        return _to_webhook(row) if row else None

    def list_webhooks(self, *, active: bool = True) -> list[WebhookSubscription]:
        where = " WHERE disabled_at IS NULL" if active else ""
        return [_to_webhook(r) for r in self._rows(f"SELECT * FROM webhooks{where} ORDER BY created_at, id")]

    def get_delivery(self, delivery_id: str) -> WebhookDelivery | None:
        row = self._one("SELECT * FROM webhook_deliveries WHERE id = ?", (delivery_id,))
        return _to_delivery(row) if row else None

    def list_deliveries(
        self,
        *,
        subscription_id: str | None = None,
        status: DeliveryStatus | None = None,
        due_before: datetime | None = None,
        limit: int = 50,
    ) -> list[WebhookDelivery]:
        clauses, params = [], []
        if subscription_id is not None:
            clauses.append("subscription_id = ?")
            params.append(subscription_id)
        if status is not None:
            clauses.append("status = ?")
            params.append(status.value)
        order = "created_at DESC, id DESC"
        if due_before is not None:
            clauses.append("status = 'pending' AND next_attempt_at <= ?")
            params.append(_iso(due_before))
            order = "next_attempt_at, id"
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        rows = self._rows(f"SELECT * FROM webhook_deliveries{where} ORDER BY {order} LIMIT ?", [*params, limit])
        return [_to_delivery(r) for r in rows]

    def introduction_gaps(
        self, salesperson_id: str | None, before: datetime, limit: int
    ) -> tuple[int, list[IntroductionGap]]:
        rows = self._rows(
            "WITH latest AS (SELECT id, max(at) AS last FROM ("
            "   SELECT business_a AS id, created_at AS at FROM introductions"
            "   UNION ALL SELECT business_b, created_at FROM introductions) GROUP BY id)"
            " SELECT count(*) OVER () AS total, b.id, b.name, b.created_at, latest.last FROM businesses b"
            " LEFT JOIN latest ON latest.id = b.id"
            " WHERE b.archived_at IS NULL AND (? IS NULL OR b.salesperson_id = ?)"
            "   AND (latest.last IS NULL OR latest.last < ?)"
            " ORDER BY latest.last IS NOT NULL, coalesce(latest.last, b.created_at), lower(b.name), b.id LIMIT ?",
            (salesperson_id, salesperson_id, _iso(before), limit),
        )
        gaps = [IntroductionGap(r["id"], r["name"], _when(r["created_at"]), _when(r["last"])) for r in rows]
        return (rows[0]["total"] if rows else 0), gaps

    def last_introduced(self, business_ids: Sequence[str]) -> dict[str, datetime]:
        newest: dict[str, datetime] = {}
        for chunk in _chunks(sorted(set(business_ids))):
            for side in ("business_a", "business_b"):
                rows = self._rows(
                    f"SELECT {side} AS id, max(created_at) AS at FROM introductions"
                    f" WHERE {side} IN ({_marks(chunk)}) GROUP BY {side}",
                    chunk,
                )
                for r in rows:
                    at = datetime.fromisoformat(r["at"])
                    newest[r["id"]] = max(at, newest.get(r["id"], at))
        return newest

    _PREFERENCES = (
        "SELECT s.id, coalesce(p.weekly, 1) AS weekly, coalesce(p.weekday, 0) AS weekday, coalesce(p.size, 5) AS size,"
        " coalesce(p.hour, 8) AS hour, coalesce(p.timezone, 'UTC') AS timezone,"
        " coalesce(p.note_when_empty, 0) AS note_when_empty"
        " FROM salespeople s LEFT JOIN digest_preferences p ON p.salesperson_id = s.id"
    )

    def digest_preferences(self, salesperson_id: str) -> DigestPreferences:
        row = self._one(self._PREFERENCES + " WHERE s.id = ?", (salesperson_id,))
        return DigestPreferences(salesperson_id) if row is None else _to_preferences(row)

    def all_digest_preferences(self) -> list[DigestPreferences]:
        return [_to_preferences(r) for r in self._rows(self._PREFERENCES + " ORDER BY s.id")]

    def get_digest(self, salesperson_id: str, week: str) -> Digest | None:
        row = self._one("SELECT * FROM digests WHERE salesperson_id = ? AND week = ?", (salesperson_id, week))
        return _to_digest(row) if row else None

    def list_digests(
        self,
        *,
        week: str | None = None,
        salesperson_id: str | None = None,
        status: DigestStatus | None = None,
        bodies: bool = True,
    ) -> list[Digest]:
        columns = "*" if bodies else ", ".join(_DIGEST_COLUMNS_WITHOUT_BODIES)
        # Only the conditions given, so that each can use its index.
        given = {"week": week, "salesperson_id": salesperson_id, "status": status.value if status else None}
        clauses = [(f"{name} = ?", value) for name, value in given.items() if value is not None]
        where = " WHERE " + " AND ".join(c for c, _ in clauses) if clauses else ""
        rows = self._rows(
            f"SELECT {columns} FROM digests{where} ORDER BY created_at DESC, week DESC, salesperson_id",
            [v for _, v in clauses],
        )
        return [_to_digest(r) for r in rows]

    def link_used(self, link_id: str) -> datetime | None:
        row = self._one("SELECT used_at FROM used_links WHERE id = ?", (link_id,))
        return _when(row["used_at"]) if row else None

    def digest_items(
        self, *, salesperson_id: str | None = None, since: datetime | None = None
    ) -> list[tuple[str, DigestItem]]:
        clauses, params = ["status != 'gave_up'"], []  # never delivered: held nothing
        if salesperson_id is not None:
            clauses.append("salesperson_id = ?")
            params.append(salesperson_id)
        if since is not None:
            clauses.append("created_at >= ?")
            params.append(_iso(since))
        rows = self._rows(
            f"SELECT salesperson_id, items FROM digests WHERE {' AND '.join(clauses)}"
            " ORDER BY created_at, salesperson_id",
            params,
        )
        return [(r["salesperson_id"], item) for r in rows for item in digest_items_from_json(r["items"])]

    def credentials_for(self, login: str) -> Credentials | None:
        key = login.strip().lower()
        row = self._one(
            "SELECT s.id, s.name, s.email, s.role, c.password_hash, c.changed_at FROM salespeople s"
            " LEFT JOIN credentials c ON c.salesperson_id = s.id"
            " WHERE lower(s.id) = ? OR lower(s.email) = ? ORDER BY lower(s.id) = ? DESC, s.id LIMIT 1",
            (key, key, key),
        )
        if row is None:
            return None
        person = Salesperson(row["id"], row["name"], row["email"], Role(row["role"]))
        return Credentials(person, row["password_hash"], _when(row["changed_at"]))

    def api_token_by_hash(self, secret_hash: str) -> ApiToken | None:
        row = self._one("SELECT * FROM api_tokens WHERE secret_hash = ?", (secret_hash,))
        return _to_api_token(row) if row else None

    def list_api_tokens(self) -> list[ApiToken]:
        return [_to_api_token(r) for r in self._rows("SELECT * FROM api_tokens ORDER BY created_at, id")]

    def get_job(self, job_id: str) -> Job | None:
        row = self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _to_job(row) if row else None

    def list_jobs(self, *, limit: int = 20, status: JobStatus | None = None) -> list[Job]:
        where, params = ("", []) if status is None else (" WHERE status = ?", [status.value])
        rows = self._rows(f"SELECT * FROM jobs{where} ORDER BY created_at DESC, rowid DESC LIMIT ?", [*params, limit])
        return [_to_job(r) for r in rows]


class _SqliteWriter(GraphWriter):
    """The write operations of one BEGIN IMMEDIATE ... COMMIT on one connection."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def _require_businesses(self, ids: set[str]) -> None:
        found: set[str] = set()
        for chunk in _chunks(sorted(ids)):
            found.update(
                r[0] for r in self.conn.execute(f"SELECT id FROM businesses WHERE id IN ({_marks(chunk)})", chunk)
            )
        if missing := ids - found:
            raise UnknownBusinessError(sorted(missing))

    def mark_pending(self, business_ids: Sequence[str], now: datetime) -> None:
        stamp = _iso(now)
        self.conn.executemany(
            "INSERT INTO pending_changes (business_id, version, first_at, at) VALUES (?, 1, ?, ?)"
            " ON CONFLICT (business_id) DO UPDATE SET version = version + 1, at = excluded.at",
            [(i, stamp, stamp) for i in sorted(set(business_ids))],
        )

    # Salespeople
    def upsert_salespeople(self, people: Sequence[Salesperson]) -> None:
        self.conn.executemany(
            "INSERT INTO salespeople (id, name, email, role) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email",
            [(p.id, p.name, p.email, p.role.value) for p in people],
        )

    def set_salesperson_role(self, salesperson_id: str, role: Role) -> None:
        cursor = self.conn.execute("UPDATE salespeople SET role = ? WHERE id = ?", (role.value, salesperson_id))
        if cursor.rowcount == 0:
            raise UnknownSalespersonError(salesperson_id)

    # Businesses
    def upsert_businesses(
        self, records: Sequence[BusinessRecord], now: datetime, source_digests: Mapping[str, str] | None = None
    ) -> list[UpsertOutcome]:
        stamp = _iso(now)
        sources = source_digests or {}
        known: dict[str, tuple[str, str | None]] = {}
        for chunk in _chunks([r.id for r in records]):
            for row in self.conn.execute(
                f"SELECT id, content_hash, source_digest FROM businesses WHERE id IN ({_marks(chunk)})", chunk
            ):
                known[row["id"]] = (row["content_hash"], row["source_digest"])
        outcomes, changed, resourced = [], [], []
        for record in records:
            digest = record.content_hash()
            if record.id not in known:
                outcomes.append(UpsertOutcome.CREATED)
            elif known[record.id][0] != digest:
                outcomes.append(UpsertOutcome.UPDATED)
            else:
                outcomes.append(UpsertOutcome.UNCHANGED)
                if record.id in sources and known[record.id][1] != sources[record.id]:
                    resourced.append((sources[record.id], record.id))
                continue
            self._write_business(record, digest, stamp, sources.get(record.id))
            known[record.id] = (digest, sources.get(record.id))
            changed.append(record.id)
        self.conn.executemany("UPDATE businesses SET source_digest = ? WHERE id = ?", resourced)
        self.mark_pending(changed, now)
        return outcomes

    def _write_business(self, record: BusinessRecord, digest: str, stamp: str, source: str | None) -> None:
        conn = self.conn
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
            " employees, opted_out, salesperson_id, place_id, city, region, country, metro, lat, lon, postal_code,"
            " content_hash, source_digest, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description,"
            " customers = excluded.customers, needs = excluded.needs, website = excluded.website,"
            " email = excluded.email, contact_name = excluded.contact_name, employees = excluded.employees,"
            " opted_out = excluded.opted_out, salesperson_id = excluded.salesperson_id,"
            " place_id = excluded.place_id, city = excluded.city, region = excluded.region,"
            " country = excluded.country, metro = excluded.metro, lat = excluded.lat, lon = excluded.lon,"
            " postal_code = excluded.postal_code,"
            " content_hash = excluded.content_hash, source_digest = excluded.source_digest,"
            " updated_at = excluded.updated_at",
            (
                record.id, record.name, record.description, record.customers, record.needs,
                record.website, record.email, record.contact_name, record.employees,
                int(record.opted_out), record.salesperson_id, place.id if place else None,
                *((place.city, place.region, place.country, place.metro, place.lat, place.lon, place.postal_code)
                  if place else (None,) * 6 + ("",)),
                digest, source, stamp, stamp,
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

    def set_archived(self, business_ids: Sequence[str], archived: bool, now: datetime) -> list[str]:
        wanted = list(dict.fromkeys(business_ids))
        self._require_businesses(set(wanted))
        state: dict[str, bool] = {}
        for chunk in _chunks(wanted):
            for r in self.conn.execute(f"SELECT id, archived_at FROM businesses WHERE id IN ({_marks(chunk)})", chunk):
                state[r[0]] = r[1] is not None
        changed = [i for i in wanted if state[i] != archived]
        self.conn.executemany(
            "UPDATE businesses SET archived_at = ? WHERE id = ?",
            [(_iso(now) if archived else None, i) for i in changed],
        )
        self.mark_pending(changed, now)
        return changed

    def set_opt_out(self, business_id: str, opt_out: OptOut | None, now: datetime) -> bool:
        self._require_businesses({business_id})
        before = self.conn.execute(
            "SELECT opted_out_at, opt_out_reason FROM businesses WHERE id = ?", (business_id,)
        ).fetchone()
        if (before[0] is None) == (opt_out is None) and (opt_out is None or opt_out.reason == before[1]):
            return False
        self.conn.execute(
            "UPDATE businesses SET opted_out_at = ?, opt_out_reason = ? WHERE id = ?",
            (None if opt_out is None else _iso(opt_out.at), "" if opt_out is None else opt_out.reason, business_id),
        )
        self.mark_pending([business_id], now)
        return True

    # Ties and blocks
    def add_ties(self, ties: Sequence[Tie], now: datetime) -> int:
        normalised = sorted({t.normalised() for t in ties if t.a != t.b}, key=lambda t: (t.a, t.b, t.kind))
        self._require_businesses({i for t in normalised for i in (t.a, t.b)})
        created = []
        for tie in normalised:
            cursor = self.conn.execute(
                "INSERT INTO ties (business_a, business_b, kind, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (tie.a, tie.b, tie.kind.value, _iso(now)),
            )
            if cursor.rowcount:
                created.append(tie)
        self.mark_pending([i for t in created for i in (t.a, t.b)], now)
        return len(created)

    def remove_ties(self, ties: Sequence[Tie], now: datetime) -> int:
        removed = []
        for tie in {t.normalised() for t in ties}:
            cursor = self.conn.execute(
                "DELETE FROM ties WHERE business_a = ? AND business_b = ? AND kind = ?", (tie.a, tie.b, tie.kind.value)
            )
            if cursor.rowcount:
                removed.append(tie)
        self.mark_pending([i for t in removed for i in (t.a, t.b)], now)
        return len(removed)

    def add_do_not_introduce(self, a: str, b: str, reason: str, now: datetime) -> bool:
        low, high = sorted((a, b))
        self._require_businesses({low, high})
        cursor = self.conn.execute(
            "INSERT INTO do_not_introduce (business_a, business_b, reason, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (low, high, reason, _iso(now)),
        )
        if cursor.rowcount == 1:
            self.mark_pending([low, high], now)
        return cursor.rowcount == 1

    def remove_do_not_introduce(self, a: str, b: str, now: datetime) -> bool:
        low, high = sorted((a, b))
        cursor = self.conn.execute("DELETE FROM do_not_introduce WHERE business_a = ? AND business_b = ?", (low, high))
        if cursor.rowcount == 1:
            self.mark_pending([low, high], now)
        return cursor.rowcount == 1

    # Feedback and what salespeople saw
    def record_feedback(self, feedback: Feedback) -> None:
        self._require_businesses({feedback.a, feedback.b})
        self.conn.execute(
            "INSERT INTO feedback (business_a, business_b, kind, reason, salesperson_id, at) VALUES (?, ?, ?, ?, ?, ?)",
            (feedback.a, feedback.b, feedback.kind.value, feedback.reason, feedback.salesperson_id, _iso(feedback.at)),
        )
        self.mark_pending([feedback.a, feedback.b], feedback.at)

    def record_suggestion_events(self, events: Sequence[SuggestionEvent]) -> None:
        self._require_businesses({i for e in events for i in (e.suggestion.business_id, e.suggestion.other_id)})
        self.conn.executemany(
            "INSERT INTO suggestion_events (business_id, other_id, kind, channel, salesperson_id, detail, at,"
            " generation, model, rules_digest, rank, score, reasons, other_reasons, computed_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    e.suggestion.business_id, e.suggestion.other_id, e.kind.value, e.channel, e.salesperson_id,
                    e.detail, _iso(e.at), e.suggestion.generation, e.suggestion.model, e.suggestion.rules_digest,
                    e.suggestion.rank, e.suggestion.score, json.dumps(list(e.suggestion.reasons)),
                    json.dumps(list(e.suggestion.other_reasons)), _iso(e.suggestion.computed_at),
                )
                for e in events
            ],
        )  # fmt: skip

    def grant_contact(self, consent: ContactConsent) -> bool:
        self._require_businesses({consent.business_id, consent.other_id})
        cursor = self.conn.execute(
            "INSERT INTO contact_consents (business_id, other_id, granted_by, at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (consent.business_id, consent.other_id, consent.granted_by, _iso(consent.at)),
        )
        return cursor.rowcount == 1

    # Matching (the worker)
    def save_embeddings(self, field: str, items: Sequence[tuple[str, str, np.ndarray]]) -> None:
        _check_field(field)
        self.conn.executemany(
            "INSERT INTO embeddings (business_id, field, text_hash, vector)"
            " SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM businesses WHERE id = ?)"
            " ON CONFLICT (business_id, field) DO UPDATE SET text_hash = excluded.text_hash, vector = excluded.vector",
            [(i, field, h, np.asarray(v, dtype="<f4").tobytes(), i) for i, h, v in items],
        )

    def delete_embeddings(self, field: str, business_ids: Sequence[str]) -> None:
        _check_field(field)
        for chunk in _chunks(sorted(set(business_ids))):
            self.conn.execute(
                f"DELETE FROM embeddings WHERE field = ? AND business_id IN ({_marks(chunk)})", (field, *chunk)
            )

    def save_inferred_categories(self, business_ids: Sequence[str], inferred: Sequence[InferredCategory]) -> None:
        for chunk in _chunks(list(business_ids)):
            self.conn.execute(
                f"DELETE FROM business_categories WHERE source = 'inferred' AND business_id IN ({_marks(chunk)})", chunk
            )
        self.conn.executemany(
            "INSERT INTO categories (slug, name) VALUES (?, ?) ON CONFLICT (slug) DO NOTHING",
            sorted({(Category(i.category).slug, i.category) for i in inferred}),
        )
        self.conn.executemany(
            "INSERT INTO business_categories (business_id, category_slug, source, confidence)"
            " SELECT ?, ?, 'inferred', ? WHERE EXISTS (SELECT 1 FROM businesses WHERE id = ?)"
            " ON CONFLICT (business_id, category_slug) DO NOTHING",
            [(i.business_id, Category(i.category).slug, i.confidence, i.business_id) for i in inferred],
        )

    def begin_generation(
        self,
        kind: GenerationKind,
        *,
        model: str,
        rules_digest: str,
        settings_digest: str,
        now: datetime,
        job_id: str | None = None,
    ) -> Generation:
        self.conn.execute("UPDATE generations SET status = 'abandoned' WHERE status = 'building'")
        number = self.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM generations").fetchone()[0]
        self.conn.execute(
            "INSERT INTO generations (id, kind, status, model, rules_digest, settings_digest, started_at, job_id)"
            " VALUES (?, ?, 'building', ?, ?, ?, ?, ?)",
            (number, kind.value, model, rules_digest, settings_digest, _iso(now), job_id),
        )
        return _to_generation(self.conn.execute("SELECT * FROM generations WHERE id = ?", (number,)).fetchone())

    def write_lists(self, generation: int, lists: Sequence[SuggestionList]) -> None:
        # A list written again in the same generation replaces the first (as on Neo4j): the
        # old list row goes, and its suggestions with it (ON DELETE CASCADE).
        lists = list({item.business_id: item for item in lists}.values())
        for chunk in _chunks([item.business_id for item in lists]):
            self.conn.execute(
                f"DELETE FROM suggestion_lists WHERE generation = ? AND business_id IN ({_marks(chunk)})",
                [generation, *chunk],
            )
        self.conn.executemany(
            "INSERT INTO suggestion_lists (business_id, generation, computed_at)"
            " SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM businesses WHERE id = ?)",
            [(item.business_id, generation, _iso(item.computed_at), item.business_id) for item in lists],
        )
        # Each suggestion names its business's salesperson: their best are read best first.
        self.conn.executemany(
            "INSERT INTO suggestions"
            " (business_id, generation, rank, other_id, score, reasons, other_reasons, salesperson_id)"
            " SELECT ?, ?, ?, ?, ?, ?, ?, a.salesperson_id FROM businesses a WHERE a.id = ?"
            " AND EXISTS (SELECT 1 FROM businesses WHERE id = ?)"
            " AND EXISTS (SELECT 1 FROM suggestion_lists WHERE business_id = ? AND generation = ?)",
            [
                (
                    s.business_id, generation, s.rank, s.other_id, s.score, json.dumps(list(s.reasons)),
                    json.dumps(list(s.other_reasons)), s.business_id, s.other_id, s.business_id, generation,
                )
                for item in lists
                for s in item.suggestions
            ],
        )  # fmt: skip

    def publish_generation(self, generation: int, now: datetime, taken_in: Sequence[PendingChange]) -> Generation:
        row = self.conn.execute("SELECT kind, status FROM generations WHERE id = ?", (generation,)).fetchone()
        if row is None or row["status"] != GenerationStatus.BUILDING:
            raise ValueError(f"generation {generation} is not building; it cannot be published")
        lists = self.conn.execute(
            "SELECT count(*) FROM suggestion_lists WHERE generation = ?", (generation,)
        ).fetchone()
        count = self.conn.execute(
            "SELECT count(*) FROM suggestion_lists l JOIN suggestions s"
            " ON s.business_id = l.business_id AND s.generation = l.generation WHERE l.generation = ?",
            (generation,),
        ).fetchone()
        self.conn.execute(
            "UPDATE generations SET status = 'published', published_at = ?, lists = ?, suggestions = ? WHERE id = ?",
            (_iso(now), lists[0], count[0], generation),
        )
        if row["kind"] == GenerationKind.FULL:
            self.conn.execute("UPDATE match_state SET published = ?, base = ? WHERE id = 1", (generation, generation))
        else:
            self.conn.execute("UPDATE match_state SET published = ? WHERE id = 1", (generation,))
        self.conn.executemany(
            "DELETE FROM pending_changes WHERE business_id = ? AND version = ?",
            [(change.business_id, change.version) for change in taken_in],
        )
        return _to_generation(self.conn.execute("SELECT * FROM generations WHERE id = ?", (generation,)).fetchone())

    # Jobs
    def create_job(self, job: Job, coalesce_key: str | None = None) -> tuple[Job, bool]:
        if coalesce_key is not None:
            row = self.conn.execute("SELECT * FROM jobs WHERE coalesce_key = ?", (coalesce_key,)).fetchone()
            if row is not None:
                return _to_job(row), False
        self.conn.execute(
            "INSERT INTO jobs (id, kind, status, coalesce_key, requested_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (job.id, job.kind, job.status.value, coalesce_key, job.requested_by, _iso(job.created_at)),
        )
        return job, True

    def claim_job(self, job_id: str, now: datetime) -> Job | None:
        row = self.conn.execute(
            "UPDATE jobs SET status = 'running', started_at = ?, attempts = attempts + 1, coalesce_key = NULL,"
            " finished_at = NULL, error = '' WHERE id = ? AND status = 'queued' RETURNING *",
            (_iso(now), job_id),
        ).fetchone()
        return _to_job(row) if row else None

    def update_job(
        self,
        job_id: str,
        *,
        status: JobStatus | None = None,
        now: datetime | None = None,
        summary: str | None = None,
        error: str | None = None,
        progress: JobProgress | None = None,
    ) -> None:
        sets: dict[str, Any] = {}
        if status is not None:
            sets["status"] = status.value
            if status in (JobStatus.DONE, JobStatus.FAILED):
                sets["finished_at"] = _iso(now or datetime.now(UTC))
        if summary is not None:
            sets["summary"] = summary
        if error is not None:
            sets["error"] = error
        if progress is not None:
            sets["progress"] = json.dumps({"stage": progress.stage, "done": progress.done, "total": progress.total})
        if not sets:
            return
        assignments = ", ".join(f"{column} = ?" for column in sets)  # column names are the constants above
        cursor = self.conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", [*sets.values(), job_id])
        if cursor.rowcount == 0:
            raise UnknownJobError(job_id)

    def create_introduction(self, introduction: Introduction) -> None:
        self._require_businesses({introduction.a_id, introduction.b_id})
        i = introduction
        self.conn.execute(
            "INSERT INTO introductions (id, business_a, business_b, status, created_at, created_by, message_a,"
            " message_b, score, steps) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (i.id, i.a_id, i.b_id, i.status.value, _iso(i.created_at), i.created_by, i.message_a, i.message_b,
             i.score, len(i.steps)),
        )  # fmt: skip
        self._insert_steps(i.id, 0, i.steps)

    def _insert_steps(self, introduction_id: str, first: int, steps: Sequence[IntroStep]) -> None:
        self.conn.executemany(
            "INSERT INTO introduction_steps (introduction_id, seq, status, at, by_whom, note)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(introduction_id, first + n, s.status.value, _iso(s.at), s.by, s.note) for n, s in enumerate(steps)],
        )

    def advance_introduction(self, introduction_id: str, expected_steps: int, step: IntroStep) -> bool:
        moved = self.conn.execute(
            "UPDATE introductions SET status = ?, steps = steps + 1 WHERE id = ? AND steps = ?",
            (step.status.value, introduction_id, expected_steps),
        )
        if moved.rowcount == 0:
            return False
        self._insert_steps(introduction_id, expected_steps, [step])
        return True

    def edit_introduction_messages(
        self, introduction_id: str, expected_steps: int, message_a: str, message_b: str
    ) -> bool:
        edited = self.conn.execute(
            "UPDATE introductions SET message_a = ?, message_b = ? WHERE id = ? AND steps = ?",
            (message_a, message_b, introduction_id, expected_steps),
        )
        return edited.rowcount == 1

    def add_introduction_feedback(self, introduction_id: str, feedback: IntroFeedback) -> None:
        f = feedback
        self.conn.execute(
            "INSERT INTO introduction_feedback (introduction_id, seq, business_id, rating, comment, at, by_whom)"
            " VALUES (?, (SELECT count(*) FROM introduction_feedback WHERE introduction_id = ?), ?, ?, ?, ?, ?)",
            (introduction_id, introduction_id, f.business_id, f.rating, f.comment, _iso(f.at), f.by),
        )

    def claim_idempotency_key(self, request: IdempotentRequest, expires_before: datetime) -> IdempotentRequest | None:
        self.conn.execute(
            "DELETE FROM idempotency_keys WHERE token_id = ? AND key = ? AND created_at < ?",
            (request.token_id, request.key, _iso(expires_before)),
        )
        inserted = self.conn.execute(
            "INSERT INTO idempotency_keys (token_id, key, fingerprint, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (request.token_id, request.key, request.fingerprint, _iso(request.created_at)),
        )
        if inserted.rowcount == 1:
            return None
        row = self.conn.execute(
            "SELECT * FROM idempotency_keys WHERE token_id = ? AND key = ?", (request.token_id, request.key)
        ).fetchone()
        return IdempotentRequest(
            row["token_id"], row["key"], row["fingerprint"], datetime.fromisoformat(row["created_at"]),
            row["status"], row["body"], tuple(tuple(pair) for pair in json.loads(row["headers"])),
        )  # fmt: skip

    def complete_idempotency_key(
        self, token_id: str, key: str, status: int, body: str, headers: Sequence[tuple[str, str]]
    ) -> None:
        self.conn.execute(
            "UPDATE idempotency_keys SET status = ?, body = ?, headers = ? WHERE token_id = ? AND key = ?",
            (status, body, json.dumps([list(pair) for pair in headers]), token_id, key),
        )

    def release_idempotency_key(self, token_id: str, key: str) -> None:
        self.conn.execute(
            "DELETE FROM idempotency_keys WHERE token_id = ? AND key = ? AND status IS NULL", (token_id, key)
        )

    def create_webhook(self, subscription: WebhookSubscription) -> None:
        w = subscription
        self.conn.execute(
            "INSERT INTO webhooks (id, url, events, secret, salesperson_id, description, created_at, created_by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (w.id, w.url, json.dumps([e.value for e in w.events]), w.secret, w.salesperson_id, w.description,
             _iso(w.created_at), w.created_by),
        )  # fmt: skip

    def disable_webhook(self, webhook_id: str, now: datetime) -> bool:
        cursor = self.conn.execute(
            "UPDATE webhooks SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL", (_iso(now), webhook_id)
        )
        return cursor.rowcount > 0

    def add_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> None:
        self.conn.executemany(
            "INSERT INTO webhook_deliveries (id, subscription_id, event, payload, created_at, status, attempts,"
            " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(d.id, d.subscription_id, d.event.value, d.payload, _iso(d.created_at), d.status.value, d.attempts,
              _iso(d.next_attempt_at) if d.next_attempt_at else None) for d in deliveries],
        )  # fmt: skip

    def update_delivery(self, delivery: WebhookDelivery) -> None:
        d = delivery
        self.conn.execute(
            "UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_attempt_at = ?,"
            " last_status = ?, last_error = ? WHERE id = ?",
            (d.status.value, d.attempts, _iso(d.next_attempt_at) if d.next_attempt_at else None,
             _iso(d.last_attempt_at) if d.last_attempt_at else None, d.last_status, d.last_error, d.id),
        )  # fmt: skip

    def set_digest_preferences(self, preferences: DigestPreferences) -> None:
        p = preferences
        if not self.conn.execute("SELECT 1 FROM salespeople WHERE id = ?", (p.salesperson_id,)).fetchone():
            raise UnknownSalespersonError(p.salesperson_id)
        self.conn.execute(
            "INSERT INTO digest_preferences (salesperson_id, weekly, weekday, size, hour, timezone, note_when_empty)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (salesperson_id) DO UPDATE SET weekly = excluded.weekly, weekday = excluded.weekday,"
            " size = excluded.size, hour = excluded.hour, timezone = excluded.timezone,"
            " note_when_empty = excluded.note_when_empty",
            (p.salesperson_id, int(p.weekly), p.weekday, p.size, p.hour, p.timezone, int(p.note_when_empty)),
        )

    def record_digest(self, digest: Digest) -> bool:
        d = digest
        if not self.conn.execute("SELECT 1 FROM salespeople WHERE id = ?", (d.salesperson_id,)).fetchone():
            raise UnknownSalespersonError(d.salesperson_id)
        cursor = self.conn.execute(
            "INSERT INTO digests (salesperson_id, week, status, created_at, items, recipient, subject, text_body,"
            " html_body, message_id, attempts, lease_until, next_attempt_at, sent_at, last_error)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (salesperson_id, week) DO NOTHING",
            (d.salesperson_id, d.week, d.status.value, _iso(d.created_at), digest_items_json(d.items), d.recipient,
             d.subject, d.text, d.html, d.message_id, d.attempts, _iso(d.lease_until) if d.lease_until else None,
             _iso(d.next_attempt_at) if d.next_attempt_at else None, _iso(d.sent_at) if d.sent_at else None,
             d.last_error),
        )  # fmt: skip
        return cursor.rowcount == 1

    def claim_digest(self, salesperson_id: str, week: str, now: datetime, lease_until: datetime) -> Digest | None:
        row = self.conn.execute(
            "UPDATE digests SET attempts = attempts + (status = 'sending'), status = 'sending', lease_until = ?"
            " WHERE salesperson_id = ? AND week = ?"
            " AND ((status = 'failed' AND next_attempt_at <= ?) OR (status = 'sending' AND lease_until < ?))"
            " RETURNING *",
            (_iso(lease_until), salesperson_id, week, _iso(now), _iso(now)),
        ).fetchone()
        return _to_digest(row) if row else None

    def finish_digest(
        self,
        salesperson_id: str,
        week: str,
        status: DigestStatus,
        now: datetime,
        *,
        error: str = "",
        next_attempt_at: datetime | None = None,
        claimed_until: datetime | None = None,
    ) -> bool:
        lease = _iso(claimed_until) if claimed_until else None
        cursor = self.conn.execute(
            "UPDATE digests SET status = ?, attempts = attempts + 1, lease_until = NULL, next_attempt_at = ?,"
            " sent_at = ?, last_error = ? WHERE salesperson_id = ? AND week = ? AND status = 'sending'"
            " AND (? IS NULL OR lease_until = ?)",
            (status.value, _iso(next_attempt_at) if next_attempt_at else None,
             _iso(now) if status is DigestStatus.SENT else None, error, salesperson_id, week, lease, lease),
        )  # fmt: skip
        return cursor.rowcount == 1

    def add_refresh_parts(self, generation: int, parts: int, snapshot: str) -> None:
        self.conn.executemany(
            "INSERT INTO refresh_parts (generation, part, parts, status, snapshot) VALUES (?, ?, ?, 'queued', ?)",
            [(generation, part, parts, snapshot) for part in range(parts)],
        )

    def claim_refresh_part(
        self, generation: int, worker: str, now: datetime, lease_until: datetime
    ) -> RefreshPart | None:
        row = self.conn.execute(
            "UPDATE refresh_parts SET status = 'running', claimed_by = ?, lease_until = ?"
            " WHERE generation = ? AND part = (SELECT part FROM refresh_parts WHERE generation = ?"
            "   AND (status = 'queued' OR (status = 'running' AND lease_until < ?)) ORDER BY part LIMIT 1)"
            " RETURNING *",
            (worker, _iso(lease_until), generation, generation, _iso(now)),
        ).fetchone()
        return _to_part(row) if row else None

    def renew_refresh_part(self, generation: int, part: int, worker: str, lease_until: datetime) -> bool:
        cursor = self.conn.execute(
            "UPDATE refresh_parts SET lease_until = ? WHERE generation = ? AND part = ? AND status = 'running'"
            " AND claimed_by = ?",
            (_iso(lease_until), generation, part, worker),
        )
        return cursor.rowcount == 1

    def finish_refresh_part(
        self, generation: int, part: int, worker: str, state: bytes | None, *, done: bool = True
    ) -> bool:
        cursor = self.conn.execute(
            "UPDATE refresh_parts SET status = ?, state = ?, lease_until = NULL,"
            " claimed_by = CASE WHEN ? THEN claimed_by END"
            " WHERE generation = ? AND part = ? AND status = 'running' AND claimed_by = ?",
            ("done" if done else "queued", state, done, generation, part, worker),
        )
        return cursor.rowcount == 1

    def delete_refresh_parts(self, generation: int) -> None:
        self.conn.execute("DELETE FROM refresh_parts WHERE generation <= ?", (generation,))

    def consume_link(self, link_id: str, now: datetime) -> bool:
        cursor = self.conn.execute(
            "INSERT INTO used_links (id, used_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING", (link_id, _iso(now))
        )
        return cursor.rowcount == 1

    def set_password_hash(self, salesperson_id: str, password_hash: str, now: datetime) -> None:
        if not self.conn.execute("SELECT 1 FROM salespeople WHERE id = ?", (salesperson_id,)).fetchone():
            raise UnknownSalespersonError(salesperson_id)
        self.conn.execute(
            "INSERT INTO credentials (salesperson_id, password_hash, changed_at) VALUES (?, ?, ?)"
            " ON CONFLICT (salesperson_id) DO UPDATE SET password_hash = excluded.password_hash,"
            " changed_at = excluded.changed_at",
            (salesperson_id, password_hash, _iso(now)),
        )

    def create_api_token(self, token: ApiToken, secret_hash: str) -> None:
        if (
            token.salesperson_id is not None
            and not self.conn.execute("SELECT 1 FROM salespeople WHERE id = ?", (token.salesperson_id,)).fetchone()
        ):
            raise UnknownSalespersonError(token.salesperson_id)
        self.conn.execute(
            "INSERT INTO api_tokens (id, secret_hash, name, scopes, salesperson_id, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (token.id, secret_hash, token.name, json.dumps([s.value for s in token.scopes]), token.salesperson_id,
             token.created_by, _iso(token.created_at)),
        )  # fmt: skip

    def revoke_api_token(self, token_id: str, now: datetime) -> bool:
        cursor = self.conn.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (_iso(now), token_id)
        )
        return cursor.rowcount > 0

    def renew_view_version(self) -> None:
        self.conn.execute("UPDATE match_state SET view = ? WHERE id = 1", (uuid.uuid4().hex,))

    def requeue_running_jobs(self, max_attempts: int, now: datetime) -> list[Job]:
        rows = self.conn.execute(
            "UPDATE jobs SET progress = NULL,"
            " status = CASE WHEN attempts >= ? THEN 'failed' ELSE 'queued' END,"
            " finished_at = CASE WHEN attempts >= ? THEN ? END,"
            " error = CASE WHEN attempts >= ? THEN ? ELSE error END"
            " WHERE status = 'running' RETURNING *",
            (max_attempts, max_attempts, _iso(now), max_attempts, gave_up_message(max_attempts)),
        ).fetchall()
        return sorted((_to_job(r) for r in rows), key=lambda job: job.created_at)
