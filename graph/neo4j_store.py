"""The Neo4j backend: one driver per app, managed transactions, parameterised Cypher.

Every write runs as a transaction function passed to `execute_write`, so the driver
retries it on transient errors; the functions MERGE on constrained ids, which makes a
retry (or a re-run of the same import) a no-op.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import numpy as np
from neo4j import READ_ACCESS, Driver, GraphDatabase, ManagedTransaction, NotificationDisabledClassification
from neo4j.exceptions import ClientError, DriverError, Neo4jError

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
    digest_id,
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
    gave_up_message,
    tracking_view,
)

T = TypeVar("T")

_BUSINESS_PROPS = (
    "name", "description", "customers", "needs", "website", "email",
    "contact_name", "employees", "opted_out",
)  # fmt: skip

_MIGRATION_LEASE_S = 300  # renewed after every statement, so only a dead holder lets it run out
_MIGRATION_WAIT_S = 30 * 60  # how long another process waits for a live holder to finish
_PRUNE_BATCH = 5000
_READ_ATTEMPTS = 3
_READ_RETRY_PAUSE = 0.2  # seconds, times the attempt

_WRITE_BUSINESSES = """
UNWIND $rows AS row
MERGE (b:Business {id: row.id})
  ON CREATE SET b.created_at = $now
