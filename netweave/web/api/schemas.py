"""The API's request and response bodies: pydantic models, the single source of both the
validation and the OpenAPI document. A business's writable fields are the importer's own
`BusinessRow` (the same columns, the same validation as a file import)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from graph.records import ApiToken, Job, StoredBusiness
from netweave.importer.rows import BusinessRow
from netweave.services.matches import Party, SuggestionView

MAX_BULK = 1000
MAX_PAGE = 200


class Strict(BaseModel):
    """Input: a field the API does not know is an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


# Headers (documented in the OpenAPI document; read by the routes)


class IdempotentHeaders(BaseModel):
    idempotency_key: str | None = Field(
        default=None,
        alias="Idempotency-Key",
        max_length=255,
        pattern=r"^[!-~](?:[ -~]*[!-~])?$",
        description="Any unique string (a UUID): a retry with the same key gets the first answer, writing nothing.",
    )


class IfMatchHeaders(BaseModel):
    if_match: str | None = Field(
        default=None,
        alias="If-Match",
        description="The ETag you read: the change is made only if nobody changed it since (else 412).",
    )


class IdempotentIfMatchHeaders(IdempotentHeaders, IfMatchHeaders):
    pass


# Problems (RFC 9457)


class FieldError(BaseModel):
    where: Literal["body", "query", "path", "header"] = Field(alias="in")
    field: str
    message: str

    model_config = ConfigDict(populate_by_name=True)


class Problem(BaseModel):
    """An error: `application/problem+json`."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None


# Businesses


class BusinessIn(BusinessRow):
    """A business as the CRM sends it: the import columns (`id` is the CRM's id)."""


class BusinessPatch(Strict):
    """Fields to change; those left out stay as they are. `null` or "" clears a field."""

    name: str | None = None
    salesperson: str | None = None
    salesperson_name: str | None = None
    description: str | None = None
    customers: str | None = None
    needs: str | None = None
    categories: list[str] | str | None = None
    website: str | None = None
    email: str | None = None
    contact_name: str | None = None
    employees: int | str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None
    metro: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    opted_out: bool | None = None


class PlaceOut(BaseModel):
    city: str
    region: str
    country: str
    postal_code: str
    metro: str
    latitude: float | None
    longitude: float | None
    located: bool  # coordinates known (given, or found from the postal code or city)


class OptOutOut(BaseModel):
    reason: str
    at: datetime


class BusinessOut(BaseModel):
    id: str
    name: str
    salesperson: str
    status: Literal["active", "archived"]
    description: str
    customers: str
    needs: str
    categories: list[str]
    website: str | None
    email: str | None
    contact_name: str | None
    employees: int | None
    place: PlaceOut | None
    opted_out: bool  # by the CRM's column or an opt-out recorded here
    opt_out: OptOutOut | None  # the opt-out recorded here, if any
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None

    @classmethod
    def of(cls, business: StoredBusiness) -> BusinessOut:
        record, place = business.record, business.record.place
        where = None
        if place is not None:
            where = PlaceOut(
                city=place.city, region=place.region, country=place.country, postal_code=place.postal_code,
                metro=place.metro, latitude=place.lat, longitude=place.lon, located=place.located,
            )  # fmt: skip
        return cls(
            id=record.id,
            name=record.name,
            salesperson=record.salesperson_id,
            status=business.status.value,
            description=record.description,
            customers=record.customers,
            needs=record.needs,
            categories=list(record.categories),
            website=record.website,
            email=record.email,
            contact_name=record.contact_name,
            employees=record.employees,
            place=where,
            opted_out=business.opted_out,
            opt_out=OptOutOut(reason=business.opt_out.reason, at=business.opt_out.at) if business.opt_out else None,
            created_at=business.created_at,
            updated_at=business.updated_at,
            archived_at=business.archived_at,
        )


class BusinessPage(BaseModel):
    items: list[BusinessOut]
    next_cursor: str | None  # pass as `cursor` for the next page; null on the last


class BusinessQuery(Strict):
    salesperson: str | None = Field(default=None, description="Only this salesperson's accounts (email or id).")
    kind: str | None = Field(default=None, description="Only businesses of this kind (given or inferred).")
    city: str | None = Field(default=None, description="Only businesses in this city (any case).")
    status: Literal["active", "archived", "all"] = "active"
    updated_since: datetime | None = Field(default=None, description="Only businesses changed at or after this time.")
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(default=None, description="`next_cursor` of the previous page (same filters).")


class BulkIn(Strict):
    businesses: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BULK,
        description=(
            "Up to 1,000 businesses, each with the fields of `BusinessIn`. Each is judged on its own: one that"
            " does not validate is rejected in the answer, the others are written."
        ),
    )


