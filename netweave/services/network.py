"""The network around customers: ties they already have, and pairs never to introduce."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from graph import GraphStore, Tie, TieKind
from netweave.jobs import JobQueue
from netweave.services import introductions, matches
from netweave.services.access import NotAllowed, Viewer, business_for
from netweave.services.customers import request_refresh


def _pair(store: GraphStore, viewer: Viewer, a: str, b: str, *, both: bool = False) -> None:
    """Both exist and the viewer manages at least one of them (`both`: each of them)."""
    if a == b:
        raise ValueError("a pair needs two different customers")
    system = Viewer.system()
    first, second = business_for(store, system, a, active=False), business_for(store, system, b, active=False)
    if both and not (viewer.manages(first) and viewer.manages(second)):
        unmanaged = a if not viewer.manages(first) else b
        raise NotAllowed(
            f"{viewer.label} does not manage {unmanaged!r}: a block is lifted by one who manages both, or a manager"
        )
    if not (viewer.manages(first) or viewer.manages(second)):
        raise NotAllowed(f"{viewer.label} manages neither {a!r} nor {b!r}")


def add_tie(
    store: GraphStore, jobs: JobQueue, viewer: Viewer, a: str, b: str, kind: TieKind, now: datetime | None = None
) -> bool:
    """Record that two customers already know (or partner with) each other; True if new."""
    _pair(store, viewer, a, b)
    created = store.write(lambda tx: tx.add_ties([Tie(a, b, kind)], now or datetime.now(UTC)))
    if created:
        request_refresh(jobs, viewer)
    return created > 0


def remove_tie(
    store: GraphStore, jobs: JobQueue, viewer: Viewer, a: str, b: str, kind: TieKind, now: datetime | None = None
) -> bool:
    """Forget a tie; True if it existed."""
    _pair(store, viewer, a, b)
    removed = store.write(lambda tx: tx.remove_ties([Tie(a, b, kind)], now or datetime.now(UTC)))
    if removed:
        request_refresh(jobs, viewer)
    return removed > 0


def block(
    store: GraphStore, jobs: JobQueue, viewer: Viewer, a: str, b: str, reason: str, now: datetime | None = None
) -> bool:
    """Never introduce these two; True if it is new."""
    _pair(store, viewer, a, b)
    created = store.write(lambda tx: tx.add_do_not_introduce(a, b, reason.strip(), now or datetime.now(UTC)))
    if created:
        request_refresh(jobs, viewer)
    return created


def unblock(store: GraphStore, jobs: JobQueue, viewer: Viewer, a: str, b: str, now: datetime | None = None) -> bool:
    """Allow a blocked pair again; True if it was blocked. Either side's salesperson may block a
    pair, but lifting it takes one who manages both (or a manager): a block may be the other side's."""
    _pair(store, viewer, a, b, both=True)
    removed = store.write(lambda tx: tx.remove_do_not_introduce(a, b, now or datetime.now(UTC)))
    if removed:
        request_refresh(jobs, viewer)
    return removed


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    kind: str  # its first category ('' when it has none)
    mine: bool  # in the viewer's book (its page can be opened)
    centre: bool = False


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # "partners", "knows", "introduction" or "suggestion"
    label: str  # why: the reason for a suggestion, the status of an introduction


@dataclass(frozen=True)
class Neighbourhood:
    nodes: list[Node]
    edges: list[Edge]


def neighbourhood(store: GraphStore, viewer: Viewer, business_id: str) -> Neighbourhood:
    """An account and what surrounds it in the graph: the customers it knows or partners with,
    the introductions made (with their status) and its open suggestions (with their first
    reason). The viewer must manage it."""
    centre = business_for(store, viewer, business_id, active=False)
    edges = [
        Edge(business_id, tie.b if tie.a == business_id else tie.a,
             "partners" if tie.kind is TieKind.PARTNERS_WITH else "knows",
             "partners with" if tie.kind is TieKind.PARTNERS_WITH else "already know each other")
        for tie in store.ties_of(business_id)
    ]  # fmt: skip
    for intro in introductions.list_for(store, viewer, business_id=business_id, limit=200):
        other = intro.b_id if intro.a_id == business_id else intro.a_id
        edges.append(Edge(business_id, other, "introduction", f"introduction: {intro.status.value}"))
    if centre.archived_at is None:
        for view in matches.suggestions_for_business(store, viewer, business_id):
            reason = view.reasons[0] if view.reasons else "suggested"
            edges.append(Edge(business_id, view.other.id, "suggestion", f"{view.score * 100:.0f}: {reason}"))
    found = store.get_businesses(sorted({business_id, *(e.target for e in edges)}))
    nodes = [
        Node(b.id, b.record.name, b.record.categories[0] if b.record.categories else "", viewer.manages(b),
             b.id == business_id)
        for b in found.values()
    ]  # fmt: skip
    nodes.sort(key=lambda n: (not n.centre, n.name.casefold()))
    return Neighbourhood(nodes, [e for e in edges if e.target in found])
