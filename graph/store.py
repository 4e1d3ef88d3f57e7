"""The graph store contract: what every backend reads and writes.

Everything above this layer (import, matching, services, web, jobs) talks to a
`GraphStore`; `tests/contract` runs one suite against every implementation.

Writes go through `GraphStore.write(work)`: `work` receives a `GraphWriter` bound to one
transaction, which commits when `work` returns and rolls back if it raises. On Neo4j the
driver may run `work` again after a transient error, so it must only use the writer.
Every write that can change suggestions also records the businesses it touches as pending
changes in that same transaction, which is how the matcher learns what to refresh.

A salesperson's best suggestions (`best_sheet`) are cached in each store object under the
store's view version: a token that every write transaction which may change a sheet renews
in that transaction (`tracking_view`). A sheet is read again only when the version has moved,
so a read costs one tiny query while nothing changes, and every process sees every other's
writes at once.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar, cast

import numpy as np

from graph.records import (
    ApiToken,
    BusinessRecord,
    BusinessStatus,
    ContactConsent,
    Credentials,
    DeliveryStatus,
    Digest,
    DigestItem,
    DigestPreferences,
    DigestStatus,
    Feedback,
    Generation,
    GenerationKind,
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
    PendingChange,
    RefreshPart,
    Role,
    Salesperson,
    SalespersonSummary,
    StoredBusiness,
    Suggestion,
    SuggestionEvent,
    SuggestionList,
    SuggestionSheet,
    Tie,
    UpsertOutcome,
    WebhookDelivery,
    WebhookSubscription,
)

T = TypeVar("T")


class UnknownBusinessError(LookupError):
    """A write named a business id that is not in the graph."""

    def __init__(self, ids: Sequence[str]):
        self.ids = sorted(set(ids))
        super().__init__("unknown business id(s): " + ", ".join(self.ids))


class UnknownSalespersonError(LookupError):
    def __init__(self, salesperson_id: str):
        self.salesperson_id = salesperson_id
        super().__init__(f"unknown salesperson: {salesperson_id}")


class UnknownJobError(LookupError):
    def __init__(self, job_id: str):
        self.job_id = job_id
        super().__init__(f"unknown job: {job_id}")


def gave_up_message(max_attempts: int) -> str:
    """The error of a job that stopped its worker `max_attempts` times."""
    return f"gave up after {max_attempts} attempts: its worker stopped while running it each time"


@dataclass(frozen=True)
class StoreSettings:
    url: str
    user: str = "neo4j"
    password: str = field(default="", repr=False)  # never in a log line or a traceback
    database: str = "neo4j"


@dataclass(frozen=True)
class MatchState:
    """Which lists readers see: for each business, its newest list whose generation lies in
    [base, published]. `base` is the last published full generation."""

    published: int | None = None
    base: int | None = None


def each_pair_once(items: Iterable[T], limit: int, pair: Callable[[T], tuple[str, str]]) -> list[T]:
    """The first `limit` items of distinct pairs (either way round), in their order."""
    seen: set[frozenset[str]] = set()
    kept: list[T] = []
    for item in items:
        if len(kept) == limit:
            break
        key = frozenset(pair(item))
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


class GraphWriter(ABC):
    """The operations of one write transaction."""

    # Salespeople
    @abstractmethod
    def upsert_salespeople(self, people: Sequence[Salesperson]) -> None:
        """Create or update salespeople by id (name and email; a new one takes the record's role,
        an existing one keeps its role)."""

    @abstractmethod
    def set_salesperson_role(self, salesperson_id: str, role: Role) -> None:
        """Raises UnknownSalespersonError, writing nothing, for an unknown id."""

    # Businesses
    @abstractmethod
    def upsert_businesses(
        self, records: Sequence[BusinessRecord], now: datetime, source_digests: Mapping[str, str] | None = None
    ) -> list[UpsertOutcome]:
        """Write the records, keyed by external id; one outcome per record, in order.

        Unchanged records (same content hash) are not touched, so re-running an import writes
        nothing. Unknown salespeople referenced by a record are created with their id as name.
        Archive state and opt-outs recorded here are Netweave's own and stay as they are.
        `source_digests` (business id -> digest of the file row it came from) are kept for the
        next import to recognise unchanged rows; a record written without one loses its digest.
        """

    @abstractmethod
    def set_archived(self, business_ids: Sequence[str], archived: bool, now: datetime) -> list[str]:
        """Archive (or restore) businesses; return the ids whose status changed, in order.
        History, feedback, ties and blocks stay. Unknown ids raise UnknownBusinessError."""

    @abstractmethod
    def set_opt_out(self, business_id: str, opt_out: OptOut | None, now: datetime) -> bool:
        """Record (or with None, withdraw) a customer's opt-out; True if it changed anything."""

    # Ties and blocks
    @abstractmethod
    def add_ties(self, ties: Sequence[Tie], now: datetime) -> int:
        """Record existing ties (undirected, idempotent); return how many were new.
        Raises UnknownBusinessError, writing nothing, if any id is not stored."""

    @abstractmethod
    def remove_ties(self, ties: Sequence[Tie], now: datetime) -> int:
        """Remove ties (either direction); return how many existed."""

    @abstractmethod
    def add_do_not_introduce(self, a: str, b: str, reason: str, now: datetime) -> bool:
        """Opt a pair out of introductions; True if it was not opted out before."""

    @abstractmethod
    def remove_do_not_introduce(self, a: str, b: str, now: datetime) -> bool:
        """Allow a pair again; True if it was opted out."""

    # Feedback and what salespeople saw
    @abstractmethod
    def record_feedback(self, feedback: Feedback) -> None:
        """Append feedback on a pair (an unknown business raises UnknownBusinessError)."""

    @abstractmethod
    def record_suggestion_events(self, events: Sequence[SuggestionEvent]) -> None:
        """Keep copies of suggestions that were shown or acted on."""

    @abstractmethod
    def grant_contact(self, consent: ContactConsent) -> bool:
        """Record a contact-sharing consent; True if it is new."""

    @abstractmethod
    def mark_pending(self, business_ids: Sequence[str], now: datetime) -> None:
        """Record that these businesses' suggestions may have changed."""

    # Matching (the worker)
    @abstractmethod
    def save_embeddings(self, field: str, items: Sequence[tuple[str, str, np.ndarray]]) -> None:
        """Store (business id, text hash, vector) for `field`, replacing older ones."""

    @abstractmethod
    def delete_embeddings(self, field: str, business_ids: Sequence[str]) -> None:
        """Drop the `field` vectors (and hashes) of these businesses."""

    @abstractmethod
    def save_inferred_categories(self, business_ids: Sequence[str], inferred: Sequence[InferredCategory]) -> None:
        """Replace the inferred categories of `business_ids` with `inferred` (given ones stay)."""

    @abstractmethod
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
        """A new generation, numbered after every earlier one. Any generation still building
        (a refresh that crashed) is marked abandoned; call `GraphStore.prune_lists` first so
        its lists are gone before anything newer is published."""

    @abstractmethod
    def write_lists(self, generation: int, lists: Sequence[SuggestionList]) -> None:
        """Add lists to a generation that is building; readers do not see them until it is
        published. Suggestions naming a business that no longer exists are left out."""

    @abstractmethod
    def publish_generation(self, generation: int, now: datetime, taken_in: Sequence[PendingChange]) -> Generation:
        """Make the generation's lists the ones readers see, and clear the pending changes it
        took in (only those not changed again since: their version still matches)."""

    # Jobs
    @abstractmethod
    def create_job(self, job: Job, coalesce_key: str | None = None) -> tuple[Job, bool]:
        """Add a queued job. With a coalesce key, a queued job holding that key is returned
        instead (and False): requests made while one waits share it."""

    @abstractmethod
    def claim_job(self, job_id: str, now: datetime) -> Job | None:
        """Queued -> running (releasing its coalesce key); None if it is not queued."""

    @abstractmethod
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
        """Record progress or an outcome (done/failed set finished_at to `now`)."""

    # Introductions
    @abstractmethod
    def create_introduction(self, introduction: Introduction) -> None:
        """Store a new introduction with its steps so far. An unknown business raises
        UnknownBusinessError, writing nothing."""

    @abstractmethod
    def advance_introduction(self, introduction_id: str, expected_steps: int, step: IntroStep) -> bool:
        """Append a step (its status becomes the introduction's) if the introduction still has
        `expected_steps` steps; False, writing nothing, if it has moved since (or is unknown)."""

    @abstractmethod
    def add_introduction_feedback(self, introduction_id: str, feedback: IntroFeedback) -> None:
        """Append one side's rating and comment."""

    @abstractmethod
    def edit_introduction_messages(
        self, introduction_id: str, expected_steps: int, message_a: str, message_b: str
    ) -> bool:
        """Replace the two messages if the introduction still has `expected_steps` steps;
        False, writing nothing, if it has moved since (or is unknown)."""

    # Idempotency keys (the API's)
    @abstractmethod
    def claim_idempotency_key(self, request: IdempotentRequest, expires_before: datetime) -> IdempotentRequest | None:
        """Record a request with its key, unanswered; None if the key is new (or its record was
        made before `expires_before`, then replaced), else the record already there."""

    @abstractmethod
    def complete_idempotency_key(
        self, token_id: str, key: str, status: int, body: str, headers: Sequence[tuple[str, str]]
    ) -> None:
        """Keep the answer to replay."""

    @abstractmethod
    def release_idempotency_key(self, token_id: str, key: str) -> None:
        """Forget an unanswered key (the request failed on our side: a retry may run it)."""

    # Webhooks
    @abstractmethod
    def create_webhook(self, subscription: WebhookSubscription) -> None: ...

    @abstractmethod
    def disable_webhook(self, webhook_id: str, now: datetime) -> bool:
        """Stop sending to it (its deliveries stay in the log); True if it was active."""

    @abstractmethod
    def add_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> None:
        """Queue deliveries (pending), in the transaction of the change they tell of."""

    @abstractmethod
    def update_delivery(self, delivery: WebhookDelivery) -> None:
        """Record an attempt's outcome (status, attempts, times, last status and error)."""

    @abstractmethod
    def set_digest_preferences(self, preferences: DigestPreferences) -> None:
        """Keep a salesperson's digest preferences. Raises UnknownSalespersonError, writing
        nothing, for an unknown id."""

    # Full refreshes split by market
    @abstractmethod
    def add_refresh_parts(self, generation: int, parts: int, snapshot: str) -> None:
        """Queue the parts 0 .. parts - 1 of the generation's full refresh."""

    @abstractmethod
    def claim_refresh_part(
        self, generation: int, worker: str, now: datetime, lease_until: datetime
    ) -> RefreshPart | None:
        """Take the lowest-numbered part that is queued, or running on a lease that is over
        (its worker stopped); it is `worker`'s until `lease_until`. None when there is none."""

    @abstractmethod
    def renew_refresh_part(self, generation: int, part: int, worker: str, lease_until: datetime) -> bool:
        """Extend `worker`'s lease on a running part; False if the part is no longer its own."""

    @abstractmethod
    def finish_refresh_part(
        self, generation: int, part: int, worker: str, state: bytes | None, *, done: bool = True
    ) -> bool:
        """Mark `worker`'s running part done (with what its ranking saw, from a helper), or,
        with done=False, queued again for another worker. False if it was not `worker`'s."""

    @abstractmethod
    def delete_refresh_parts(self, generation: int) -> None:
        """Forget the parts of a generation and of every older one (once it is published or
        has failed: an older one's were left by a worker that stopped)."""

    # The weekly email
    @abstractmethod
    def record_digest(self, digest: Digest) -> bool:
        """Keep a new week's digest as given (sending, or empty); False, writing nothing, if
        the salesperson has one for that week already. Raises UnknownSalespersonError."""

    @abstractmethod
    def claim_digest(self, salesperson_id: str, week: str, now: datetime, lease_until: datetime) -> Digest | None:
        """Take a recorded digest to send it again: one that failed and is due (next_attempt_at
        at or before `now`), or one left sending by a run that stopped (its lease is over; that
        stopped attempt is counted). Returns it, now sending until `lease_until`; None if it is
        not to be sent now."""

    @abstractmethod
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
        """Record an attempt's outcome (sent, failed with when to try again, or given up) on a
        digest that is sending: one attempt more. False if it was not sending, or (with
        `claimed_until`) if its lease is no longer the one the caller was given (another run
        took it over when that lease ended)."""

    @abstractmethod
    def consume_link(self, link_id: str, now: datetime) -> bool:
        """Mark a one-time link as used; False if it was used already."""

    # Sign-in
    @abstractmethod
    def set_password_hash(self, salesperson_id: str, password_hash: str, now: datetime) -> None:
        """Replace the salesperson's password hash. Raises UnknownSalespersonError, writing
        nothing, for an unknown id."""

    # API tokens
    @abstractmethod
    def create_api_token(self, token: ApiToken, secret_hash: str) -> None:
        """Store a new token (its secret only as a hash). An unknown salesperson raises
        UnknownSalespersonError, writing nothing."""

    @abstractmethod
    def revoke_api_token(self, token_id: str, now: datetime) -> bool:
        """Revoke a token; True if it was live."""

    @abstractmethod
    def requeue_running_jobs(self, max_attempts: int, now: datetime) -> list[Job]:
        """Jobs left running by a worker that is gone: back to queued, or failed if they have
        been tried `max_attempts` times already (a job that kills its worker is not run
        forever); returns them as they are now."""

    @abstractmethod
    def renew_view_version(self) -> None:
        """Give the store a new view version: every cached suggestion sheet is read again."""


