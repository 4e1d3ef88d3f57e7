"""The loyalty dashboard: is the salesperson giving back? Introductions made per week, how
many both sides said yes to, business won through them, and the customers who have received
nothing for a long while (the ones to think of next)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from graph import BusinessStatus, GraphStore, StoredBusiness
from graph.records import IntroStatus
from netweave.services.access import NotAllowed, Viewer

WEEKS = 12
NEGLECT = timedelta(days=90)
ASKED_OR_LATER = {
    IntroStatus.ASKED, IntroStatus.ACCEPTED, IntroStatus.INTRODUCED, IntroStatus.MET, IntroStatus.WON,
    IntroStatus.DECLINED,
}  # fmt: skip
YES = {IntroStatus.ACCEPTED, IntroStatus.INTRODUCED, IntroStatus.MET, IntroStatus.WON}


@dataclass(frozen=True)
class Week:
    starts: date  # a Monday
    made: int  # introductions made that week
    accepted: int  # of those, how many both sides said yes to (so far)


@dataclass(frozen=True)
class Waiting:
    business: StoredBusiness
    last_introduced: datetime | None  # None: never


@dataclass(frozen=True)
class Loyalty:
    weeks: list[Week]  # oldest first
    made: int  # every introduction of the book
    asked: int  # ... whose sides were asked
    accepted: int  # ... that both sides said yes to
    won: int  # ... that won business
    accounts: int  # active accounts of the book
    neglected: list[Waiting]  # active accounts with nothing received in 90 days, longest first
    neglected_count: int

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.asked if self.asked else None


def loyalty(
    store: GraphStore, viewer: Viewer, salesperson_id: str | None, *, now: datetime | None = None, show: int = 50
) -> Loyalty:
    """The figures for one book (`salesperson_id`), or the whole team's (None: managers only)."""
    if salesperson_id is None:
        if not viewer.sees_every_book:
            raise NotAllowed(f"{viewer.label} sees one book, not the team's")
    else:
        viewer.require_book(salesperson_id)
    now = now or datetime.now(UTC)
    made = store.list_introductions(salesperson_id=salesperson_id, limit=100_000)
    reached = {i.id: {step.status for step in i.steps} for i in made}
    monday = (now - timedelta(days=now.weekday())).date()
    weeks = []
    for back in range(WEEKS - 1, -1, -1):
        starts = monday - timedelta(weeks=back)
        those = [i for i in made if starts <= i.created_at.astimezone(UTC).date() < starts + timedelta(days=7)]
        weeks.append(Week(starts, len(those), sum(1 for i in those if reached[i.id] & YES)))
    neglected, gaps = store.introduction_gaps(salesperson_id, now - NEGLECT, show)
    shown = store.get_businesses([gap.business_id for gap in gaps])
    waiting = [Waiting(shown[gap.business_id], gap.last_introduced) for gap in gaps if gap.business_id in shown]
    return Loyalty(
        weeks=weeks,
        made=len(made),
        asked=sum(1 for i in made if reached[i.id] & ASKED_OR_LATER),
        accepted=sum(1 for i in made if reached[i.id] & YES),
        won=sum(1 for i in made if IntroStatus.WON in reached[i.id]),
        accounts=store.count_businesses(salesperson_id=salesperson_id, status=BusinessStatus.ACTIVE),
        neglected=waiting,
        neglected_count=neglected,
    )