SET b += row.props, b.updated_at = $now
WITH b, row
CALL (b) { MATCH (b)<-[old:MANAGES]-(:Salesperson) DELETE old }
CALL (b, row) {
  MERGE (s:Salesperson {id: row.salesperson_id})
    ON CREATE SET s.name = row.salesperson_id, s.role = 'salesperson'
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

_MARK_PENDING = """
UNWIND $ids AS id
MERGE (c:PendingChange {business_id: id})
  ON CREATE SET c.version = 1, c.first_at = $now, c.at = $now
  ON MATCH SET c.version = c.version + 1, c.at = $now
"""

# Named properties only: a Business node also carries its embedding vectors, which are big.
# Instants come as text: Python parses it several times faster than the driver builds its own
# temporal values, which is most of a read's cost when it returns many businesses.
_PROJECTION = ", ".join(
    [f".{name}" for name in ("id", *_BUSINESS_PROPS, "city", "region", "country", "metro", "lat", "lon",
                             "postal_code", "opt_out_reason")]
    + [f"{name}: toString(b.{name})" for name in ("created_at", "updated_at", "archived_at", "opted_out_at")]
)  # fmt: skip

# `$ids IS NULL OR b.id IN $ids` would scan every business: a lookup by id gets its own MATCH.
_ALL_BUSINESSES = "MATCH (b:Business)"
_BUSINESSES_BY_ID = "UNWIND $ids AS wanted MATCH (b:Business {id: wanted})"

_BUSINESS_FILTERS = """
WHERE ($salesperson_id IS NULL OR EXISTS { (:Salesperson {id: $salesperson_id})-[:MANAGES]->(b) })
  AND ($search IS NULL OR toLower(b.name) CONTAINS $search)
  AND ($status IS NULL OR ($status = 'active') = (b.archived_at IS NULL))
  AND ($category IS NULL OR EXISTS { (b)-[:IN_CATEGORY]->(:Category {slug: $category}) })
  AND ($city IS NULL OR toLower(b.city) = toLower($city))
  AND ($updated_since IS NULL OR b.updated_at >= $updated_since)
"""
_READ_BUSINESSES = (
    _BUSINESS_FILTERS
    + """
  AND ($after_name IS NULL OR toLower(b.name) > toLower($after_name)
       OR (toLower(b.name) = toLower($after_name) AND b.id > $after_id))
WITH b ORDER BY toLower(b.name), b.id SKIP $offset LIMIT $limit
OPTIONAL MATCH (s:Salesperson)-[:MANAGES]->(b)
RETURN b {PROJECTION} AS business, s.id AS salesperson_id,
       COLLECT {
         MATCH (b)-[r:IN_CATEGORY {source: 'given'}]->(c:Category)
         RETURN c.name ORDER BY r.position
       } AS categories
""".replace("PROJECTION", _PROJECTION)
)
_READ_ALL_BUSINESSES = _READ_BUSINESSES.replace(" LIMIT $limit", "")

# Lists of published generations only (a crashed refresh's may linger until pruned).
_OF_PUBLISHED = " AND EXISTS { MATCH (:Generation {id: l.generation, status: 'published'}) }"

# See graph/embedded_store.py: only suggestions that are still safe to show.
_SAFE = """
  a.archived_at IS NULL AND o.archived_at IS NULL
  AND NOT a.opted_out AND a.opted_out_at IS NULL AND NOT o.opted_out AND o.opted_out_at IS NULL
  AND NOT EXISTS { (a)-[:DO_NOT_INTRODUCE|KNOWS|PARTNERS_WITH]-(o) }
  AND NOT EXISTS { MATCH (a)-[f:FEEDBACK]-(o) WHERE f.at >= l.computed_at - duration({minutes: 10}) }
"""
_SUGGESTION_FIELDS = """
a.id AS a, o.id AS b, s.rank AS rank, s.score AS score, s.reasons AS reasons,
s.other_reasons AS other_reasons, toString(l.computed_at) AS at, l.generation AS generation,
g.model AS model, g.rules_digest AS rules_digest
"""
_SAFE_SUGGESTIONS = f"""
MATCH (g:Generation {{id: l.generation}})
MATCH (l)-[s:SUGGESTS]->(o:Business)
WHERE {_SAFE}
RETURN {_SUGGESTION_FIELDS}
ORDER BY a, rank
"""


_SUGGESTIONS_OF_BUSINESS = (
    "MATCH (st:MatchState {id: 'current'})"
    " MATCH (a:Business {id: $id})-[:HAS_LIST]->(l:SuggestionList)"
    " WHERE l.generation >= st.base AND l.generation <= st.published"
    + _OF_PUBLISHED
    + " WITH a, l ORDER BY l.generation DESC LIMIT 1"
    + _SAFE_SUGGESTIONS
)


def _best_suggestions(*, limited: bool) -> str:
    """A salesperson's suggestions read best first from index suggests_best: the safety checks
    stop at `$limit` instead of running over (and sorting) the whole book. Only each business's
    current list counts. A business moved to another salesperson leaves their best at once and
    joins the new one's with its next list."""
    return (
        "MATCH (l:SuggestionList)-[s:SUGGESTS]->(o:Business)"
        " WHERE s.salesperson_id = $id AND s.score IS NOT NULL AND s.business_id IS NOT NULL"
        "   AND s.other_id IS NOT NULL"
        # The index's own order (one direction for all its keys): no sort of the whole book.
        " WITH l, s, o ORDER BY s.salesperson_id DESC, s.score DESC, s.business_id DESC, s.other_id DESC"
        " MATCH (st:MatchState {id: 'current'}) WHERE l.generation >= st.base AND l.generation <= st.published"
        " MATCH (:Salesperson {id: $id})-[:MANAGES]->(a:Business {id: l.business_id})"
        " MATCH (g:Generation {id: l.generation, status: 'published'})"
        " WHERE NOT EXISTS { MATCH (a)-[:HAS_LIST]->(newer:SuggestionList)"
        "   WHERE newer.generation > l.generation AND newer.generation <= st.published"
        "     AND EXISTS { MATCH (:Generation {id: newer.generation, status: 'published'}) } }"
        f" AND {_SAFE} RETURN {_SUGGESTION_FIELDS}" + (" LIMIT $limit" if limited else "")
    )


# Follows a query of suggestions best first: the first `$pairs` of distinct pairs, in order
# (sorted again before they are collected: a list's order is that of the rows it collects).
_EACH_PAIR_ONCE = f"""
WITH * ORDER BY score DESC, a DESC, b DESC
WITH collect({{{
    ", ".join(
        f"{n}: {n}"
        for n in ("a", "b", "rank", "score", "reasons", "other_reasons", "at", "generation", "model", "rules_digest")
    )
}}}) AS rows
WITH reduce(acc = {{seen: [], kept: []}}, r IN rows |
       CASE WHEN size(acc.kept) >= $pairs OR (CASE WHEN r.a < r.b THEN [r.a, r.b] ELSE [r.b, r.a] END) IN acc.seen
            THEN acc
            ELSE {{seen: acc.seen + [CASE WHEN r.a < r.b THEN [r.a, r.b] ELSE [r.b, r.a] END], kept: acc.kept + [r]}}
       END).kept AS kept
UNWIND kept AS r
RETURN r.a AS a, r.b AS b, r.rank AS rank, r.score AS score, r.reasons AS reasons, r.other_reasons AS other_reasons,
       r.at AS at, r.generation AS generation, r.model AS model, r.rules_digest AS rules_digest
"""

# Follows a query of suggestions (_SUGGESTION_FIELDS): both sides of each, their salespeople,
# the consents among them and the published generation, all in the same read.
_SHEET = """
WITH collect({a: a, b: b, rank: rank, score: score, reasons: reasons, other_reasons: other_reasons, at: at,
              generation: generation, model: model, rules_digest: rules_digest}) AS suggestions
CALL (suggestions) {
  UNWIND [x IN suggestions | x.a] + [x IN suggestions | x.b] + $businesses AS wanted
  WITH DISTINCT wanted
  MATCH (b:Business {id: wanted})
  OPTIONAL MATCH (s:Salesperson)-[:MANAGES]->(b)
  RETURN collect({business: b {PROJECTION}, salesperson_id: s.id, categories: COLLECT {
    MATCH (b)-[r:IN_CATEGORY {source: 'given'}]->(c:Category) RETURN c.name ORDER BY r.position
  }}) AS businesses
}
CALL (businesses) {
  UNWIND [x IN businesses WHERE x.salesperson_id IS NOT NULL | x.salesperson_id] + $salespeople AS wanted
  WITH DISTINCT wanted
  MATCH (s:Salesperson {id: wanted})
  RETURN collect(s {.id, .name, .email, .role}) AS salespeople
}
CALL (suggestions) {
  UNWIND suggestions AS x
  MATCH (:Business {id: x.b})-[:SHARES_CONTACT]->(:Business {id: x.a})
  RETURN collect(DISTINCT [x.b, x.a]) AS shared
}
OPTIONAL MATCH (st:MatchState {id: 'current'})
RETURN suggestions, businesses, salespeople, shared, st.published AS published
""".replace("PROJECTION", _PROJECTION)


_PLACE_PROPS = ("city", "region", "country", "metro", "lat", "lon", "postal_code")


def _business_filters(
    salesperson_id: str | None,
    search: str | None,
    status: BusinessStatus | None,
    category: str | None,
    city: str | None,
    updated_since: datetime | None,
) -> dict[str, Any]:
    """The parameters of _BUSINESS_FILTERS."""
    return {
        "salesperson_id": salesperson_id,
        "search": search.lower() if search else None,
        "status": None if status is None else status.value,
        "category": Category(category).slug if category else None,
        "city": city or None,
        # In UTC: Neo4j takes offsets within +-18:00 only, Python any under a day.
        "updated_since": updated_since.astimezone(UTC) if updated_since else None,
    }


def _business_row(record: BusinessRecord, source: str | None) -> dict[str, Any]:
    place = record.place
    return {
        "id": record.id,
        "salesperson_id": record.salesperson_id,
        "props": {
            **{name: getattr(record, name) for name in _BUSINESS_PROPS},
            # its own place as its row gave it: a Place is shared by a whole city
            **{name: getattr(place, name) if place else None for name in _PLACE_PROPS},
            "content_hash": record.content_hash(),
            "source_digest": source,
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


def _native(value: Any) -> datetime | None:
    """A driver's temporal value, or one a query returned as text (toString)."""
    if value is None:
        return None
    if isinstance(value, str):  # "2026-12-07T03:26:57.688123Z", maybe with "[Zone/Name]" after
        return datetime.fromisoformat(value.partition("[")[0])
    return value.to_native()


def _to_stored(row: Any) -> StoredBusiness:
    props = row["business"]
    record = BusinessRecord(
        id=props["id"],
        salesperson_id=row["salesperson_id"],
        categories=tuple(row["categories"]),
        place=None
        if props.get("city") is None
        else Place(
            city=props["city"], region=props["region"], country=props["country"], metro=props["metro"],
            lat=props.get("lat"), lon=props.get("lon"), postal_code=props.get("postal_code") or "",
        ),
        **{name: props.get(name) for name in _BUSINESS_PROPS},
    )  # fmt: skip
    opt_out = None
    if props.get("opted_out_at") is not None:
        opt_out = OptOut(props.get("opt_out_reason") or "", _native(props["opted_out_at"]))
    return StoredBusiness(
        record,
        _native(props["created_at"]),
        _native(props["updated_at"]),
        _native(props.get("archived_at")),
        opt_out,
    )


def _to_suggestion(r: Any) -> Suggestion:
    return Suggestion(
        r["a"], r["b"], r["rank"], r["score"], tuple(r["reasons"]), tuple(r["other_reasons"]),
        _native(r["at"]), r["generation"], r["model"], r["rules_digest"],
    )  # fmt: skip


def _to_introduction(props: Any, steps: list, feedback: list) -> Introduction:
    return Introduction(
        id=props["id"],
        a_id=props["a_id"],
        b_id=props["b_id"],
        status=IntroStatus(props["status"]),
        created_at=props["created_at"].to_native(),
        created_by=props["created_by"],
        message_a=props["message_a"],
        message_b=props["message_b"],
        score=props["score"],
        steps=tuple(IntroStep(IntroStatus(s["status"]), s["at"].to_native(), s["by"], s["note"]) for s in steps),
        feedback=tuple(
            IntroFeedback(f["business_id"], f["rating"], f["comment"], f["at"].to_native(), f["by"]) for f in feedback
        ),
    )


def _to_webhook(props: Any) -> WebhookSubscription:
    return WebhookSubscription(
        id=props["id"],
        url=props["url"],
        events=tuple(WebhookEvent(e) for e in props["events"]),
        secret=props["secret"],
        created_at=props["created_at"].to_native(),
        created_by=props["created_by"],
        salesperson_id=props.get("salesperson_id"),
        description=props.get("description", ""),
        disabled_at=_native(props.get("disabled_at")),
    )


def _delivery_props(d: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": d.id, "subscription_id": d.subscription_id, "event": d.event.value, "payload": d.payload,
        "created_at": d.created_at, "status": d.status.value, "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at, "last_attempt_at": d.last_attempt_at, "last_status": d.last_status,
        "last_error": d.last_error,
    }  # fmt: skip


def _digest_props(d: Digest) -> dict[str, Any]:
    return {
        "id": d.id, "salesperson_id": d.salesperson_id, "week": d.week, "status": d.status.value,
        "created_at": d.created_at, "items": digest_items_json(d.items), "recipient": d.recipient,
        "subject": d.subject, "text_body": d.text, "html_body": d.html, "message_id": d.message_id,
        "attempts": d.attempts, "lease_until": d.lease_until, "next_attempt_at": d.next_attempt_at,
        "sent_at": d.sent_at, "last_error": d.last_error,
    }  # fmt: skip


def _to_part(props: Any) -> RefreshPart:
    return RefreshPart(
        generation=props["generation"],
        part=props["part"],
        parts=props["parts"],
        status=PartStatus(props["status"]),
        snapshot=props["snapshot"],
        claimed_by=props.get("claimed_by"),
        lease_until=_native(props.get("lease_until")),
        state=bytes(props["state"]) if props.get("state") is not None else None,
    )


def _to_digest(props: Any) -> Digest:
    return Digest(
        salesperson_id=props["salesperson_id"],
        week=props["week"],
        status=DigestStatus(props["status"]),
        created_at=props["created_at"].to_native(),
        items=digest_items_from_json(props["items"]),
        recipient=props["recipient"],
        subject=props["subject"],
        text=props["text_body"],
        html=props["html_body"],
        message_id=props["message_id"],
        attempts=props["attempts"],
        lease_until=_native(props.get("lease_until")),
        next_attempt_at=_native(props.get("next_attempt_at")),
        sent_at=_native(props.get("sent_at")),
        last_error=props.get("last_error") or "",
    )


# Each property falls back to the record's default: a salesperson who never saved preferences
# has none of them.
_PREFERENCES = (
    "RETURN s.id AS id, coalesce(s.digest_weekly, true) AS weekly, coalesce(s.digest_weekday, 0) AS weekday,"
    " coalesce(s.digest_size, 5) AS size, coalesce(s.digest_hour, 8) AS hour,"
    " coalesce(s.digest_timezone, 'UTC') AS timezone, coalesce(s.digest_note_when_empty, false) AS note_when_empty"
)


def _to_preferences(r: Any) -> DigestPreferences:
    return DigestPreferences(
        r["id"], r["weekly"], r["weekday"], r["size"], r["hour"], r["timezone"], r["note_when_empty"]
    )


def _to_delivery(props: Any) -> WebhookDelivery:
    return WebhookDelivery(
        id=props["id"],
        subscription_id=props["subscription_id"],
        event=WebhookEvent(props["event"]),
        payload=props["payload"],
        created_at=props["created_at"].to_native(),
        status=DeliveryStatus(props["status"]),
        attempts=props["attempts"],
        next_attempt_at=_native(props.get("next_attempt_at")),
        last_attempt_at=_native(props.get("last_attempt_at")),
        last_status=props.get("last_status"),
        last_error=props.get("last_error", ""),
    )


def _to_api_token(props: Any) -> ApiToken:
    return ApiToken(
        id=props["id"],
        name=props["name"],
        scopes=tuple(TokenScope(s) for s in props["scopes"]),
        created_at=props["created_at"].to_native(),
        salesperson_id=props.get("salesperson_id"),
        created_by=props.get("created_by"),
        revoked_at=_native(props.get("revoked_at")),
    )


def _to_job(props: Any) -> Job:
    progress = None
    if props.get("progress_stage") is not None:
        progress = JobProgress(props["progress_stage"], props["progress_done"], props["progress_total"])
    return Job(
        id=props["id"],
        kind=props["kind"],
        status=JobStatus(props["status"]),
        created_at=props["created_at"].to_native(),
        requested_by=props.get("requested_by"),
        started_at=_native(props.get("started_at")),
        finished_at=_native(props.get("finished_at")),
        attempts=props.get("attempts", 0),
        summary=props.get("summary", ""),
        error=props.get("error", ""),
        progress=progress,
    )


def _to_generation(props: Any) -> Generation:
    return Generation(
        id=props["id"],
        kind=GenerationKind(props["kind"]),
        status=GenerationStatus(props["status"]),
        model=props["model"],
        rules_digest=props["rules_digest"],
        settings_digest=props["settings_digest"],
        started_at=props["started_at"].to_native(),
        published_at=_native(props.get("published_at")),
        lists=props.get("lists", 0),
        suggestions=props.get("suggestions", 0),
        job_id=props.get("job_id"),
    )


def _vector_key(field: str) -> str:
    if field not in EMBEDDING_FIELDS:
        raise ValueError(f"unknown embedding field {field!r}; expected one of {EMBEDDING_FIELDS}")
    return f"{field}_vector"


class Neo4jStore(GraphStore):
    backend = "neo4j"

    def __init__(self, url: str, auth: tuple[str, str], database: str = "neo4j"):
        super().__init__()
        self.url = url
        self.database = database
        # "Unrecognized" notifications say a label or type does not exist yet, which is normal
        # for an empty graph; they would only clutter the logs.
        self.driver: Driver = GraphDatabase.driver(
            url, auth=auth, notifications_disabled_classifications=[NotificationDisabledClassification.UNRECOGNIZED]
        )

    def close(self) -> None:
        self.driver.close()

    def _session(self, **config: Any) -> Any:
        # Every session of the process shares one bookmark manager (execute_query's), so on a
        # cluster a read sees the writes this process made before it, whichever member serves it.
        return self.driver.session(
            database=self.database, bookmark_manager=self.driver.execute_query_bookmark_manager, **config
        )

    def _read(self, work: Callable[..., T], **kwargs: Any) -> T:
        with self._session() as session:
            return session.execute_read(work, **kwargs)

    def _query(self, cypher: str, **params: Any) -> list:
        # One auto-commit read: RUN and PULL in a single round trip, with no BEGIN or COMMIT
        # (a managed transaction costs the server about a third more CPU on a short read).
        # A read is safe to repeat, so a retryable error (such as a pooled connection that
        # went stale while the server restarted) gets two more tries.
        for attempt in range(_READ_ATTEMPTS):
            try:
                with self._session(default_access_mode=READ_ACCESS) as session:
                    return list(session.run(cypher, params))
            except (DriverError, Neo4jError) as error:
                if attempt + 1 == _READ_ATTEMPTS or not error.is_retryable():
                    raise
                time.sleep(_READ_RETRY_PAUSE * (attempt + 1))
        raise AssertionError("unreachable")

    def ping(self) -> None:
        self.driver.execute_query("RETURN 1", database_=self.database)

    def write(self, work: Callable[[GraphWriter], T]) -> T:
        with self._session() as session:
            return session.execute_write(lambda tx: tracking_view(work, _Neo4jWriter(tx)))

    # Schema
    def migrate(self) -> list[str]:
        me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._take_migration_lease(me)
        try:
            done = set(self.applied_migrations())
            applied_now = []
            for migration in load_migrations("neo4j", ".cypher"):
                if migration.name in done:
                    continue
                # Schema statements may not share a transaction with data writes, and batched
                # deletes need an auto-commit transaction: each statement runs on its own. All
                # are IF NOT EXISTS or idempotent, so a migration cut short can run again.
                with self.driver.session(database=self.database) as session:
                    for statement in migration.statements:
                        session.run(statement).consume()
                        self._renew_migration_lease(me)
                self.driver.execute_query(
                    "MERGE (m:SchemaMigration {name: $name}) ON CREATE SET m.applied_at = datetime()",
                    name=migration.name,
                    database_=self.database,
                )
                applied_now.append(migration.name)
            if applied_now:  # a migration may change what sheets show
                self.write(lambda tx: tx.renew_view_version())
            return applied_now
        finally:
            self.driver.execute_query(
                "MATCH (l:SchemaLock {id: 'migrations'}) WHERE l.holder = $me SET l.holder = null",
                me=me,
                database_=self.database,
            )

    def _take_migration_lease(self, me: str) -> None:
        """One process migrates at a time: a lease on a lock node (expiring, in case its holder dies)."""
        for attempt in range(5):
            try:
                self.driver.execute_query(
                    "CREATE CONSTRAINT schema_lock_id IF NOT EXISTS FOR (l:SchemaLock) REQUIRE l.id IS UNIQUE",
                    database_=self.database,
                )
                break
            except ClientError:  # another process created it at the same moment
                if attempt == 4:
                    raise
                time.sleep(0.2)
        deadline = time.monotonic() + _MIGRATION_WAIT_S
        while True:
            records, _, _ = self.driver.execute_query(
                # Writing the node first takes its write lock, so the holder read next is the
                # latest committed one (read committed would otherwise let two processes both
                # see it free and both take it: Cypher manual, "lost updates").
                "MERGE (l:SchemaLock {id: 'migrations'})"
                " SET l._lock = true REMOVE l._lock"
                " WITH l, l.holder IS NULL OR l.until < datetime() AS free"
                " SET l.holder = CASE WHEN free THEN $me ELSE l.holder END,"
                "     l.until = CASE WHEN free THEN datetime() + duration({seconds: $lease}) ELSE l.until END"
                " RETURN l.holder AS holder",
                me=me,
                lease=_MIGRATION_LEASE_S,
                database_=self.database,
            )
            if records and records[0]["holder"] == me:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("another process has been migrating the schema for too long")
            time.sleep(0.2)

    def _renew_migration_lease(self, me: str) -> None:
        self.driver.execute_query(
            "MATCH (l:SchemaLock {id: 'migrations'}) WHERE l.holder = $me"
            " SET l.until = datetime() + duration({seconds: $lease})",
            me=me,
            lease=_MIGRATION_LEASE_S,
            database_=self.database,
        )

    def applied_migrations(self) -> list[str]:
        rows = self._query("MATCH (m:SchemaMigration) RETURN DISTINCT m.name AS name ORDER BY name")
        return [row["name"] for row in rows]

    # Salespeople
    def list_salespeople(self) -> list[SalespersonSummary]:
        rows = self._query(
            "MATCH (s:Salesperson) RETURN s.id AS id, s.name AS name, s.email AS email, s.role AS role,"
            " COUNT { (s)-[:MANAGES]->(b:Business) WHERE b.archived_at IS NULL } AS n ORDER BY name, id"
        )
        return [
            SalespersonSummary(Salesperson(r["id"], r["name"], r["email"], Role(r["role"] or Role.SALESPERSON)), r["n"])
            for r in rows
        ]

    def get_salespeople(self, salesperson_ids: Sequence[str]) -> dict[str, Salesperson]:
        rows = self._query(
            "UNWIND $ids AS id MATCH (s:Salesperson {id: id})"
            " RETURN s.id AS id, s.name AS name, s.email AS email, s.role AS role",
            ids=sorted(set(salesperson_ids)),
        )
        return {r["id"]: Salesperson(r["id"], r["name"], r["email"], Role(r["role"] or Role.SALESPERSON)) for r in rows}

    def get_salesperson(self, salesperson_id: str) -> Salesperson | None:
        rows = self._query(
            "MATCH (s:Salesperson {id: $id}) RETURN s.id AS id, s.name AS name, s.email AS email, s.role AS role",
            id=salesperson_id,
        )
        if not rows:
            return None
        r = rows[0]
        return Salesperson(r["id"], r["name"], r["email"], Role(r["role"] or Role.SALESPERSON))

    # Businesses
    def _read_businesses(self, **params: Any) -> list[StoredBusiness]:
        defaults = {
            "salesperson_id": None, "search": None, "ids": None, "offset": 0, "limit": 50, "status": None,
            "category": None, "city": None, "updated_since": None, "after_name": None, "after_id": None,
        }  # fmt: skip
        match = _ALL_BUSINESSES if params.get("ids") is None else _BUSINESSES_BY_ID
        read = _READ_BUSINESSES if params.get("limit", 50) is not None else _READ_ALL_BUSINESSES
        return [_to_stored(row) for row in self._query(match + read, **{**defaults, **params})]

    def get_business(self, business_id: str) -> StoredBusiness | None:
        found = self._read_businesses(ids=[business_id], limit=1)
        return found[0] if found else None

    def get_businesses(self, business_ids: Sequence[str]) -> dict[str, StoredBusiness]:
        ids = sorted(set(business_ids))
        return {b.id: b for b in self._read_businesses(ids=ids, limit=max(len(ids), 1))}

    def source_digests(self, business_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        rows = self._query(
            "UNWIND $ids AS id MATCH (s:Salesperson)-[:MANAGES]->(b:Business {id: id})"
            " WHERE b.source_digest IS NOT NULL RETURN b.id AS id, b.source_digest AS digest, s.id AS salesperson",
            ids=sorted(set(business_ids)),
        )
        return {r["id"]: (r["digest"], r["salesperson"]) for r in rows}

    def archived_ids(self, business_ids: Sequence[str]) -> set[str]:
        rows = self._query(
            "UNWIND $ids AS id MATCH (b:Business {id: id}) WHERE b.archived_at IS NOT NULL RETURN b.id AS id",
            ids=sorted(set(business_ids)),
        )
        return {r["id"] for r in rows}

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
        return self._read_businesses(
            **_business_filters(salesperson_id, search, status, category, city, updated_since),
            after_name=after[0] if after else None,
            after_id=after[1] if after else None,
            limit=limit,
            offset=offset,
        )

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
        rows = self._query(
            _ALL_BUSINESSES + _BUSINESS_FILTERS + " RETURN count(b) AS n",
            **_business_filters(salesperson_id, search, status, category, city, updated_since),
        )
        return rows[0]["n"]

    # Ties and blocks
    def ties_of(self, business_id: str) -> list[Tie]:
        return self.all_ties([business_id])

    def all_ties(self, business_ids: Sequence[str] | None = None) -> list[Tie]:
        if business_ids is None:
            rows = self._query(
                "MATCH (a:Business)-[r:KNOWS|PARTNERS_WITH]->(b:Business) RETURN a.id AS a, b.id AS b, type(r) AS kind"
            )
        else:
            rows = self._query(
                "UNWIND $ids AS id MATCH (a:Business {id: id})-[r:KNOWS|PARTNERS_WITH]-(b:Business)"
                " RETURN a.id AS a, b.id AS b, type(r) AS kind",
                ids=sorted(set(business_ids)),
            )
        ties = {Tie(r["a"], r["b"], TieKind(r["kind"])).normalised() for r in rows}
        return sorted(ties, key=lambda t: (t.a, t.b, t.kind.value))

    def is_do_not_introduce(self, a: str, b: str) -> bool:
        rows = self._query(
            "RETURN EXISTS { (:Business {id: $a})-[:DO_NOT_INTRODUCE]-(:Business {id: $b}) } AS blocked", a=a, b=b
        )
        return rows[0]["blocked"]

    def do_not_introduce_pairs(self, business_ids: Sequence[str] | None = None) -> set[tuple[str, str]]:
        if business_ids is None:
            rows = self._query("MATCH (a:Business)-[:DO_NOT_INTRODUCE]->(b:Business) RETURN a.id AS a, b.id AS b")
        else:
            rows = self._query(
                "UNWIND $ids AS id MATCH (a:Business {id: id})-[:DO_NOT_INTRODUCE]-(b:Business)"
                " RETURN a.id AS a, b.id AS b",
                ids=sorted(set(business_ids)),
            )
        return {tuple(sorted((r["a"], r["b"]))) for r in rows}

    def stats(self) -> GraphStats:
        row = self._query(
            "RETURN COUNT { (b:Business) WHERE b.archived_at IS NULL } AS businesses,"
            " COUNT { (b:Business) WHERE b.archived_at IS NOT NULL } AS archived,"
            " COUNT { (:Salesperson) } AS salespeople,"
            " COUNT { (:Category) } AS categories, COUNT { (:Place) } AS places,"
            " COUNT { ()-[:KNOWS|PARTNERS_WITH]->() } AS ties,"
            " COUNT { ()-[:DO_NOT_INTRODUCE]->() } AS opted_out_pairs"
        )[0]
        by_category = {
            r["name"]: r["n"]
            for r in self._query(
                "MATCH (c:Category)<-[:IN_CATEGORY]-(b:Business) WHERE b.archived_at IS NULL"
                " RETURN c.name AS name, count(b) AS n ORDER BY n DESC, name"
            )
        }
        return GraphStats(**dict(row), by_category=by_category)

    # Matching
    def embedding_hashes(self, field: str, ids: Sequence[str] | None = None) -> dict[str, str]:
        _vector_key(field)
        rows = self._query(
            (_ALL_BUSINESSES if ids is None else _BUSINESSES_BY_ID)
            + " WITH b WHERE b[$key] IS NOT NULL RETURN b.id AS id, b[$key] AS hash",
            key=f"{field}_hash",
            ids=None if ids is None else sorted(set(ids)),
        )
        return {r["id"]: r["hash"] for r in rows}

    def load_embeddings(self, field: str, ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        key = _vector_key(field)
        rows = self._query(
            (_ALL_BUSINESSES if ids is None else _BUSINESSES_BY_ID)
            + " WITH b WHERE b[$key] IS NOT NULL RETURN b.id AS id, b[$key] AS vector ORDER BY id",
            key=key,
            ids=None if ids is None else sorted(set(ids)),
        )
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        return [r["id"] for r in rows], np.asarray([r["vector"] for r in rows], dtype=np.float32)

    def embedding_batches(self, field: str, size: int = 10_000) -> Iterator[tuple[list[str], np.ndarray]]:
        key = _vector_key(field)
        after = ""
        while True:
            rows = self._query(
                "MATCH (b:Business) WHERE b.id > $after AND b[$key] IS NOT NULL"
                " RETURN b.id AS id, b[$key] AS vector ORDER BY b.id LIMIT $size",
                after=after,
                key=key,
                size=size,
            )
            if not rows:
                return
            yield [r["id"] for r in rows], np.asarray([r["vector"] for r in rows], dtype=np.float32)
            after = rows[-1]["id"]

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
            name, key = self._vector_index(field), _vector_key(field)
            if name in existing and existing[name] == dimensions:
                continue
            if name in existing:
                try:
                    self.driver.execute_query(f"DROP INDEX {name}", database_=self.database)
                except Neo4jError:  # another process dropped it at the same moment (and may have made it again)
                    found = self._query("SHOW VECTOR INDEXES YIELD name, options WHERE name = $name", name=name)
                    if found and found[0]["options"]["indexConfig"].get("vector.dimensions") == dimensions:
                        continue
                    if found:
                        raise
            # Index names and property keys cannot be parameters; both come from EMBEDDING_FIELDS.
            try:
                self.driver.execute_query(
                    f"CREATE VECTOR INDEX {name} IF NOT EXISTS FOR (b:Business) ON b.{key} OPTIONS"
                    " {indexConfig: {`vector.dimensions`: $dimensions, `vector.similarity_function`: 'cosine'}}",
                    dimensions=dimensions,
                    database_=self.database,
                )
            except Neo4jError:  # another process (a helper, a second worker) made it at the same moment
                made = self._query("SHOW VECTOR INDEXES YIELD name, options WHERE name = $name", name=name)
                if not made or made[0]["options"]["indexConfig"].get("vector.dimensions") != dimensions:
                    raise
        self.driver.execute_query("CALL db.awaitIndexes(600)", database_=self.database)

    def nearest(self, field: str, vectors: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        _vector_key(field)
        vectors = np.asarray(vectors, dtype=np.float32)
        if not len(vectors):
            return []
        # Identical texts ask once; batches run on a few sessions at once (the server has cores).
        distinct, inverse = np.unique(vectors, axis=0, return_inverse=True)
        batches = [distinct[start : start + 250] for start in range(0, len(distinct), 250)]
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            answers = [ids for batch in pool.map(partial(self._nearest_batch, field, k), batches) for ids in batch]
        return [answers[n] for n in inverse.reshape(-1).tolist()]

    def _nearest_batch(self, field: str, k: int, vectors: np.ndarray) -> list[list[tuple[str, float]]]:
        # Archived businesses are not filtered out here: a filter after the top k would leave
        # fewer than k, and the k-th similarity would no longer bound who can enter.
        rows = self._query(
            "UNWIND range(0, size($vectors) - 1) AS n"
            " CALL db.index.vector.queryNodes($index, $k, $vectors[n]) YIELD node, score"
            " WITH n, node, score ORDER BY score DESC, node.id"
            " RETURN n, collect([node.id, score]) AS hits",
            vectors=vectors.tolist(),
            index=self._vector_index(field),
            k=k,
        )
        found: list[list[tuple[str, float]]] = [[] for _ in range(len(vectors))]
        for row in rows:
            # A cosine index scores (1 + cosine) / 2.
            found[row["n"]] = [(business_id, 2.0 * score - 1.0) for business_id, score in row["hits"]]
        return found

    def inferred_categories(self) -> dict[str, list[InferredCategory]]:
        rows = self._query(
            "MATCH (b:Business)-[r:IN_CATEGORY {source: 'inferred'}]->(c:Category)"
            " RETURN b.id AS id, c.name AS name, r.confidence AS confidence ORDER BY id, confidence DESC, name"
        )
        found: dict[str, list[InferredCategory]] = {}
        for r in rows:
            found.setdefault(r["id"], []).append(InferredCategory(r["id"], r["name"], r["confidence"]))
        return found

    def list_feedback(self, business_ids: Sequence[str] | None = None) -> list[Feedback]:
        returned = (
            " RETURN DISTINCT a.id AS a, b.id AS b, r.kind AS kind, r.at AS at, r.reason AS reason,"
            " r.salesperson_id AS salesperson, elementId(r) AS element ORDER BY at, element"
        )
        if business_ids is None:
            rows = self._query("MATCH (a:Business)-[r:FEEDBACK]->(b:Business)" + returned)
        else:
            rows = self._query(
                "UNWIND $ids AS id MATCH (x:Business {id: id})-[r:FEEDBACK]-(:Business)"
                " MATCH (a:Business)-[r]->(b:Business)" + returned,
                ids=sorted(set(business_ids)),
            )
        return [
            Feedback(r["a"], r["b"], FeedbackKind(r["kind"]), r["at"].to_native(), r["reason"], r["salesperson"])
            for r in rows
        ]

    def match_state(self) -> MatchState:
        rows = self._query("MATCH (m:MatchState {id: 'current'}) RETURN m.published AS published, m.base AS base")
        return MatchState(rows[0]["published"], rows[0]["base"]) if rows else MatchState()

    def get_generation(self, generation: int) -> Generation | None:
        rows = self._query("MATCH (g:Generation {id: $id}) RETURN g {.*} AS g", id=generation)
        return _to_generation(rows[0]["g"]) if rows else None

    def list_generations(self, limit: int = 20) -> list[Generation]:
        rows = self._query("MATCH (g:Generation) RETURN g {.*} AS g ORDER BY g.id DESC LIMIT $limit", limit=limit)
        return [_to_generation(r["g"]) for r in rows]

    def prune_lists(self, *, abandoned: bool = False, superseded_by: int | None = None, below_base: int = 0) -> int:
        statements: list[tuple[str, dict[str, Any], float]] = []
        if abandoned:
            statements.append(
                ("MATCH (g:Generation {status: 'abandoned'}) MATCH (l:SuggestionList {generation: g.id})", {}, math.inf)
            )
        if superseded_by is not None:
            statements.append(
                (
                    "MATCH (:SuggestionList {generation: $g})<-[:HAS_LIST]-(:Business)-[:HAS_LIST]->(l:SuggestionList)"
                    " WHERE l.generation < $g",
                    {"g": superseded_by},
                    math.inf,
                )
            )
        if below_base and (base := self.match_state().base) is not None:
            statements.append(("MATCH (l:SuggestionList) WHERE l.generation < $base", {"base": base}, below_base))
        removed = 0
        for match, params, most in statements:
            left = most
            while left > 0:
                batch = int(min(_PRUNE_BATCH, left))
                records, _, _ = self.driver.execute_query(
                    match + f" WITH DISTINCT l LIMIT {batch} DETACH DELETE l RETURN count(*) AS n",
                    database_=self.database,
                    **params,
                )
                removed += records[0]["n"]
                left -= records[0]["n"]
                if records[0]["n"] < batch:
                    break
        return removed

    def suggestions_for(self, business_id: str) -> list[Suggestion]:
        return [_to_suggestion(r) for r in self._query(_SUGGESTIONS_OF_BUSINESS, id=business_id)]

    def suggestions_for_salesperson(self, salesperson_id: str, limit: int | None = None) -> list[Suggestion]:
        rows = self._query(_best_suggestions(limited=limit is not None), id=salesperson_id, limit=limit)
        return [_to_suggestion(r) for r in rows]

    def view_version(self) -> str | None:
        rows = self._query("MATCH (st:MatchState {id: 'current'}) RETURN st.view AS view")
        return rows[0]["view"] if rows else None

    def suggestion_sheet(self, business_id: str) -> SuggestionSheet:
        return self._sheet(_SUGGESTIONS_OF_BUSINESS, id=business_id, businesses=[business_id], salespeople=[])

    def _read_best_sheet(self, salesperson_id: str, limit: int) -> SuggestionSheet:
        # A pair within the book is listed from both sides: 2 * limit rows hold `limit` pairs,
        # kept each once (_EACH_PAIR_ONCE) before the businesses are read.
        query = "CALL () { " + _best_suggestions(limited=True) + " }" + _EACH_PAIR_ONCE
        return self._sheet(query, id=salesperson_id, limit=2 * limit, pairs=limit, businesses=[],
                           salespeople=[salesperson_id])  # fmt: skip

    def _sheet(self, suggestions: str, **params: Any) -> SuggestionSheet:
        [row] = self._query("CALL () { " + suggestions + " }" + _SHEET, **params)
        found = [_to_stored(b) for b in row["businesses"]]
        people = [
            Salesperson(p["id"], p["name"], p["email"], Role(p["role"] or Role.SALESPERSON)) for p in row["salespeople"]
        ]
        # In the query's own order (a collected list's order is not promised).
        listed = [_to_suggestion(r) for r in row["suggestions"]]
        if "limit" in params:
            listed.sort(key=lambda s: (s.score, s.business_id, s.other_id), reverse=True)
        else:
            listed.sort(key=lambda s: s.rank)
        return SuggestionSheet(
            published=row["published"],
            suggestions=tuple(listed),
            businesses={b.id: b for b in found},
            salespeople={p.id: p for p in people},
            shared_contacts=frozenset((a, b) for a, b in row["shared"]),
        )

    def all_suggestions(self) -> list[Suggestion]:
        rows = self._query(
            "MATCH (st:MatchState {id: 'current'})"
            " MATCH (a:Business)-[:HAS_LIST]->(l:SuggestionList)"
            " WHERE l.generation >= st.base AND l.generation <= st.published"
            + _OF_PUBLISHED
            + " WITH a, l ORDER BY l.generation DESC"
            " WITH a, collect(l)[0] AS l" + _SAFE_SUGGESTIONS
        )
        return [_to_suggestion(r) for r in rows]

    def pending_changes(self) -> list[PendingChange]:
        rows = self._query(
            "MATCH (c:PendingChange) RETURN c.business_id AS id, c.version AS version, c.first_at AS first_at,"
            " c.at AS at ORDER BY first_at, id"
        )
        return [PendingChange(r["id"], r["version"], r["first_at"].to_native(), r["at"].to_native()) for r in rows]

    def suggestion_events(self, business_id: str | None = None) -> list[SuggestionEvent]:
        if business_id is None:
            rows = self._query("MATCH (e:SuggestionEvent) RETURN e {.*} AS e ORDER BY e.at, e.seq")
        else:
            rows = self._query(
                "MATCH (e:SuggestionEvent) WHERE e.business_id = $id OR e.other_id = $id"
                " RETURN e {.*} AS e ORDER BY e.at, e.seq",
                id=business_id,
            )
        events = []
        for row in rows:
            e = row["e"]
            suggestion = Suggestion(
                e["business_id"], e["other_id"], e["rank"], e["score"], tuple(e["reasons"]),
                tuple(e["other_reasons"]), e["computed_at"].to_native(), e["generation"], e["model"],
                e["rules_digest"],
            )  # fmt: skip
            kind, at = SuggestionEventKind(e["kind"]), e["at"].to_native()
            events.append(SuggestionEvent(suggestion, kind, e["channel"], at, e.get("salesperson_id"), e.get("detail")))
        return events

    def contact_consents_of(self, business_ids: Sequence[str]) -> list[ContactConsent]:
        rows = self._query(
            "UNWIND $ids AS id MATCH (b:Business {id: id})-[r:SHARES_CONTACT]->(o:Business)"
            " RETURN b.id AS b, o.id AS o, r.granted_by AS by, r.at AS at ORDER BY b, o",
            ids=sorted(set(business_ids)),
        )
        return [ContactConsent(r["b"], r["o"], r["by"], r["at"].to_native()) for r in rows]

    def contact_consents(self, business_id: str) -> list[ContactConsent]:
        rows = self._query(
            "MATCH (b:Business {id: $id})-[r:SHARES_CONTACT]->(o:Business)"
            " RETURN b.id AS b, o.id AS o, r.granted_by AS by, r.at AS at ORDER BY o",
            id=business_id,
        )
        return [ContactConsent(r["b"], r["o"], r["by"], r["at"].to_native()) for r in rows]

    # Jobs
    def get_introduction(self, introduction_id: str) -> Introduction | None:
        found = self._introductions("MATCH (i:Introduction {id: $id})", id=introduction_id, limit=1)
        return found[0] if found else None

    def list_introductions(
        self,
        *,
        business_id: str | None = None,
        salesperson_id: str | None = None,
        status: IntroStatus | None = None,
        limit: int = 50,
    ) -> list[Introduction]:
        return self._introductions(
            "MATCH (i:Introduction)"
            " WHERE ($business_id IS NULL OR EXISTS { (i)-[:INTRODUCES]->(:Business {id: $business_id}) })"
            " AND ($salesperson_id IS NULL"
            "      OR EXISTS { (i)-[:INTRODUCES]->(:Business)<-[:MANAGES]-(:Salesperson {id: $salesperson_id}) })"
            " AND ($status IS NULL OR i.status = $status)",
            business_id=business_id,
            salesperson_id=salesperson_id,
            status=None if status is None else status.value,
            limit=limit,
        )

    def _introductions(self, match: str, **params: Any) -> list[Introduction]:
        rows = self._query(
            match + " WITH i ORDER BY i.created_at DESC, i.id DESC LIMIT $limit"
            " RETURN i {.*} AS i,"
            " COLLECT { MATCH (i)-[:HAS_STEP]->(s:IntroStep) RETURN s {.*} ORDER BY s.seq } AS steps,"
            " COLLECT { MATCH (i)-[:HAS_FEEDBACK]->(f:IntroFeedback) RETURN f {.*} ORDER BY f.seq } AS feedback",
            **params,
        )
        return [_to_introduction(r["i"], r["steps"], r["feedback"]) for r in rows]

    def new_in_generation(self, generation: int) -> list[tuple[str, str, int, float]]:
        rows = self._query(
            "MATCH (l:SuggestionList {generation: $g})-[s:SUGGESTS]->(o:Business)"
            " OPTIONAL CALL (l) {"
            "   MATCH (p:SuggestionList {business_id: l.business_id}) WHERE p.generation < $g"
            "   RETURN p ORDER BY p.generation DESC LIMIT 1"
            " }"
            " WITH l, s, o, p WHERE p IS NULL OR NOT EXISTS { (p)-[:SUGGESTS]->(o) }"
            " RETURN l.business_id AS a, o.id AS b, s.rank AS rank, s.score AS score ORDER BY a, rank",
            g=generation,
        )
        return [(r["a"], r["b"], r["rank"], r["score"]) for r in rows]

    def refresh_parts(self, generation: int, *, states: bool = True) -> list[RefreshPart]:
        rows = self._query(
            "MATCH (p:RefreshPart {generation: $g})"
            " RETURN CASE WHEN $states THEN p {.*} ELSE p {.*, state: null} END AS p ORDER BY p.part",
            g=generation,
            states=states,
        )
        return [_to_part(r["p"]) for r in rows]

    def get_webhook(self, webhook_id: str) -> WebhookSubscription | None:
        rows = self._query("MATCH (w:Webhook {id: $id}) RETURN w {.*} AS w", id=webhook_id)
        return _to_webhook(rows[0]["w"]) if rows else None

    def list_webhooks(self, *, active: bool = True) -> list[WebhookSubscription]:
        rows = self._query(
            "MATCH (w:Webhook) WHERE NOT $active OR w.disabled_at IS NULL"
            " RETURN w {.*} AS w ORDER BY w.created_at, w.id",
            active=active,
        )
        return [_to_webhook(r["w"]) for r in rows]

    def get_delivery(self, delivery_id: str) -> WebhookDelivery | None:
        rows = self._query("MATCH (d:WebhookDelivery {id: $id}) RETURN d {.*} AS d", id=delivery_id)
        return _to_delivery(rows[0]["d"]) if rows else None

    def list_deliveries(
        self,
        *,
        subscription_id: str | None = None,
        status: DeliveryStatus | None = None,
        due_before: datetime | None = None,
        limit: int = 50,
    ) -> list[WebhookDelivery]:
        order = "d.next_attempt_at, d.id" if due_before is not None else "d.created_at DESC, d.id DESC"
        rows = self._query(
            "MATCH (d:WebhookDelivery)"
            " WHERE ($subscription IS NULL OR d.subscription_id = $subscription)"
            " AND ($status IS NULL OR d.status = $status)"
            " AND ($due IS NULL OR (d.status = 'pending' AND d.next_attempt_at <= $due))"
            f" RETURN d {{.*}} AS d ORDER BY {order} LIMIT $limit",
            subscription=subscription_id,
            status=None if status is None else status.value,
            due=due_before,
            limit=limit,
        )
        return [_to_delivery(r["d"]) for r in rows]

    def introduction_gaps(
        self, salesperson_id: str | None, before: datetime, limit: int
    ) -> tuple[int, list[IntroductionGap]]:
        [row] = self._query(
            "MATCH (b:Business) WHERE b.archived_at IS NULL"
            " AND ($salesperson_id IS NULL OR EXISTS { (:Salesperson {id: $salesperson_id})-[:MANAGES]->(b) })"
            " OPTIONAL MATCH (b)<-[:INTRODUCES]-(i:Introduction)"
            " WITH b, max(i.created_at) AS last WHERE last IS NULL OR last < $before"
            " WITH b, last ORDER BY last IS NOT NULL, coalesce(last, b.created_at), toLower(b.name), b.id"
            " WITH collect({id: b.id, name: b.name, created_at: toString(b.created_at), last: toString(last)}) AS rows"
            " RETURN size(rows) AS total, rows[0..$limit] AS first",
            salesperson_id=salesperson_id,
            before=before.astimezone(UTC),
            limit=limit,
        )
        first = [
            IntroductionGap(r["id"], r["name"], _native(r["created_at"]), _native(r["last"])) for r in row["first"]
        ]
        return row["total"], first

    def last_introduced(self, business_ids: Sequence[str]) -> dict[str, datetime]:
        rows = self._query(
            "UNWIND $ids AS wanted MATCH (:Business {id: wanted})<-[:INTRODUCES]-(i:Introduction)"
            " RETURN wanted AS id, toString(max(i.created_at)) AS at",
            ids=sorted(set(business_ids)),
        )
        return {r["id"]: _native(r["at"]) for r in rows}

    def digest_preferences(self, salesperson_id: str) -> DigestPreferences:
        rows = self._query("MATCH (s:Salesperson {id: $id}) " + _PREFERENCES, id=salesperson_id)
        return _to_preferences(rows[0]) if rows else DigestPreferences(salesperson_id)

    def all_digest_preferences(self) -> list[DigestPreferences]:
        return [_to_preferences(r) for r in self._query("MATCH (s:Salesperson) " + _PREFERENCES + " ORDER BY id")]

    def get_digest(self, salesperson_id: str, week: str) -> Digest | None:
        rows = self._query("MATCH (d:Digest {id: $id}) RETURN d {.*} AS d", id=digest_id(salesperson_id, week))
        return _to_digest(rows[0]["d"]) if rows else None

    def list_digests(
        self,
        *,
        week: str | None = None,
        salesperson_id: str | None = None,
        status: DigestStatus | None = None,
        bodies: bool = True,
    ) -> list[Digest]:
        projection = "d {.*}" if bodies else "d {.*, text_body: '', html_body: ''}"
        # Only the conditions given, so that each can use its index.
        given = {"week": week, "salesperson_id": salesperson_id, "status": status.value if status else None}
        where = " AND ".join(f"d.{name} = ${name}" for name, value in given.items() if value is not None)
        rows = self._query(
            "MATCH (d:Digest)"
            + (f" WHERE {where}" if where else "")
            + f" RETURN {projection} AS d ORDER BY d.created_at DESC, d.week DESC, d.salesperson_id",
            **{name: value for name, value in given.items() if value is not None},
        )
        return [_to_digest(r["d"]) for r in rows]

    def link_used(self, link_id: str) -> datetime | None:
        rows = self._query("MATCH (u:UsedLink {id: $id}) RETURN u.used_at AS at", id=link_id)
        return _native(rows[0]["at"]) if rows else None

    def digest_items(
        self, *, salesperson_id: str | None = None, since: datetime | None = None
    ) -> list[tuple[str, DigestItem]]:
        clauses = (
            ["d.status <> 'gave_up'"]
            + (["d.salesperson_id = $salesperson"] if salesperson_id is not None else [])
            + (["d.created_at >= $since"] if since is not None else [])
        )
        rows = self._query(
            "MATCH (d:Digest) WHERE "
            + " AND ".join(clauses)
            + " RETURN d.salesperson_id AS salesperson_id, d.items AS items ORDER BY d.created_at, d.salesperson_id",
            salesperson=salesperson_id,
            since=since,
        )
        return [(r["salesperson_id"], item) for r in rows for item in digest_items_from_json(r["items"])]

    def credentials_for(self, login: str) -> Credentials | None:
        rows = self._query(
            "MATCH (s:Salesperson) WHERE toLower(s.id) = $key OR toLower(s.email) = $key"
            " RETURN s.id AS id, s.name AS name, s.email AS email, s.role AS role, s.password_hash AS hash,"
            " toString(s.password_changed_at) AS changed_at ORDER BY toLower(s.id) = $key DESC, s.id LIMIT 1",
            key=login.strip().lower(),
        )
        if not rows:
            return None
        r = rows[0]
        person = Salesperson(r["id"], r["name"], r["email"], Role(r["role"] or Role.SALESPERSON))
        return Credentials(person, r["hash"], _native(r["changed_at"]))

    def api_token_by_hash(self, secret_hash: str) -> ApiToken | None:
        rows = self._query("MATCH (t:ApiToken {secret_hash: $hash}) RETURN t {.*} AS t", hash=secret_hash)
        return _to_api_token(rows[0]["t"]) if rows else None

    def list_api_tokens(self) -> list[ApiToken]:
        rows = self._query("MATCH (t:ApiToken) RETURN t {.*} AS t ORDER BY t.created_at, t.id")
        return [_to_api_token(r["t"]) for r in rows]

    def get_job(self, job_id: str) -> Job | None:
        rows = self._query("MATCH (j:Job {id: $id}) RETURN j {.*} AS j", id=job_id)
        return _to_job(rows[0]["j"]) if rows else None

    def list_jobs(self, *, limit: int = 20, status: JobStatus | None = None) -> list[Job]:
        rows = self._query(
            "MATCH (j:Job) WHERE $status IS NULL OR j.status = $status"
            " RETURN j {.*} AS j ORDER BY j.created_at DESC, j.seq DESC LIMIT $limit",
            status=None if status is None else status.value,
            limit=limit,
        )
        return [_to_job(r["j"]) for r in rows]


class _Neo4jWriter(GraphWriter):
    """The write operations of one managed transaction."""

    def __init__(self, tx: ManagedTransaction):
        self.tx = tx

    def _run(self, cypher: str, **params: Any) -> Any:
        return self.tx.run(cypher, params)

    def _require_businesses(self, ids: set[str]) -> None:
        found = {
            r["id"] for r in self._run("UNWIND $ids AS id MATCH (b:Business {id: id}) RETURN b.id AS id", ids=list(ids))
        }
        if missing := ids - found:
            raise UnknownBusinessError(sorted(missing))

    def _next(self, counter: str, count: int = 1) -> int:
        """Reserve `count` numbers of a counter; returns the first."""
        last = self._run(
            "MERGE (c:Counter {name: $name}) ON CREATE SET c.value = 0"
            " SET c.value = c.value + $count RETURN c.value AS v",
            name=counter,
            count=count,
        ).single()["v"]
        return last - count + 1

    def mark_pending(self, business_ids: Sequence[str], now: datetime) -> None:
        if business_ids:
            self._run(_MARK_PENDING, ids=sorted(set(business_ids)), now=now).consume()

    # Salespeople
    def upsert_salespeople(self, people: Sequence[Salesperson]) -> None:
        self._run(
            "UNWIND $people AS p MERGE (s:Salesperson {id: p.id}) ON CREATE SET s.role = p.role"
            " SET s.name = p.name, s.email = p.email",
            people=[{"id": p.id, "name": p.name, "email": p.email, "role": p.role.value} for p in people],
        ).consume()

    def set_salesperson_role(self, salesperson_id: str, role: Role) -> None:
        found = self._run(
            "MATCH (s:Salesperson {id: $id}) SET s.role = $role RETURN s.id AS id", id=salesperson_id, role=role.value
        ).single()
        if found is None:
            raise UnknownSalespersonError(salesperson_id)

    # Businesses
    def upsert_businesses(
        self, records: Sequence[BusinessRecord], now: datetime, source_digests: Mapping[str, str] | None = None
    ) -> list[UpsertOutcome]:
        sources = source_digests or {}
        rows = [_business_row(record, sources.get(record.id)) for record in records]
        known = {
            r["id"]: (r["hash"], r["source"])
            for r in self._run(
                "UNWIND $ids AS id MATCH (b:Business {id: id})"
                " RETURN b.id AS id, b.content_hash AS hash, b.source_digest AS source",
                ids=[row["id"] for row in rows],
            )
        }
        outcomes, changed, resourced = [], [], []
        for row in rows:
            digest = row["props"]["content_hash"]
            if row["id"] not in known:
                outcomes.append(UpsertOutcome.CREATED)
            elif known[row["id"]][0] != digest:
                outcomes.append(UpsertOutcome.UPDATED)
            else:
                outcomes.append(UpsertOutcome.UNCHANGED)
                if row["id"] in sources and known[row["id"]][1] != sources[row["id"]]:
                    resourced.append({"id": row["id"], "source": sources[row["id"]]})
                continue
            known[row["id"]] = (digest, row["props"]["source_digest"])
            changed.append(row)
        if changed:
            self._run(_WRITE_BUSINESSES, rows=changed, now=now).consume()
            self.mark_pending([row["id"] for row in changed], now)
        if resourced:
            self._run(
                "UNWIND $rows AS row MATCH (b:Business {id: row.id}) SET b.source_digest = row.source", rows=resourced
            ).consume()
        return outcomes

    def set_archived(self, business_ids: Sequence[str], archived: bool, now: datetime) -> list[str]:
        wanted = list(dict.fromkeys(business_ids))
        self._require_businesses(set(wanted))
        changed = [
            r["id"]
            for r in self._run(
                "UNWIND $ids AS id MATCH (b:Business {id: id})"
                " WHERE (b.archived_at IS NULL) = $archived"
                " SET b.archived_at = CASE WHEN $archived THEN $now ELSE null END RETURN b.id AS id",
                ids=wanted,
                archived=archived,
                now=now,
            )
        ]
        order = {business_id: n for n, business_id in enumerate(wanted)}
        changed.sort(key=order.__getitem__)
        self.mark_pending(changed, now)
        return changed

    def set_opt_out(self, business_id: str, opt_out: OptOut | None, now: datetime) -> bool:
        self._require_businesses({business_id})
        changed = self._run(
            "MATCH (b:Business {id: $id})"
            " WITH b, (b.opted_out_at IS NULL) <> ($at IS NULL) OR coalesce(b.opt_out_reason, '') <> $reason AS differs"
            " WHERE differs SET b.opted_out_at = $at, b.opt_out_reason = $reason RETURN b.id AS id",
            id=business_id,
            at=None if opt_out is None else opt_out.at,
            reason="" if opt_out is None else opt_out.reason,
        ).single()
        if changed is None:
            return False
        self.mark_pending([business_id], now)
        return True

    # Ties and blocks
    def add_ties(self, ties: Sequence[Tie], now: datetime) -> int:
        normalised = sorted({t.normalised() for t in ties if t.a != t.b}, key=lambda t: (t.a, t.b, t.kind))
        self._require_businesses({i for t in normalised for i in (t.a, t.b)})
        touched: list[str] = []
        # Relationship types cannot be parameters, so each kind has its own statement.
        for kind in TieKind:
            pairs = [{"a": t.a, "b": t.b} for t in normalised if t.kind is kind]
            if not pairs:
                continue
            touched += [
                i
                for r in self._run(
                    f"UNWIND $pairs AS pair MATCH (a:Business {{id: pair.a}}), (b:Business {{id: pair.b}})"
                    f" WHERE NOT EXISTS {{ (a)-[:{kind.value}]-(b) }}"
                    f" CREATE (a)-[:{kind.value} {{created_at: $now}}]->(b) RETURN a.id AS a, b.id AS b",
                    pairs=pairs,
                    now=now,
                )
                for i in (r["a"], r["b"])
            ]
        self.mark_pending(touched, now)
        return len(touched) // 2

    def remove_ties(self, ties: Sequence[Tie], now: datetime) -> int:
        touched: list[str] = []
        for kind in TieKind:
            pairs = [{"a": t.a, "b": t.b} for t in {t.normalised() for t in ties} if t.kind is kind]
            if not pairs:
                continue
            touched += [
                i
                for r in self._run(
                    "UNWIND $pairs AS pair"
                    f" MATCH (a:Business {{id: pair.a}})-[r:{kind.value}]-(b:Business {{id: pair.b}})"
                    " DELETE r RETURN DISTINCT a.id AS a, b.id AS b",
                    pairs=pairs,
                )
                for i in (r["a"], r["b"])
            ]
        self.mark_pending(touched, now)
        return len(touched) // 2

    def add_do_not_introduce(self, a: str, b: str, reason: str, now: datetime) -> bool:
        low, high = sorted((a, b))
        self._require_businesses({low, high})
        created = self._run(
            "MATCH (a:Business {id: $low}), (b:Business {id: $high})"
            " WHERE NOT EXISTS { (a)-[:DO_NOT_INTRODUCE]-(b) }"
            " CREATE (a)-[:DO_NOT_INTRODUCE {reason: $reason, created_at: $now}]->(b) RETURN a.id AS id",
            low=low,
            high=high,
            reason=reason,
            now=now,
        ).single()
        if created is not None:
            self.mark_pending([low, high], now)
        return created is not None

    def remove_do_not_introduce(self, a: str, b: str, now: datetime) -> bool:
        removed = self._run(
            "MATCH (:Business {id: $a})-[r:DO_NOT_INTRODUCE]-(:Business {id: $b}) DELETE r RETURN count(r) AS n",
            a=a,
            b=b,
        ).single()["n"]
        if removed:
            self.mark_pending([a, b], now)
        return removed > 0

    # Feedback and what salespeople saw
    def record_feedback(self, feedback: Feedback) -> None:
        self._require_businesses({feedback.a, feedback.b})
        self._run(
            "MATCH (a:Business {id: $a}), (b:Business {id: $b})"
            " CREATE (a)-[:FEEDBACK {kind: $kind, reason: $reason, at: $at, salesperson_id: $salesperson}]->(b)",
            a=feedback.a,
            b=feedback.b,
            kind=feedback.kind.value,
            reason=feedback.reason,
            at=feedback.at,
            salesperson=feedback.salesperson_id,
        ).consume()
        self.mark_pending([feedback.a, feedback.b], feedback.at)

    def record_suggestion_events(self, events: Sequence[SuggestionEvent]) -> None:
        if not events:
            return
        self._require_businesses({i for e in events for i in (e.suggestion.business_id, e.suggestion.other_id)})
        first = self._next("suggestion_event", len(events))
        rows = [
            {
                "seq": first + n, "business_id": e.suggestion.business_id, "other_id": e.suggestion.other_id,
                "kind": e.kind.value, "channel": e.channel, "salesperson_id": e.salesperson_id, "detail": e.detail,
                "at": e.at, "generation": e.suggestion.generation, "model": e.suggestion.model,
                "rules_digest": e.suggestion.rules_digest, "rank": e.suggestion.rank, "score": e.suggestion.score,
                "reasons": list(e.suggestion.reasons), "other_reasons": list(e.suggestion.other_reasons),
                "computed_at": e.suggestion.computed_at,
            }
            for n, e in enumerate(events)
        ]  # fmt: skip
        self._run(
            "UNWIND $rows AS row MATCH (a:Business {id: row.business_id}), (o:Business {id: row.other_id})"
            " CREATE (a)-[:SUGGESTION_EVENT]->(e:SuggestionEvent)-[:WITH]->(o) SET e = row",
            rows=rows,
        ).consume()

    def grant_contact(self, consent: ContactConsent) -> bool:
        self._require_businesses({consent.business_id, consent.other_id})
        created = self._run(
            "MATCH (b:Business {id: $b}), (o:Business {id: $o})"
            " WHERE NOT EXISTS { (b)-[:SHARES_CONTACT]->(o) }"
            " CREATE (b)-[:SHARES_CONTACT {granted_by: $by, at: $at}]->(o) RETURN b.id AS id",
            b=consent.business_id,
            o=consent.other_id,
            by=consent.granted_by,
            at=consent.at,
        ).single()
        return created is not None

    # Matching (the worker)
    def save_embeddings(self, field: str, items: Sequence[tuple[str, str, np.ndarray]]) -> None:
        vector_key = _vector_key(field)
        rows = [
            {"id": i, "hash": {f"{field}_hash": h}, "vector": np.asarray(v, dtype=np.float32).tolist()}
            for i, h, v in items
        ]
        for start in range(0, len(rows), 2000):
            self._run(
                "UNWIND $rows AS row MATCH (b:Business {id: row.id}) SET b += row.hash"
                " WITH b, row CALL db.create.setNodeVectorProperty(b, $key, row.vector)",
                rows=rows[start : start + 2000],
                key=vector_key,
            ).consume()

    def delete_embeddings(self, field: str, business_ids: Sequence[str]) -> None:
        self._run(
            "UNWIND $ids AS id MATCH (b:Business {id: id}) SET b += $gone",
            ids=sorted(set(business_ids)),
            gone={_vector_key(field): None, f"{field}_hash": None},
        ).consume()

    def save_inferred_categories(self, business_ids: Sequence[str], inferred: Sequence[InferredCategory]) -> None:
        self._run(
            "UNWIND $ids AS id MATCH (:Business {id: id})-[r:IN_CATEGORY {source: 'inferred'}]->() DELETE r",
            ids=list(business_ids),
        ).consume()
        self._run(
            "UNWIND $rows AS row MATCH (b:Business {id: row.id})"
            " MERGE (c:Category {slug: row.slug}) ON CREATE SET c.name = row.name"
            " MERGE (b)-[r:IN_CATEGORY]->(c)"
            " ON CREATE SET r.source = 'inferred', r.confidence = row.confidence, r.position = 0",
            rows=[
                {"id": i.business_id, "slug": Category(i.category).slug, "name": i.category, "confidence": i.confidence}
                for i in inferred
            ],
        ).consume()

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
        self._run("MATCH (g:Generation {status: 'building'}) SET g.status = 'abandoned'").consume()
        number = self._next("generation")
        props = {
            "id": number, "kind": kind.value, "status": GenerationStatus.BUILDING.value, "model": model,
            "rules_digest": rules_digest, "settings_digest": settings_digest, "started_at": now, "job_id": job_id,
            "lists": 0, "suggestions": 0,
        }  # fmt: skip
        row = self._run("MERGE (g:Generation {id: $id}) SET g = $props RETURN g {.*} AS g", id=number, props=props)
        return _to_generation(row.single()["g"])

    def write_lists(self, generation: int, lists: Sequence[SuggestionList]) -> None:
        self._run(
            "UNWIND $lists AS item MATCH (a:Business {id: item.business_id})"
            " MERGE (a)-[:HAS_LIST]->(l:SuggestionList {business_id: item.business_id, generation: $generation})"
            " SET l.computed_at = item.computed_at"
            " WITH a, l, item"
            " CALL (l) { MATCH (l)-[old:SUGGESTS]->() DELETE old }"
            # Each suggestion names its business's salesperson: their best are read best first.
            " OPTIONAL MATCH (owner:Salesperson)-[:MANAGES]->(a)"
            " CALL (l, item, owner) {"
            "   UNWIND item.suggestions AS s MATCH (o:Business {id: s.other_id})"
            "   CREATE (l)-[:SUGGESTS {rank: s.rank, score: s.score, reasons: s.reasons,"
            "                          other_reasons: s.other_reasons, salesperson_id: owner.id,"
            "                          business_id: item.business_id, other_id: o.id}]->(o)"
            " }",
            generation=generation,
            lists=[
                {
                    "business_id": item.business_id,
                    "computed_at": item.computed_at,
                    "suggestions": [
                        {
                            "other_id": s.other_id, "rank": s.rank, "score": s.score, "reasons": list(s.reasons),
                            "other_reasons": list(s.other_reasons),
                        }
                        for s in item.suggestions
                    ],
                }
                for item in lists
            ],
        ).consume()  # fmt: skip

    def publish_generation(self, generation: int, now: datetime, taken_in: Sequence[PendingChange]) -> Generation:
        row = self._run(
            "MATCH (g:Generation {id: $id}) SET g._lock = true REMOVE g._lock RETURN g {.*} AS g", id=generation
        ).single()
        if row is None or row["g"]["status"] != GenerationStatus.BUILDING:
            raise ValueError(f"generation {generation} is not building; it cannot be published")
        counts = self._run(
            "MATCH (l:SuggestionList {generation: $id})"
            " RETURN count(l) AS lists, sum(COUNT { (l)-[:SUGGESTS]->() }) AS suggestions",
            id=generation,
        ).single()
        published = self._run(
            "MATCH (g:Generation {id: $id})"
            " SET g.status = 'published', g.published_at = $now, g.lists = $lists, g.suggestions = $suggestions"
            " WITH g MERGE (m:MatchState {id: 'current'})"
            " SET m.published = g.id, m.base = CASE WHEN g.kind = 'full' THEN g.id ELSE m.base END"
            " RETURN g {.*} AS g",
            id=generation,
            now=now,
            lists=counts["lists"],
            suggestions=counts["suggestions"] or 0,
        ).single()
        self._run(
            "UNWIND $changes AS change MATCH (c:PendingChange {business_id: change.id})"
            " WHERE c.version = change.version DELETE c",
            changes=[{"id": c.business_id, "version": c.version} for c in taken_in],
        ).consume()
        return _to_generation(published["g"])

    # Jobs
    def create_job(self, job: Job, coalesce_key: str | None = None) -> tuple[Job, bool]:
        props = {
            "id": job.id, "kind": job.kind, "status": job.status.value, "requested_by": job.requested_by,
            "created_at": job.created_at, "attempts": 0, "summary": "", "error": "",
        }  # fmt: skip
        seq = self._next("job")
        if coalesce_key is None:
            self._run("CREATE (j:Job) SET j = $props, j.seq = $seq", props=props, seq=seq).consume()
            return job, True
        # MERGE on a uniquely constrained key takes a lock: two requests at once share one job.
        row = self._run(
            "MERGE (j:Job {coalesce_key: $key}) ON CREATE SET j += $props, j.seq = $seq RETURN j {.*} AS j",
            key=coalesce_key,
            props=props,
            seq=seq,
        ).single()
        existing = _to_job(row["j"])
        return existing, existing.id == job.id

    def create_introduction(self, introduction: Introduction) -> None:
        i = introduction
        self._require_businesses({i.a_id, i.b_id})
        props = {
            "id": i.id, "status": i.status.value, "created_at": i.created_at, "created_by": i.created_by,
            "message_a": i.message_a, "message_b": i.message_b, "score": i.score, "steps": len(i.steps),
            "a_id": i.a_id, "b_id": i.b_id,
        }  # fmt: skip
        self._run(
            "MATCH (a:Business {id: $a}), (b:Business {id: $b})"
            " CREATE (i:Introduction) SET i = $props"
            " CREATE (i)-[:INTRODUCES {side: 'a'}]->(a), (i)-[:INTRODUCES {side: 'b'}]->(b)",
            a=i.a_id,
            b=i.b_id,
            props=props,
        ).consume()
        self._add_steps(i.id, 0, i.steps)

    def _add_steps(self, introduction_id: str, first: int, steps: Sequence[IntroStep]) -> None:
        self._run(
            "MATCH (i:Introduction {id: $id}) UNWIND $steps AS step CREATE (i)-[:HAS_STEP]->(s:IntroStep) SET s = step",
            id=introduction_id,
            steps=[
                {"seq": first + n, "status": s.status.value, "at": s.at, "by": s.by, "note": s.note}
                for n, s in enumerate(steps)
            ],
        ).consume()

    def advance_introduction(self, introduction_id: str, expected_steps: int, step: IntroStep) -> bool:
        # Lock the node before comparing, so two moves from one version cannot both pass.
        moved = self._run(
            "MATCH (i:Introduction {id: $id}) SET i._lock = true REMOVE i._lock"
            " WITH i WHERE i.steps = $expected SET i.status = $status, i.steps = i.steps + 1 RETURN i.id",
            id=introduction_id,
            expected=expected_steps,
            status=step.status.value,
        ).single()
        if moved is None:
            return False
        self._add_steps(introduction_id, expected_steps, [step])
        return True

    def edit_introduction_messages(
        self, introduction_id: str, expected_steps: int, message_a: str, message_b: str
    ) -> bool:
        edited = self._run(
            "MATCH (i:Introduction {id: $id}) SET i._lock = true REMOVE i._lock"
            " WITH i WHERE i.steps = $expected SET i.message_a = $a, i.message_b = $b RETURN i.id",
            id=introduction_id,
            expected=expected_steps,
            a=message_a,
            b=message_b,
        ).single()
        return edited is not None

    def add_introduction_feedback(self, introduction_id: str, feedback: IntroFeedback) -> None:
        f = feedback
        self._run(
            "MATCH (i:Introduction {id: $id}) SET i._lock = true REMOVE i._lock"
            " WITH i, COUNT { (i)-[:HAS_FEEDBACK]->() } AS seq"
            " CREATE (i)-[:HAS_FEEDBACK]->(f:IntroFeedback) SET f = $props, f.seq = seq",
            id=introduction_id,
            props={"business_id": f.business_id, "rating": f.rating, "comment": f.comment, "at": f.at, "by": f.by},
        ).consume()

    def claim_idempotency_key(self, request: IdempotentRequest, expires_before: datetime) -> IdempotentRequest | None:
        # MERGE on the uniquely constrained id takes a lock: two retries at once, one claim.
        row = self._run(
            "OPTIONAL MATCH (old:IdempotencyKey {id: $id}) WHERE old.created_at < $expires DELETE old"
            " WITH count(*) AS _"
            " MERGE (k:IdempotencyKey {id: $id})"
            " ON CREATE SET k += $props, k.fresh = true"
            " WITH k, coalesce(k.fresh, false) AS fresh REMOVE k.fresh RETURN k {.*} AS k, fresh",
            id=f"{request.token_id} {request.key}",
            expires=expires_before,
            props={"token_id": request.token_id, "key": request.key, "fingerprint": request.fingerprint,
                   "created_at": request.created_at, "body": "", "headers": "[]"},
        ).single()  # fmt: skip
        if row["fresh"]:
            return None
        k = row["k"]
        return IdempotentRequest(
            k["token_id"], k["key"], k["fingerprint"], k["created_at"].to_native(), k.get("status"), k["body"],
            tuple(tuple(pair) for pair in json.loads(k["headers"])),
        )  # fmt: skip

    def complete_idempotency_key(
        self, token_id: str, key: str, status: int, body: str, headers: Sequence[tuple[str, str]]
    ) -> None:
        self._run(
            "MATCH (k:IdempotencyKey {id: $id}) SET k.status = $status, k.body = $body, k.headers = $headers",
            id=f"{token_id} {key}",
            status=status,
            body=body,
            headers=json.dumps([list(pair) for pair in headers]),
        ).consume()

    def release_idempotency_key(self, token_id: str, key: str) -> None:
        self._run(
            "MATCH (k:IdempotencyKey {id: $id}) WHERE k.status IS NULL DELETE k", id=f"{token_id} {key}"
        ).consume()

    def create_webhook(self, subscription: WebhookSubscription) -> None:
        w = subscription
        props = {
            "id": w.id, "url": w.url, "events": [e.value for e in w.events], "secret": w.secret,
            "salesperson_id": w.salesperson_id, "description": w.description, "created_at": w.created_at,
            "created_by": w.created_by,
        }  # fmt: skip
        self._run("CREATE (w:Webhook) SET w = $props", props=props).consume()

    def disable_webhook(self, webhook_id: str, now: datetime) -> bool:
        row = self._run(
            "MATCH (w:Webhook {id: $id}) WHERE w.disabled_at IS NULL SET w.disabled_at = $now RETURN w.id",
            id=webhook_id,
            now=now,
        ).single()
        return row is not None

    def add_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> None:
        self._run(
            "UNWIND $rows AS row CREATE (d:WebhookDelivery) SET d = row",
            rows=[_delivery_props(d) for d in deliveries],
        ).consume()

    def update_delivery(self, delivery: WebhookDelivery) -> None:
        self._run(
            "MATCH (d:WebhookDelivery {id: $id}) SET d += $props", id=delivery.id, props=_delivery_props(delivery)
        ).consume()

    def set_digest_preferences(self, preferences: DigestPreferences) -> None:
        p = preferences
        row = self._run(
            "MATCH (s:Salesperson {id: $id})"
            " SET s.digest_weekly = $weekly, s.digest_weekday = $weekday, s.digest_size = $size,"
            "     s.digest_hour = $hour, s.digest_timezone = $timezone, s.digest_note_when_empty = $note RETURN s.id",
            id=p.salesperson_id,
            weekly=p.weekly,
            weekday=p.weekday,
            size=p.size,
            hour=p.hour,
            timezone=p.timezone,
            note=p.note_when_empty,
        ).single()
        if row is None:
            raise UnknownSalespersonError(p.salesperson_id)

    def record_digest(self, digest: Digest) -> bool:
        row = self._run(
            "MATCH (s:Salesperson {id: $salesperson})"
            " MERGE (d:Digest {id: $id}) ON CREATE SET d += $props, d._created = true"
            " WITH d, coalesce(d._created, false) AS created REMOVE d._created RETURN created",
            salesperson=digest.salesperson_id,
            id=digest.id,
            props=_digest_props(digest),
        ).single()
        if row is None:
            raise UnknownSalespersonError(digest.salesperson_id)
        return bool(row["created"])

    def claim_digest(self, salesperson_id: str, week: str, now: datetime, lease_until: datetime) -> Digest | None:
        # Lock the node before reading its status, so two runs cannot both claim it.
        row = self._run(
            "MATCH (d:Digest {id: $id}) SET d._lock = true REMOVE d._lock"
            " WITH d WHERE (d.status = 'failed' AND d.next_attempt_at <= $now)"
            "   OR (d.status = 'sending' AND d.lease_until < $now)"
            " SET d.attempts = d.attempts + CASE d.status WHEN 'sending' THEN 1 ELSE 0 END,"
            "     d.status = 'sending', d.lease_until = $lease RETURN d {.*} AS d",
            id=digest_id(salesperson_id, week),
            now=now,
            lease=lease_until,
        ).single()
        return _to_digest(row["d"]) if row else None

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
        # Leases compared as instants: Cypher's = also compares the zone (UTC by name vs +00:00).
        row = self._run(
            "MATCH (d:Digest {id: $id}) SET d._lock = true REMOVE d._lock"
            " WITH d WHERE d.status = 'sending' AND ($lease IS NULL OR d.lease_until.epochMillis = $lease.epochMillis)"
            " SET d.status = $status, d.attempts = d.attempts + 1, d.lease_until = null,"
            "     d.next_attempt_at = $next, d.sent_at = $sent, d.last_error = $error RETURN d.id",
            id=digest_id(salesperson_id, week),
            status=status.value,
            next=next_attempt_at,
            sent=now if status is DigestStatus.SENT else None,
            error=error,
            lease=claimed_until,
        ).single()
        return row is not None

    def add_refresh_parts(self, generation: int, parts: int, snapshot: str) -> None:
        self._run(
            "UNWIND range(0, $parts - 1) AS part"
            " CREATE (:RefreshPart {id: toString($g) + ':' + toString(part), generation: $g, part: part,"
            "   parts: $parts, status: 'queued', snapshot: $snapshot})",
            g=generation,
            parts=parts,
            snapshot=snapshot,
        ).consume()

    def claim_refresh_part(
        self, generation: int, worker: str, now: datetime, lease_until: datetime
    ) -> RefreshPart | None:
        # Every part of the generation locked first, then the lowest claimable one taken, so two
        # workers never take the same part.
        row = self._run(
            "MATCH (p:RefreshPart {generation: $g}) SET p._lock = true REMOVE p._lock"
            " WITH p WHERE p.status = 'queued' OR (p.status = 'running' AND p.lease_until < $now)"
            " WITH p ORDER BY p.part LIMIT 1"
            " SET p.status = 'running', p.claimed_by = $worker, p.lease_until = $lease RETURN p {.*} AS p",
            g=generation,
            worker=worker,
            now=now,
            lease=lease_until,
        ).single()
        return _to_part(row["p"]) if row else None

    def renew_refresh_part(self, generation: int, part: int, worker: str, lease_until: datetime) -> bool:
        row = self._run(
            "MATCH (p:RefreshPart {id: $id}) SET p._lock = true REMOVE p._lock"
            " WITH p WHERE p.status = 'running' AND p.claimed_by = $worker"
            " SET p.lease_until = $lease RETURN p.id",
            id=f"{generation}:{part}",
            worker=worker,
            lease=lease_until,
        ).single()
        return row is not None

    def finish_refresh_part(
        self, generation: int, part: int, worker: str, state: bytes | None, *, done: bool = True
    ) -> bool:
        row = self._run(
            "MATCH (p:RefreshPart {id: $id}) SET p._lock = true REMOVE p._lock"
            " WITH p WHERE p.status = 'running' AND p.claimed_by = $worker"
            " SET p.status = $status, p.state = $state, p.lease_until = null,"
            "     p.claimed_by = CASE WHEN $done THEN p.claimed_by END RETURN p.id",
            id=f"{generation}:{part}",
            worker=worker,
            state=state,
            status="done" if done else "queued",
            done=done,
        ).single()
        return row is not None

    def delete_refresh_parts(self, generation: int) -> None:
        self._run("MATCH (p:RefreshPart) WHERE p.generation <= $g DELETE p", g=generation).consume()

    def consume_link(self, link_id: str, now: datetime) -> bool:
        row = self._run(
            "MERGE (u:UsedLink {id: $id}) ON CREATE SET u.used_at = $now, u._created = true"
            " WITH u, coalesce(u._created, false) AS created REMOVE u._created RETURN created",
            id=link_id,
            now=now,
        ).single()
        return bool(row["created"])

    def set_password_hash(self, salesperson_id: str, password_hash: str, now: datetime) -> None:
        row = self._run(
            "MATCH (s:Salesperson {id: $id}) SET s.password_hash = $hash, s.password_changed_at = $now RETURN s.id",
            id=salesperson_id,
            hash=password_hash,
            now=now,
        ).single()
        if row is None:
            raise UnknownSalespersonError(salesperson_id)

    def create_api_token(self, token: ApiToken, secret_hash: str) -> None:
        if (
            token.salesperson_id is not None
            and not self._run("MATCH (s:Salesperson {id: $id}) RETURN s.id", id=token.salesperson_id).single()
        ):
            raise UnknownSalespersonError(token.salesperson_id)
        props = {
            "id": token.id, "secret_hash": secret_hash, "name": token.name, "scopes": [s.value for s in token.scopes],
            "salesperson_id": token.salesperson_id, "created_by": token.created_by, "created_at": token.created_at,
        }  # fmt: skip
        self._run("CREATE (t:ApiToken) SET t = $props", props=props).consume()

    def revoke_api_token(self, token_id: str, now: datetime) -> bool:
        row = self._run(
            "MATCH (t:ApiToken {id: $id}) WHERE t.revoked_at IS NULL SET t.revoked_at = $now RETURN t.id",
            id=token_id,
            now=now,
        ).single()
        return row is not None

    def claim_job(self, job_id: str, now: datetime) -> Job | None:
        # Lock the node before reading its status, so two claims cannot both see 'queued'.
        row = self._run(
            "MATCH (j:Job {id: $id}) SET j._lock = true REMOVE j._lock"
            " WITH j WHERE j.status = 'queued'"
            " SET j.status = 'running', j.started_at = $now, j.attempts = j.attempts + 1, j.finished_at = null,"
            " j.error = '' REMOVE j.coalesce_key RETURN j {.*} AS j",
            id=job_id,
            now=now,
        ).single()
        return _to_job(row["j"]) if row else None

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
                sets["finished_at"] = now or datetime.now(UTC)
        if summary is not None:
            sets["summary"] = summary
        if error is not None:
            sets["error"] = error
        if progress is not None:
            sets |= {"progress_stage": progress.stage, "progress_done": progress.done, "progress_total": progress.total}
        if not sets:
            return
        found = self._run("MATCH (j:Job {id: $id}) SET j += $sets RETURN j.id AS id", id=job_id, sets=sets).single()
        if found is None:
            raise UnknownJobError(job_id)

    def renew_view_version(self) -> None:
        self._run("MERGE (st:MatchState {id: 'current'}) SET st.view = randomUUID()").consume()

    def requeue_running_jobs(self, max_attempts: int, now: datetime) -> list[Job]:
        rows = self._run(
            "MATCH (j:Job {status: 'running'})"
            " WITH j, j.attempts >= $max_attempts AS spent"
            " SET j.status = CASE WHEN spent THEN 'failed' ELSE 'queued' END,"
            "     j.finished_at = CASE WHEN spent THEN $now END,"
            "     j.error = CASE WHEN spent THEN $gave_up ELSE j.error END"
            " REMOVE j.progress_stage, j.progress_done, j.progress_total RETURN j {.*} AS j ORDER BY j.created_at",
            max_attempts=max_attempts,
            now=now,
            gave_up=gave_up_message(max_attempts),
        )
        return [_to_job(r["j"]) for r in rows]
