"""Webhooks through the API, on both backends, delivered to a real HTTP server on loopback:
signed per Standard Webhooks, retried with backoff, logged, replayed, scoped to a book, and
never sent to a private address that is not allowlisted."""

from __future__ import annotations

import json

import pytest
from standardwebhooks import Webhook

from graph import Role, Salesperson
from graph.records import DeliveryStatus, TokenScope
from netweave.jobs import get_runner
from netweave.services import webhooks
from tests.support.api import DANA, KEN, VENUE, Api, florist, token
from tests.support.receiver import webhook_receiver


@pytest.fixture
def receiver():
    with webhook_receiver() as running:
        yield running


@pytest.fixture
def setup(app, receiver):
    app.config |= {"WEBHOOK_ALLOWLIST": "127.0.0.1", "WEBHOOK_RETRY_SECONDS": "0.01,0.01"}
    store = app.extensions["netweave.store"]
    store.upsert_salespeople([Salesperson(DANA, "Dana Reyes"), Salesperson(KEN, "Ken Olson", role=Role.SALESPERSON)])

    def api(scope=TokenScope.WRITE, salesperson=None) -> Api:
        return Api(app.test_client(), token(store, scope, salesperson=salesperson))

    return store, api


def deliver_due(app, store) -> None:
    """What the worker does with queued deliveries: one attempt at each pending now."""
    for delivery in store.list_deliveries(status=DeliveryStatus.PENDING, limit=100):
        webhooks.deliver(store, delivery.id, webhooks.Policy.from_config(app.config))


def test_a_private_or_unknown_target_is_refused_unless_allowlisted(setup):
    _, api = setup
    crm = api()
    for url, why in [
        ("http://10.1.2.3/hook", "non-public"), ("http://192.168.0.5:8080/x", "non-public"),
        ("http://[::1]/x", "non-public"), ("http://169.254.169.254/latest", "non-public"),
        ("http://localhost:9/x", "non-public"), ("ftp://crm.example/x", "http or https"),
        ("not a url", "http or https"), ("http://no-such-host.invalid/x", "does not resolve"),
    ]:  # fmt: skip
        answer = crm.post("/webhooks", json={"url": url, "events": ["refresh.finished"]})
        assert answer.status_code == 422, (url, answer.get_json())
        assert why in answer.get_json()["detail"], url
    assert crm.get("/webhooks").get_json() == {"items": []}
    problem = crm.post("/webhooks", json={"url": "https://crm.example/x", "events": ["nope"]}).get_json()
    assert problem["errors"][0]["field"].startswith("events")


def test_an_introduction_moving_is_delivered_signed_and_a_failure_is_retried(app, setup, receiver, embedder):
    store, api = setup
    crm, dana = api(), api(salesperson=DANA)
    crm.post("/businesses/bulk", json={"businesses": [florist(), VENUE]})
    get_runner(app).run_queued()
    made = dana.post("/webhooks", json={"url": receiver.url, "events": ["introduction.status_changed"],
                                        "description": "Dana's CRM"})  # fmt: skip
    assert made.status_code == 201
    hook = made.get_json()
    assert hook["secret"].startswith("whsec_") and hook["scope"] == DANA
    assert "secret" not in dana.get(f"/webhooks/{hook['id']}").get_json()

    intro = dana.post("/introductions", json={"business_id": "F1", "other_id": "V1"}).get_json()
    receiver.answers = [500]  # the first attempt fails
    deliver_due(app, store)
    [logged] = dana.get(f"/webhooks/{hook['id']}/deliveries").get_json()["items"]
    assert (logged["status"], logged["attempts"], logged["last_status"]) == ("pending", 1, 500)
    assert logged["last_error"] == "the receiver answered HTTP 500" and logged["next_attempt_at"]
    deliver_due(app, store)
    first, retry = receiver.wait_for(2)
    assert first.headers["webhook-id"] == retry.headers["webhook-id"] == logged["id"]  # one event, two attempts
    payload = Webhook(hook["secret"]).verify(retry.body, retry.headers)
    assert payload["type"] == "introduction.status_changed"
    assert payload["data"] | {"at": None} == {
        "introduction_id": intro["id"], "business_id": "F1", "other_id": "V1", "status": "proposed",
        "previous_status": None, "by": DANA, "at": None,
    }  # fmt: skip
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "QUJD" * 8).verify(retry.body, retry.headers)  # another secret does not verify
    assert dana.get(f"/webhooks/{hook['id']}/deliveries?status=delivered").get_json()["items"][0]["attempts"] == 2

    dana.post(f"/introductions/{intro['id']}/status", json={"status": "asked"})
    deliver_due(app, store)
    moved = json.loads(receiver.wait_for(3)[2].body)
    assert (moved["data"]["previous_status"], moved["data"]["status"]) == ("proposed", "asked")


