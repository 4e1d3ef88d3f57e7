"""Introductions: from a suggestion to a double opt-in, and what became of it.

A salesperson makes an introduction from a suggestion; Netweave drafts a message to each
side that asks first and names what that side gains. The introduction then moves through its
statuses one step at a time, each step keeping who and when: asked (each side asked first),
accepted (both said yes: only then are they introduced), introduced, met, won, closed, or
declined. Either side may rate it (1 to 5, and a comment).

All of it feeds matching: making an introduction takes the pair out of the lists, an
acceptance or a good rating counts for the pair's kinds, a decline or a poor rating against.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from graph import GraphStore, GraphWriter
from graph.records import (
    Feedback,
    FeedbackKind,
    Introduction,
    IntroFeedback,
    IntroStatus,
    IntroStep,
    WebhookDelivery,
    WebhookEvent,
)
from netweave.digest import mailer
from netweave.jobs import JobQueue
from netweave.services import webhooks
from netweave.services.access import Conflict, Invalid, NotAllowed, NotFound, Viewer, business_for
from netweave.services.customers import request_refresh
from netweave.services.matches import Party, SuggestionView, suggestions_for_business

S = IntroStatus
# Where an introduction may go from each status. Closing is always possible; nothing leaves closed.
NEXT: dict[IntroStatus, tuple[IntroStatus, ...]] = {
    S.PROPOSED: (S.ASKED, S.DECLINED, S.CLOSED),
    S.ASKED: (S.ACCEPTED, S.DECLINED, S.CLOSED),
    S.ACCEPTED: (S.INTRODUCED, S.DECLINED, S.CLOSED),
    S.INTRODUCED: (S.MET, S.WON, S.CLOSED),
    S.MET: (S.WON, S.CLOSED),
    S.WON: (S.CLOSED,),
    S.DECLINED: (S.CLOSED,),
    S.CLOSED: (),
}
OPEN = {S.PROPOSED, S.ASKED, S.ACCEPTED, S.INTRODUCED, S.MET}
# How a step counts for matching (a verdict on the pair, as the salesperson's feedback does).
_VERDICT = {S.ACCEPTED: FeedbackKind.INTRO_ACCEPTED, S.DECLINED: FeedbackKind.INTRO_DECLINED}
GOOD_RATING, POOR_RATING = 4, 2


def _side(party: Party) -> str:
    kind = party.categories[0].lower() if party.categories else "business"
    article = "an" if kind[:1] in "aeiou" else "a"
    where = f" in {party.city}" if party.city else ""
    return f"{party.name}, {article} {kind}{where}"


def _greeting(party: Party) -> str:
    if party.contact and party.contact.contact_name:
        return f"Hi {party.contact.contact_name.split()[0]},"
    return f"Hello {party.name} team,"


def draft_message(to: Party, other: Party, gain: str, sender: str) -> str:
    """The message asking one side first: who the other is, what this side gains, and the promise
    that nobody is introduced unless both say yes."""
    return (
        f"{_greeting(to)}\n\n"
        f"I'd like to introduce you to {_side(other)}. {gain.rstrip('.')}.\n\n"
        f"Would an introduction be welcome? I'll only connect you if you both say yes, "
        f"so there's no obligation either way.\n\n"
        f"Best,\n{sender}"
    )


def _suggestion(store: GraphStore, viewer: Viewer, business_id: str, other_id: str) -> SuggestionView:
    """The current suggestion of the pair, from the side the viewer manages (NotAllowed if
    neither; Conflict if the pair has an open introduction; NotFound if it is not suggested)."""
    system = Viewer.system()
    first, second = business_for(store, system, business_id), business_for(store, system, other_id)
    if not (viewer.manages(first) or viewer.manages(second)):
        raise NotAllowed(f"{viewer.label} manages neither {business_id!r} nor {other_id!r}")
    for existing in store.list_introductions(business_id=first.id, limit=1000):
        if {existing.a_id, existing.b_id} == {first.id, second.id} and existing.status in OPEN:
            raise Conflict(f"{first.id!r} and {second.id!r} already have an open introduction ({existing.id})")
    for mine, theirs in ((first, second), (second, first)):
        if viewer.manages(mine):
            for view in suggestions_for_business(store, viewer, mine.id):
                if view.other.id == theirs.id:
                    return view
    raise NotFound(f"{business_id!r} and {other_id!r} are not a current suggestion (refreshed since?)")


def propose(
    store: GraphStore,
    jobs: JobQueue,
    viewer: Viewer,
    business_id: str,
    other_id: str,
    now: datetime | None = None,
    also: Callable[[GraphWriter], object] | None = None,
) -> Introduction:
    """An introduction from a current suggestion, with a draft asking each side first. The pair
    leaves the lists; a second open introduction of the same pair is a Conflict. `also` writes
    more in the same transaction (an email link marked used)."""
    view = _suggestion(store, viewer, business_id, other_id)
    a, b = view.business, view.other
    at = now or datetime.now(UTC)
    sender = viewer.label if viewer.salesperson_id is None else _name(store, viewer.salesperson_id)
    reasons_a = view.reasons or (f"{b.name} could be a good partner for you",)
    reasons_b = view.other_reasons or (f"{a.name} could be a good partner for you",)
    introduction = Introduction(
        id=uuid.uuid4().hex,
        a_id=a.id,
        b_id=b.id,
        status=S.PROPOSED,
        created_at=at,
        created_by=viewer.label,
        message_a=draft_message(a, b, reasons_a[0], sender),
        message_b=draft_message(b, a, reasons_b[0], sender),
        score=view.score,
        steps=(IntroStep(S.PROPOSED, at, viewer.label),),
    )
    feedback = Feedback(a.id, b.id, FeedbackKind.INTRO_MADE, at, "", viewer.salesperson_id)
    pending = _announcement(store, introduction, None, S.PROPOSED, viewer, at)

    def work(tx: GraphWriter) -> None:
        tx.create_introduction(introduction)
        tx.record_feedback(feedback)
        tx.add_deliveries(pending)
        if also is not None:
            also(tx)

    store.write(work)
    request_refresh(jobs, viewer)
    webhooks.send_soon(jobs, pending)
    return introduction


def _announcement(
    store: GraphStore,
    introduction: Introduction,
    previous: IntroStatus | None,
    status: IntroStatus,
    viewer: Viewer,
    at: datetime,
) -> list[WebhookDelivery]:
    """The webhook deliveries telling of a move, for the books of both sides."""
    sides = store.get_businesses([introduction.a_id, introduction.b_id])
    owners = {b.record.salesperson_id for b in sides.values()}
    data = {
        "introduction_id": introduction.id, "business_id": introduction.a_id, "other_id": introduction.b_id,
        "status": status.value, "previous_status": previous.value if previous else None, "by": viewer.label,
        "at": at.isoformat(),
    }  # fmt: skip
    return webhooks.outbox(store.list_webhooks(), WebhookEvent.INTRODUCTION_STATUS_CHANGED, data, owners, at)


def _name(store: GraphStore, salesperson_id: str) -> str:
    person = store.get_salesperson(salesperson_id)
    return person.name if person else salesperson_id


def get(store: GraphStore, viewer: Viewer, introduction_id: str) -> Introduction:
    """The introduction, if the viewer manages one of its sides."""
    introduction = store.get_introduction(introduction_id)
    if introduction is None or not _reaches(store, viewer, introduction):
        raise NotFound(f"no introduction {introduction_id!r}")
    return introduction


def _reaches(store: GraphStore, viewer: Viewer, introduction: Introduction) -> bool:
    if viewer.sees_every_book:
        return True
    sides = store.get_businesses([introduction.a_id, introduction.b_id]).values()
    return any(viewer.manages(side) for side in sides)


def list_for(
    store: GraphStore,
    viewer: Viewer,
    *,
    business_id: str | None = None,
    status: IntroStatus | None = None,
    limit: int = 50,
) -> list[Introduction]:
    """Newest first: a business's (the viewer must manage it), else the viewer's book's."""
    if business_id is not None:
        business_for(store, viewer, business_id, active=False)
        return store.list_introductions(business_id=business_id, status=status, limit=limit)
    salesperson = None if viewer.sees_every_book else viewer.salesperson_id
    return store.list_introductions(salesperson_id=salesperson, status=status, limit=limit)


