"""Who may reach what, for every route of the web app and the API, generated from the app's
route table (so a new route cannot be forgotten): anonymous callers reach only the public
ones; another salesperson reaches none of Dana's things, by web session or API token; a token
without a route's scope is refused; the owner and a manager see Dana's pages. Both backends.

Each route is either public, names one of Dana's things in its URL (filled in below), or is
listed in OWN_ONLY: a page or action about the caller's own book or account. Those name what
they act on in their body or query, if at all, and are checked by another salesperson here
only for what they list; the refusals of another book's ids in a body live in the tests of
each route (test_api, test_web)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask import Flask
from werkzeug.routing import Rule

from graph import Role, Salesperson
from graph.records import TokenScope
from netweave.digest.links import Action, Link
from netweave.jobs import get_runner
from netweave.services import accounts
from netweave.services.digests import DigestSettings
from tests.support.api import BARN, DANA, KEN, MAYA, VENUE, Api, florist, token
from tests.support.web import PASSWORD, Session, csrf_of

PUBLIC = {
    "static", "auth.sign_in", "auth.request_reset", "auth.reset", "health.healthz", "health.readyz",
    "health.metrics", "email.unsubscribe", "api.openapi", "api.docs",
}  # fmt: skip
# No id in the URL: they show or change the caller's own book or account only.
OWN_ONLY = {
    "today.index", "today.act", "customers.index", "introductions.board", "dashboard.index", "settings.index",
    "settings.digest", "settings.create_token", "settings.revoke_token", "email.preview", "email.preview_html",
    "auth.sign_out", "api.me", "api.list_businesses", "api.create_business", "api.bulk_upsert",
    "api.list_introductions", "api.create_introduction", "api.list_salespeople", "api.list_webhooks",
    "api.create_webhook", "api.add_block", "api.refresh_all",
}  # fmt: skip
SCOPES = (TokenScope.READ, TokenScope.WRITE, TokenScope.ADMIN)
# Valid bodies, so that what answers is who may, not what was sent.
BODIES = {
    "api.dismiss": {"reason": "not_relevant"}, "api.move_introduction": {"status": "asked"},
    "api.rate_introduction": {"business_id": "F1", "rating": 5}, "api.opt_out": {"reason": "asked us"},
    "api.update_business": {"name": "Renamed"},
}  # fmt: skip
DANAS = "Petal & Stem"  # her florist's name: it must not show in another book's lists


def rules(app: Flask) -> list[tuple[Rule, str]]:
    return sorted(
        ((rule, method) for rule in app.url_map.iter_rules() if rule.endpoint != "static"
         for method in sorted(rule.methods - {"HEAD", "OPTIONS"})),
        key=lambda item: (item[0].rule, item[1]),
    )  # fmt: skip


@pytest.fixture
def danas(app: Flask, embedder) -> dict[str, str]:
    """Dana's florist and venue (with an introduction and a webhook), Ken's barn, Maya the
    manager; returns the URL values that name Dana's things."""
    store = app.extensions["netweave.store"]
    app.config["WEBHOOK_ALLOWLIST"] = "127.0.0.1"  # her CRM's receiver (never called here)
    store.upsert_salespeople([Salesperson(DANA, "Dana Reyes", DANA), Salesperson(KEN, "Ken Olson", KEN),
                              Salesperson(MAYA, "Maya Lind", MAYA, role=Role.MANAGER)])  # fmt: skip
    for person in (DANA, KEN, MAYA):
        accounts.set_password(store, person, PASSWORD)
    crm = Api(app.test_client(), token(store, TokenScope.WRITE))
    assert crm.post("/businesses/bulk", json={"businesses": [florist(), VENUE, BARN]}).status_code == 200
    get_runner(app).run_queued()
    dana = Api(app.test_client(), token(store, *SCOPES, salesperson=DANA))
    made = dana.post("/introductions", json={"business_id": "F1", "other_id": "V1"})
    hook = dana.post(
        "/webhooks", json={"url": "http://127.0.0.1:9/netweave", "events": ["introduction.status_changed"]}
    )
    asked = dana.post(f"/introductions/{made.json['id']}/status", json={"status": "asked"})  # a delivery to her hook
    deliveries = dana.get(f"/webhooks/{hook.json['id']}/deliveries").json
    job = dana.post("/businesses/F1/matches/refresh")
    assert made.status_code == 201 and hook.status_code == 201 and job.status_code == 202, (made.json, hook.json)
    assert asked.status_code == 200 and deliveries["items"], deliveries
    link = Link(Action.SNOOZE, DANA, "2026-W48", datetime(2030, 1, 1, tzinfo=UTC), "F1", "V1")
    return {
        "business_id": "F1", "other_id": "V1", "introduction_id": made.json["id"], "salesperson_id": DANA,
        "webhook_id": hook.json["id"], "delivery_id": deliveries["items"][0]["id"], "job_id": job.json["job"]["id"],
        "token": DigestSettings.from_config(app.config).signer.sign(link),
    }  # fmt: skip


