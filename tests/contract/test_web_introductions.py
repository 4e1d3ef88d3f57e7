"""Introductions in the web app and their service functions, on both backends: the board by
status with follow-ups, moving one on with a click, the composer (drafts edited until asking
begins, emailed to each side through a real SMTP server, then marked asked), the 1-5 outcome,
and another book's introduction as a 404."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from graph.records import IntroStatus, TokenScope
from netweave import create_app
from netweave.digest import mailer
from netweave.jobs import get_jobs, get_runner
from netweave.services import introductions
from netweave.services.access import Conflict, Invalid, Viewer
from tests.conftest import app_config
from tests.contract.test_web import _people, signed_in
from tests.support.api import BARN, DANA, KEN, MAYA, VENUE, Api, florist, token
from tests.support.smtp import smtp_server
from tests.support.web import csrf_of, text_of

DANA_VIEW = Viewer(DANA)


def _book(app: Flask):
    store = app.extensions["netweave.store"]
    _people(store)
    crm = Api(app.test_client(), token(store, TokenScope.WRITE))
    businesses = [florist(email="hello@petalstem.example", contact_name="Rosa Petal"),
                  {**VENUE, "email": "events@lakeside.example"}, BARN]  # fmt: skip
    assert crm.post("/businesses/bulk", json={"businesses": businesses}).status_code == 200
    get_runner(app).run_queued()
    return store


@pytest.fixture
def book(app: Flask, embedder):
    return _book(app)


def _propose(app, store, a="F1", b="V1"):
    return introductions.propose(store, get_jobs(app), DANA_VIEW, a, b)


def test_the_board_groups_by_status_moves_on_a_click_and_flags_follow_ups(app, book):
    intro = _propose(app, book)
    dana = signed_in(app, DANA)
    board = dana.get("/introductions")
    assert board.status_code == 200
    words = text_of(board)
    assert "Drafted 1" in words and "Petal & Stem ↔ Lakeside Venue" in words and "Follow up" not in words
    token_ = csrf_of(board.get_data(as_text=True))
    moved = dana.client.post(f"/introductions/{intro.id}/move",
                             data={"csrf_token": token_, "status": "asked", "steps": "1", "back": "board"})  # fmt: skip
    assert moved.status_code == 303 and moved.location == "/introductions"
    assert book.get_introduction(intro.id).status is IntroStatus.ASKED
    # The same click again is from a version that is gone: refused, nothing written.
    again = dana.client.post(f"/introductions/{intro.id}/move",
                             data={"csrf_token": token_, "status": "accepted", "steps": "1"})  # fmt: skip
    assert again.status_code == 303 and "changed since" in text_of(dana.get(again.location))
    assert book.get_introduction(intro.id).status is IntroStatus.ASKED
    week_later = datetime.now(UTC) + timedelta(days=8)
    assert introductions.waiting(book.get_introduction(intro.id), week_later) >= timedelta(days=7)
    assert introductions.waiting(book.get_introduction(intro.id), datetime.now(UTC)) is None


def test_the_composer_edits_the_drafts_until_asking_begins(app, book):
    intro = _propose(app, book)
    dana = signed_in(app, DANA)
    page = dana.get(f"/introductions/{intro.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Rosa" in html  # Dana's own florist: its contact is hers to see
    assert "mailto:hello%40petalstem.example?subject=" in html
    form = {"csrf_token": csrf_of(html), "message_a": "Hi Rosa, shall I introduce you?", "message_b": "", "steps": "1"}
    empty = dana.client.post(f"/introductions/{intro.id}/messages", data=form)
    assert empty.status_code == 400 and "Write the message" in text_of(empty)
    assert book.get_introduction(intro.id).message_a == intro.message_a  # nothing half-saved
    saved = dana.client.post(f"/introductions/{intro.id}/messages", data={**form, "message_b": "Hello Lakeside!"})
    assert saved.status_code == 303
    stored = book.get_introduction(intro.id)
    assert (stored.message_a, stored.message_b) == ("Hi Rosa, shall I introduce you?", "Hello Lakeside!")
    introductions.advance(book, get_jobs(app), DANA_VIEW, intro.id, IntroStatus.ASKED)
    with pytest.raises(Conflict):
        introductions.edit_messages(book, DANA_VIEW, intro.id, "x", "y", expected_steps=2)
    with pytest.raises(Invalid) as long:
        introductions.edit_messages(book, DANA_VIEW, intro.id, "x" * 5001, "y", expected_steps=2)
    assert long.value.problems[0][0] == "message_a"


def test_email_both_sends_each_its_own_message_then_marks_asked(store_settings, tmp_path, embedder):
    with smtp_server() as mailbox:
        app = create_app({**app_config(store_settings, tmp_path), **mailbox.config})
        try:
            store = _book(app)
            intro = _propose(app, store)
            dana = signed_in(app, DANA)
            page = dana.get(f"/introductions/{intro.id}").get_data(as_text=True)
            assert "Email both and mark asked" in page
            sent = dana.client.post(f"/introductions/{intro.id}/ask", data={"csrf_token": csrf_of(page), "steps": "1"})
            assert sent.status_code == 303
            messages = {m["To"]: m for m in mailbox.wait_for(2)}
            assert set(messages) == {"hello@petalstem.example", "events@lakeside.example"}
            florists = messages["hello@petalstem.example"].get_content().replace("\r\n", "\n")
            assert florists.strip() == intro.message_a.strip()
            assert "Lakeside Venue" in messages["hello@petalstem.example"]["Subject"]
            stored = store.get_introduction(intro.id)
            assert stored.status is IntroStatus.ASKED
            assert "emailed Petal & Stem and Lakeside Venue" in stored.steps[-1].note
            # Once asked, asking again is refused and nothing more is sent.
            again = dana.client.post(f"/introductions/{intro.id}/ask", data={"csrf_token": csrf_of(page), "steps": "2"})
            assert "Not asked" in text_of(dana.get(again.location)) and len(mailbox.messages) == 2
        finally:
            app.extensions["netweave.store"].close()


def test_asking_needs_both_addresses_and_a_mail_server_and_says_what_went_out(app, book):
    jobs = get_jobs(app)
    barn = _propose(app, book, "F1", "V2")  # Ken's barn has no address Dana may see
    settings = mailer.MailSettings("127.0.0.1", 9, "none", "", "", "Netweave <n@example.com>", timeout=2)
    with pytest.raises(Invalid) as missing:
        introductions.email_asks(book, jobs, DANA_VIEW, barn.id, settings, expected_steps=1)
    hidden = "no email address for Summit Barn (its salesperson has not shared it)"
    assert missing.value.problems == (("business_b", hidden),)
    venue = _propose(app, book)
    with pytest.raises(mailer.MailFailed, match="nothing was sent; not to Petal & Stem"):
        introductions.email_asks(book, jobs, DANA_VIEW, venue.id, settings, expected_steps=1)
    assert book.get_introduction(venue.id).status is IntroStatus.PROPOSED
    off = mailer.MailSettings("", 25, "none", "", "", "n@example.com")
    with pytest.raises(mailer.MailNotConfigured):
        introductions.email_asks(book, jobs, DANA_VIEW, venue.id, off, expected_steps=1)
    assert "Email is not set up" in text_of(signed_in(app, DANA).get(f"/introductions/{venue.id}"))


def test_an_outcome_is_rated_from_either_side_and_another_book_cannot_see_it(app, book):
    intro = _propose(app, book)
    jobs = get_jobs(app)
    for status in (IntroStatus.ASKED, IntroStatus.ACCEPTED):
        introductions.advance(book, jobs, DANA_VIEW, intro.id, status)
    dana = signed_in(app, DANA)
    page = dana.get(f"/introductions/{intro.id}").get_data(as_text=True)
    rating = {"csrf_token": csrf_of(page), "business_id": "V1", "rating": "5", "comment": "Booked three weddings"}
    rated = dana.client.post(f"/introductions/{intro.id}/rate", data=rating)
    assert rated.status_code == 303
    [feedback] = book.get_introduction(intro.id).feedback
    assert (feedback.business_id, feedback.rating, feedback.comment) == ("V1", 5, "Booked three weddings")
    bad = dana.client.post(f"/introductions/{intro.id}/rate", data={
        "csrf_token": csrf_of(page), "business_id": "V2", "rating": "9"})  # fmt: skip
    assert bad.status_code == 400 and len(book.get_introduction(intro.id).feedback) == 1
    assert "5/5" in text_of(dana.get(f"/introductions/{intro.id}"))
    # The venue's give-back ledger: what it received from us and how it went.
    venue = text_of(dana.get("/customers/V1"))
    assert "1 introduction so far · 1 where both said yes · 0 that won business · rated 5.0/5 on average" in venue
    assert "the last one 0 days ago" in venue and "Petal & Stem accepted" in venue
    ledger = introductions.ledger(book, DANA_VIEW, "F1")
    assert (len(ledger.introductions), ledger.accepted, ledger.average_rating) == (1, 1, None)
    ken = signed_in(app, KEN)
    assert ken.get(f"/introductions/{intro.id}").status_code == 404
    assert "Summit Barn has not received an introduction from us yet" in text_of(ken.get("/customers/V2"))
    assert "Petal & Stem" not in text_of(ken.get("/introductions"))
    maya = signed_in(app, MAYA)
    assert maya.get(f"/introductions/{intro.id}").status_code == 200


def test_the_board_says_how_to_start_when_empty(app, book):
    words = text_of(signed_in(app, DANA).get("/introductions"))
    assert "No introductions yet" in words and re.search(r"press Introduce", words)