def advance(
    store: GraphStore,
    jobs: JobQueue,
    viewer: Viewer,
    introduction_id: str,
    status: IntroStatus,
    note: str = "",
    *,
    expected_steps: int | None = None,
    now: datetime | None = None,
) -> Introduction:
    """Move the introduction to `status` (a move its current status allows), keeping who and
    when. `expected_steps`: the version the caller read; if it moved since, Conflict."""
    current = get(store, viewer, introduction_id)
    version = len(current.steps)
    if expected_steps is not None and expected_steps != version:
        raise Conflict(f"introduction {introduction_id!r} changed since it was read (now {current.status.value})")
    if status not in NEXT[current.status]:
        allowed = ", ".join(s.value for s in NEXT[current.status]) or "nothing (it is closed)"
        raise Conflict(f"an introduction that is {current.status.value} can move to {allowed}, not {status.value}")
    at = now or datetime.now(UTC)
    step = IntroStep(status, at, viewer.label, note.strip())
    verdict = _VERDICT.get(status)
    pending = _announcement(store, current, current.status, status, viewer, at)

    def work(tx: GraphWriter) -> bool:
        if not tx.advance_introduction(introduction_id, version, step):
            return False
        if verdict is not None:
            tx.record_feedback(Feedback(current.a_id, current.b_id, verdict, at, "", viewer.salesperson_id))
        tx.add_deliveries(pending)
        return True

    if not store.write(work):
        raise Conflict(f"introduction {introduction_id!r} was moved by someone else meanwhile; read it again")
    if verdict is not None:
        request_refresh(jobs, viewer)
    webhooks.send_soon(jobs, pending)
    return get(store, viewer, introduction_id)


