"""Suggestions as a salesperson may see them, and what they do about them.

A suggestion always involves a business of the viewer's book (or any, for a manager). When
the other business belongs to another salesperson, both owners are named and the other
side's contact details stay hidden until its owner shares them (`share_contact`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from graph import GraphStore, GraphWriter, StoredBusiness, Tie, TieKind
from graph.records import (
    ContactConsent,
    DismissReason,
    Feedback,
    FeedbackKind,
    Job,
    Suggestion,
    SuggestionEvent,
    SuggestionEventKind,
    SuggestionSheet,
)
from netweave.jobs import JobQueue
from netweave.matching.eligibility import learned_factor, pair_signals
from netweave.matching.kinds import named_kinds
from netweave.matching.rules import Rules
from netweave.matching.settings import Weights
from netweave.services.access import NotAllowed, NotFound, Viewer, business_for, check_business
from netweave.services.customers import request_refresh


@dataclass(frozen=True)
class Contact:
    contact_name: str | None
    email: str | None


@dataclass(frozen=True)
class Party:
    """One side of a suggestion, as the viewer may see it."""

    id: str
    name: str
    categories: tuple[str, ...]
    city: str | None
    website: str | None
    owner_id: str
    owner_name: str
    mine: bool  # in the viewer's book
    contact: Contact | None  # None: hidden until the owner shares it
    since: datetime | None = None  # a customer since (first imported)
    updated_at: datetime | None = None  # its profile last changed


@dataclass(frozen=True)
class SuggestionView:
    business: Party  # the side whose list this is
    other: Party
    rank: int
    score: float
    reasons: tuple[str, ...]  # why `business` gains
    other_reasons: tuple[str, ...]  # why `other` gains
    across_books: bool
    generation: int
    computed_at: datetime
    suggestion: Suggestion  # as stored, for history


@dataclass(frozen=True)
class Listing:
    """Suggestions as the viewer sees them, and the published generation they come from."""

    views: list[SuggestionView]
    generation: int | None


def _party(sheet: SuggestionSheet, viewer: Viewer, business: StoredBusiness, contact_visible: bool) -> Party:
    record = business.record
    owner = sheet.salespeople.get(record.salesperson_id)
    return Party(
        id=record.id,
        name=record.name,
        categories=record.categories,
        city=record.place.city if record.place else None,
        website=record.website,
        owner_id=record.salesperson_id,
        owner_name=owner.name if owner else record.salesperson_id,
        mine=record.salesperson_id == viewer.salesperson_id,
        contact=Contact(record.contact_name, record.email) if contact_visible else None,
        since=business.created_at,
        updated_at=business.updated_at,
    )


def _listing(viewer: Viewer, sheet: SuggestionSheet, suggestions: Iterable[Suggestion]) -> Listing:
    views = []
    for s in suggestions:
        mine, other = sheet.businesses.get(s.business_id), sheet.businesses.get(s.other_id)
        if mine is None or other is None:
            continue
        across = mine.record.salesperson_id != other.record.salesperson_id
        # The other side's contacts: same owner, a manager, or its owner agreed to share them.
        visible = not across or viewer.sees_every_book or (other.id, mine.id) in sheet.shared_contacts
        views.append(
            SuggestionView(
                _party(sheet, viewer, mine, True),
                _party(sheet, viewer, other, visible),
                s.rank,
                s.score,
                s.reasons,
                s.other_reasons,
                across,
                s.generation,
                s.computed_at,
                s,
            )
        )
    return Listing(views, sheet.published)


def business_listing(store: GraphStore, viewer: Viewer, business_id: str) -> Listing:
    """The business's current suggestions, best first (the viewer must manage it): one read."""
    sheet = store.suggestion_sheet(business_id)
    check_business(viewer, sheet.businesses.get(business_id), business_id)
    return _listing(viewer, sheet, sheet.suggestions)


def suggestions_for_business(store: GraphStore, viewer: Viewer, business_id: str) -> list[SuggestionView]:
    """The business's current suggestions, best first (the viewer must manage it)."""
    return business_listing(store, viewer, business_id).views


def best_listing(store: GraphStore, viewer: Viewer, salesperson_id: str, limit: int = 20) -> Listing:
    """The best suggestions across a salesperson's book, each pair once, best first: one read."""
    viewer.require_book(salesperson_id)
    sheet = store.best_sheet(salesperson_id, limit)  # each pair once
    if salesperson_id not in sheet.salespeople:
        raise NotFound(f"no salesperson {salesperson_id!r}")
    return _listing(viewer, sheet, sheet.suggestions)


def best_for_salesperson(
    store: GraphStore, viewer: Viewer, salesperson_id: str, limit: int = 20
) -> list[SuggestionView]:
    """The best suggestions across a salesperson's book, each pair once, best first."""
    return best_listing(store, viewer, salesperson_id, limit).views


