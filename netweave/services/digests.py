"""The weekly email: each salesperson's best new introductions, and the follow-ups, sent once.

What goes in (`build`):
- Up to `size` open suggestions of the book that no earlier digest of theirs held, never
  introduced, not dismissed or snoozed (the lists leave those out). Give-back fairness: a
  customer already in `monthly_cap` suggested intros over the last 30 days (every
  salesperson's digests) is left out, and among the strongest candidates the pair whose side
  has waited longest for an introduction comes first; a customer appears once per email.
- Introductions made `follow_up_days` ago or more with no outcome or rating yet, each asked
  about once, ever.

Exactly once (`send_digests`): a digest is recorded (with its whole message) for the
salesperson and ISO week before it is sent and marked sent after, in transactions of their own.
A second run finds it recorded and sends nothing; a run that stops half-way leaves the rest
unrecorded (the next run builds them) or failed (tried again with backoff). A digest left
sending by a process that died is sent again once its lease is over, with the same Message-ID:
the one case where a message can arrive twice is a crash between the SMTP server's "250 OK"
and the record of it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from graph import GraphStore, GraphWriter
from graph.records import (
    Digest,
    DigestItem,
    DigestItemKind,
    DigestPreferences,
    DigestStatus,
    DismissReason,
    FeedbackKind,
    Introduction,
    IntroStatus,
    Salesperson,
    digest_id,
)
from netweave.digest import mailer, render
from netweave.digest.links import Action, Link, LinkRefused, Signer
from netweave.jobs import JobQueue
from netweave.services import introductions, matches
from netweave.services.access import Invalid, NotAllowed, NotFound, Viewer
from netweave.services.matches import Party, SuggestionView, best_listing
from netweave.services.today import why_now

log = logging.getLogger(__name__)

POOL = 60  # the book's best open pairs a digest chooses from
STRONG = 4  # fairness reorders only the best size x STRONG candidates: never a weak pair first
MAX_FOLLOW_UPS = 5
LEASE = timedelta(minutes=10)  # a run holds a digest this long while it sends it
WAIT_STEP_DAYS = 30  # how waiting for an introduction is counted: in 30-day steps, up to 180
MONTH = timedelta(days=30)
FOLLOW_UP_STATUSES = (IntroStatus.ACCEPTED, IntroStatus.INTRODUCED, IntroStatus.MET)
SERVER_DOWN_AFTER = 3  # failures to reach the SMTP server in a row end a run
CATCH_UP = timedelta(days=2)  # a digest whose hour passed while no run came is still sent this long after


@dataclass(frozen=True)
class DigestSettings:
    mail: mailer.MailSettings
    secret_key: str
    public_url: str
    monthly_cap: int = 3
    link_days: int = 14
    retry_minutes: tuple[int, ...] = (5, 30, 120, 720)
    follow_up_days: int = 14

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DigestSettings:
        return cls(
            mail=mailer.MailSettings.from_config(config),
            secret_key=str(config["SECRET_KEY"]),
            public_url=str(config["PUBLIC_URL"]).rstrip("/"),
            monthly_cap=int(config["DIGEST_MONTHLY_CAP"]),
            link_days=int(config["DIGEST_LINK_DAYS"]),
            retry_minutes=tuple(int(m) for m in str(config["DIGEST_RETRY_MINUTES"]).split(",") if m.strip()),
            follow_up_days=int(config["DIGEST_FOLLOW_UP_DAYS"]),
        )

    @property
    def signer(self) -> Signer:
        return Signer(self.secret_key)


# Weeks: ISO weeks ("2026-W48"), of the salesperson's own calendar.


def week_of(moment: date | datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


_WEEK = re.compile(r"\d{4}-W\d{2}")


def monday_of(week: str) -> date:
    """The Monday of an ISO week written as 2026-W48 (one spelling only: it keys the digest);
    Invalid names the field if it is not one."""
    try:
        if not _WEEK.fullmatch(week):
            raise ValueError(week)
        year, number = week.split("-W")
        return date.fromisocalendar(int(year), int(number), 1)
    except ValueError:
        raise Invalid((("week", f"{week!r} is not an ISO week such as 2026-W48"),)) from None


def zone(preferences: DigestPreferences) -> ZoneInfo:
    try:
        return ZoneInfo(preferences.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_week(preferences: DigestPreferences, now: datetime) -> str:
    return week_of(now.astimezone(zone(preferences)))


def slot(preferences: DigestPreferences, week: str) -> datetime:
    """When the salesperson wants that week's email: their weekday and hour, their time zone."""
    day = monday_of(week) + timedelta(days=preferences.weekday)
    return datetime.combine(day, time(preferences.hour), tzinfo=zone(preferences)).astimezone(UTC)