def rate(
    store: GraphStore,
    jobs: JobQueue,
    viewer: Viewer,
    introduction_id: str,
    business_id: str,
    rating: int,
    comment: str = "",
    now: datetime | None = None,
    also: Callable[[GraphWriter], object] | None = None,
) -> Introduction:
    """What one side said of the introduction: 1 (poor) to 5 (great), and an optional comment.
    A good rating counts for the pair in matching, a poor one against. `also` writes more in
    the same transaction (an email link marked used)."""
    current = get(store, viewer, introduction_id)
    if business_id not in (current.a_id, current.b_id):
        raise ValueError(f"business_id: {business_id!r} is not a side of introduction {introduction_id!r}")
    if not 1 <= rating <= 5:
        raise ValueError("rating: give 1 (poor) to 5 (great)")
    if current.status in (S.PROPOSED, S.ASKED, S.DECLINED):
        raise Conflict(f"an introduction that is {current.status.value} has no outcome to rate yet")
    at = now or datetime.now(UTC)
    feedback = IntroFeedback(business_id, rating, comment.strip(), at, viewer.label)
    kind = (
        FeedbackKind.INTRO_ACCEPTED if rating >= GOOD_RATING else FeedbackKind.INTRO_DECLINED
        if rating <= POOR_RATING else None
    )  # fmt: skip

    def work(tx: GraphWriter) -> None:
        tx.add_introduction_feedback(introduction_id, feedback)
        if kind is not None:  # a separate verdict from the acceptance: a rating is the outcome's
            tx.record_feedback(Feedback(current.a_id, current.b_id, kind, at, f"rated {rating}", viewer.salesperson_id))
        if also is not None:
            also(tx)

    store.write(work)
    if kind is not None:
        request_refresh(jobs, viewer)
    return get(store, viewer, introduction_id)


MAX_MESSAGE = 5000
FOLLOW_UP_AFTER = timedelta(days=7)  # an open introduction unchanged this long needs a nudge


@dataclass(frozen=True)
class Side:
    """One side of an introduction as the viewer may see it: its email only when the viewer
    manages it, or its owner shared its contact with the other side."""

    id: str
    name: str
    email: str | None
    contact_name: str | None
    mine: bool


def sides(store: GraphStore, viewer: Viewer, introduction: Introduction) -> tuple[Side, Side]:
    found = store.get_businesses([introduction.a_id, introduction.b_id])
    shared = {(c.business_id, c.other_id) for c in store.contact_consents_of(list(found))}

    def side(this_id: str, other_id: str) -> Side:
        business = found.get(this_id)
        if business is None:  # a business can be archived, not deleted: this is a guard only
            return Side(this_id, this_id, None, None, False)
        mine = viewer.manages(business)
        visible = mine or (this_id, other_id) in shared
        record = business.record
        return Side(this_id, record.name, record.email if visible else None,
                    record.contact_name if visible else None, mine)  # fmt: skip

    return side(introduction.a_id, introduction.b_id), side(introduction.b_id, introduction.a_id)


