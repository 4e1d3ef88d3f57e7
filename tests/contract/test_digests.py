"""The weekly email, on both backends, delivered over real SMTP to a server on loopback
(aiosmtpd) and read back as a mail client would: recipients, subject, both parts, the signed
links (right targets; expired, foreign and reused ones refused), the unsubscribe headers and
their one-click POST, give-back fairness, follow-ups asked once, header injection, exactly
once across re-runs and a server stopped half-way, refused addresses retried with backoff, each
salesperson's own hour and time zone, and the preview matching what is sent.

The suggestion lists are written straight to the store (as a refresh would publish them), so
each test knows exactly what a digest should choose."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
from flask import Flask

from graph import BusinessRecord, Place, Role, Salesperson
from graph.records import (
    Digest,
    DigestItem,
    DigestItemKind,
    DigestPreferences,
    DigestStatus,
    FeedbackKind,
    GenerationKind,
    Introduction,
    IntroStatus,
    IntroStep,
    Suggestion,
    SuggestionList,
)
from netweave.digest.links import Action, Link, LinkRefused
from netweave.jobs import get_jobs
from netweave.services import accounts, digests, introductions
from netweave.services.access import Viewer
from tests.support.smtp import smtp_server
from tests.support.web import PASSWORD, Session, csrf_of, text_of

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday (2026-W48), after the default 08:00 UTC
WEEK = "2026-W48"
LONG_AGO = NOW - timedelta(days=200)
DANA, KEN, LEO, NIA, ZOE = (f"{n}@example.com" for n in ("dana", "ken", "leo", "nia", "zoe"))
MAYA = "maya@example.com"  # a manager with no book of her own

BOOKS = {
    DANA: [("A1", "Petal & Stem", "Florist"), ("A2", "Lakeside Venue", "Wedding Venue"),
           ("A3", "Sweet Crumb Bakery", "Bakery"), ("A4", "Lens & Light", "Photographer"),
           ("A5", "Harbor Caterers", "Caterer"), ("A6", "Bloom DJ", "DJ")],
    KEN: [("K1", "Summit Barn", "Wedding Venue"), ("K2", "Peak Rentals", "Party Rentals")],
    LEO: [("L1", "Leo's Realty", "Realtor"), ("L2", "Home Loans Co", "Mortgage Broker")],
    NIA: [("N1", "Nia Law", "Lawyer"), ("N2", "Count Right", "Accountant")],
    ZOE: [("Z1", "Zoe Gym", "Fitness Gym"), ("Z2", "Fuel Nutrition", "Nutritionist")],
}  # fmt: skip
LISTS = {
    "A1": [("A2", 0.95), ("A3", 0.80), ("K1", 0.70)],
    "A4": [("A5", 0.85)],
    "A6": [("A3", 0.60)],
    "K1": [("A1", 0.70), ("K2", 0.65)],
    "L1": [("L2", 0.90)],
    "N1": [("N2", 0.88)],
    "Z1": [("Z2", 0.86)],
}
ACT = re.compile(r"https?://[^/\s]+(/email/act/[A-Za-z0-9_.\-]+)")


def publish(store, lists: dict[str, list[tuple[str, float]]], at: datetime) -> None:
    generation = store.write(
        lambda tx: tx.begin_generation(GenerationKind.FULL, model="m", rules_digest="r", settings_digest="s", now=at)
    )
    rows = [
        SuggestionList(a, at, tuple(
            Suggestion(a, b, rank, score, (f"{b} sends {a} its clients",), (f"{a} sends {b} its clients",), at)
            for rank, (b, score) in enumerate(others, 1)
        ))
        for a, others in lists.items()
    ]  # fmt: skip
    store.write(lambda tx: tx.write_lists(generation.id, rows))
    store.write(lambda tx: tx.publish_generation(generation.id, at, []))


@pytest.fixture
def store(app: Flask):
    return app.extensions["netweave.store"]


@pytest.fixture
def book(store):
    store.upsert_salespeople(
        [Salesperson(s, s.split("@")[0].title() + " Example", s) for s in BOOKS]
        + [Salesperson(MAYA, "Maya Lind", MAYA, role=Role.MANAGER)]
    )
    records = [
        BusinessRecord(i, name, owner, categories=(kind,), place=Place("Lakewood", "CO", "US"))
        for owner, rows in BOOKS.items() for i, name, kind in rows
    ]  # fmt: skip
    store.upsert_businesses(records, LONG_AGO)
    publish(store, LISTS, NOW - timedelta(days=1))
    for person in (*BOOKS, MAYA):
        accounts.set_password(store, person, PASSWORD)
    return store


@pytest.fixture
def mailbox(app: Flask):
    with smtp_server() as box:
        app.config.update(box.config)
        yield box


def settings(app: Flask, **changes) -> digests.DigestSettings:
    return replace(digests.DigestSettings.from_config(app.config), **changes)


def by_recipient(messages: list[EmailMessage]) -> dict[str, EmailMessage]:
    found = {m["To"]: m for m in messages}
    assert len(found) == len(messages), "a recipient got two messages"
    return found


def parts(message: EmailMessage) -> tuple[str, str]:
    """The plain-text and HTML parts as written (SMTP's CRLF line ends and the final newline
    MIME adds taken back off)."""
    return tuple(  # type: ignore[return-value]
        message.get_body((kind,)).get_content().replace("\r\n", "\n").rstrip("\n") for kind in ("plain", "html")
    )


def as_written(text: str) -> str:
    return text.rstrip("\n")


def links_in(message: EmailMessage, app: Flask) -> list[Link]:
    text, _ = parts(message)
    signer = settings(app).signer
    return [signer.read(path.rsplit("/", 1)[1], NOW) for path in ACT.findall(text)]


def link_path(text: str, app: Flask, **wanted: object) -> str:
    """The path of the first link in an email's text whose fields are `wanted`."""
    signer = settings(app).signer
    for path in ACT.findall(text):
        link = signer.read(path.rsplit("/", 1)[1], NOW)
        if all(getattr(link, name) == value for name, value in wanted.items()):
            return path
    raise AssertionError(f"no link {wanted}")