def links_expire(week: str, settings: DigestSettings, now: datetime) -> datetime:
    """When a digest's links stop working: `link_days` after its week ends, or after today for
    a past week's digest sent late. The same all day, so a preview shows the links that go."""
    end = datetime.combine(monday_of(week) + timedelta(days=7), time(0), tzinfo=UTC)
    today = datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(0), tzinfo=UTC)
    return max(end, today) + timedelta(days=settings.link_days)


# What a digest holds.


def _pair(a: str, b: str) -> frozenset[str]:
    return frozenset((a, b))


@dataclass
class Appearances:
    """How often each customer was in a suggested intro over the last 30 days, every book's
    digests; grows as a run records digests."""

    counts: Counter[str] = field(default_factory=Counter)

    @classmethod
    def read(cls, store: GraphStore, now: datetime) -> Appearances:
        items = store.digest_items(since=now - MONTH)
        return cls(
            Counter(i for _, item in items if item.kind is DigestItemKind.SUGGESTION for i in (item.a_id, item.b_id))
        )

    def add(self, items: Iterable[DigestItem]) -> None:
        for item in items:
            if item.kind is DigestItemKind.SUGGESTION:
                self.counts.update((item.a_id, item.b_id))


def _waited_days(party: Party, last: dict[str, datetime], now: datetime) -> int:
    since = last.get(party.id) or party.since or now
    return max((now - since).days, 0)