def _message_problem(text: str) -> str:
    """What is wrong with a message ('' if nothing)."""
    text = text.strip()
    if not text:
        return "write the message (it is sent as it is)"
    if len(text) > MAX_MESSAGE:
        return f"at most {MAX_MESSAGE} characters ({len(text)} now)"
    return ""


def edit_messages(
    store: GraphStore, viewer: Viewer, introduction_id: str, message_a: str, message_b: str, *, expected_steps: int
) -> Introduction:
    """Replace the drafts before anyone is asked. Invalid names an empty or over-long message;
    Conflict if the introduction moved since `expected_steps` (or asking began)."""
    current = get(store, viewer, introduction_id)
    checked = (("message_a", _message_problem(message_a)), ("message_b", _message_problem(message_b)))
    problems = tuple((field, problem) for field, problem in checked if problem)
    if problems:
        raise Invalid(problems)
    if current.status is not S.PROPOSED:
        raise Conflict(f"the messages are fixed once asking begins (it is {current.status.value})")
    if not store.write(
        lambda tx: tx.edit_introduction_messages(introduction_id, expected_steps, message_a.strip(), message_b.strip())
    ):
        raise Conflict(f"introduction {introduction_id!r} changed since it was read; read it again")
    return get(store, viewer, introduction_id)


def email_asks(
    store: GraphStore,
    jobs: JobQueue,
    viewer: Viewer,
    introduction_id: str,
    settings: mailer.MailSettings,
    *,
    expected_steps: int,
    now: datetime | None = None,
) -> Introduction:
    """Email each side its own message (ask first), then mark the introduction asked.

    Both addresses must be known to the viewer (Invalid names the side otherwise). If a message
    cannot be sent, MailFailed says which went out, and the introduction stays proposed."""
    current = get(store, viewer, introduction_id)
    if current.status is not S.PROPOSED:
        raise Conflict(f"asking is done once, from proposed (it is {current.status.value})")
    if len(current.steps) != expected_steps:
        raise Conflict(f"introduction {introduction_id!r} changed since it was read; read it again")
    a, b = sides(store, viewer, current)
    missing = tuple(
        (field, f"no email address for {side.name}" + ("" if side.mine else " (its salesperson has not shared it)"))
        for field, side in (("business_a", a), ("business_b", b))
        if not side.email
    )
    if missing:
        raise Invalid(missing)
    sender = viewer.label if viewer.salesperson_id is None else _name(store, viewer.salesperson_id)
    sent: list[str] = []
    for side, other, text in ((a, b, current.message_a), (b, a, current.message_b)):
        message = mailer.compose(settings, side.email or "", f"An introduction to {other.name}?", text)
        try:
            mailer.send(settings, message)
        except mailer.MailFailed as error:
            done = f"sent to {', '.join(sent)}; " if sent else "nothing was sent; "
            raise mailer.MailFailed(f"{done}not to {side.name}: {error}") from error
        sent.append(side.name)
    return advance(store, jobs, viewer, introduction_id, S.ASKED, f"emailed {a.name} and {b.name} from {sender}",
                   expected_steps=expected_steps, now=now)  # fmt: skip


def waiting(introduction: Introduction, now: datetime) -> timedelta | None:
    """How long an open introduction has waited since its last step, once that is long
    enough to follow up on; None otherwise."""
    if introduction.status not in OPEN:
        return None
    waited = now - introduction.updated_at
    return waited if waited >= FOLLOW_UP_AFTER else None


REACHED_YES = {S.ACCEPTED, S.INTRODUCED, S.MET, S.WON}


@dataclass(frozen=True)
class Ledger:
    """What one customer has received from us: every introduction it was a side of (newest
    first), when the last was made, how many both sides said yes to, how many won business,
    and the average of its own 1-5 ratings."""

    introductions: list[Introduction]
    last_received: datetime | None
    accepted: int
    won: int
    average_rating: float | None


def ledger(store: GraphStore, viewer: Viewer, business_id: str) -> Ledger:
    """The give-back ledger of a business the viewer manages (archived ones too)."""
    items = list_for(store, viewer, business_id=business_id, limit=1000)
    reached = [i for i in items if any(step.status in REACHED_YES for step in i.steps)]
    own = [f.rating for i in items for f in i.feedback if f.business_id == business_id]
    return Ledger(
        introductions=items,
        last_received=max((i.created_at for i in items), default=None),
        accepted=len(reached),
        won=sum(1 for i in items if any(step.status is S.WON for step in i.steps)),
        average_rating=sum(own) / len(own) if own else None,
    )
