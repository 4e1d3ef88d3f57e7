"""The Today page: a salesperson's best open suggestions as cards, filtered, each with why it
is worth acting on now.

One read of the book's best suggestions (matches.best_listing) and one of when each side was
last introduced; the filters run over those, so a filter never costs another query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from graph import GraphStore
from netweave.services.access import Viewer
from netweave.services.matches import Party, SuggestionView, best_listing

POOL = 100  # the best pairs of the book that the filters choose from
NEW_CUSTOMER = timedelta(days=30)
NEW_PROFILE = timedelta(days=14)
LONG_WAIT = timedelta(days=90)


@dataclass(frozen=True)
class TodayFilters:
    search: str = ""  # in either side's name or kinds
    city: str = ""
    kind: str = ""
    min_score: float = 0.0  # 0..1
    never_introduced: bool = True  # hide pairs introduced before (whatever came of it)


@dataclass(frozen=True)
class Card:
    view: SuggestionView
    why_now: tuple[str, ...]
    last_introduced: datetime | None  # the other side's newest introduction, if any

    @property
    def key(self) -> str:
        """A stable id for the card in a page (its element id)."""
        return f"{self.view.business.id}--{self.view.other.id}"


@dataclass(frozen=True)
class Today:
    cards: list[Card]
    pool: int  # open suggestions considered before the filters
    generation: int | None
    cities: list[str]  # what the filters can choose from
    kinds: list[str]


def why_now(view: SuggestionView, last: dict[str, datetime], now: datetime) -> tuple[str, ...]:
    """Why the pair is worth acting on now (Today's cards, the weekly email): a new customer,
    a changed profile, a partner never or long not introduced. `last`: last_introduced."""
    why = []
    for party in (view.business, view.other):
        if party.since and now - party.since <= NEW_CUSTOMER:
            why.append(f"{party.name} became a customer on {party.since:%b} {party.since.day}")
        elif party.updated_at and now - party.updated_at <= NEW_PROFILE:
            why.append(f"{party.name}'s profile changed on {party.updated_at:%b} {party.updated_at.day}")
    other = view.other
    if other.id not in last:
        why.append(f"{other.name} has not had an introduction yet")
    elif now - last[other.id] >= LONG_WAIT:
        why.append(f"{other.name} has waited {(now - last[other.id]).days} days since its last introduction")
    return tuple(why)


def _matches(view: SuggestionView, filters: TodayFilters) -> bool:
    sides = (view.business, view.other)
    if view.score < filters.min_score:
        return False
    if filters.city and not any((p.city or "").casefold() == filters.city.casefold() for p in sides):
        return False
    if filters.kind and not any(filters.kind.casefold() in (k.casefold() for k in p.categories) for p in sides):
        return False
    if filters.search:
        wanted = filters.search.casefold()
        text = " ".join(f"{p.name} {' '.join(p.categories)} {p.city or ''}" for p in sides).casefold()
        if wanted not in text:
            return False
    return True


def _choices(parties: list[Party]) -> tuple[list[str], list[str]]:
    cities = sorted({p.city for p in parties if p.city}, key=str.casefold)
    kinds = sorted({k for p in parties for k in p.categories}, key=str.casefold)
    return cities, kinds


def today(
    store: GraphStore,
    viewer: Viewer,
    salesperson_id: str,
    filters: TodayFilters,
    *,
    limit: int = 30,
    now: datetime | None = None,
) -> Today:
    """The book's best suggestions that pass the filters, best first, at most `limit`. The
    viewer must see the book (NotAllowed otherwise)."""
    now = now or datetime.now(UTC)
    listing = best_listing(store, viewer, salesperson_id, POOL)
    views = listing.views
    last = store.last_introduced([p.id for v in views for p in (v.business, v.other)]) if views else {}
    if filters.never_introduced:
        # Pairs only: an earlier introduction of this very pair, whatever came of it.
        pairs = _introduced_pairs(store, salesperson_id, views)
        views = [v for v in views if frozenset((v.business.id, v.other.id)) not in pairs]
    chosen = [v for v in views if _matches(v, filters)][:limit]
    cities, kinds = _choices([p for v in listing.views for p in (v.business, v.other)])
    return Today(
        cards=[Card(v, why_now(v, last, now), last.get(v.other.id)) for v in chosen],
        pool=len(listing.views),
        generation=listing.generation,
        cities=cities,
        kinds=kinds,
    )


def _introduced_pairs(store: GraphStore, salesperson_id: str, views: list[SuggestionView]) -> set[frozenset[str]]:
    if not views:
        return set()
    introductions = store.list_introductions(salesperson_id=salesperson_id, limit=1000)
    return {frozenset((i.a_id, i.b_id)) for i in introductions}