def _choose_suggestions(
    store: GraphStore,
    viewer: Viewer,
    salesperson_id: str,
    size: int,
    left_out: set[frozenset[str]],  # pairs held by an earlier digest, or introduced
    appearances: Appearances,
    settings: DigestSettings,
    now: datetime,
) -> list[tuple[SuggestionView, str]]:
    views = best_listing(store, viewer, salesperson_id, POOL).views
    if not views:
        return []
    counts = appearances.counts
    candidates = [
        v for v in views
        if _pair(v.business.id, v.other.id) not in left_out
        and counts[v.business.id] < settings.monthly_cap and counts[v.other.id] < settings.monthly_cap
    ][: size * STRONG]  # fmt: skip
    last = store.last_introduced([p.id for v in candidates for p in (v.business, v.other)])

    def fairness(view: SuggestionView) -> tuple[int, float]:
        waited = max(_waited_days(view.business, last, now), _waited_days(view.other, last, now))
        return -(min(waited, 180) // WAIT_STEP_DAYS), -view.score

    chosen: list[tuple[SuggestionView, str]] = []
    in_this_email: set[str] = set()
    for view in sorted(candidates, key=fairness):
        if view.business.id in in_this_email or view.other.id in in_this_email:
            continue
        chosen.append((view, "; ".join(why_now(view, last, now))))
        in_this_email |= {view.business.id, view.other.id}
        if len(chosen) == size:
            break
    return chosen


def _made_at(introduction: Introduction) -> datetime:
    for status in (IntroStatus.INTRODUCED, IntroStatus.ACCEPTED):
        steps = [s.at for s in introduction.steps if s.status is status]
        if steps:
            return steps[0]
    return introduction.created_at


def _choose_follow_ups(
    made: Sequence[Introduction], asked_before: set[str], settings: DigestSettings, now: datetime
) -> list[Introduction]:
    made_before = now - timedelta(days=settings.follow_up_days)
    waiting = [
        i for i in made
        if i.status in FOLLOW_UP_STATUSES and not i.feedback and i.id not in asked_before
        and _made_at(i) <= made_before
    ]  # fmt: skip
    return sorted(waiting, key=_made_at)[:MAX_FOLLOW_UPS]


# The message.


def _about(party: Party) -> str:
    kind = party.categories[0] if party.categories else "Business"
    return f"{kind}, {party.city}" if party.city else kind


def _day(moment: datetime | date) -> str:
    return f"{moment:%b} {moment.day}"


def _message_id(salesperson_id: str, week: str, settings: DigestSettings) -> str:
    # The same for every attempt at the same digest: a client shows a repeat as one message.
    key = hashlib.blake2b(salesperson_id.encode(), digest_size=8).hexdigest()
    return f"<digest.{week}.{key}@{mailer.sender_domain(settings.mail) or 'netweave.local'}>"


def _content(
    store: GraphStore,
    person: Salesperson,
    week: str,
    chosen: Sequence[tuple[SuggestionView, str]],
    follow_ups: Sequence[Introduction],
    settings: DigestSettings,
    now: datetime,
) -> render.Content:
    signer, base = settings.signer, settings.public_url
    expires = links_expire(week, settings, now)

    def link(action: Action, **target: Any) -> str:
        return f"{base}/email/act/{signer.sign(Link(action, person.id, week, expires, **target))}"

    suggestions = tuple(
        render.Suggestion(
            a=render.Side(
                view.business.name,
                _about(view.business),
                (view.reasons or (f"{view.other.name} could be a good partner",))[0],
            ),
            b=render.Side(
                view.other.name,
                _about(view.other),
                (view.other_reasons or (f"{view.business.name} could be a good partner",))[0],
            ),
            score=round(view.score * 100),
            why_now=reason,
            introduce_url=link(Action.INTRODUCE, a_id=view.business.id, b_id=view.other.id),
            snooze_url=link(Action.SNOOZE, a_id=view.business.id, b_id=view.other.id),
            dismiss_url=link(Action.DISMISS, a_id=view.business.id, b_id=view.other.id),
        )
        for view, reason in chosen
    )
    names = {
        b.id: b.record.name for b in store.get_businesses([i for f in follow_ups for i in (f.a_id, f.b_id)]).values()
    }
    asked = tuple(
        render.FollowUp(
            a_name=names.get(f.a_id, f.a_id),
            b_name=names.get(f.b_id, f.b_id),
            made_on=_day(_made_at(f)),
            status=f.status.value,
            rate_urls=tuple((r, link(Action.RATE, introduction_id=f.id, rating=r)) for r in range(1, 6)),
            open_url=f"{base}/introductions/{f.id}",
        )
        for f in follow_ups
    )
    return render.Content(
        first_name=person.name.split()[0] if person.name.strip() else person.email,
        week_label=f"week of {_day(monday_of(week))}",
        suggestions=suggestions,
        follow_ups=asked,
        today_url=f"{base}/",
        preferences_url=f"{base}/settings",
        unsubscribe_url=unsubscribe_url(person.id, settings),
        expires_on=_day(expires - timedelta(days=1)),  # the last whole day (UTC) they work
    )


def build(
    store: GraphStore,
    person: Salesperson,
    preferences: DigestPreferences,
    week: str,
    settings: DigestSettings,
    appearances: Appearances,
    now: datetime,
) -> Digest:
    """The salesperson's digest for the week as it would be recorded now (nothing is written):
    sending, or empty when there is nothing new and they want no note."""
    monday_of(week)
    viewer = Viewer(person.id, person.role)
    before = [item for _, item in store.digest_items(salesperson_id=person.id)]
    held = {_pair(i.a_id, i.b_id) for i in before if i.kind is DigestItemKind.SUGGESTION}
    asked = {i.introduction_id for i in before if i.kind is DigestItemKind.FOLLOW_UP and i.introduction_id}
    made = store.list_introductions(salesperson_id=person.id, limit=1000)
    left_out = held | {_pair(i.a_id, i.b_id) for i in made}
    chosen = _choose_suggestions(store, viewer, person.id, preferences.size, left_out, appearances, settings, now)
    follow_ups = _choose_follow_ups(made, asked, settings, now)
    items = tuple(DigestItem(DigestItemKind.SUGGESTION, v.business.id, v.other.id, v.score) for v, _ in chosen) + tuple(
        DigestItem(DigestItemKind.FOLLOW_UP, f.a_id, f.b_id, f.score, f.id) for f in follow_ups
    )
    content = _content(store, person, week, chosen, follow_ups, settings, now)
    subject, text, html = render.render(content)
    status = DigestStatus.EMPTY if content.empty and not preferences.note_when_empty else DigestStatus.SENDING
    return Digest(
        salesperson_id=person.id,
        week=week,
        status=status,
        created_at=now,
        items=items,
        recipient=person.email,
        subject=subject,
        text=text,
        html=html,
        message_id=_message_id(person.id, week, settings),
        lease_until=now + LEASE if status is DigestStatus.SENDING else None,
    )


def unsubscribe_url(salesperson_id: str, settings: DigestSettings) -> str:
    return f"{settings.public_url}/email/unsubscribe/{settings.signer.sign_unsubscribe(salesperson_id)}"


def message(digest: Digest, settings: DigestSettings) -> Any:
    """The email of a digest, with its one-click unsubscribe headers (RFC 8058)."""
    headers = {
        "List-Unsubscribe": f"<{unsubscribe_url(digest.salesperson_id, settings)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": "Netweave weekly introductions <weekly.netweave>",
        "Auto-Submitted": "auto-generated",
    }
    return mailer.compose(
        settings.mail, digest.recipient, digest.subject, digest.text, digest.html,
        headers=headers, message_id=digest.message_id,
    )  # fmt: skip


def preview(
    store: GraphStore,
    viewer: Viewer,
    salesperson_id: str,
    settings: DigestSettings,
    *,
    week: str | None = None,
    now: datetime | None = None,
) -> Digest:
    """What the salesperson's email for the week holds: the one recorded, exactly as sent, or
    the one a run would send now. The viewer must see the book."""
    viewer.require_book(salesperson_id)
    person = store.get_salesperson(salesperson_id)
    if person is None:
        raise NotFound(f"no salesperson {salesperson_id!r}")
    now = now or datetime.now(UTC)
    preferences = store.digest_preferences(person.id)
    week = week or local_week(preferences, now)
    recorded = store.get_digest(person.id, week)
    if recorded is not None:
        return recorded
    return build(store, person, preferences, week, settings, Appearances.read(store, now), now)


# Sending.


@dataclass
class RunReport:
    sent: list[str] = field(default_factory=list)  # digest ids
    empty: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (digest id, why)
    gave_up: list[tuple[str, str]] = field(default_factory=list)
    would_send: list[Digest] = field(default_factory=list)  # a dry run's
    stopped: str = ""  # why the run stopped early, if it did

    def summary(self) -> str:
        parts = [f"{len(self.sent)} sent", f"{len(self.empty)} with nothing new", f"{len(self.failed)} failed"]
        if self.gave_up:
            parts.append(f"{len(self.gave_up)} given up")
        if self.would_send:
            parts = [f"{len(self.would_send)} would be sent (dry run)"]
        return ", ".join(parts) + (f"; stopped: {self.stopped}" if self.stopped else "")


@dataclass(frozen=True)
class _Due:
    person: Salesperson
    preferences: DigestPreferences
    week: str


def _due(
    store: GraphStore,
    preferences: Mapping[str, DigestPreferences],
    now: datetime,
    week: str | None,
    salesperson_ids: Sequence[str] | None,
) -> list[_Due]:
    """Who gets a digest in this run, for which week: with neither given, everyone whose chosen
    hour of their week has come; a week or a salesperson named sends regardless of the hour.
    Paused (unsubscribed) salespeople never."""
    wanted = sorted(preferences) if salesperson_ids is None else list(dict.fromkeys(salesperson_ids))
    for salesperson_id in wanted:
        if salesperson_id not in preferences:
            raise NotFound(f"no salesperson {salesperson_id!r}")
    people = store.get_salespeople(wanted)
    due = []
    for salesperson_id in wanted:
        p, person = preferences[salesperson_id], people[salesperson_id]
        if not p.weekly or not person.email:  # paused, or nowhere to send it (a CRM owner with no address)
            continue
        if week is not None or salesperson_ids is not None:
            due.append(_Due(person, p, week or local_week(p, now)))
            continue
        this_week = local_week(p, now)
        if now >= slot(p, this_week):
            due.append(_Due(person, p, this_week))
        else:  # last week's, if its hour passed while nothing ran (sent only if not recorded)
            last_week = week_of(monday_of(this_week) - timedelta(days=7))
            if now - slot(p, last_week) <= CATCH_UP:
                due.append(_Due(person, p, last_week))
    return due


def _retry_at(attempts: int, settings: DigestSettings, now: datetime) -> datetime | None:
    """After `attempts` failed attempts: when to try again (None: give up)."""
    if attempts > len(settings.retry_minutes):
        return None
    return now + timedelta(minutes=settings.retry_minutes[attempts - 1])


def _finish(store: GraphStore, digest: Digest, status: DigestStatus, now: datetime, **outcome: Any) -> bool:
    """Record how the attempt at a digest ended, if this run still holds it (its lease)."""
    return store.write(lambda tx: tx.finish_digest(
        digest.salesperson_id, digest.week, status, now, claimed_until=digest.lease_until, **outcome
    ))  # fmt: skip


class _Sender:
    """Sends claimed digests on one SMTP connection, recording each outcome; stops the run
    after the server could not be reached SERVER_DOWN_AFTER times in a row."""

    def __init__(self, store: GraphStore, settings: DigestSettings, outbox: mailer.Outbox, report: RunReport):
        self.store, self.settings, self.outbox, self.report = store, settings, outbox, report
        self.unreachable = 0

    @property
    def stopped(self) -> bool:
        return bool(self.report.stopped)

    def send(self, digest: Digest, clock: Callable[[], datetime]) -> None:
        try:
            self.outbox.send(message(digest, self.settings))
        except mailer.MailFailed as error:
            self._failed(digest, str(error), clock())
            self.unreachable = 0 if error.reached else self.unreachable + 1
            if self.unreachable >= SERVER_DOWN_AFTER:
                self.report.stopped = f"the SMTP server could not be reached {self.unreachable} times in a row"
            return
        self.unreachable = 0
        now = clock()
        if _finish(self.store, digest, DigestStatus.SENT, now):
            self.report.sent.append(digest.id)
        else:  # our lease ran out while the server took it, and another run took the digest over
            log.warning("digest %s went out after its lease ended; another run may send it again", digest.id)

    def _failed(self, digest: Digest, why: str, now: datetime) -> None:
        again = _retry_at(digest.attempts + 1, self.settings, now)
        status = DigestStatus.FAILED if again else DigestStatus.GAVE_UP
        _finish(self.store, digest, status, now, error=why, next_attempt_at=again)
        (self.report.failed if again else self.report.gave_up).append((digest.id, why))
        log.warning("digest %s to %s: %s (attempt %d)%s", digest.id, digest.recipient, why, digest.attempts + 1,
                    f"; again at {again:%H:%M}" if again else "; given up")  # fmt: skip


def send_digests(
    store: GraphStore,
    settings: DigestSettings,
    *,
    now: datetime | None = None,
    week: str | None = None,
    salesperson_ids: Sequence[str] | None = None,
    dry_run: bool = False,
    clock: Callable[[], datetime] | None = None,
) -> RunReport:
    """One run: retry the failed digests that are due, then build, record and send every digest
    that is due and not recorded yet. Safe to run again at any time, and alongside another run.
    `clock` tells the time as the run goes on (defaults to `now` when that is given)."""
    if clock is None:
        fixed = now
        clock = (lambda: fixed) if fixed is not None else (lambda: datetime.now(UTC))
    now = now or clock()
    if week is not None:
        monday_of(week)
    if not dry_run and not settings.mail.configured:
        raise mailer.MailNotConfigured("email is not set up here (NETWEAVE_SMTP_HOST is empty)")
    report = RunReport()
    if store.published_generation() is None:
        # A new install whose first refresh has not finished: every digest would look empty.
        report.stopped = "no suggestions are published yet (the worker's first refresh is still running)"
        return report
    preferences = {p.salesperson_id: p for p in store.all_digest_preferences()}
    due = _due(store, preferences, now, week, salesperson_ids)
    weeks = {d.week for d in due}
    recorded = {(d.salesperson_id, d.week) for w in weeks for d in store.list_digests(week=w, bodies=False)}
    fresh = [d for d in due if (d.person.id, d.week) not in recorded]
    if dry_run:
        appearances = Appearances.read(store, now)
        for d in fresh:
            digest = build(store, d.person, d.preferences, d.week, settings, appearances, now)
            appearances.add(digest.items)
            report.would_send.append(digest)
        return report
    wanted = None if salesperson_ids is None else set(salesperson_ids)
    with mailer.Outbox(settings.mail) as outbox:
        sender = _Sender(store, settings, outbox, report)
        # Retries first: those digests were due before any built now.
        for stale in _retryable(store, now, wanted, week):
            if sender.stopped:
                break
            wants = preferences.get(stale.salesperson_id)
            if wants is None or not wants.weekly:  # unsubscribed since: it is not sent after all
                if _give_up(store, stale, UNSUBSCRIBED, clock()):
                    report.gave_up.append((stale.id, UNSUBSCRIBED))
                continue
            at = clock()
            claimed = store.write(lambda tx, s=stale, t=at: tx.claim_digest(s.salesperson_id, s.week, t, t + LEASE))
            if claimed is None:
                continue
            if claimed.attempts > len(settings.retry_minutes):  # its runs kept stopping while sending it
                why = f"{claimed.attempts} attempts stopped half-way"
                _finish(store, claimed, DigestStatus.GAVE_UP, at, error=why)
                report.gave_up.append((claimed.id, why))
                continue
            sender.send(claimed, clock)
        appearances = Appearances.read(store, now) if fresh else Appearances()
        for d in fresh:
            if sender.stopped:
                break
            try:
                digest = build(store, d.person, d.preferences, d.week, settings, appearances, clock())
                if not store.write(lambda tx, g=digest: tx.record_digest(g)):
                    continue  # another run recorded it first: that run sends it
            except Exception as error:  # one salesperson's bad data must not stop everyone's email
                log.exception("digest %s could not be built", digest_id(d.person.id, d.week))
                report.failed.append((digest_id(d.person.id, d.week), f"not built: {type(error).__name__}: {error}"))
                continue
            appearances.add(digest.items)
            if digest.status is DigestStatus.EMPTY:
                report.empty.append(digest.id)
            else:
                sender.send(digest, clock)
    log.info("digests: %s", report.summary())
    return report


UNSUBSCRIBED = "unsubscribed before it could be sent"


def _give_up(store: GraphStore, digest: Digest, why: str, now: datetime) -> bool:
    """Take a digest that was to be retried and record it given up; False if another run has it."""

    def work(tx: GraphWriter) -> bool:
        claimed = tx.claim_digest(digest.salesperson_id, digest.week, now, now + LEASE)
        return claimed is not None and tx.finish_digest(
            digest.salesperson_id, digest.week, DigestStatus.GAVE_UP, now, error=why, claimed_until=claimed.lease_until
        )

    return store.write(work)


def _retryable(store: GraphStore, now: datetime, wanted: set[str] | None, week: str | None) -> list[Digest]:
    failed = store.list_digests(status=DigestStatus.FAILED, bodies=False)
    sending = store.list_digests(status=DigestStatus.SENDING, bodies=False)
    due = [d for d in failed if d.next_attempt_at is not None and d.next_attempt_at <= now]
    due += [d for d in sending if d.lease_until is not None and d.lease_until < now]
    return sorted(
        (d for d in due if (wanted is None or d.salesperson_id in wanted) and (week is None or d.week == week)),
        key=lambda d: (d.created_at, d.salesperson_id),
    )


# The email's links and its unsubscribe.


@dataclass(frozen=True)
class LinkView:
    """What a link in an email does, for the page that asks to confirm it."""

    link: Link
    title: str  # "Introduce Sofia Therapeutic Massage and Highland Chiropractic"
    detail: str


def _names(store: GraphStore, *ids: str) -> list[str]:
    found = store.get_businesses(list(ids))
    return [found[i].record.name if i in found else i for i in ids]


def read_link(
    store: GraphStore, viewer: Viewer, settings: DigestSettings, token: str, now: datetime | None = None
) -> LinkView:
    """The link a token stands for, if the viewer may use it now: LinkRefused if it is not ours,
    has expired or was used; NotAllowed if it was sent to someone else."""
    now = now or datetime.now(UTC)
    link = settings.signer.read(token, now)
    if viewer.salesperson_id != link.salesperson_id:
        raise NotAllowed("this link was sent to another salesperson: sign in as them to use it")
    if used := store.link_used(link.once):
        raise LinkRefused(f"this line of the email was acted on already, on {_day(used)}")
    if link.action is Action.RATE:
        introduction = store.get_introduction(link.introduction_id)
        if introduction is None:
            raise NotFound("that introduction no longer exists")
        if introduction.feedback:  # answered already, here or in the app: never asked again
            raise LinkRefused(f"this introduction was rated already, on {_day(introduction.feedback[0].at)}")
        a, b = _names(store, introduction.a_id, introduction.b_id)
        return LinkView(link, f"Rate the introduction of {a} and {b}: {link.rating} of 5",
                        "1 is poor, 5 is great. It teaches the matching which introductions work.")  # fmt: skip
    a, b = _names(store, link.a_id, link.b_id)
    titles = {
        Action.INTRODUCE: (f"Introduce {a} and {b}", "Opens the introduction with a draft message for each side."),
        Action.SNOOZE: (f"Not now: {a} and {b}", "The pair leaves your suggestions for a while and comes back later."),
        Action.DISMISS: (f"Not a fit: {a} and {b}", "The pair is not suggested again."),
    }
    title, detail = titles[link.action]
    return LinkView(link, title, detail)


@dataclass(frozen=True)
class LinkOutcome:
    message: str
    introduction_id: str | None = None  # where to go next, when there is an introduction


def use_link(
    store: GraphStore,
    jobs: JobQueue,
    viewer: Viewer,
    settings: DigestSettings,
    token: str,
    now: datetime | None = None,
) -> LinkOutcome:
    """Do what the link says, and mark its line used in the same transaction (LinkRefused if it
    was used already: nothing is done twice)."""
    now = now or datetime.now(UTC)
    view = read_link(store, viewer, settings, token, now)
    link = view.link

    def consume(tx: GraphWriter) -> None:
        if not tx.consume_link(link.once, now):
            raise LinkRefused("this line of the email was acted on already")

    if link.action is Action.INTRODUCE:
        introduction = introductions.propose(store, jobs, viewer, link.a_id, link.b_id, now, also=consume)
        return LinkOutcome("The introduction is drafted: check each message, then ask both sides.", introduction.id)
    if link.action is Action.RATE:
        introduction = introductions.get(store, viewer, link.introduction_id)
        mine = store.get_business(introduction.a_id)
        side = introduction.a_id if mine is not None and viewer.manages(mine) else introduction.b_id
        introductions.rate(store, jobs, viewer, introduction.id, side, link.rating, now=now, also=consume)
        return LinkOutcome(f"Thank you: rated {link.rating} of 5.", introduction.id)
    reason = DismissReason.BAD_TIMING if link.action is Action.SNOOZE else DismissReason.NOT_RELEVANT
    matches.record_feedback(store, jobs, viewer, link.a_id, link.b_id, FeedbackKind.DISMISSED, reason.value,
                            channel="email", now=now, also=consume)  # fmt: skip
    said = "Snoozed: the pair comes back later." if link.action is Action.SNOOZE else "Dismissed: not suggested again."
    return LinkOutcome(said)


def unsubscribe(store: GraphStore, settings: DigestSettings, token: str) -> Salesperson:
    """Stop the weekly email for the salesperson the token names (a paused preference, which
    Settings turns back on); LinkRefused if the token is not ours."""
    salesperson_id = settings.signer.read_unsubscribe(token)
    person = store.get_salesperson(salesperson_id)
    if person is None:
        raise LinkRefused("this unsubscribe link is for an account that no longer exists")
    paused = replace(store.digest_preferences(person.id), weekly=False)
    store.write(lambda tx: tx.set_digest_preferences(paused))
    return person