# Writer operations that never change what a suggestion sheet shows (lists of a generation not
# yet published, jobs, the history of what was shown, credentials, ...): a transaction of only
# these keeps the view version, and every process's cached sheets with it. Anything else,
# including an operation added later and not listed here, renews it.
SHEET_NEUTRAL = frozenset(
    {
        "record_suggestion_events", "mark_pending", "save_embeddings", "delete_embeddings",
        "save_inferred_categories", "begin_generation", "write_lists", "create_job", "claim_job", "update_job",
        "requeue_running_jobs", "claim_idempotency_key", "complete_idempotency_key", "release_idempotency_key",
        "create_webhook", "disable_webhook", "add_deliveries", "update_delivery", "set_digest_preferences",
        "record_digest", "claim_digest", "finish_digest", "consume_link", "set_password_hash",
        "create_api_token", "revoke_api_token", "add_refresh_parts", "claim_refresh_part",
        "renew_refresh_part", "finish_refresh_part", "delete_refresh_parts",
    }
)  # fmt: skip


class _ViewTracking:
    """A writer that notes whether an operation that may change a sheet was used (see
    SHEET_NEUTRAL)."""

    def __init__(self, writer: GraphWriter):
        self._writer = writer
        self.changed = False

    def __getattr__(self, name: str) -> object:
        if name not in SHEET_NEUTRAL and name != "renew_view_version" and not name.startswith("_"):
            self.changed = True
        return getattr(self._writer, name)


