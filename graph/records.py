"""The values that go in and out of the graph, shared by both backends.

Records are immutable and hold plain data only, so the two backends can be held
to one contract: what you write is what you read back.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum


def slugify(text: str) -> str:
    """Lower-case ASCII words joined by '-': 'Saint Paul, MN' -> 'saint-paul-mn'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


class Role(StrEnum):
    """What a salesperson may see: their own book, or (a manager) every book of the team."""

    SALESPERSON = "salesperson"
    MANAGER = "manager"


@dataclass(frozen=True)
class Salesperson:
    id: str
    name: str
    email: str | None = None
    role: Role = Role.SALESPERSON


@dataclass(frozen=True)
class Place:
    city: str
    region: str = ""
    country: str = ""
    metro: str = ""
    lat: float | None = None
    lon: float | None = None
    postal_code: str = ""

    @property
    def located(self) -> bool:
        """Whether the place has coordinates (given, or found from its postal code or city)."""
        return self.lat is not None and self.lon is not None

    @property
    def id(self) -> str:
        return slugify(f"{self.country} {self.region} {self.city}")

    @property
    def market(self) -> str:
        """The local market a business competes in: its metro, else its city."""
        return self.metro or f"{self.city}, {self.region}".strip(", ")


@dataclass(frozen=True)
class Category:
    name: str

    @property
    def slug(self) -> str:
        return slugify(self.name)