def pairs_of(message: EmailMessage, app: Flask) -> list[tuple[str, str]]:
    return [(k.a_id, k.b_id) for k in links_in(message, app) if k.action is Action.INTRODUCE]


def signed_in(app: Flask, login: str) -> Session:
    session = Session(app.test_client())
    assert session.sign_in(login).status_code == 302
    return session


# What goes out


def test_each_salesperson_gets_their_best_new_pairs_with_both_parts_links_and_unsubscribe_headers(app, book, mailbox):
    report = digests.send_digests(book, settings(app), now=NOW)
    assert sorted(report.sent) == sorted(f"{WEEK}:{s}" for s in BOOKS)
    assert report.empty == [f"{WEEK}:{MAYA}"]  # nothing in her own book: no email, never an empty list
    mail = by_recipient(mailbox.wait_for(len(BOOKS)))
    assert set(mail) == set(BOOKS)

    dana = mail[DANA]
    # Best first, each customer once per email: A1-A3 and A1-K1 give way to A6-A3 after A1-A2.
    assert pairs_of(dana, app) == [("A1", "A2"), ("A4", "A5"), ("A6", "A3")]
    assert dana["Subject"] == "3 introductions to make: Petal & Stem and Lakeside Venue and 2 more"
    assert dana["From"] == app.config["MAIL_FROM"]
    text, html = parts(dana)
    for part in (text, html):
        assert "Petal &amp; Stem" in part or "Petal & Stem" in part
        assert "A2 sends A1 its clients" in part and "A1 sends A2 its clients" in part  # both sides' reasons
    assert "Hi Dana," in text and "<h1" in html and 'style="' in html  # CSS inlined for mail clients
    assert html.count("/email/act/") == text.count("/email/act/") == 9  # introduce, not now, not a fit x 3

    links = links_in(dana, app)
    assert {k.salesperson_id for k in links} == {DANA} and {k.week for k in links} == {WEEK}
    assert [k.action for k in links[:3]] == [Action.INTRODUCE, Action.SNOOZE, Action.DISMISS]
    assert all(k.expires_at == datetime(2026, 12, 14, tzinfo=UTC) for k in links)  # week's end + 14 days
    assert "The links work until Dec 13" in text  # the last whole day

    unsubscribe = dana["List-Unsubscribe"]
    assert unsubscribe.startswith("<http") and "/email/unsubscribe/" in unsubscribe
    # On the wire as a mail client reads it: one line, the URL in angle brackets, not encoded.
    raw = next(r for r in mailbox.raw if f"To: {DANA}".encode() in r)
    assert f"List-Unsubscribe: {unsubscribe}\r\n".encode() in raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert dana["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert dana["Message-ID"] == book.get_digest(DANA, WEEK).message_id

    recorded = book.get_digest(DANA, WEEK)
    assert recorded.status is DigestStatus.SENT and recorded.attempts == 1 and recorded.sent_at == NOW
    assert [(i.a_id, i.b_id) for i in recorded.items] == [("A1", "A2"), ("A4", "A5"), ("A6", "A3")]
    assert (text, html) == (as_written(recorded.text), as_written(recorded.html))


def test_a_second_run_and_the_next_weeks_send_nothing_twice_and_only_new_pairs(app, book, mailbox):
    digests.send_digests(book, settings(app), now=NOW)
    first = len(mailbox.wait_for(len(BOOKS)))
    again = digests.send_digests(book, settings(app), now=NOW + timedelta(hours=1))
    assert again.sent == [] and again.failed == []
    assert len(mailbox.messages) == first

    next_week = digests.send_digests(book, settings(app), now=NOW + timedelta(days=7))
    dana = by_recipient(mailbox.wait_for(first + 1)[first:])[DANA]
    assert pairs_of(dana, app) == [("A1", "A3")]  # new to her; A1-K1 waits (a customer once per email)
    assert f"2026-W49:{LEO}" in next_week.empty  # Leo's one pair went last week: no email


def test_the_monthly_cap_spreads_the_giving_across_every_book(app, book, mailbox):
    digests.send_digests(book, settings(app, monthly_cap=1), now=NOW)
    mail = by_recipient(mailbox.wait_for(len(BOOKS)))
    appearances = Counter(i for m in mail.values() for pair in pairs_of(m, app) for i in pair)
    assert max(appearances.values()) == 1, appearances
    # Dana's email went first and had A1 (with A2): Ken's leaves his best pair, K1-A1, for K1-K2.
    assert pairs_of(mail[KEN], app) == [("K1", "K2")]


def test_customers_who_waited_longest_for_an_introduction_come_first(app, book, mailbox):
    at = NOW - timedelta(days=2)
    proposed = (IntroStep(IntroStatus.PROPOSED, at, DANA),)
    for intro_id, a, b in (("i1", "A1", "A3"), ("i2", "A2", "A6")):
        made = Introduction(intro_id, a, b, IntroStatus.PROPOSED, at, DANA, "hello", "hello", steps=proposed)
        book.write(lambda tx, i=made: tx.create_introduction(i))
    accounts.set_digest_preferences(book, Viewer(DANA), weekly=True, weekday=0, size=1)
    digests.send_digests(book, settings(app), now=NOW, salesperson_ids=[DANA])
    # A1-A2 scores best, but both were introduced two days ago; A4 and A5 have waited 200 days.
    assert pairs_of(mailbox.wait_for(1)[0], app) == [("A4", "A5")]


def test_follow_ups_ask_once_how_an_introduction_went_and_a_rating_link_records_it(app, book, mailbox):
    def intro(intro_id: str, a: str, b: str, days: int, **more) -> Introduction:
        made = NOW - timedelta(days=days)
        steps = (IntroStep(IntroStatus.PROPOSED, made, DANA), IntroStep(IntroStatus.INTRODUCED, made, DANA))
        return Introduction(intro_id, a, b, IntroStatus.INTRODUCED, made, DANA, "hi", "hi", steps=steps, **more)

    made = (intro("older", "A4", "A5", 30), intro("old", "A1", "A3", 20), intro("recent", "A2", "A6", 5))
    for introduction in made:
        book.write(lambda tx, i=introduction: tx.create_introduction(i))
    digests.send_digests(book, settings(app), now=NOW, salesperson_ids=[DANA])
    dana = mailbox.wait_for(1)[0]
    rates = [k for k in links_in(dana, app) if k.action is Action.RATE]
    assert [(k.introduction_id, k.rating) for k in rates] == [(i, r) for i in ("older", "old") for r in range(1, 6)]
    text, _ = parts(dana)
    assert "How did these go?" in text and "Petal & Stem <-> Sweet Crumb Bakery, introduced Nov 3" in text

    session = signed_in(app, DANA)
    path = link_path(text, app, introduction_id="old", rating=4)
    page = session.get(path)
    assert page.status_code == 200 and "Rate the introduction of Petal & Stem and Sweet Crumb Bakery: 4 of 5" in (
        text_of(page)
    )
    done = session.client.post(path, data={"csrf_token": csrf_of(page.get_data(as_text=True))})
    assert done.status_code == 303 and urlsplit(done.location).path == "/introductions/old"
    assert [f.rating for f in book.get_introduction("old").feedback] == [4]
    other = link_path(text, app, introduction_id="old", rating=2)
    assert session.get(other).status_code == 410  # the line was answered: its other ratings are refused
    # Rated in the app meanwhile: the email's ratings for it are refused (never asked again).
    introductions.rate(book, get_jobs(app), Viewer(DANA), "older", "A4", 5)
    older = link_path(text, app, introduction_id="older", rating=3)
    refused = session.get(older)
    assert refused.status_code == 410 and "rated already" in text_of(refused)

    # Next week: not asked again (answered), and the recent one is not old enough yet.
    digests.send_digests(book, settings(app), now=NOW + timedelta(days=7), salesperson_ids=[DANA])
    assert not [k for k in links_in(mailbox.wait_for(2)[1], app) if k.action is Action.RATE]


# The links


def test_links_lead_through_sign_in_act_once_and_refuse_others_expired_and_forged(app, book, mailbox):
    digests.send_digests(book, settings(app), now=NOW, salesperson_ids=[DANA])
    text, _ = parts(mailbox.wait_for(1)[0])
    introduce, snooze, dismiss, *_ = ACT.findall(text)

    anonymous = app.test_client().get(introduce)
    assert anonymous.status_code == 302 and urlsplit(anonymous.location).path == "/sign-in"
    assert "next=" in anonymous.location
    assert signed_in(app, KEN).get(introduce).status_code == 403  # sent to Dana

    dana = signed_in(app, DANA)
    page = dana.get(introduce)
    assert page.status_code == 200 and "Introduce Petal & Stem and Lakeside Venue" in text_of(page)
    assert book.list_introductions(salesperson_id=DANA) == []  # opening a link does nothing by itself
    token = csrf_of(page.get_data(as_text=True))
    done = dana.client.post(introduce, data={"csrf_token": token})
    assert done.status_code == 303 and done.location.startswith("/introductions/")
    [made] = book.list_introductions(salesperson_id=DANA)
    assert (made.a_id, made.b_id, made.status) == ("A1", "A2", IntroStatus.PROPOSED)
    again = dana.client.post(introduce, data={"csrf_token": token})
    assert again.status_code == 410 and "acted on already" in text_of(again)
    assert dana.client.post(snooze, data={"csrf_token": token}).status_code == 410  # same line
    assert len(book.list_introductions(salesperson_id=DANA)) == 1

    # Another line: not a fit records the dismissal.
    fourth = ACT.findall(text)[5]  # the second pair's "not a fit"
    assert dana.client.post(fourth, data={"csrf_token": token}).status_code == 303
    assert [(f.a, f.b, f.reason) for f in book.list_feedback(["A4"]) if f.kind is FeedbackKind.DISMISSED] == [
        ("A4", "A5", "not_relevant")
    ]
    assert dana.client.post(dismiss + "x", data={"csrf_token": token}).status_code == 410  # tampered

    signer = settings(app).signer
    expired = signer.sign(Link(Action.SNOOZE, DANA, WEEK, NOW - timedelta(seconds=1), "A6", "A3"))
    answer = dana.get(f"/email/act/{expired}")
    assert answer.status_code == 410 and "expired" in text_of(answer)
    with pytest.raises(LinkRefused, match="expired"):
        digests.read_link(book, Viewer(DANA), settings(app), expired, NOW)


def test_one_click_unsubscribe_needs_no_session_and_stops_the_next_email(app, book, mailbox):
    digests.send_digests(book, settings(app), now=NOW, salesperson_ids=[DANA])
    header = mailbox.wait_for(1)[0]["List-Unsubscribe"]
    path = urlsplit(header.strip("<>")).path
    page = app.test_client().get(path)
    assert page.status_code == 200 and "Stop the weekly email?" in text_of(page)
    assert book.digest_preferences(DANA).weekly  # a GET changes nothing
    # What a mail client sends (RFC 8058): a POST with no cookie and no CSRF token.
    answer = app.test_client().post(path, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200 and "You are unsubscribed" in text_of(answer)
    assert not book.digest_preferences(DANA).weekly
    assert app.test_client().post(path[:-3] + "abc").status_code == 410
    report = digests.send_digests(book, settings(app), now=NOW + timedelta(days=7))
    assert f"2026-W49:{DANA}" not in report.sent and DANA not in {m["To"] for m in mailbox.messages[1:]}


def test_a_failed_digest_is_not_retried_after_its_salesperson_unsubscribes(app, book, mailbox):
    mailbox.refuse.add(DANA)
    digests.send_digests(book, settings(app), now=NOW, salesperson_ids=[DANA])
    assert book.get_digest(DANA, WEEK).status is DigestStatus.FAILED
    path = urlsplit(digests.message(book.get_digest(DANA, WEEK), settings(app))["List-Unsubscribe"].strip("<>")).path
    assert app.test_client().post(path).status_code == 200
    mailbox.refuse.clear()
    report = digests.send_digests(book, settings(app), now=NOW + timedelta(hours=1))
    assert report.gave_up == [(f"{WEEK}:{DANA}", "unsubscribed before it could be sent")]
    assert book.get_digest(DANA, WEEK).status is DigestStatus.GAVE_UP
    assert DANA not in {m["To"] for m in mailbox.messages}


def test_a_salesperson_with_no_address_is_skipped_and_the_others_still_get_theirs(app, book, mailbox):
    book.upsert_businesses([BusinessRecord("U1", "Unowned Co", "crm-owner-17")], LONG_AGO)  # no email known
    publish(book, {**LISTS, "U1": [("A1", 0.99)]}, NOW - timedelta(hours=1))
    report = digests.send_digests(book, settings(app), now=NOW)
    assert sorted(report.sent) == sorted(f"{WEEK}:{s}" for s in BOOKS) and report.failed == []
    assert book.get_digest("crm-owner-17", WEEK) is None and len(mailbox.wait_for(len(BOOKS))) == len(BOOKS)


def test_a_business_name_cannot_inject_a_header(app, book, mailbox):
    hostile = BusinessRecord("A1", "Petal\r\nBcc: victim@example.com\nX-Evil: 1", DANA, categories=("Florist",))
    book.upsert_businesses([hostile], NOW)
    digests.send_digests(book, settings(app), now=NOW, salesperson_ids=[DANA])
    message = mailbox.wait_for(1)[0]
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert message["Subject"].startswith("3 introductions to make: Petal Bcc: victim@example.com X-Evil: 1 and")
    assert "\n" not in message["Subject"]


# Exactly once when things fail


def test_a_server_stopped_half_way_the_next_run_sends_the_rest_and_nothing_twice(app, book, mailbox):
    port = mailbox.port

    def clock() -> datetime:
        if mailbox.messages and mailbox.controller is not None:
            mailbox.stop()  # right after the first message is accepted
        return NOW

    first = digests.send_digests(book, settings(app), now=NOW, clock=clock)
    assert len(first.sent) == 1 and len(first.failed) == digests.SERVER_DOWN_AFTER and first.stopped
    delivered_first = [m["To"] for m in mailbox.messages]
    states = {d.salesperson_id: d.status for d in book.list_digests(week=WEEK)}
    assert list(states.values()).count(DigestStatus.FAILED) == digests.SERVER_DOWN_AFTER
    unrecorded = set(BOOKS) - set(states)
    assert unrecorded, "the run stopped before building every digest"

    too_soon = digests.send_digests(book, settings(app), now=NOW + timedelta(minutes=1))
    assert too_soon.sent == [] and too_soon.failed  # still down; the failed wait for their retry

    with smtp_server(port) as restarted:
        later = digests.send_digests(book, settings(app), now=NOW + timedelta(minutes=10))
        delivered_later = [m["To"] for m in restarted.wait_for(len(BOOKS) - 1)]
    assert sorted(delivered_first + delivered_later) == sorted(BOOKS)  # everyone, once
    assert later.failed == [] and not later.stopped
    assert {d.status for d in book.list_digests(week=WEEK) if d.salesperson_id in BOOKS} == {DigestStatus.SENT}


def test_a_refused_address_is_recorded_and_retried_with_backoff_while_the_others_go(app, book, mailbox):
    mailbox.refuse.add(KEN)
    report = digests.send_digests(book, settings(app), now=NOW)
    assert [d for d, _ in report.failed] == [f"{WEEK}:{KEN}"] and "550" in report.failed[0][1]
    assert set(by_recipient(mailbox.wait_for(len(BOOKS) - 1))) == set(BOOKS) - {KEN}
    ken = book.get_digest(KEN, WEEK)
    assert ken.status is DigestStatus.FAILED and ken.attempts == 1
    assert ken.next_attempt_at == NOW + timedelta(minutes=5) and "No such user" in ken.last_error

    assert digests.send_digests(book, settings(app), now=NOW + timedelta(minutes=4)).failed == []  # not yet
    second = digests.send_digests(book, settings(app), now=NOW + timedelta(minutes=5))
    assert [d for d, _ in second.failed] == [f"{WEEK}:{KEN}"]
    assert book.get_digest(KEN, WEEK).next_attempt_at == NOW + timedelta(minutes=35)  # then 30 minutes

    mailbox.refuse.clear()
    third = digests.send_digests(book, settings(app), now=NOW + timedelta(minutes=35))
    assert third.sent == [f"{WEEK}:{KEN}"] and book.get_digest(KEN, WEEK).attempts == 3
    assert mailbox.wait_for(len(BOOKS))[-1]["To"] == KEN

    mailbox.refuse.add(DANA)  # a digest that never goes gives up after the last wait
    quick = settings(app, retry_minutes=(1,))
    digests.send_digests(book, quick, now=NOW + timedelta(days=7), salesperson_ids=[DANA])
    digests.send_digests(book, quick, now=NOW + timedelta(days=7, minutes=1), salesperson_ids=[DANA])
    assert book.get_digest(DANA, "2026-W49").status is DigestStatus.GAVE_UP


# When, and what if nothing is new


def test_each_salesperson_gets_it_at_their_own_hour_in_their_own_time_zone(app, book, mailbox):
    # Wednesday 09:00 in Chicago (UTC-6 in November) is 15:00 UTC.
    accounts.set_digest_preferences(book, Viewer(DANA), weekly=True, weekday=2, size=5, hour=9,
                                    timezone="America/Chicago")  # fmt: skip
    wednesday = datetime(2026, 11, 25, 14, 59, tzinfo=UTC)
    assert f"{WEEK}:{DANA}" not in digests.send_digests(book, settings(app), now=wednesday).sent
    assert book.get_digest(DANA, WEEK) is None
    assert book.get_digest(KEN, WEEK).status is DigestStatus.SENT  # his default: Monday 08:00 UTC
    sent = digests.send_digests(book, settings(app), now=wednesday + timedelta(minutes=1)).sent
    assert sent == [f"{WEEK}:{DANA}"]
    assert digests.slot(book.digest_preferences(DANA), WEEK) == datetime(2026, 11, 25, 15, tzinfo=UTC)


def test_a_slot_missed_at_the_end_of_a_week_is_caught_up_early_the_next(app, book, mailbox):
    accounts.set_digest_preferences(book, Viewer(LEO), weekly=True, weekday=6, size=5, hour=23)  # Sundays 23:00
    monday = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # W49 began an hour ago; nothing ran since Sunday 22:00
    report = digests.send_digests(book, settings(app), now=monday)
    assert f"{WEEK}:{LEO}" in report.sent and book.get_digest(LEO, "2026-W49") is None
    three_days_late = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    accounts.set_digest_preferences(book, Viewer(ZOE), weekly=True, weekday=6, size=5, hour=23)
    book.write(lambda tx: tx.set_digest_preferences(replace(book.digest_preferences(ZOE), weekly=True)))
    assert f"{WEEK}:{ZOE}" not in digests.send_digests(book, settings(app), now=three_days_late).sent


def test_nothing_new_sends_nothing_or_a_short_note_when_asked(app, book, mailbox):
    digests.send_digests(book, settings(app), now=NOW, salesperson_ids=[LEO])
    mailbox.wait_for(1)
    week2 = NOW + timedelta(days=7)
    assert digests.send_digests(book, settings(app), now=week2, salesperson_ids=[LEO]).empty == [f"2026-W49:{LEO}"]
    assert len(mailbox.messages) == 1
    accounts.set_digest_preferences(book, Viewer(LEO), weekly=True, weekday=0, size=5, note_when_empty=True)
    week3 = NOW + timedelta(days=14)
    assert digests.send_digests(book, settings(app), now=week3, salesperson_ids=[LEO]).sent == [f"2026-W50:{LEO}"]
    note = mailbox.wait_for(2)[1]
    assert note["Subject"] == "No new introductions this week" and "Nothing new to suggest" in parts(note)[0]
    assert "/email/act/" not in parts(note)[0]


# The preview


def test_the_preview_is_exactly_what_is_sent_in_the_cli_and_the_web_app(app, book, mailbox, runner):
    before = digests.preview(book, Viewer(DANA), DANA, settings(app), week=WEEK, now=NOW)
    assert book.list_digests() == []  # previewing records nothing
    page = signed_in(app, DANA).get(f"/settings/email?week={WEEK}")
    assert page.status_code == 200 and before.subject in text_of(page)
    frame = signed_in(app, DANA).get(f"/settings/email/message.html?week={WEEK}")
    # The web app previews as of today (a past week's links would then run from today).
    today = digests.preview(book, Viewer(DANA), DANA, settings(app), week=WEEK, now=datetime.now(UTC))
    assert frame.get_data(as_text=True) == today.html
    assert "frame-ancestors 'self'" in frame.headers["Content-Security-Policy"]
    assert signed_in(app, KEN).get(f"/settings/email?salesperson={DANA}").status_code == 404  # not his book
    assert signed_in(app, MAYA).get(f"/settings/email?salesperson={DANA}&week={WEEK}").status_code == 200

    digests.send_digests(book, settings(app), now=NOW, salesperson_ids=[DANA])
    sent = mailbox.wait_for(1)[0]
    assert parts(sent) == (as_written(before.text), as_written(before.html)) and sent["Subject"] == before.subject

    shown = runner.invoke(args=["digest", "preview", DANA, "--week", WEEK])
    assert shown.exit_code == 0, shown.output
    assert f"Subject: {before.subject}" in shown.output and before.text in shown.output and "(recorded)" in shown.output


def test_the_cli_sends_lists_and_dry_runs_with_clear_errors(app, book, mailbox, runner):
    dry = runner.invoke(args=["digest", "send", "--week", WEEK, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"{WEEK}  {DANA}" in dry.output and "would be sent (dry run)" in dry.output
    assert book.list_digests() == [] and mailbox.messages == []
    sent = runner.invoke(args=["digest", "send", "--week", WEEK, "--salesperson", KEN.upper()])
    assert sent.exit_code == 0 and "1 sent" in sent.output
    assert [m["To"] for m in mailbox.wait_for(1)] == [KEN]
    listed = runner.invoke(args=["digest", "list"])
    assert f"{WEEK}  {KEN}" in listed.output and "sent" in listed.output
    for args, error in (
        (["digest", "send", "--week", "2026-48"], "is not an ISO week"),
        (["digest", "send", "--week", "2026-W048"], "is not an ISO week"),  # one spelling: it keys the digest
        (["digest", "send", "--week", "2026-W48 "], "is not an ISO week"),
        (["digest", "send", "--week", "2026-W54"], "is not an ISO week"),
        (["digest", "send", "--salesperson", "nobody@example.com"], "no salesperson"),
        (["digest", "preview", "nobody@example.com"], "no salesperson"),
    ):
        answer = runner.invoke(args=args)
        assert answer.exit_code == 2 and error in answer.output, (args, answer.output)
    app.config["SMTP_HOST"] = ""
    off = runner.invoke(args=["digest", "send"])
    assert off.exit_code == 1 and "email is not set up here" in off.output


# The store's part


def test_the_store_records_a_digest_once_claims_it_for_retries_and_uses_a_link_once(book):
    digest = Digest(DANA, WEEK, DigestStatus.SENDING, NOW, (DigestItem(DigestItemKind.SUGGESTION, "A1", "A2", 0.9),),
                            DANA, "s", "t", "<p>h</p>", "<m@x>", lease_until=NOW + timedelta(minutes=10))  # fmt: skip
    assert book.write(lambda tx: tx.record_digest(digest)) is True
    assert book.write(lambda tx: tx.record_digest(replace(digest, subject="other"))) is False
    assert book.get_digest(DANA, WEEK) == digest
    assert book.list_digests(week=WEEK, bodies=False)[0].html == ""
    # Sending, within its lease: nobody else may take it.
    assert book.write(lambda tx: tx.claim_digest(DANA, WEEK, NOW, NOW + timedelta(minutes=10))) is None
    retry = NOW + timedelta(minutes=5)
    assert book.write(lambda tx: tx.finish_digest(DANA, WEEK, DigestStatus.FAILED, NOW, error="down",
                                                  next_attempt_at=retry))  # fmt: skip
    assert book.write(lambda tx: tx.claim_digest(DANA, WEEK, NOW, NOW + timedelta(minutes=10))) is None  # not due
    claimed = book.write(lambda tx: tx.claim_digest(DANA, WEEK, retry, retry + timedelta(minutes=10)))
    assert claimed.status is DigestStatus.SENDING and claimed.attempts == 1 and claimed.last_error == "down"
    # A run whose lease ended, and was taken over, cannot record the outcome any more.
    later = retry + timedelta(minutes=11)
    taken = book.write(lambda tx: tx.claim_digest(DANA, WEEK, later, later + timedelta(minutes=10)))
    assert taken.attempts == 2  # the attempt that stopped half-way counts
    assert not book.write(
        lambda tx: tx.finish_digest(DANA, WEEK, DigestStatus.SENT, later, claimed_until=claimed.lease_until)
    )
    assert book.write(
        lambda tx: tx.finish_digest(DANA, WEEK, DigestStatus.SENT, later, claimed_until=taken.lease_until)
    )
    assert not book.write(lambda tx: tx.finish_digest(DANA, WEEK, DigestStatus.SENT, later))  # not sending
    retry = later
    assert book.get_digest(DANA, WEEK).sent_at == retry
    assert book.digest_items(since=NOW) == [(DANA, digest.items[0])]
    assert book.digest_items(since=NOW + timedelta(seconds=1)) == []
    never = replace(digest, week="2026-W47", status=DigestStatus.SENDING)
    book.write(lambda tx: tx.record_digest(never))
    book.write(lambda tx: tx.finish_digest(DANA, "2026-W47", DigestStatus.GAVE_UP, NOW, error="refused"))
    assert book.digest_items(salesperson_id=DANA) == [(DANA, digest.items[0])]  # never delivered: held nothing

    assert book.link_used("line") is None
    assert book.write(lambda tx: tx.consume_link("line", NOW)) is True
    assert book.write(lambda tx: tx.consume_link("line", NOW)) is False
    assert book.link_used("line") == NOW
    defaults = {p.salesperson_id: p for p in book.all_digest_preferences()}
    assert set(defaults) == {*BOOKS, MAYA} and defaults[KEN] == DigestPreferences(KEN)


def test_nothing_is_recorded_before_the_first_suggestions_are_published(app, store, mailbox):
    store.upsert_salespeople([Salesperson(DANA, "Dana Example", DANA)])
    store.upsert_businesses([BusinessRecord("A1", "Petal & Stem", DANA)], LONG_AGO)
    report = digests.send_digests(store, settings(app), now=NOW)
    assert "no suggestions are published yet" in report.stopped
    assert store.list_digests() == [] and mailbox.messages == []  # the week's email is still to come
