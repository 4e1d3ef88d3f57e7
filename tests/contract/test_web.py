"""The salesperson web app through Flask's client, on both backends: sign-in (CSRF, wrong
passwords, safe redirects, sign-out, reset by email through a real SMTP server, rate limits),
Today's cards and acting on them in place, scoping between books, escaping, security headers,
and hostile query parameters that must never get a 500.

`tests/e2e/test_web_browser.py` drives the same pages in headless Chromium.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from flask import Flask

from graph import Role, Salesperson, TieKind
from graph.records import FeedbackKind, TokenScope
from netweave import create_app
from netweave.jobs import get_jobs, get_runner
from netweave.services import accounts
from tests.conftest import app_config
from tests.support.api import BARN, DANA, KEN, MAYA, VENUE, Api, florist, token
from tests.support.smtp import smtp_server
from tests.support.web import PASSWORD, Session, csrf_of, text_of

HTMX = {"HX-Request": "true"}


def _people(store) -> None:
    store.upsert_salespeople(
        [
            Salesperson(DANA, "Dana Reyes", DANA),
            Salesperson(KEN, "Ken Olson", KEN),
            Salesperson(MAYA, "Maya Lind", MAYA, role=Role.MANAGER),
        ]
    )
    for person in (DANA, KEN, MAYA):
        accounts.set_password(store, person, PASSWORD)


@pytest.fixture
def book(app: Flask, embedder):
    """Dana's florist and venue and Ken's barn, with their suggestions computed."""
    store = app.extensions["netweave.store"]
    _people(store)
    crm = Api(app.test_client(), token(store, TokenScope.WRITE))
    assert crm.post("/businesses/bulk", json={"businesses": [florist(), VENUE, BARN]}).status_code == 200
    get_runner(app).run_queued()
    return store


def signed_in(app: Flask, login: str) -> Session:
    session = Session(app.test_client())
    assert session.sign_in(login).status_code == 302
    return session


# Sign-in


def test_every_page_asks_to_sign_in_first_and_comes_back_after(app, book):
    for path in ("/", "/customers", "/customers/F1", "/?city=Denver"):
        answer = app.test_client().get(path)
        assert answer.status_code == 302 and urlsplit(answer.location).path == "/sign-in", path
    session = Session(app.test_client())
    answer = session.post_form("/sign-in", "/sign-in?next=/customers/F1", {"login": DANA, "password": PASSWORD})
    assert answer.location == "/customers/F1"
    assert "Petal & Stem" in text_of(session.get("/customers/F1"))


def test_a_wrong_password_a_missing_csrf_token_or_a_foreign_next_get_nowhere(app, book):
    session = Session(app.test_client())
    wrong = session.sign_in(DANA, "not the password")
    assert wrong.status_code == 400 and "do not match an account" in text_of(wrong)
    assert session.get("/").status_code == 302  # still signed out
    forged = session.client.post("/sign-in", data={"login": DANA, "password": PASSWORD})
    assert forged.status_code == 400 and "Reload the page" in text_of(forged)
    for foreign in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        answer = session.post_form("/sign-in", f"/sign-in?next={foreign}", {"login": DANA, "password": PASSWORD})
        assert answer.location == "/", foreign
        session.post_form("/", "/sign-out", {})


def test_signing_out_ends_the_session_and_a_new_password_ends_the_others(app, book):
    dana = signed_in(app, DANA)
    other_browser = signed_in(app, DANA)
    assert dana.post_form("/", "/sign-out", {}).location == "/sign-in"
    assert dana.get("/").status_code == 302
    accounts.set_password(book, DANA, "a brand new password")
    assert other_browser.get("/").status_code == 302


def test_a_password_reset_link_arrives_by_email_and_works_once(store_settings, tmp_path, embedder):
    with smtp_server() as mailbox:
        app = create_app({**app_config(store_settings, tmp_path), **mailbox.config})
        try:
            _people(app.extensions["netweave.store"])
            session = Session(app.test_client())
            # Asked through a forged Host: the link must still point at the configured address.
            forged = app.test_client()
            form = csrf_of(forged.get("/reset", base_url="http://evil.example").get_data(as_text=True))
            for login in ("DANA@example.com", "nobody@example.com"):  # the same answer either way
                answer = forged.post(
                    "/reset", data={"csrf_token": form, "login": login}, base_url="http://evil.example"
                )
                assert answer.status_code == 302 and answer.location == "/sign-in"
            [message] = mailbox.wait_for(1)
            assert message["To"] == DANA and "Reset your Netweave password" in message["Subject"]
            link = re.search(r"http://\S+/reset/\S+", message.get_content()).group(0)
            assert link.startswith("http://127.0.0.1:8000/reset/")  # the configured address, not the Host header
            path = urlsplit(link).path
            weak = session.post_form(path, path, {"password": "short", "confirm": "short"})
            assert weak.status_code == 400 and "at least 10" in text_of(weak)
            data = {"password": "a brand new password", "confirm": "a brand new password"}
            assert session.post_form(path, path, data).location == "/sign-in"
            assert session.sign_in(DANA, "a brand new password").status_code == 302
            again = session.post_form(path, path, data)
            assert again.status_code == 400 and "used already" in text_of(again)
            assert len(mailbox.messages) == 1
        finally:
            app.extensions["netweave.store"].close()


def test_without_email_set_up_the_reset_page_says_what_to_do_instead(app, book):
    page = Session(app.test_client())
    assert "salespeople set-password" in text_of(page.get("/reset"))
    answer = page.post_form("/reset", "/reset", {"login": DANA})
    assert answer.status_code == 400 and "Email is not set up" in text_of(answer)


def test_guessing_passwords_is_slowed_to_a_few_tries_a_minute(store_settings, tmp_path):
    app = create_app({**app_config(store_settings, tmp_path), "SIGN_IN_RATE_LIMIT": "3 per minute"})
    try:
        _people(app.extensions["netweave.store"])
        session = Session(app.test_client())
        statuses = [session.sign_in(DANA, f"guess number {n}").status_code for n in range(4)]
        assert statuses == [400, 400, 400, 429]
        refused = session.sign_in(DANA)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        assert "Too many tries" in text_of(refused)
    finally:
        app.extensions["netweave.store"].close()


def test_an_account_is_locked_after_a_few_wrong_passwords_from_any_address(store_settings, tmp_path):
    app = create_app({**app_config(store_settings, tmp_path), "SIGN_IN_LOCKOUT": "3 per 15 minutes"})
    try:
        _people(app.extensions["netweave.store"])

        def sign_in(login: str, password: str, address: str) -> int:
            session = Session(app.test_client())
            session.client.environ_base["REMOTE_ADDR"] = address
            return session.sign_in(login, password).status_code

        assert sign_in(DANA, PASSWORD, "10.0.0.9") == 302  # a right password does not count
        statuses = [sign_in(DANA.upper(), f"guess {n}", f"10.0.0.{n}") for n in range(3)]  # three addresses
        assert statuses == [400, 400, 400]
        assert sign_in(DANA, PASSWORD, "10.0.0.99") == 429  # locked, even with the right password
        assert sign_in(KEN, PASSWORD, "10.0.0.1") == 302  # other accounts are not
        accounts.set_password(app.extensions["netweave.store"], DANA, "a new password after a reset")
        assert sign_in(DANA, "a new password after a reset", "10.0.0.5") == 302  # a new password: a new count
    finally:
        app.extensions["netweave.store"].close()


# Today


def test_today_shows_my_best_suggestions_with_both_sides_reasons_and_why_now(app, book):
    page = signed_in(app, DANA).get("/")
    assert page.status_code == 200
    words = text_of(page)
    assert "Petal & Stem" in words and "Lakeside Venue" in words and "Summit Barn" in words
    assert "Why Petal & Stem gains" in words and "Why now:" in words and "became a customer" in words
    assert "Ken Olson's customer" in words  # the barn is in Ken's book
    assert words.count("Introduce") >= 2


def test_filters_narrow_the_cards_and_bad_values_are_a_clear_400(app, book):
    dana = signed_in(app, DANA)
    assert "Summit Barn" not in text_of(dana.get("/?city=Lakewood"))
    assert "Lakeside Venue" in text_of(dana.get("/?city=lakewood"))
    assert "No suggestion passes these filters" in text_of(dana.get("/?q=bakery"))
    assert "No suggestion passes these filters" in text_of(dana.get("/?min_score=100"))
    bad = dana.get("/?min_score=lots")
    assert bad.status_code == 400 and "not valid" in text_of(bad)


def test_acting_on_a_card_in_place_reaches_matching(app, book):
    dana = signed_in(app, DANA)
    page = dana.get("/").get_data(as_text=True)
    token_ = csrf_of(page)
    dismissed = dana.client.post("/today/act", headers=HTMX, data={
        "csrf_token": token_, "business_id": "F1", "other_id": "V2", "action": "dismiss"})  # fmt: skip
    assert dismissed.status_code == 200 and "Dismissed Petal & Stem and Summit Barn" in text_of(dismissed)
    assert "<html" not in dismissed.get_data(as_text=True)  # a fragment for the card, not a page
    [feedback] = [f for f in book.list_feedback(["F1"]) if f.kind is FeedbackKind.DISMISSED]
    assert (feedback.a, feedback.b, feedback.reason) == ("F1", "V2", "not_relevant")
    assert "Summit Barn" not in text_of(dana.get("/"))

    introduced = dana.client.post("/today/act", headers=HTMX, data={
        "csrf_token": token_, "business_id": "F1", "other_id": "V1", "action": "introduce"})  # fmt: skip
    assert introduced.status_code == 200 and "drafted" in text_of(introduced)
    [intro] = book.list_introductions(business_id="F1")
    assert {intro.a_id, intro.b_id} == {"F1", "V1"} and " ".join(intro.message_a.split()) in text_of(introduced)
    # Without JavaScript the same form posts and comes back to Today with a note.
    plain = dana.client.post("/today/act", data={
        "csrf_token": token_, "business_id": "F1", "other_id": "V1", "action": "snooze"})  # fmt: skip
    assert plain.status_code == 303 and plain.location == "/"


def test_acting_needs_a_valid_form_and_a_pair_in_my_book(app, book):
    ken = signed_in(app, KEN)
    token_ = csrf_of(ken.get("/").get_data(as_text=True))
    form = {"csrf_token": token_, "business_id": "F1", "other_id": "V1", "action": "dismiss"}
    assert ken.client.post("/today/act", headers=HTMX, data=form).status_code == 404  # Dana's pair
    bad = ken.client.post("/today/act", headers=HTMX, data={**form, "action": "explode"})
    assert bad.status_code == 400 and "action" in text_of(bad)
    assert ken.client.post("/today/act", headers=HTMX, data={**form, "csrf_token": "forged"}).status_code == 400
    same = ken.client.post("/today/act", headers=HTMX, data={**form, "business_id": "V2", "other_id": "V2"})
    assert same.status_code == 400 and "two different customers" in text_of(same)
    assert book.list_feedback(["F1", "V1"]) == []


def test_a_salesperson_sees_only_their_book_and_a_manager_switches_books(app, book):
    ken = signed_in(app, KEN)
    assert ken.get("/customers/F1").status_code == 404  # Dana's account
    assert ken.get("/customers/V2").status_code == 200
    listed = text_of(ken.get("/customers"))
    assert "Summit Barn" in listed and "Lakeside Venue" not in listed
    kens = text_of(ken.get(f"/?book={DANA}"))  # a salesperson has one book: their own
    assert "Summit Barn" in kens and "Lakeside Venue" not in kens
    maya = signed_in(app, MAYA)
    assert maya.get("/customers/F1").status_code == 200
    assert "Lakeside Venue" in text_of(maya.get(f"/?book={DANA}"))
    assert "Dana Reyes's book" in text_of(maya.get(f"/?book={DANA}"))
    assert "Ken Olson's book" in text_of(maya.get(f"/?book={KEN}"))


def test_what_users_typed_is_shown_as_text_and_pages_carry_security_headers(app, book):
    crm = Api(app.test_client(), token(book, TokenScope.WRITE))
    sneaky = florist("F2", name="<script>alert('x')</script> Blooms", description="<img src=x onerror=alert(1)>")
    assert crm.post("/businesses/bulk", json={"businesses": [sneaky]}).status_code == 200
    maya = signed_in(app, MAYA)
    for path in ("/customers", "/customers/F2"):
        html = maya.get(path).get_data(as_text=True)
        assert "<script>alert" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Blooms" in html
        assert "<img src=x" not in html
    answer = maya.get("/")
    policy = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    cookie = signed_in(app, DANA).client.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax"


HOSTILE = ["999999999999999999999", "-1", "0", "abc", "1e309", "NaN", "%00", "' OR 1=1 --", "<script>", "x" * 5000, ""]


def test_hostile_query_parameters_never_get_a_500(app, book):
    maya = signed_in(app, MAYA)
    pages = {"/": ["q", "city", "kind", "min_score", "show_all", "book"],
             "/customers": ["q", "salesperson", "archived", "page"], "/dashboard": ["book"],
             "/introductions": ["status"], "/settings": ["tab"], "/customers/F1/network": ["depth"]}  # fmt: skip
    for path, names in pages.items():
        for name in names:
            for value in HOSTILE:
                answer = maya.get(path, query_string={name: value})
                assert answer.status_code in (200, 400), (path, name, value[:20], answer.status_code)
    odd = (
        "/customers/%00",
        "/customers/" + "x" * 3000,
        "/customers/..%2F..%2Fetc",
        "/nope",
        "/reset/abc",
        "/introductions/nope",
        "/introductions/%00",
        "/customers/nope/network",
        "/customers/nope/network.json",
    )
    for path in odd:
        assert maya.get(path).status_code in (200, 400, 404), path


def test_the_network_view_draws_and_lists_an_accounts_neighbourhood(app, book):
    from netweave.services import network
    from netweave.services.access import Viewer

    network.add_tie(book, get_jobs(app), Viewer(DANA), "F1", "V1", TieKind.PARTNERS_WITH)
    dana = signed_in(app, DANA)
    page = dana.get("/customers/F1/network")
    assert page.status_code == 200
    words = text_of(page)
    assert "Petal & Stem's network" in words and "Lakeside Venue" in words and "partners with" in words
    assert re.search(r"Summit Barn .*Suggestion \d+: ", words)  # an open suggestion, with its reason
    elements = dana.get("/customers/F1/network.json").get_json()["elements"]
    nodes = {e["data"]["id"]: e["data"] for e in elements if "source" not in e["data"]}
    edges = [e["data"] for e in elements if "source" in e["data"]]
    assert nodes["F1"]["centre"] and nodes["V1"]["href"] == "/customers/V1" and nodes["V2"]["href"] is None
    assert {(e["target"], e["kind"]) for e in edges} >= {("V1", "partners"), ("V2", "suggestion")}
    assert signed_in(app, KEN).get("/customers/F1/network").status_code == 404
    assert signed_in(app, KEN).get("/customers/F1/network.json").status_code == 404


def test_the_loyalty_dashboard_counts_give_back_and_lists_who_waits(app, book):
    from datetime import UTC, datetime, timedelta

    from graph.records import IntroStatus
    from netweave.services import introductions, loyalty
    from netweave.services.access import NotAllowed, Viewer

    jobs, dana_view = get_jobs(app), Viewer(DANA)
    intro = introductions.propose(book, jobs, dana_view, "F1", "V1")
    for status in (IntroStatus.ASKED, IntroStatus.ACCEPTED, IntroStatus.INTRODUCED, IntroStatus.WON):
        introductions.advance(book, jobs, dana_view, intro.id, status)
    figures = loyalty.loyalty(book, dana_view, DANA)
    assert (figures.made, figures.asked, figures.accepted, figures.won) == (1, 1, 1, 1)
    assert figures.acceptance_rate == 1.0 and figures.weeks[-1].made == 1 and len(figures.weeks) == loyalty.WEEKS
    assert figures.accounts == 2 and figures.neglected_count == 0
    later = loyalty.loyalty(book, dana_view, DANA, now=datetime.now(UTC) + timedelta(days=91))
    assert [w.business.id for w in later.neglected] == ["V1", "F1"] and later.weeks[-1].made == 0  # same day: by name
    kens = loyalty.loyalty(book, Viewer(KEN), KEN)
    assert kens.made == 0 and [w.last_introduced for w in kens.neglected] == [None]
    with pytest.raises(NotAllowed):
        loyalty.loyalty(book, Viewer(KEN), None)
    with pytest.raises(NotAllowed):
        loyalty.loyalty(book, Viewer(KEN), DANA)

    words = text_of(signed_in(app, DANA).get("/dashboard"))
    assert "1 introduction made" in words and "100% accepted by both sides (1 of 1 asked)" in words
    assert "1 won business" in words and "0 of 2 customers with nothing in 90 days" in words
    ken = text_of(signed_in(app, KEN).get(f"/dashboard?book={DANA}"))  # a salesperson sees their own
    assert "0 introductions made" in ken and "Summit Barn" in ken and "never" in ken
    maya = signed_in(app, MAYA)
    team = text_of(maya.get("/dashboard"))
    assert "the whole team" in team and "1 introduction made" in team
    assert "Ken Olson's book" in text_of(maya.get(f"/dashboard?book={KEN}"))


def test_settings_keep_my_digest_preferences_and_my_own_api_tokens(app, book):
    from netweave.services import accounts, tokens
    from netweave.services.access import Invalid, NotAllowed, NotFound, Viewer

    dana = signed_in(app, DANA)
    page = dana.get("/settings")
    assert page.status_code == 200 and "Send me the weekly email" in text_of(page)
    token_ = csrf_of(page.get_data(as_text=True))
    when = {"hour": "7", "timezone": "America/Chicago"}
    friday = {"csrf_token": token_, "weekly": "y", "weekday": "4", "size": "10", "note_when_empty": "y", **when}
    saved = dana.client.post("/settings/digest", data=friday)
    assert saved.status_code == 303
    expected = accounts.DigestPreferences(DANA, True, 4, 10, 7, "America/Chicago", True)
    assert accounts.digest_preferences(book, Viewer(DANA)) == expected
    for field, wrong in (("weekday", "9"), ("hour", "24"), ("timezone", "Mars/Olympus_Mons")):
        bad = dana.client.post("/settings/digest", data={**friday, field: wrong})
        assert bad.status_code == 400 and "Not a valid choice" in text_of(bad), field
    assert accounts.digest_preferences(book, Viewer(DANA)) == expected
    paused = {"csrf_token": token_, "weekday": "0", "size": "3", **when}  # unticked: off
    dana.client.post("/settings/digest", data=paused)
    assert accounts.digest_preferences(book, Viewer(DANA)) == accounts.DigestPreferences(
        DANA, False, 0, 3, 7, "America/Chicago", False
    )
    assert accounts.digest_preferences(book, Viewer(KEN)) == accounts.DigestPreferences(KEN)  # the defaults
    for field, value in (("size", 99), ("hour", -1), ("timezone", "Nowhere/Else")):
        wanted = {"weekly": True, "weekday": 0, "size": 5, field: value}
        with pytest.raises(Invalid) as refused:
            accounts.set_digest_preferences(book, Viewer(DANA), **wanted)
        assert refused.value.problems[0][0] == field

    wanted = {"csrf_token": token_, "name": "My CRM", "scopes": ["read", "write"]}
    made = dana.client.post("/settings/tokens", data=wanted)
    assert made.status_code == 201 and made.headers["Cache-Control"] == "no-store"
    secret = re.search(r"nw_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", made.get_data(as_text=True)).group(0)
    assert Api(app.test_client(), secret).get(f"/salespeople/{DANA}/matches").status_code == 200
    assert Api(app.test_client(), secret).get(f"/salespeople/{KEN}/matches").status_code == 404  # her book only
    [mine] = tokens.list_tokens(book, Viewer(DANA))
    assert mine.name == "My CRM" and mine.salesperson_id == DANA and secret not in text_of(dana.get("/settings"))
    with pytest.raises(NotAllowed):
        tokens.create_token(book, Viewer(DANA), "x", [TokenScope.ADMIN], salesperson_id=DANA)
    with pytest.raises(NotAllowed):
        tokens.create_token(book, Viewer(DANA), "x", [TokenScope.READ], salesperson_id=KEN)
    with pytest.raises(NotFound):
        tokens.revoke_token(book, Viewer(KEN), mine.id)  # not Ken's to revoke
    revoked = dana.client.post("/settings/tokens/revoke", data={"csrf_token": token_, "token_id": mine.id})
    assert revoked.status_code == 303 and tokens.list_tokens(book, Viewer(DANA))[0].revoked_at is not None
    empty = dana.client.post("/settings/tokens", data={"csrf_token": token_, "name": "", "scopes": []})
    assert empty.status_code == 400 and "Name the token" in text_of(empty)


def test_a_store_that_cannot_be_reached_gets_a_clear_page_with_retry_after(app, book, monkeypatch):
    from neo4j.exceptions import ServiceUnavailable

    dana = signed_in(app, DANA)
    store = app.extensions["netweave.store"]

    def down(*args, **kwargs):
        raise ServiceUnavailable("connection refused")

    monkeypatch.setattr(store, "best_sheet", down)
    answer = dana.get("/")
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "10"
    words = text_of(answer)
    assert "Netweave is briefly unavailable" in words and "Traceback" not in answer.get_data(as_text=True)
    monkeypatch.setattr(store, "credentials_for", down)  # even who is signed in cannot be read
    assert dana.get("/customers").status_code == 503