def tracking_view(work: Callable[[GraphWriter], T], writer: GraphWriter) -> T:
    """Run `GraphStore.write`'s `work` with `writer`, then, if it used an operation that may
    change a sheet, renew the view version in the same transaction: last, so that on Neo4j the
    lock on the version is held only until the commit."""
    tracked = _ViewTracking(writer)
    result = work(cast(GraphWriter, tracked))
    if tracked.changed:
        writer.renew_view_version()
    return result


class SheetCache:
    """Sheets as last read, each under the view version it was read at: the most recently used,
    up to `budget` suggestions and businesses in all (a sheet of 20 pairs holds about 60). The
    version is read before the sheet, so a sheet is never older than the version it is kept under."""

    def __init__(self, budget: int = 10_000):
        self.budget = budget
        self._sheets: OrderedDict[Hashable, tuple[str, SuggestionSheet]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, version: str | None, read: Callable[[], SuggestionSheet]) -> SuggestionSheet:
        if version is None:  # a store not yet given a version: nothing to tell changes by
            return read()
        with self._lock:
            kept = self._sheets.get(key)
            if kept is not None and kept[0] == version:
                self._sheets.move_to_end(key)
                return kept[1]
        sheet = read()
        with self._lock:
            if (old := self._sheets.pop(key, None)) is not None:
                self._held -= _weight(old[1])
            self._sheets[key] = (version, sheet)
            self._held += _weight(sheet)
            while self._held > self.budget and len(self._sheets) > 1:
                self._held -= _weight(self._sheets.popitem(last=False)[1][1])
        return sheet