@dataclass(frozen=True)
class BusinessRecord:
    """A customer account as the CRM knows it; `id` is the CRM's external id."""

    id: str
    name: str
    salesperson_id: str
    description: str = ""
    customers: str = ""
    needs: str = ""
    website: str | None = None
    email: str | None = None
    contact_name: str | None = None
    employees: int | None = None
    categories: tuple[str, ...] = ()
    place: Place | None = None
    opted_out: bool = False

    def content_hash(self) -> str:
        """Stable digest of everything stored for the record; equal hashes mean 'unchanged'."""
        # The same JSON as dataclasses.asdict would give, without its deep copies (imports hash every row).
        plain = {name: getattr(self, name) for name in _field_names(BusinessRecord)}
        if self.place is not None:
            plain["place"] = {name: getattr(self.place, name) for name in _field_names(Place)}
        payload = json.dumps(plain, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class OptOut:
    """A customer's wish, recorded in Netweave, to receive no introductions at all."""

    reason: str
    at: datetime


class BusinessStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


@dataclass(frozen=True)
class StoredBusiness:
    """A record as stored, with what Netweave keeps beside the CRM's fields.

    `archived_at` and `opt_out` are Netweave's own state: a re-import of the CRM record
    leaves them as they are (the content hash covers only the record).
    """

    record: BusinessRecord
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None
    opt_out: OptOut | None = None

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def status(self) -> BusinessStatus:
        return BusinessStatus.ARCHIVED if self.archived_at else BusinessStatus.ACTIVE

    @property
    def opted_out(self) -> bool:
        """Out of all introductions: by the CRM's column or by an opt-out recorded here."""
        return self.record.opted_out or self.opt_out is not None


class TieKind(StrEnum):
    """Existing relationships between two customers; both rule out an intro."""

    KNOWS = "KNOWS"
    PARTNERS_WITH = "PARTNERS_WITH"


@dataclass(frozen=True)
class Tie:
    a: str
    b: str
    kind: TieKind = TieKind.KNOWS

    def normalised(self) -> Tie:
        """Ties are undirected: keep the smaller id first so each pair has one form."""
        low, high = sorted((self.a, self.b))
        return Tie(low, high, TieKind(self.kind))


class UpsertOutcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class SalespersonSummary:
    salesperson: Salesperson
    business_count: int


@dataclass(frozen=True)
class GraphStats:
    """Counts of what the graph holds; businesses and categories count active accounts only."""

    businesses: int
    salespeople: int
    categories: int
    places: int
    ties: int
    opted_out_pairs: int
    by_category: dict[str, int] = field(default_factory=dict)
    archived: int = 0


# Matching: what the matcher stores in the graph and reads back.
EMBEDDING_FIELDS = ("offers", "customers", "needs")


@dataclass(frozen=True)
class InferredCategory:
    """A kind of business the matcher read from a business's own text."""

    business_id: str
    category: str
    confidence: float


@dataclass(frozen=True)
class Suggestion:
    """One ranked introduction for `business_id`, with reasons for each side.

    Read back from the store, it also names the generation that published it and that
    generation's model and rules digest; the matcher leaves those empty when it writes.
    """

    business_id: str
    other_id: str
    rank: int
    score: float
    reasons: tuple[str, ...]
    other_reasons: tuple[str, ...]
    computed_at: datetime
    generation: int = 0
    model: str = ""
    rules_digest: str = ""

    def ranked(self) -> tuple[str, str, int, float, tuple[str, ...], tuple[str, ...]]:
        """What the list says, without when and by which generation it was computed."""
        return (self.business_id, self.other_id, self.rank, self.score, self.reasons, self.other_reasons)


@dataclass(frozen=True)
class SuggestionList:
    """A business's whole ranked list as one refresh computed it (empty is a list too)."""

    business_id: str
    computed_at: datetime
    suggestions: tuple[Suggestion, ...] = ()


class GenerationKind(StrEnum):
    FULL = "full"  # every active business's list; older lists are gone once it is published
    INCREMENTAL = "incremental"  # the lists a set of changes affected; the others stay


class GenerationStatus(StrEnum):
    BUILDING = "building"
    PUBLISHED = "published"
    ABANDONED = "abandoned"  # its refresh stopped before publishing (a crash): never shown


@dataclass(frozen=True)
class Generation:
    """One refresh's lists, published all at once: readers see the previous complete set
    until this one is committed."""

    id: int
    kind: GenerationKind
    status: GenerationStatus
    model: str
    rules_digest: str
    settings_digest: str
    started_at: datetime
    published_at: datetime | None = None
    lists: int = 0
    suggestions: int = 0
    job_id: str | None = None


@dataclass(frozen=True)
class PendingChange:
    """A business whose suggestions (or those of others) a change may have affected.

    Written in the same transaction as the change; `version` counts the changes since it
    was last taken in, so the matcher clears only what it has seen.
    """

    business_id: str
    version: int
    first_at: datetime
    at: datetime


class SuggestionEventKind(StrEnum):
    SHOWN = "shown"
    ACTED = "acted"


@dataclass(frozen=True)
class SuggestionEvent:
    """A suggestion that was shown to a salesperson or acted on, kept after its generation
    is gone, so real-world precision can be measured."""

    suggestion: Suggestion
    kind: SuggestionEventKind
    channel: str  # web, email, api, cli
    at: datetime
    salesperson_id: str | None = None
    detail: str = ""  # for an action: what was done (e.g. "dismissed:not_relevant")


@dataclass(frozen=True)
class ContactConsent:
    """The owner of `business_id` agreed that `other_id`'s salesperson may see its contact details."""

    business_id: str
    other_id: str
    granted_by: str
    at: datetime


@dataclass(frozen=True)
class SuggestionSheet:
    """Published suggestions with all it takes to show them, read at one moment in one go."""

    published: int | None  # the generation readers see
    suggestions: tuple[Suggestion, ...]
    businesses: dict[str, StoredBusiness]  # both sides of every suggestion, and the one asked about
    salespeople: dict[str, Salesperson]  # who manages each, and the one asked about
    shared_contacts: frozenset[tuple[str, str]]  # (business, other): business shares its contact with other


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class JobProgress:
    stage: str
    done: int
    total: int


@dataclass(frozen=True)
class Job:
    """Background work with an id and a status that every process can read."""

    id: str
    kind: str
    status: JobStatus
    created_at: datetime
    requested_by: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    summary: str = ""
    error: str = ""
    progress: JobProgress | None = None


class FeedbackKind(StrEnum):
    DISMISSED = "dismissed"
    INTRO_MADE = "intro_made"
    INTRO_ACCEPTED = "intro_accepted"
    INTRO_DECLINED = "intro_declined"


class DismissReason(StrEnum):
    COMPETITOR = "competitor"
    NOT_RELEVANT = "not_relevant"
    ALREADY_KNOW = "already_know"
    BAD_TIMING = "bad_timing"


@dataclass(frozen=True)
class Feedback:
    """A salesperson's verdict on a suggested pair, or what became of an introduction."""

    a: str
    b: str
    kind: FeedbackKind
    at: datetime
    reason: str = ""
    salesperson_id: str | None = None


# The JSON API: tokens for the CRM and its integrators.


class TokenScope(StrEnum):
    READ = "read"  # read businesses, matches, jobs
    WRITE = "write"  # change them: upserts, archive, feedback, refresh requests
    ADMIN = "admin"  # what changes the whole service: full refreshes


@dataclass(frozen=True)
class IntroductionGap:
    """An active account that has gone without an introduction: when it was last in one (None:
    never), and when it became a customer."""

    business_id: str
    name: str
    created_at: datetime
    last_introduced: datetime | None


@dataclass(frozen=True)
class DigestPreferences:
    """How a salesperson wants the weekly email: at all (False: paused), on which day (0
    Monday .. 6 Sunday) and hour of their own time zone, how many introductions it suggests,
    and whether a week with nothing new still brings a short note."""

    salesperson_id: str
    weekly: bool = True
    weekday: int = 0
    size: int = 5
    hour: int = 8  # 0..23, local
    timezone: str = "UTC"  # an IANA name (zoneinfo)
    note_when_empty: bool = False


class PartStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"  # a worker holds it until lease_until
    DONE = "done"


@dataclass(frozen=True)
class RefreshPart:
    """One part of a full refresh split by market: its rows are ranked by whichever worker
    claims it (the one that began the refresh, or a helper), into the refresh's generation."""

    generation: int
    part: int  # 0 .. parts - 1
    parts: int
    status: PartStatus
    snapshot: str  # what the book was loaded from: a helper whose book differs leaves the part
    claimed_by: str | None = None
    lease_until: datetime | None = None
    state: bytes | None = None  # what a helper's ranking saw of each row, for the beginner's book


class DigestStatus(StrEnum):
    SENDING = "sending"  # recorded before sending; a run holds it until lease_until
    SENT = "sent"
    FAILED = "failed"  # the last attempt failed; tried again from next_attempt_at
    GAVE_UP = "gave_up"  # failed too often
    EMPTY = "empty"  # nothing new that week, and no note wanted


class DigestItemKind(StrEnum):
    SUGGESTION = "suggestion"  # an introduction to make
    FOLLOW_UP = "follow_up"  # an introduction made a while ago: how did it go?


@dataclass(frozen=True)
class DigestItem:
    """One line of a weekly email: a pair to introduce (a is in the salesperson's book), or
    an introduction to rate."""

    kind: DigestItemKind
    a_id: str
    b_id: str
    score: float = 0.0
    introduction_id: str | None = None


@dataclass(frozen=True)
class Digest:
    """One salesperson's weekly email for one ISO week (e.g. 2026-W48): recorded, with the
    message exactly as it goes out, before it is sent, so a run that stops half-way is
    finished by the next one and nothing goes twice."""

    salesperson_id: str
    week: str
    status: DigestStatus
    created_at: datetime
    items: tuple[DigestItem, ...]
    recipient: str
    subject: str
    text: str
    html: str
    message_id: str
    attempts: int = 0
    lease_until: datetime | None = None
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    last_error: str = ""

    @property
    def id(self) -> str:
        return digest_id(self.salesperson_id, self.week)


def digest_id(salesperson_id: str, week: str) -> str:
    return f"{week}:{salesperson_id}"


def digest_items_json(items: Sequence[DigestItem]) -> str:
    """How both backends keep a digest's items: one JSON text."""
    return json.dumps([[i.kind.value, i.a_id, i.b_id, i.score, i.introduction_id] for i in items])


def digest_items_from_json(text: str) -> tuple[DigestItem, ...]:
    return tuple(DigestItem(DigestItemKind(k), a, b, s, i) for k, a, b, s, i in json.loads(text))


@dataclass(frozen=True)
class Credentials:
    """What signing in to the web app checks: the salesperson and an argon2 hash of their
    password (None until one is set), never the password."""

    salesperson: Salesperson
    password_hash: str | None
    changed_at: datetime | None


@dataclass(frozen=True)
class ApiToken:
    """An API token as stored (its secret only as a hash). Owned by a salesperson (who may be a
    manager), acting with their reach, or, with `salesperson_id` None, by an integration
    (a CRM sync) acting on every book."""

    id: str
    name: str
    scopes: tuple[TokenScope, ...]
    created_at: datetime
    salesperson_id: str | None = None
    created_by: str | None = None
    revoked_at: datetime | None = None


# Introductions: from a suggestion to a double opt-in, and what became of it.


class IntroStatus(StrEnum):
    PROPOSED = "proposed"  # drafted from a suggestion; nobody asked yet
    ASKED = "asked"  # each side asked whether they want the introduction
    ACCEPTED = "accepted"  # both said yes
    DECLINED = "declined"  # one said no (or the salesperson let it go)
    INTRODUCED = "introduced"  # the two were put in touch
    MET = "met"
    WON = "won"  # business came of it
    CLOSED = "closed"


@dataclass(frozen=True)
class IntroStep:
    """One move of an introduction: to which status, when, by whom, and a note."""

    status: IntroStatus
    at: datetime
    by: str
    note: str = ""


@dataclass(frozen=True)
class IntroFeedback:
    """What one side said of an introduction: a 1-5 rating and an optional comment."""

    business_id: str
    rating: int
    comment: str
    at: datetime
    by: str


@dataclass(frozen=True)
class Introduction:
    """An introduction between two customers, made from a suggestion `a_id` was shown
    (`a_id`'s list held `b_id`), with a draft message asking each side first."""

    id: str
    a_id: str
    b_id: str
    status: IntroStatus
    created_at: datetime
    created_by: str
    message_a: str  # the draft asking a (names what a gains)
    message_b: str
    score: float = 0.0  # the suggestion's, when it was made
    steps: tuple[IntroStep, ...] = ()
    feedback: tuple[IntroFeedback, ...] = ()

    @property
    def updated_at(self) -> datetime:
        return self.steps[-1].at if self.steps else self.created_at


@dataclass(frozen=True)
class IdempotentRequest:
    """An API request sent with an Idempotency-Key: what it was (a fingerprint of its method,
    path and body) and, once answered, the answer to replay to a retry."""

    token_id: str
    key: str
    fingerprint: str
    created_at: datetime
    status: int | None = None  # None: still being answered
    body: str = ""
    headers: tuple[tuple[str, str], ...] = ()


# Webhooks: a CRM told of events, each delivery signed (Standard Webhooks) and logged.


class WebhookEvent(StrEnum):
    INTRODUCTION_STATUS_CHANGED = "introduction.status_changed"
    SUGGESTIONS_NEW = "suggestions.new"
    REFRESH_FINISHED = "refresh.finished"


@dataclass(frozen=True)
class WebhookSubscription:
    """Where to send which events. The secret signs every delivery, so it is kept (not only a
    hash); `salesperson_id` None: events of every book, else of that salesperson's."""

    id: str
    url: str
    events: tuple[WebhookEvent, ...]
    secret: str = field(repr=False)
    created_at: datetime
    created_by: str
    salesperson_id: str | None = None
    description: str = ""
    disabled_at: datetime | None = None


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # not yet delivered; tried again at next_attempt_at
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after the last attempt (a replay tries again)


@dataclass(frozen=True)
class WebhookDelivery:
    """One event for one subscription. Its id is the `webhook-id` header, the same on every
    attempt, so a receiver can tell a retry from a new event."""

    id: str
    subscription_id: str
    event: WebhookEvent
    payload: str  # the JSON body, exactly as signed
    created_at: datetime
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_status: int | None = None  # the receiver's HTTP status, if it answered
    last_error: str = ""