def test_a_delivery_that_keeps_failing_is_failed_logged_and_can_be_replayed(app, setup, receiver):
    store, api = setup
    crm = api(TokenScope.ADMIN)
    hook = crm.post("/webhooks", json={"url": receiver.url, "events": ["refresh.finished"]}).get_json()
    assert hook["scope"] == "every book"
    receiver.answers = [503, 503, 503]
    job = crm.post("/matches/refresh").get_json()["job"]
    get_runner(app).run_queued()  # the job ends and is announced
    for _ in range(3):
        deliver_due(app, store)
    [failed] = crm.get(f"/webhooks/{hook['id']}/deliveries?status=failed").get_json()["items"]
    assert (failed["attempts"], failed["last_status"], failed["next_attempt_at"]) == (3, 503, None)
    assert failed["payload"]["data"]["job_id"] == job["id"] and failed["payload"]["data"]["status"] == "done"
    replayed = crm.post(f"/webhooks/{hook['id']}/deliveries/{failed['id']}/replay")
    assert replayed.status_code == 202 and replayed.get_json()["status"] == "pending"
    deliver_due(app, store)
    assert crm.get(f"/webhooks/{hook['id']}/deliveries").get_json()["items"][0]["status"] == "delivered"
    assert len(receiver.wait_for(4)) == 4


def test_events_reach_only_the_books_they_concern_and_a_deleted_hook_gets_nothing(app, setup, receiver, embedder):
    store, api = setup
    crm, dana, ken = api(), api(salesperson=DANA), api(salesperson=KEN)
    crm.post("/businesses/bulk", json={"businesses": [florist(), VENUE]})
    get_runner(app).run_queued()
    kens = ken.post("/webhooks", json={"url": receiver.url, "events": ["introduction.status_changed"]}).get_json()
    problem = dana.get(f"/webhooks/{kens['id']}")
    assert problem.status_code == 404  # Ken's hook is not Dana's to see
    dana.post("/introductions", json={"business_id": "F1", "other_id": "V1"})
    assert store.list_deliveries(subscription_id=kens["id"]) == []  # Dana's introduction is not Ken's book
    assert ken.delete(f"/webhooks/{kens['id']}").status_code == 200
    assert ken.get(f"/webhooks/{kens['id']}").status_code == 404
    assert ken.get("/webhooks").get_json() == {"items": []}


def test_new_suggestions_are_told_to_the_salesperson_whose_book_gained_them(app, setup, receiver, embedder):
    store, api = setup
    crm, dana, ken = api(), api(salesperson=DANA), api(salesperson=KEN)
    danas = dana.post("/webhooks", json={"url": receiver.url, "events": ["suggestions.new"]}).get_json()
    kens = ken.post("/webhooks", json={"url": receiver.url, "events": ["suggestions.new"]}).get_json()
    crm.post("/businesses/bulk", json={"businesses": [florist(), VENUE]})
    get_runner(app).run_queued()
    [told] = store.list_deliveries(subscription_id=danas["id"])
    data = json.loads(told.payload)["data"]
    assert data["salesperson"] == DANA and data["count"] == 2
    assert {(s["business_id"], s["other_id"]) for s in data["suggestions"]} == {("F1", "V1"), ("V1", "F1")}
    assert store.list_deliveries(subscription_id=kens["id"]) == []  # nothing new in Ken's book
    crm.post("/businesses/F1/matches/refresh")
    get_runner(app).run_queued()  # the same lists again: nothing new to tell
    assert len(store.list_deliveries(subscription_id=danas["id"])) == 1
    deliver_due(app, store)
    assert Webhook(danas["secret"]).verify(receiver.wait_for(1)[0].body, receiver.requests[0].headers)["data"] == data
