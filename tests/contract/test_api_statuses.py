"""Every answer the OpenAPI document promises can be had: for each operation and each status
it documents, a request that gets exactly that status (a problem as application/problem+json).

The list comes from the document, itself generated from the routes: a new route, or a status
newly documented, with no way here to reach it fails this test. Statuses any operation of a
kind can give (401, 403, 404, 400, 413, 415, 422, 429) are reached the same way for each;
the rest by a request made for that operation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from graph import GraphStore, Role, Salesperson
from graph.records import TokenScope
from netweave import create_app
from netweave.jobs import get_runner
from netweave.web.api import openapi_document
from tests.conftest import app_config
from tests.support.api import BARN, DANA, KEN, MAYA, VENUE, Api, florist, token
from tests.support.redis import RedisServer

PREFIX = "/api/v1"
HOOK = "http://127.0.0.1:9/hook"  # allowlisted below; nothing is delivered in this test

# A valid body for each operation that takes one: the generic statuses need the request to
# pass validation (404) or to fail it in one known way (422).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/businesses"): florist("N1"),
    ("patch", "/businesses/{business_id}"): {"name": "Petal & Stem Florals"},
    ("post", "/businesses/bulk"): {"businesses": [florist("B1")]},
    ("put", "/businesses/{business_id}/opt-out"): {"reason": "asked not to be introduced"},
    ("post", "/introductions"): {"business_id": "F1", "other_id": "V2"},
    ("post", "/introductions/{introduction_id}/status"): {"status": "asked"},
    ("post", "/introductions/{introduction_id}/feedback"): {"business_id": "V1", "rating": 4},
    ("post", "/businesses/{business_id}/matches/{other_id}/dismiss"): {"reason": "not_relevant"},
    ("post", "/blocks"): {"business_id": "F1", "other_id": "V2"},
    ("post", "/webhooks"): {"url": HOOK, "events": ["refresh.finished"]},
}


@dataclass
class World:
    """A small book with its suggestions, an introduction, a webhook and a delivery of it."""

    app: Flask
    store: GraphStore
    make_app: Callable[..., Flask]  # another app on the same store, with settings changed
    folder: Path
    ids: dict[str, str] = field(default_factory=dict)  # a value for each path parameter

    def api(self, *scopes: TokenScope, salesperson: str | None = None) -> Api:
        return Api(self.app.test_client(), token(self.store, *scopes, salesperson=salesperson))

    @property
    def admin(self) -> Api:
        return self.api(TokenScope.ADMIN)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # under /api/v1, with {parameters}
    document: dict[str, Any]

    @property
    def body(self) -> dict[str, Any] | None:
        return BODIES.get((self.method, self.path))

    @property
    def takes_body(self) -> bool:
        return "requestBody" in self.document

    def url(self, world: World, **values: str) -> str:
        url = self.path
        for name, value in {**world.ids, **values}.items():
            url = url.replace("{" + name + "}", value)
        return url

    def call(self, api: Api, world: World, *, ids: dict[str, str] | None = None, **kwargs: Any) -> Any:
        if self.takes_body and "json" not in kwargs and "data" not in kwargs:
            kwargs["json"] = self.body
        return getattr(api, self.method)(self.url(world, **(ids or {})), **kwargs)


def operations(app: Flask) -> list[tuple[Operation, int]]:
    with app.test_request_context():
        document = openapi_document()
    return [
        (Operation(method, path.removeprefix(PREFIX), op), int(status))
        for path, methods in document["paths"].items()
        for method, op in methods.items()
        for status in op["responses"]
    ]


# Statuses any operation can give, each reached one way for all.


def unauthorised(op: Operation, w: World) -> Any:
    return op.call(Api(w.app.test_client(), None), w)


def lacks_scope(op: Operation, w: World) -> Any:
    return op.call(w.api(TokenScope.READ), w)


def not_found(op: Operation, w: World) -> Any:
    first = op.path.split("{", 1)[1].split("}", 1)[0]
    return op.call(w.admin, w, ids={first: "ghost"})


def malformed_json(op: Operation, w: World) -> Any:
    return op.call(w.admin, w, data="{not json", content_type="application/json")


def not_json(op: Operation, w: World) -> Any:
    return op.call(w.admin, w, data="name=x", content_type="application/x-www-form-urlencoded")


def too_large(op: Operation, w: World) -> Any:
    limit = w.app.config["API_MAX_BODY_BYTES"]
    w.app.config["API_MAX_BODY_BYTES"] = "64"
    try:
        return op.call(w.admin, w, json={**(op.body or {}), "padding": "x" * 200})
    finally:
        w.app.config["API_MAX_BODY_BYTES"] = limit


def invalid(op: Operation, w: World) -> Any:
    if op.takes_body:
        return op.call(w.admin, w, json={**(op.body or {}), "no_such_field": True})
    if op.method == "get":
        return op.call(w.admin, w, query_string={"limit": 0})
    return op.call(w.admin, w, headers={"Idempotency-Key": "k" * 300})


def rate_limited(op: Operation, w: World) -> Any:
    limit = w.app.config["API_RATE_LIMIT"]
    w.app.config["API_RATE_LIMIT"] = "1 per hour"
    try:
        api = w.admin
        api.get("/me")  # the token's one request this hour: its next, to any route, is one too many
        return op.call(api, w)
    finally:
        w.app.config["API_RATE_LIMIT"] = limit


GENERIC: dict[int, Callable[[Operation, World], Any]] = {
    401: unauthorised,
    403: lacks_scope,
    404: not_found,
    400: malformed_json,
    413: too_large,
    415: not_json,
    422: invalid,
    429: rate_limited,
}


# The rest: a request for that operation.


def created_and_deleted_hook(w: World) -> Any:
    hook = w.admin.post("/webhooks", json=BODIES[("post", "/webhooks")]).get_json()
    return w.admin.delete(f"/webhooks/{hook['id']}")


def archived_then_restored(w: World) -> Any:
    w.admin.post("/businesses", json=florist("R1"))
    w.admin.post("/businesses/R1/archive")
    return w.admin.post("/businesses/R1/restore")


def blocked_then_unblocked(w: World) -> Any:
    w.admin.post("/blocks", json={"business_id": "F1", "other_id": "V2"})
    return w.admin.delete("/blocks/F1/V2")


def opted_out_then_in(w: World) -> Any:
    w.admin.post("/businesses", json=florist("O1"))
    w.admin.put("/businesses/O1/opt-out", json={"reason": "asked"})
    return w.admin.delete("/businesses/O1/opt-out")


def an_introduction(w: World, pair: tuple[str, str]) -> str:
    return w.admin.post("/introductions", json={"business_id": pair[0], "other_id": pair[1]}).get_json()["id"]


def rated(w: World) -> Any:
    made = w.admin.get("/introductions?business_id=V2").get_json()["items"]  # by the 201 above, else now
    intro = made[0]["id"] if made else an_introduction(w, ("F1", "V2"))
    for status in ("asked", "accepted", "introduced", "met"):
        w.admin.post(f"/introductions/{intro}/status", json={"status": status})
    return w.admin.post(f"/introductions/{intro}/feedback", json={"business_id": "V2", "rating": 5})


def queue_unreachable(w: World) -> Any:
    """The same store, served by an app whose queue (Redis) is down."""
    get_runner(w.app).run_queued()  # no refresh still waiting, which a new request would share
    with RedisServer(w.folder) as redis:
        app = w.make_app(REDIS_URL=redis.url)
        redis.stop()
        try:
            return Api(app.test_client(), token(w.store, TokenScope.WRITE)).post("/businesses/F1/matches/refresh")
        finally:
            app.extensions["netweave.store"].close()


SPECIFIC: dict[tuple[str, str, int], Callable[[World], Any]] = {
    ("get", "/businesses", 200): lambda w: w.admin.get("/businesses"),
    ("post", "/businesses", 201): lambda w: w.admin.post("/businesses", json=florist("C1")),
    ("post", "/businesses", 409): lambda w: w.admin.post("/businesses", json=florist("F1")),
    ("get", "/businesses/{business_id}", 200): lambda w: w.admin.get("/businesses/F1"),
    ("patch", "/businesses/{business_id}", 200): lambda w: w.admin.patch("/businesses/F1", json={"needs": "venues"}),
    ("patch", "/businesses/{business_id}", 412): lambda w: w.admin.patch(
        "/businesses/F1", json={"needs": "venues"}, headers={"If-Match": '"stale"'}
    ),
    ("post", "/businesses/bulk", 200): lambda w: w.admin.post("/businesses/bulk", json={"businesses": [VENUE]}),
    ("post", "/businesses/{business_id}/archive", 200): lambda w: (
        w.admin.post("/businesses", json=florist("A1")),
        w.admin.post("/businesses/A1/archive"),
    )[1],
    ("post", "/businesses/{business_id}/restore", 200): archived_then_restored,
    ("put", "/businesses/{business_id}/opt-out", 200): lambda w: (
        w.admin.post("/businesses", json=florist("O2")),
        w.admin.put("/businesses/O2/opt-out", json={"reason": "asked"}),
    )[1],
    ("delete", "/businesses/{business_id}/opt-out", 200): opted_out_then_in,
    ("post", "/introductions", 201): lambda w: w.admin.post(
        "/introductions", json={"business_id": "F1", "other_id": "V2"}
    ),
    ("post", "/introductions", 404): lambda w: w.admin.post(
        "/introductions", json={"business_id": "ghost", "other_id": "V2"}
    ),
    ("post", "/introductions", 409): lambda w: w.admin.post(
        "/introductions", json={"business_id": "F1", "other_id": "V1"}
    ),
    ("get", "/introductions", 200): lambda w: w.admin.get("/introductions"),
    ("get", "/introductions", 404): lambda w: w.admin.get("/introductions?business_id=ghost"),
    ("get", "/introductions/{introduction_id}", 200): lambda w: w.admin.get(
        f"/introductions/{w.ids['introduction_id']}"
    ),
    ("post", "/introductions/{introduction_id}/status", 200): lambda w: w.admin.post(
        f"/introductions/{w.ids['introduction_id']}/status", json={"status": "asked"}
    ),
    ("post", "/introductions/{introduction_id}/status", 409): lambda w: w.admin.post(
        f"/introductions/{w.ids['introduction_id']}/status", json={"status": "won"}
    ),
    ("post", "/introductions/{introduction_id}/status", 412): lambda w: w.admin.post(
        f"/introductions/{w.ids['introduction_id']}/status", json={"status": "asked"}, headers={"If-Match": '"0"'}
    ),
    ("post", "/introductions/{introduction_id}/feedback", 200): rated,
    ("post", "/introductions/{introduction_id}/feedback", 409): lambda w: w.admin.post(
        f"/introductions/{w.ids['introduction_id']}/feedback", json={"business_id": "V1", "rating": 4}
    ),
    ("post", "/businesses/{business_id}/matches/{other_id}/dismiss", 200): lambda w: w.admin.post(
        "/businesses/V1/matches/V2/dismiss", json={"reason": "not_relevant"}
    ),
    ("post", "/businesses/{business_id}/matches/{other_id}/snooze", 200): lambda w: w.admin.post(
        "/businesses/V1/matches/V2/snooze"
    ),
    ("post", "/blocks", 200): lambda w: w.admin.post("/blocks", json={"business_id": "V1", "other_id": "V2"}),
    ("post", "/blocks", 404): lambda w: w.admin.post("/blocks", json={"business_id": "F1", "other_id": "ghost"}),
    ("delete", "/blocks/{business_id}/{other_id}", 200): blocked_then_unblocked,
    ("get", "/jobs/{job_id}", 200): lambda w: w.admin.get(f"/jobs/{w.ids['job_id']}"),
    ("get", "/businesses/{business_id}/matches", 200): lambda w: w.admin.get("/businesses/F1/matches"),
    ("get", "/salespeople/{salesperson_id}/matches", 200): lambda w: w.admin.get(f"/salespeople/{DANA}/matches"),
    ("post", "/businesses/{business_id}/matches/refresh", 202): lambda w: w.admin.post(
        "/businesses/F1/matches/refresh"
    ),
    ("post", "/businesses/{business_id}/matches/refresh", 503): queue_unreachable,
    ("post", "/matches/refresh", 202): lambda w: w.admin.post("/matches/refresh"),
    ("get", "/salespeople", 200): lambda w: w.admin.get("/salespeople"),
    ("get", "/salespeople/{salesperson_id}", 200): lambda w: w.admin.get(f"/salespeople/{KEN}"),
    ("get", "/me", 200): lambda w: w.admin.get("/me"),
    ("post", "/webhooks", 201): lambda w: w.admin.post("/webhooks", json=BODIES[("post", "/webhooks")]),
    ("get", "/webhooks", 200): lambda w: w.admin.get("/webhooks"),
    ("get", "/webhooks/{webhook_id}", 200): lambda w: w.admin.get(f"/webhooks/{w.ids['webhook_id']}"),
    ("delete", "/webhooks/{webhook_id}", 200): created_and_deleted_hook,
    ("get", "/webhooks/{webhook_id}/deliveries", 200): lambda w: w.admin.get(
        f"/webhooks/{w.ids['webhook_id']}/deliveries"
    ),
    ("post", "/webhooks/{webhook_id}/deliveries/{delivery_id}/replay", 202): lambda w: w.admin.post(
        f"/webhooks/{w.ids['webhook_id']}/deliveries/{w.ids['delivery_id']}/replay"
    ),
}


@pytest.fixture
def world(app: Flask, embedder, store_settings, tmp_path: Path) -> World:
    store = app.extensions["netweave.store"]
    store.upsert_salespeople(
        [Salesperson(DANA, "Dana Reyes"), Salesperson(KEN, "Ken Olson"), Salesperson(MAYA, "Maya Lind", Role.MANAGER)]
    )
    app.config["WEBHOOK_ALLOWLIST"] = "127.0.0.1"
    world = World(app, store, lambda **more: create_app({**app_config(store_settings, tmp_path), **more}), tmp_path)
    admin = world.admin
    bulk = admin.post("/businesses/bulk", json={"businesses": [florist(), VENUE, BARN]}).get_json()
    get_runner(app).run_queued()
    hook = admin.post("/webhooks", json={"url": HOOK, "events": ["introduction.status_changed"]}).get_json()
    introduction = an_introduction(world, ("F1", "V1"))
    [delivery] = store.list_deliveries(subscription_id=hook["id"])
    world.ids |= {
        "business_id": "F1", "other_id": "V2", "introduction_id": introduction, "job_id": bulk["refresh_job"]["id"],
        "salesperson_id": DANA, "webhook_id": hook["id"], "delivery_id": delivery.id,
    }  # fmt: skip
    return world


def test_every_documented_status_of_every_operation_is_reached(world: World):
    missed, unreached = [], []
    for op, status in operations(world.app):
        reach = SPECIFIC.get((op.method, op.path, status))
        if reach is not None:
            answer = reach(world)
        elif status in GENERIC:
            answer = GENERIC[status](op, world)
        else:
            unreached.append(f"{op.method.upper()} {op.path} {status}: no request here reaches it")
            continue
        problem = status >= 400
        if answer.status_code != status or (answer.mimetype == "application/problem+json") != problem:
            missed.append(
                f"{op.method.upper()} {op.path}: wanted {status}, got {answer.status_code} "
                f"{answer.get_data(as_text=True)[:200]}"
            )
    assert not unreached, "\n".join(unreached)
    assert not missed, "\n".join(missed)
