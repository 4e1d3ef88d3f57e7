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
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum


def slugify(text: str) -> str:
    """Lower-case ASCII words joined by '-': 'Saint Paul, MN' -> 'saint-paul-mn'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


@dataclass(frozen=True)
class Salesperson:
    id: str
    name: str
    email: str | None = None


@dataclass(frozen=True)
class Place:
    city: str
    region: str = ""
    country: str = ""
    metro: str = ""
    lat: float | None = None
    lon: float | None = None

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
class StoredBusiness:
    record: BusinessRecord
    created_at: datetime
    updated_at: datetime

    @property
    def id(self) -> str:
        return self.record.id


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
    businesses: int
    salespeople: int
    categories: int
    places: int
    ties: int
    opted_out_pairs: int
    by_category: dict[str, int] = field(default_factory=dict)


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
    """One ranked introduction for `business_id`, with reasons for each side."""

    business_id: str
    other_id: str
    rank: int
    score: float
    reasons: tuple[str, ...]
    other_reasons: tuple[str, ...]
    computed_at: datetime


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