def record_feedback(
    store: GraphStore,
    jobs: JobQueue,
    viewer: Viewer,
    business_id: str,
    other_id: str,
    kind: FeedbackKind,
    reason: str = "",
    *,
    channel: str = "cli",
    now: datetime | None = None,
    also: Callable[[GraphWriter], object] | None = None,
) -> Job | None:
    """A verdict on a suggested pair, or what became of an introduction; returns the refresh
    job that takes it in (None if the queue cannot be reached: see `request_refresh`).

    The viewer must manage one side. Dismissals need a reason; 'already_know' also records
    that the two know each other. The suggestion as it was shown is kept in the history.
    `also` writes more in the same transaction (an email link marked used).
    """
    if business_id == other_id:
        raise ValueError("feedback needs two different customers")
    system = Viewer.system()
    mine, other = business_for(store, system, business_id), business_for(store, system, other_id)
    if not (viewer.manages(mine) or viewer.manages(other)):
        raise NotAllowed(f"{viewer.label} manages neither {business_id!r} nor {other_id!r}")
    if kind is FeedbackKind.DISMISSED and reason not in {r.value for r in DismissReason}:
        raise ValueError(f"reason: {reason!r} is not one of {', '.join(r.value for r in DismissReason)}")
    at = now or datetime.now(UTC)
    feedback = Feedback(
        business_id, other_id, kind, at, reason if kind is FeedbackKind.DISMISSED else "", viewer.salesperson_id
    )
    shown = [s for s in store.suggestions_for(business_id) if s.other_id == other_id]
    shown += [s for s in store.suggestions_for(other_id) if s.other_id == business_id]
    detail = f"{kind.value}:{feedback.reason}" if feedback.reason else kind.value
    events = [SuggestionEvent(s, SuggestionEventKind.ACTED, channel, at, viewer.salesperson_id, detail) for s in shown]

    def work(tx: GraphWriter) -> None:
        if kind is FeedbackKind.DISMISSED and reason == DismissReason.ALREADY_KNOW:
            tx.add_ties([Tie(business_id, other_id, TieKind.KNOWS)], at)
        tx.record_feedback(feedback)
        tx.record_suggestion_events(events)
        if also is not None:
            also(tx)

    store.write(work)
    return request_refresh(jobs, viewer)


def share_contact(
    store: GraphStore, viewer: Viewer, business_id: str, with_business_id: str, now: datetime | None = None
) -> bool:
    """The owner of `business_id` lets the salesperson of `with_business_id` see its contact
    details in their suggestion; True if it is new."""
    business_for(store, viewer, business_id)
    business_for(store, Viewer.system(), with_business_id)
    consent = ContactConsent(business_id, with_business_id, viewer.label, now or datetime.now(UTC))
    return store.write(lambda tx: tx.grant_contact(consent))


def mark_shown(
    store: GraphStore, viewer: Viewer, views: list[SuggestionView], channel: str, now: datetime | None = None
) -> None:
    """Keep the suggestions a salesperson was shown (for measuring real-world precision)."""
    if not views:
        return
    at = now or datetime.now(UTC)
    events = [
        SuggestionEvent(v.suggestion, SuggestionEventKind.SHOWN, channel, at, viewer.salesperson_id) for v in views
    ]
    store.write(lambda tx: tx.record_suggestion_events(events))


@dataclass(frozen=True)
class LearnedWeight:
    """How far outcomes have moved one business's weight for one kind of partner."""

    business_id: str
    business_name: str
    kind: str
    factor: float  # 1 = the rules' weight as it is
    accepted: float  # verdicts, weighted by age
    rejected: float


def learned_weights(store: GraphStore, rules: Rules, weights: Weights) -> list[LearnedWeight]:
    """Every weight that introductions' outcomes and dismissals have moved, furthest first."""
    businesses = {b.id: b for b in store.all_businesses()}
    inferred = {i: c[0].category for i, c in store.inferred_categories().items() if c}

    def kind_of(business_id: str) -> str | None:
        business = businesses.get(business_id)
        if business is None:
            return None
        return rules.first_kind(named_kinds(business.record)) or inferred.get(business_id)

    feedback_of: dict[str, list[Feedback]] = {}
    for item in store.list_feedback():
        for business_id in {item.a, item.b}:
            feedback_of.setdefault(business_id, []).append(item)
    moved: list[LearnedWeight] = []
    for business_id, feedback in feedback_of.items():
        if business_id not in businesses:
            continue
        verdicts = pair_signals(business_id, [], set(), feedback, weights).verdicts
        by_kind: dict[str, list[float]] = {}
        for other, (yes, no) in verdicts.items():
            if (kind := kind_of(other)) is not None:
                totals = by_kind.setdefault(kind, [0.0, 0.0])
                totals[0] += yes
                totals[1] += no
        for kind, (yes, no) in by_kind.items():
            factor = float(learned_factor(np.array([yes]), np.array([no]), weights)[0])
            if factor != 1.0:
                name = businesses[business_id].record.name
                moved.append(LearnedWeight(business_id, name, kind, factor, yes, no))
    return sorted(moved, key=lambda m: (-abs(m.factor - 1), m.business_id, m.kind))


def refresh_business(store: GraphStore, jobs: JobQueue, viewer: Viewer, business_id: str) -> Job | None:
    """Recompute the suggestions a business's list and its partners' lists hold now; returns the
    job to follow (None if the queue cannot be reached: the refresh is pending, the worker's
    sweep takes it in)."""
    business_for(store, viewer, business_id)
    store.write(lambda tx: tx.mark_pending([business_id], datetime.now(UTC)))
    return request_refresh(jobs, viewer)


def refresh_everything(jobs: JobQueue, viewer: Viewer) -> Job:
    """Every list computed anew (after a rules or model change); a manager's or the system's call."""
    if not viewer.sees_every_book:
        raise NotAllowed(f"{viewer.label} may not refresh every book")
    return jobs.refresh_all(requested_by=viewer.label)


def job_for(jobs: JobQueue, viewer: Viewer, job_id: str) -> Job:
    """A job the viewer asked for (any job, for one who sees every book)."""
    job = jobs.get(job_id)
    if job is None or not (viewer.sees_every_book or job.requested_by == viewer.label):
        raise NotFound(f"no job {job_id!r}")
    return job