class ItemProblem(BaseModel):
    field: str  # "" when the item as a whole is at fault
    message: str


class BulkItemResult(BaseModel):
    index: int  # position in the request
    id: str | None
    result: Literal["created", "updated", "unchanged", "rejected"]
    errors: list[ItemProblem] = []  # why it was rejected
    warnings: list[str] = []  # taken, with something to say (a place that could not be found)


class BulkOut(BaseModel):
    created: int
    updated: int
    unchanged: int
    rejected: int
    items: list[BulkItemResult]
    refresh_job: JobOut | None  # takes the changes into the suggestions; poll it


class WriteOut(BaseModel):
    business: BusinessOut
    result: Literal["created", "updated", "unchanged"]
    warnings: list[str] = []
    refresh_job: JobOut | None


class OptOutIn(Strict):
    reason: str = Field(min_length=1, max_length=500)


# Salespeople


class SalespersonOut(BaseModel):
    id: str
    name: str
    email: str | None
    role: Literal["salesperson", "manager"]
    active_accounts: int | None = None


class SalespersonList(BaseModel):
    items: list[SalespersonOut]


# Matches


class PartyOut(BaseModel):
    id: str
    name: str
    categories: list[str]
    city: str | None
    website: str | None
    salesperson: str
    salesperson_name: str
    in_my_book: bool
    contact_name: str | None  # hidden (null) until the other side's salesperson shares it
    email: str | None
    contact_shared: bool

    @classmethod
    def of(cls, party: Party) -> PartyOut:
        return cls(
            id=party.id,
            name=party.name,
            categories=list(party.categories),
            city=party.city,
            website=party.website,
            salesperson=party.owner_id,
            salesperson_name=party.owner_name,
            in_my_book=party.mine,
            contact_name=party.contact.contact_name if party.contact else None,
            email=party.contact.email if party.contact else None,
            contact_shared=party.contact is not None,
        )


class MatchOut(BaseModel):
    business: PartyOut  # whose list this is
    other: PartyOut  # the suggested introduction
    rank: int
    score: float
    reasons: list[str]  # why `business` gains
    other_reasons: list[str]  # why `other` gains
    across_books: bool
    generation: int
    computed_at: datetime

    @classmethod
    def of(cls, view: SuggestionView) -> MatchOut:
        return cls(
            business=PartyOut.of(view.business),
            other=PartyOut.of(view.other),
            rank=view.rank,
            score=round(view.score, 4),
            reasons=list(view.reasons),
            other_reasons=list(view.other_reasons),
            across_books=view.across_books,
            generation=view.generation,
            computed_at=view.computed_at,
        )


class MatchList(BaseModel):
    items: list[MatchOut]
    generation: int | None  # the published generation the lists come from (null before the first)


class BestQuery(Strict):
    limit: int = Field(default=20, ge=1, le=100)


# Acting on suggestions


class DismissIn(Strict):
    reason: Literal["competitor", "not_relevant", "already_know"] = Field(
        description="competitor and not_relevant count against the pair's kinds; already_know records a tie"
    )


class ActedOut(BaseModel):
    business_id: str
    other_id: str
    done: Literal["dismissed", "snoozed"]
    refresh_job: JobOut | None