def url(rule: Rule, values: dict[str, str]) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: values[m.group(1)], rule.rule)


def signed_in(app: Flask, login: str) -> Session:
    session = Session(app.test_client())
    assert session.sign_in(login).status_code == 302
    return session


def test_every_route_is_public_names_a_thing_of_a_book_or_is_about_the_caller_alone(app):
    for rule, _ in rules(app):
        assert rule.endpoint in PUBLIC | OWN_ONLY or rule.arguments, f"{rule.endpoint}: classify it in this test"
        assert not (rule.arguments and rule.endpoint in OWN_ONLY), rule.endpoint


def test_anonymous_callers_reach_only_the_public_routes(app, danas):
    client = app.test_client()
    # A form's valid CSRF token (the sign-in page gives one to anyone), so that what refuses a
    # POST is the missing sign-in, not the missing token.
    form = csrf_of(client.get("/sign-in").get_data(as_text=True))
    for rule, method in rules(app):
        if rule.endpoint in PUBLIC:
            continue
        where = f"{method} {rule.rule}"
        if rule.endpoint.startswith("api."):
            assert client.open(url(rule, danas), method=method).status_code == 401, where
            continue
        answer = client.open(url(rule, danas), method=method, data={"csrf_token": form} if method == "POST" else None)
        assert answer.status_code == 302 and answer.location.startswith("/sign-in"), where


def test_another_salesperson_reaches_none_of_danas_things_by_session_or_token(app, danas):
    store = app.extensions["netweave.store"]
    ken = signed_in(app, KEN)
    form = csrf_of(ken.get("/settings").get_data(as_text=True))
    kens_token = Api(app.test_client(), token(store, TokenScope.READ, TokenScope.WRITE, salesperson=KEN))
    before = [i.status for i in store.list_introductions(salesperson_id=DANA)]
    for rule, method in rules(app):
        if rule.endpoint in PUBLIC or not rule.arguments:
            continue
        where = f"{method} {rule.rule}"
        if rule.endpoint.startswith("api."):
            path = url(rule, danas).removeprefix("/api/v1")
            answer = getattr(kens_token, method.lower())(
                path, json=BODIES.get(rule.endpoint, {}) if method != "GET" else None
            )
            assert answer.status_code in (403, 404), (where, answer.status_code, answer.get_data(as_text=True)[:200])
        else:
            data = {"csrf_token": form, "status": "asked", "rating": "5", "business_id": "F1", "side": "a",
                    "message_a": "x", "message_b": "y"}  # fmt: skip
            answer = ken.client.open(url(rule, danas), method=method, data=data if method == "POST" else None)
            assert answer.status_code in (403, 404, 410), (where, answer.status_code)
    assert [i.status for i in store.list_introductions(salesperson_id=DANA)] == before  # nothing moved
    # The routes about the caller's own book show none of Dana's accounts.
    for page in ("/customers", "/introductions", "/dashboard"):
        assert DANAS not in ken.get(page).get_data(as_text=True), page
    for path in ("/businesses", "/introductions"):
        assert DANAS not in kens_token.get(path).get_data(as_text=True), path
    assert ken.get(f"/settings/email?salesperson={DANA}").status_code == 404


def test_a_token_without_a_routes_scope_is_refused(app, danas):
    store = app.extensions["netweave.store"]
    checked = 0
    for rule, method in rules(app):
        needed = getattr(app.view_functions[rule.endpoint], "required_scope", None)
        if rule.endpoint.startswith("api.") and rule.endpoint not in PUBLIC:
            assert needed is not None, f"{method} {rule.rule} names no scope"
        if needed is None:
            continue
        for lower in SCOPES[: SCOPES.index(needed)]:
            path = url(rule, danas).removeprefix("/api/v1")
            answer = getattr(Api(app.test_client(), token(store, lower)), method.lower())(path, json={})
            assert answer.status_code == 403, (method, rule.rule, lower)
            checked += 1
    assert checked >= 20  # every write and admin route


def test_the_owner_and_a_manager_see_danas_pages(app, danas):
    for login in (DANA, MAYA):
        session = signed_in(app, login)
        for rule, method in rules(app):
            if rule.endpoint.startswith("api.") or rule.endpoint in PUBLIC or method != "GET" or not rule.arguments:
                continue
            answer = session.get(url(rule, danas))
            if rule.endpoint == "email.confirm":  # a link works for the salesperson it was sent to alone
                assert answer.status_code == (200 if login == DANA else 403), login
                continue
            assert answer.status_code == 200, (login, rule.rule, answer.status_code)