def _weight(sheet: SuggestionSheet) -> int:
    return len(sheet.suggestions) + len(sheet.businesses)


class GraphStore(ABC):
    """Customer graph: salespeople, businesses, categories, places, ties, and what the
    matcher and the job queue keep beside them."""

    backend: str

    def __init__(self) -> None:
        self.sheets = SheetCache()  # this store object's best sheets, by view version

    @abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending schema migrations idempotently; return the names applied now. Safe
        when several processes start at once: one applies, the others wait and see it done."""

    @abstractmethod
    def applied_migrations(self) -> list[str]:
        """Names of all migrations applied so far, in order."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def ping(self) -> None:
        """Raise if the store cannot answer a trivial query (for readiness checks)."""

    @abstractmethod
    def write(self, work: Callable[[GraphWriter], T]) -> T:
        """Run `work` in one write transaction: all of its writes land, or none."""

    # One-write conveniences
    def upsert_salespeople(self, people: Sequence[Salesperson]) -> None:
        self.write(lambda tx: tx.upsert_salespeople(people))

    def upsert_businesses(
        self, records: Sequence[BusinessRecord], now: datetime, source_digests: Mapping[str, str] | None = None
    ) -> list[UpsertOutcome]:
        return self.write(lambda tx: tx.upsert_businesses(records, now, source_digests))

    def add_ties(self, ties: Sequence[Tie], now: datetime) -> int:
        return self.write(lambda tx: tx.add_ties(ties, now))

    def add_do_not_introduce(self, a: str, b: str, reason: str, now: datetime) -> bool:
        return self.write(lambda tx: tx.add_do_not_introduce(a, b, reason, now))

    def record_feedback(self, feedback: Feedback) -> None:
        self.write(lambda tx: tx.record_feedback(feedback))

    def save_embeddings(self, field: str, items: Sequence[tuple[str, str, np.ndarray]]) -> None:
        self.write(lambda tx: tx.save_embeddings(field, items))

    def save_inferred_categories(self, business_ids: Sequence[str], inferred: Sequence[InferredCategory]) -> None:
        self.write(lambda tx: tx.save_inferred_categories(business_ids, inferred))

    # Salespeople
    @abstractmethod
    def list_salespeople(self) -> list[SalespersonSummary]:
        """All salespeople with how many active businesses each manages, by name."""

    @abstractmethod
    def get_salesperson(self, salesperson_id: str) -> Salesperson | None: ...

    @abstractmethod
    def get_salespeople(self, salesperson_ids: Sequence[str]) -> dict[str, Salesperson]:
        """Those of `salesperson_ids` that exist, by id."""

    # Businesses
    @abstractmethod
    def get_business(self, business_id: str) -> StoredBusiness | None:
        """The business, archived or not."""

    @abstractmethod
    def get_businesses(self, business_ids: Sequence[str]) -> dict[str, StoredBusiness]:
        """Those of `business_ids` that are stored (archived or not), by id."""

    @abstractmethod
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
        """Businesses ordered by name (case-insensitive), then id; `search` is a case-insensitive
        part of the name; `status` None means archived and active alike; `category` is a kind,
        given or inferred; `city` matches ignoring case; `after` (a name and an id) starts past
        that business, for pages that hold while others write; `limit` None means all (in one
        read, so none is missed or counted twice while others write)."""

    @abstractmethod
    def count_businesses(
        self,
        *,
        salesperson_id: str | None = None,
        search: str | None = None,
        status: BusinessStatus | None = BusinessStatus.ACTIVE,
        category: str | None = None,
        city: str | None = None,
        updated_since: datetime | None = None,
    ) -> int: ...

    @abstractmethod
    def source_digests(self, business_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """business id -> (digest of the file row it was last imported from, its salesperson id),
        for those of `business_ids` that have one."""

    @abstractmethod
    def archived_ids(self, business_ids: Sequence[str]) -> set[str]:
        """Those of `business_ids` that are archived."""

    def all_businesses(self, status: BusinessStatus | None = BusinessStatus.ACTIVE) -> list[StoredBusiness]:
        return self.list_businesses(status=status, limit=None)

    # Ties and blocks
    @abstractmethod
    def ties_of(self, business_id: str) -> list[Tie]:
        """The business's ties, normalised (smaller id first), sorted."""

    @abstractmethod
    def all_ties(self, business_ids: Sequence[str] | None = None) -> list[Tie]:
        """Every tie in the graph (or those touching `business_ids`), normalised, sorted."""

    @abstractmethod
    def is_do_not_introduce(self, a: str, b: str) -> bool: ...

    @abstractmethod
    def do_not_introduce_pairs(self, business_ids: Sequence[str] | None = None) -> set[tuple[str, str]]:
        """Every opted-out pair (or those touching `business_ids`) as (smaller id, larger id)."""

    @abstractmethod
    def stats(self) -> GraphStats: ...

    # Matching: embeddings, inferred categories, suggestions, feedback
    @abstractmethod
    def embedding_hashes(self, field: str, ids: Sequence[str] | None = None) -> dict[str, str]:
        """business id -> hash of the text its stored `field` vector was made from (all, or of `ids`)."""

    @abstractmethod
    def load_embeddings(self, field: str, ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        """Business ids (all, or those of `ids` that have one) and their `field` vectors as one
        float32 matrix, rows in id order."""

    def embedding_batches(self, field: str, size: int = 10_000) -> Iterator[tuple[list[str], np.ndarray]]:
        """Every `field` vector, a batch of ids and their matrix at a time, in id order: a whole
        book's vectors without two copies of them in memory."""
        ids, vectors = self.load_embeddings(field)
        for start in range(0, len(ids), size):
            yield ids[start : start + size], vectors[start : start + size]

    # Vector search: Neo4j answers from its vector indexes, the embedded store by an exact scan.
    has_vector_index = False

    def ensure_vector_indexes(self, dimensions: int) -> None:
        """Make sure each embedding field has a cosine vector index of `dimensions` (the model's);
        an index of other dimensions (the model changed) is rebuilt. No-op without indexes."""
        return None

    def nearest(self, field: str, vectors: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """For each query vector (unit length), up to `k` (business id, cosine similarity) of
        the stored `field` vectors most similar to it, most similar first. Archived businesses
        count too (they keep their vectors; the matcher skips what its book does not hold), so
        the k-th similarity bounds what a newcomer must beat to enter. Here an exact scan that
        reads every vector per call (fine for tools and tests); the matcher asks only stores
        with a vector index."""
        ids, stored = self.load_embeddings(field)
        if not ids or not len(vectors):
            return [[] for _ in range(len(vectors))]
        similarity = np.asarray(vectors, dtype=np.float32) @ stored.T
        best = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        return [[(ids[j], float(similarity[n, j])) for j in row] for n, row in enumerate(best.tolist())]

    @abstractmethod
    def inferred_categories(self) -> dict[str, list[InferredCategory]]:
        """business id -> its inferred categories, most confident first."""

    @abstractmethod
    def list_feedback(self, business_ids: Sequence[str] | None = None) -> list[Feedback]:
        """All feedback (or that touching `business_ids`), oldest first."""

    @abstractmethod
    def match_state(self) -> MatchState: ...

    @abstractmethod
    def get_generation(self, generation: int) -> Generation | None: ...

    def published_generation(self) -> Generation | None:
        """The generation readers see now (the newest published), if any."""
        state = self.match_state()
        return None if state.published is None else self.get_generation(state.published)

    @abstractmethod
    def list_generations(self, limit: int = 20) -> list[Generation]:
        """Newest first."""

    @abstractmethod
    def prune_lists(self, *, abandoned: bool = False, superseded_by: int | None = None, below_base: int = 0) -> int:
        """Delete lists readers can no longer see: every list of an abandoned generation
        (`abandoned`), the lists that generation `superseded_by` replaced, and up to
        `below_base` lists older than the last full generation. Returns how many; runs in
        batches, each its own transaction."""

    @abstractmethod
    def suggestions_for(self, business_id: str) -> list[Suggestion]:
        """The business's published suggestions by rank, without any that became unsafe since
        they were computed: an archived or opted-out side, a blocked or tied pair, or a pair
        with feedback newer than the list."""

    @abstractmethod
    def new_in_generation(self, generation: int) -> list[tuple[str, str, int, float]]:
        """(business id, other id, rank, score) of the suggestions in the lists generation
        `generation` wrote that the same business's previous list did not hold (all of a first
        list's), by business then rank."""

    @abstractmethod
    def suggestions_for_salesperson(self, salesperson_id: str, limit: int | None = None) -> list[Suggestion]:
        """The published suggestions of every business the salesperson manages (filtered as
        `suggestions_for`), best first (by score; ties by business id, then other id, both
        descending), at most `limit`: one read for a whole book, which stops at `limit`."""

    @abstractmethod
    def suggestion_sheet(self, business_id: str) -> SuggestionSheet:
        """`suggestions_for(business_id)` with both sides of each, their salespeople, the
        consents among them and the published generation, in one read (one snapshot); the
        business itself is in `businesses` if it exists, even without suggestions."""

    def best_sheet(self, salesperson_id: str, limit: int) -> SuggestionSheet:
        """The salesperson's best `limit` pairs as a sheet (see `suggestion_sheet`): their
        suggestions in `suggestions_for_salesperson`'s order, each pair once, from its better
        side (a pair within the book is listed from both); the salesperson is in
        `salespeople` if they exist. Cached until the view version moves: a book's best is
        read often (Today, the API, digests) and costs a walk of the book's suggestions, while a
        business's sheet is one cheap read, of too many businesses to keep."""
        return self.sheets.get(
            (salesperson_id, limit), self.view_version(), lambda: self._read_best_sheet(salesperson_id, limit)
        )

    @abstractmethod
    def view_version(self) -> str | None:
        """The token every write that may change a suggestion sheet renews (one tiny read)."""

    @abstractmethod
    def _read_best_sheet(self, salesperson_id: str, limit: int) -> SuggestionSheet:
        """`best_sheet`, read from the store."""

    @abstractmethod
    def all_suggestions(self) -> list[Suggestion]:
        """Every published suggestion (filtered as `suggestions_for`), by business id then rank."""

    @abstractmethod
    def pending_changes(self) -> list[PendingChange]:
        """Businesses touched by changes the matcher has not taken in yet, oldest first."""

    @abstractmethod
    def suggestion_events(self, business_id: str | None = None) -> list[SuggestionEvent]:
        """Kept suggestions (all, or where `business_id` is either side), oldest first."""

    @abstractmethod
    def contact_consents(self, business_id: str) -> list[ContactConsent]:
        """Consents the owner of `business_id` gave, by other id."""

    @abstractmethod
    def contact_consents_of(self, business_ids: Sequence[str]) -> list[ContactConsent]:
        """Consents the owners of these businesses gave, by business then other id."""

    # Introductions
    @abstractmethod
    def get_introduction(self, introduction_id: str) -> Introduction | None:
        """The introduction with its steps and feedback, oldest first."""

    @abstractmethod
    def list_introductions(
        self,
        *,
        business_id: str | None = None,
        salesperson_id: str | None = None,
        status: IntroStatus | None = None,
        limit: int = 50,
    ) -> list[Introduction]:
        """Newest first: those of a business (either side), of a salesperson's book (either
        side managed by them), with a status; all when none is given."""

    @abstractmethod
    def refresh_parts(self, generation: int, *, states: bool = True) -> list[RefreshPart]:
        """The parts of a generation's split refresh, by number (with the helpers' states,
        unless `states` is False: polled while waiting, they would be read again and again)."""

    # Webhooks
    @abstractmethod
    def get_webhook(self, webhook_id: str) -> WebhookSubscription | None: ...

    @abstractmethod
    def list_webhooks(self, *, active: bool = True) -> list[WebhookSubscription]:
        """Oldest first; `active` False lists disabled ones too."""

    @abstractmethod
    def get_delivery(self, delivery_id: str) -> WebhookDelivery | None: ...

    @abstractmethod
    def list_deliveries(
        self,
        *,
        subscription_id: str | None = None,
        status: DeliveryStatus | None = None,
        due_before: datetime | None = None,
        limit: int = 50,
    ) -> list[WebhookDelivery]:
        """Newest first; `due_before`: pending ones whose next attempt is due then (oldest first)."""

    @abstractmethod
    def introduction_gaps(
        self, salesperson_id: str | None, before: datetime, limit: int
    ) -> tuple[int, list[IntroductionGap]]:
        """How many active accounts of a book (None: every book) were never in an introduction
        or last in one before `before`, and the first `limit` (1 or more) of them: never first (oldest
        customers first), then the longest waiting; ties by name, then id."""

    @abstractmethod
    def last_introduced(self, business_ids: Sequence[str]) -> dict[str, datetime]:
        """For those of `business_ids` in any introduction (either side, any status), when the
        newest was made."""

    @abstractmethod
    def digest_preferences(self, salesperson_id: str) -> DigestPreferences:
        """The salesperson's digest preferences (the defaults until they set theirs)."""

    @abstractmethod
    def all_digest_preferences(self) -> list[DigestPreferences]:
        """Every salesperson's digest preferences (the defaults for those who set none), by id."""

    @abstractmethod
    def get_digest(self, salesperson_id: str, week: str) -> Digest | None: ...

    @abstractmethod
    def list_digests(
        self,
        *,
        week: str | None = None,
        salesperson_id: str | None = None,
        status: DigestStatus | None = None,
        bodies: bool = True,
    ) -> list[Digest]:
        """The digests recorded for a week, of a salesperson, in a status (all given must
        hold), newest first; `bodies` False leaves their text and html empty (a cheaper read)."""

    @abstractmethod
    def link_used(self, link_id: str) -> datetime | None:
        """When a one-time link was used, if it was."""

    @abstractmethod
    def digest_items(
        self, *, salesperson_id: str | None = None, since: datetime | None = None
    ) -> list[tuple[str, DigestItem]]:
        """What the digests recorded since `since` (all when None) held, of one salesperson or
        everyone's, as (salesperson id, item); digests given up (never delivered) left out."""

    # Sign-in
    @abstractmethod
    def credentials_for(self, login: str) -> Credentials | None:
        """The salesperson whose id is `login`, else the one whose email is (either ignoring
        case), with their password hash; None if there is none."""

    # API tokens
    @abstractmethod
    def api_token_by_hash(self, secret_hash: str) -> ApiToken | None:
        """The token whose secret hashes to `secret_hash` (revoked or not), if any."""

    @abstractmethod
    def list_api_tokens(self) -> list[ApiToken]:
        """Every token, revoked ones too, oldest first."""

    # Jobs
    @abstractmethod
    def get_job(self, job_id: str) -> Job | None: ...

    @abstractmethod
    def list_jobs(self, *, limit: int = 20, status: JobStatus | None = None) -> list[Job]:
        """Newest first."""