class BlockIn(Strict):
    business_id: str = Field(min_length=1)
    other_id: str = Field(min_length=1)
    reason: str = Field(default="", max_length=500)


class BlockOut(BaseModel):
    business_id: str
    other_id: str
    blocked: bool  # whether the pair is blocked now
    changed: bool  # whether this request changed that


# Introductions

IntroStatusName = Literal["proposed", "asked", "accepted", "declined", "introduced", "met", "won", "closed"]


class IntroductionIn(Strict):
    business_id: str = Field(min_length=1, description="The business whose suggestion this is (yours).")
    other_id: str = Field(min_length=1, description="The suggested business.")


class IntroStepOut(BaseModel):
    status: IntroStatusName
    at: datetime
    by: str
    note: str


class IntroFeedbackOut(BaseModel):
    business_id: str
    rating: int
    comment: str
    at: datetime
    by: str


class IntroductionOut(BaseModel):
    id: str
    business_id: str  # side a: whose suggestion it was
    other_id: str  # side b
    status: IntroStatusName
    next: list[IntroStatusName]  # where it may move now
    message_to_business: str  # the draft asking side a first (names what a gains)
    message_to_other: str
    score: float
    created_at: datetime
    created_by: str
    updated_at: datetime
    version: int  # steps so far: send it as If-Match to move from what you read
    steps: list[IntroStepOut]
    feedback: list[IntroFeedbackOut]


class IntroductionList(BaseModel):
    items: list[IntroductionOut]


class IntroductionQuery(Strict):
    business_id: str | None = Field(default=None, description="Only this business's introductions (either side).")
    status: IntroStatusName | None = None
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)


class MoveIn(Strict):
    status: IntroStatusName
    note: str = Field(default="", max_length=2000)


class RatingIn(Strict):
    business_id: str = Field(min_length=1, description="The side whose verdict this is.")
    rating: int = Field(ge=1, le=5, description="1 (poor) to 5 (great)")
    comment: str = Field(default="", max_length=2000)


# Webhooks

EventName = Literal["introduction.status_changed", "suggestions.new", "refresh.finished"]


class WebhookIn(Strict):
    url: str = Field(min_length=1, max_length=2000, description="Where to POST events (http or https).")
    events: list[EventName] = Field(min_length=1)
    description: str = Field(default="", max_length=500)


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[EventName]
    description: str
    scope: str  # a salesperson's id (events of their book), or "every book"
    created_at: datetime
    created_by: str


class WebhookCreated(WebhookOut):
    secret: str  # whsec_...: shown once here; verify each delivery's signature with it


class WebhookList(BaseModel):
    items: list[WebhookOut]


class DeliveryOut(BaseModel):
    id: str  # the webhook-id header of every attempt
    event: EventName
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None  # the receiver's HTTP status
    last_error: str
    payload: dict[str, Any]  # the body as it was signed


class DeliveryList(BaseModel):
    items: list[DeliveryOut]


class DeliveryQuery(Strict):
    status: Literal["pending", "delivered", "failed"] | None = None
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)


# Jobs


class JobProgressOut(BaseModel):
    stage: str
    done: int
    total: int


class JobOut(BaseModel):
    id: str
    kind: str
    status: Literal["queued", "running", "done", "failed"]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    summary: str
    error: str
    progress: JobProgressOut | None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        progress = job.progress
        return cls(
            id=job.id,
            kind=job.kind,
            status=job.status.value,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            summary=job.summary,
            error=job.error,
            progress=JobProgressOut(stage=progress.stage, done=progress.done, total=progress.total)
            if progress
            else None,
        )


class Accepted(BaseModel):
    job: JobOut


# Tokens (read-only here: created and revoked from the CLI)


class TokenOut(BaseModel):
    id: str
    name: str
    scopes: list[str]
    owner: str  # a salesperson's id, or "integration"

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        return cls(id=token.id, name=token.name, scopes=list(token.scopes), owner=token.salesperson_id or "integration")


BulkOut.model_rebuild()
WriteOut.model_rebuild()
