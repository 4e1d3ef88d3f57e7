"""The JSON API (/api/v1) through Flask's client, on both backends: auth and scopes, scoping,
problems for bad input with nothing written, businesses, pages, matches and jobs.

`tests/e2e/test_api_http.py` drives the same API over real HTTP against gunicorn and the worker.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask

from graph import Role, Salesperson
from graph.records import IdempotentRequest, TokenScope
from netweave import create_app
from netweave.jobs import get_runner
from netweave.services import tokens
from netweave.services.access import Viewer
from tests.conftest import app_config
from tests.support.api import BARN, DANA, KEN, MAYA, VENUE, Api, florist, problem, token

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def people(app: Flask):
    store = app.extensions["netweave.store"]
    store.upsert_salespeople(
        [
            Salesperson(DANA, "Dana Reyes"),
            Salesperson(KEN, "Ken Olson"),
            Salesperson(MAYA, "Maya Lind", role=Role.MANAGER),
        ]
    )
    return store


@pytest.fixture
def crm(app: Flask, people) -> Api:
    """An integration's token: every book, read and write."""
    return Api(app.test_client(), token(people, TokenScope.WRITE))


@pytest.fixture
def dana(app: Flask, people) -> Api:
    return Api(app.test_client(), token(people, TokenScope.WRITE, salesperson=DANA))


# Auth


def test_no_token_a_bad_one_or_a_revoked_one_is_401_with_a_bearer_challenge(store_settings, tmp_path):
    app = create_app({**app_config(store_settings, tmp_path), "API_TOKEN_CACHE_SECONDS": "0"})
    people = app.extensions["netweave.store"]
    anonymous = Api(app.test_client(), None)
    answer = anonymous.get("/businesses")
    assert "valid API token is required" in problem(answer, 401)["detail"]
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert (
        "not valid" in problem(Api(app.test_client(), "nw_000000000000_" + "x" * 43).get("/businesses"), 401)["detail"]
    )
    problem(anonymous.get("/businesses", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401)
    issued = tokens.create_token(people, Viewer.system(), "gone", [TokenScope.READ])
    assert Api(app.test_client(), issued.secret).get("/businesses").status_code == 200
    tokens.revoke_token(people, Viewer.system(), issued.token.id)
    problem(Api(app.test_client(), issued.secret).get("/businesses"), 401)
    people.close()


def test_a_valid_token_is_remembered_a_few_seconds_so_revoking_takes_effect_within_them(people):
    clock = [0.0]
    recent = tokens.RecentCallers(5, timer=lambda: clock[0])
    issued = tokens.create_token(people, Viewer.system(), "crm", [TokenScope.READ])
    assert recent.authenticate(people, issued.secret).token.id == issued.token.id
    assert recent.authenticate(people, "nw_000000000000_" + "x" * 43) is None
    tokens.revoke_token(people, Viewer.system(), issued.token.id)
    assert recent.authenticate(people, issued.secret) is not None, "remembered: not looked up again yet"
    clock[0] = 5.01
    assert recent.authenticate(people, issued.secret) is None, "looked up again: revoked"
    assert tokens.RecentCallers(0).authenticate(people, issued.secret) is None
    fresh = tokens.create_token(people, Viewer.system(), "new", [TokenScope.READ])
    assert recent.authenticate(people, fresh.secret) is not None, "only valid tokens are kept: a new one works at once"


def test_tokens_are_stored_only_as_a_hash(people):
    issued = tokens.create_token(people, Viewer.system(), "crm", [TokenScope.READ])
    assert issued.secret.startswith(f"nw_{issued.token.id}_")
    stored = people.list_api_tokens()
    assert [t.id for t in stored] == [issued.token.id]
    assert issued.secret not in repr(stored)  # nothing stored holds the secret


def test_a_scope_the_token_lacks_is_403_before_the_body_is_read(app, people):
    reader = Api(app.test_client(), token(people, TokenScope.READ))
    assert reader.get("/businesses").status_code == 200
    assert "'write' scope" in problem(reader.post("/businesses", json={"nonsense": True}), 403)["detail"]
    writer = Api(app.test_client(), token(people, TokenScope.WRITE))
    assert "'admin' scope" in problem(writer.post("/matches/refresh"), 403)["detail"]
    assert people.count_businesses(status=None) == 0


def test_me_names_the_token_never_its_secret(dana):
    body = dana.get("/me").get_json()
    assert body["owner"] == DANA and body["scopes"] == ["write"] and "secret" not in str(body)


# Scoping


def test_a_salesperson_token_sees_its_own_book_and_another_book_is_not_found(app, people, crm, dana):
    assert crm.post("/businesses/bulk", json={"businesses": [florist(), VENUE, BARN]}).status_code == 200
    assert [b["id"] for b in dana.get("/businesses").get_json()["items"]] == ["V1", "F1"]  # by name
    assert problem(dana.get("/businesses/V2"), 404)["detail"] == "no such resource in your book"
    problem(dana.get("/businesses/V2/matches"), 404)
    problem(dana.get(f"/businesses?salesperson={KEN}"), 404)
    problem(dana.get(f"/salespeople/{KEN}"), 404)
    problem(dana.post("/businesses/V2/archive"), 404)
    assert [p["id"] for p in dana.get("/salespeople").get_json()["items"]] == [DANA]
    assert {p["id"] for p in crm.get("/salespeople").get_json()["items"]} == {DANA, KEN, MAYA}
    manager = Api(app.test_client(), token(people, TokenScope.READ, salesperson=MAYA))
    assert manager.get("/businesses/V2").status_code == 200


def test_a_salesperson_cannot_write_into_another_book_item_by_item(app, people, crm, dana):
    crm.post("/businesses/bulk", json={"businesses": [BARN]})
    theirs = {**BARN, "id": "K9", "name": "Ken's new account"}
    answer = dana.post("/businesses/bulk", json={"businesses": [florist(), {**BARN, "salesperson": DANA}, theirs]})
    items = answer.get_json()["items"]
    assert [i["result"] for i in items] == ["created", "rejected", "rejected"]
    assert items[1]["errors"] == [{"field": "id", "message": "not an account of your book"}]
    assert items[2]["errors"][0]["field"] == "salesperson"
    assert people.get_business("V2").record.salesperson_id == KEN and people.get_business("K9") is None


# Bad input: a clear problem, nothing written


def test_bad_requests_get_a_problem_naming_what_is_wrong_and_write_nothing(app, people, crm):
    invalid = problem(crm.post("/businesses", json=florist(email="bob@", employees="many", colour="red")), 422)
    fields = {(e["in"], e["field"]) for e in invalid["errors"]}
    assert fields == {("body", "email"), ("body", "employees"), ("body", "colour")}
    assert problem(crm.post("/businesses", json={"name": "No id"}), 422)["errors"][0]["field"] == "id"
    assert (
        "not valid JSON"
        in problem(crm.post("/businesses", data="{oops", content_type="application/json"), 400)["detail"]
    )
    problem(crm.post("/businesses", data="id=F1", content_type="application/x-www-form-urlencoded"), 415)
    problem(crm.post("/businesses", json=["a", "list"]), 422)
    problem(crm.post("/businesses/bulk", json={"businesses": [florist(str(n)) for n in range(1001)]}), 422)
    problem(crm.get("/businesses?limit=0"), 422)
    problem(crm.get("/businesses?limit=ten"), 422)
    assert problem(crm.get("/businesses?colour=red"), 422)["errors"][0] == {
        "in": "query", "field": "colour", "message": "not a field of this request (see /api/v1/docs)"
    }  # fmt: skip
    problem(crm.get("/nowhere"), 404)
    assert problem(crm.delete("/businesses"), 405)["status"] == 405
    assert people.count_businesses(status=None) == 0


def test_a_body_over_the_limit_is_413(app, people, crm):
    app.config["API_MAX_BODY_BYTES"] = 2_000
    answer = crm.post("/businesses/bulk", json={"businesses": [florist(str(n)) for n in range(20)]})
    assert "too large" in problem(answer, 413)["detail"]
    assert people.count_businesses(status=None) == 0


# Businesses


def test_create_read_and_a_duplicate_id_conflicts(people, crm):
    created = crm.post("/businesses", json=florist())
    assert created.status_code == 201 and created.headers["Location"] == "/api/v1/businesses/F1"
    body = created.get_json()
    assert body["result"] == "created" and body["refresh_job"]["status"] == "queued"
    business = crm.get("/businesses/F1").get_json()
    assert business["categories"] == ["Florist"] and business["salesperson"] == DANA
    assert business["place"]["region"] == "CO" and business["place"]["located"] is True
    assert "exists already" in problem(crm.post("/businesses", json=florist(name="Other")), 409)["detail"]
    assert people.get_business("F1").record.name == "Petal & Stem"


def test_patch_changes_only_the_fields_given_and_finds_a_new_address(people, crm):
    crm.post("/businesses", json=florist(website="petal.example"))
    before = crm.get("/businesses/F1").get_json()
    changed = crm.patch("/businesses/F1", json={"needs": "caterers", "city": "Lakewood"}).get_json()
    after = changed["business"]
    assert changed["result"] == "updated" and after["needs"] == "caterers"
    assert after["website"] == before["website"] and after["description"] == before["description"]
    assert after["place"]["city"] == "Lakewood" and after["place"]["longitude"] != before["place"]["longitude"]
    assert people.get_salesperson(DANA).name == "Dana Reyes"  # not renamed from the email
    assert crm.patch("/businesses/F1", json={"needs": "caterers"}).get_json()["result"] == "unchanged"
    assert problem(crm.patch("/businesses/F1", json={"email": "x@"}), 422)["errors"][0]["field"] == "email"
    assert problem(crm.patch("/businesses/F1", json={"id": "F2"}), 422)["errors"][0]["field"] == "id"
    problem(crm.patch("/businesses/NOPE", json={"needs": "x"}), 404)
    assert people.get_business("F1").record.needs == "caterers"


def test_bulk_upsert_answers_for_each_item(people, crm):
    crm.post("/businesses", json=florist())
    answer = crm.post(
        "/businesses/bulk",
        json={"businesses": [florist(), VENUE, {"id": "X1"}, florist(needs="caterers"), BARN]},
    ).get_json()
    assert [(i["index"], i["id"], i["result"]) for i in answer["items"]] == [
        (0, "F1", "rejected"), (1, "V1", "created"), (2, "X1", "rejected"), (3, "F1", "rejected"),
        (4, "V2", "created"),
    ]  # fmt: skip
    assert answer["items"][0]["errors"][0]["message"] == "duplicate id (also item 3); keep one per id"
    assert answer["items"][2]["errors"] == [{"field": "name", "message": "missing (required)"}]
    assert (answer["created"], answer["updated"], answer["unchanged"], answer["rejected"]) == (2, 0, 0, 3)
    again = crm.post("/businesses/bulk", json={"businesses": [VENUE, BARN]}).get_json()
    assert [i["result"] for i in again["items"]] == ["unchanged", "unchanged"] and again["refresh_job"] is None


def test_archive_restore_and_opt_out(people, crm):
    crm.post("/businesses", json=florist())
    archived = crm.post("/businesses/F1/archive").get_json()
    assert archived["business"]["status"] == "archived" and archived["refresh_job"]["kind"] == "refresh_changes"
    assert crm.post("/businesses/F1/archive").get_json()["result"] == "unchanged"
    assert [b["id"] for b in crm.get("/businesses?status=archived").get_json()["items"]] == ["F1"]
    assert crm.get("/businesses").get_json()["items"] == []
    assert crm.post("/businesses/F1/restore").get_json()["business"]["status"] == "active"
    out = crm.put("/businesses/F1/opt-out", json={"reason": "asked for no intros"}).get_json()["business"]
    assert out["opted_out"] is True and out["opt_out"]["reason"] == "asked for no intros"
    problem(crm.put("/businesses/F1/opt-out", json={}), 422)
    assert crm.delete("/businesses/F1/opt-out").get_json()["business"]["opted_out"] is False


def test_pages_hold_every_business_once_and_filters_narrow_them(people, crm):
    rows = [florist(f"B{n:02}", name=f"Shop {n % 7}", city="Denver" if n % 2 else "Lakewood") for n in range(25)]
    crm.post("/businesses/bulk", json={"businesses": rows})
    seen, cursor = [], None
    while True:
        page = crm.get("/businesses", query_string={"limit": 4, **({"cursor": cursor} if cursor else {})}).get_json()
        seen += [b["id"] for b in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
        crm.post("/businesses", json=florist("A-new", name="Aaa first"))  # a write between pages moves nothing
    assert sorted(seen) == sorted(r["id"] for r in rows) and len(seen) == 25
    denver = crm.get("/businesses?city=denver&limit=200").get_json()["items"]
    assert {b["id"] for b in denver} == {r["id"] for r in rows if r["city"] == "Denver"} | {"A-new"}
    assert {b["id"] for b in crm.get("/businesses?kind=florist&limit=200").get_json()["items"]} >= {"B00", "B24"}
    assert crm.get("/businesses?kind=Plumber").get_json()["items"] == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert crm.get("/businesses", query_string={"updated_since": future}).get_json()["items"] == []
    first = crm.get("/businesses?limit=2").get_json()["next_cursor"]
    assert "other filters" in problem(crm.get(f"/businesses?limit=2&city=Denver&cursor={first}"), 422)["detail"]
    assert problem(crm.get("/businesses?cursor=bm9wZQ"), 422)["errors"][0]["field"] == "cursor"


# Matches and jobs


def test_matches_with_reasons_for_both_sides_and_refreshes_to_follow(app, people, crm, dana, embedder):
    crm.post("/businesses/bulk", json={"businesses": [florist(), VENUE, BARN]})
    assert crm.get("/businesses/F1/matches").get_json() == {"items": [], "generation": None}
    get_runner(app).run_queued()
    listed = crm.get("/businesses/F1/matches").get_json()
    assert listed["generation"] >= 1
    venues = {m["other"]["id"]: m for m in listed["items"]}
    assert set(venues) == {"V1", "V2"}
    first = listed["items"][0]
    assert first["rank"] == 1 and first["reasons"] and first["other_reasons"] and first["business"]["id"] == "F1"
    # Ken's barn is another book: named, but its contact stays hidden from Dana until Ken shares it.
    barn = next(m for m in dana.get("/businesses/F1/matches").get_json()["items"] if m["other"]["id"] == "V2")
    assert barn["across_books"] and barn["other"]["salesperson_name"] == "Ken Olson"
    assert barn["other"]["contact_shared"] is False and barn["other"]["email"] is None
    best = dana.get(f"/salespeople/{DANA}/matches?limit=5").get_json()["items"]
    assert best and all(DANA in (m["business"]["salesperson"], m["other"]["salesperson"]) for m in best)

    accepted = dana.post("/businesses/F1/matches/refresh")
    assert accepted.status_code == 202
    job = accepted.get_json()["job"]
    assert accepted.headers["Location"] == f"/api/v1/jobs/{job['id']}" and job["status"] == "queued"
    get_runner(app).run_queued()
    assert dana.get(f"/jobs/{job['id']}").get_json()["status"] == "done"
    ken = Api(app.test_client(), token(people, TokenScope.READ, salesperson=KEN))
    problem(ken.get(f"/jobs/{job['id']}"), 404)  # Dana's job is not Ken's to see
    problem(crm.get("/jobs/nope"), 404)


def test_a_full_refresh_takes_an_admin_token_of_one_who_sees_every_book(app, people):
    admin = Api(app.test_client(), token(people, TokenScope.ADMIN))
    assert admin.post("/matches/refresh").get_json()["job"]["kind"] == "refresh_all"
    salesperson_admin = Api(app.test_client(), token(people, TokenScope.ADMIN, salesperson=DANA))
    problem(salesperson_admin.post("/matches/refresh"), 403)


# The document


def test_the_openapi_document_is_generated_from_every_api_route(app, crm):
    answer = app.test_client().get("/api/v1/openapi.json")  # public: no token
    document = answer.get_json()
    assert document["openapi"].startswith("3.1")
    routes = {
        (rule.rule.replace("<", "{").replace(">", "}"), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and rule.endpoint not in {"api.openapi", "api.docs"}
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert routes == documented
    for operations in document["paths"].values():
        for operation in operations.values():
            assert operation["summary"] and operation["operationId"]
            assert set(operation["responses"]["401"]["content"]) == {"application/problem+json"}
    assert document["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}


def test_the_docs_page_is_served_with_its_assets_from_the_static_folder(app):
    client = app.test_client()
    page = client.get("/api/v1/docs").get_data(as_text=True)
    assert "/api/v1/openapi.json" in page and "http" not in page.split("<body>")[1].replace("/api/v1", "")
    for asset in ("vendor/swagger-ui/swagger-ui-bundle.js", "vendor/swagger-ui/swagger-ui.css", "api-docs.js"):
        assert f"/static/{asset}" in page
        answer = client.get(f"/static/{asset}")
        assert answer.status_code == 200 and len(answer.data) > 100, asset
        answer.close()


# Introductions, dismissals, blocks


@pytest.fixture
def suggested(app, people, crm, embedder):
    """Dana's florist and venue, Ken's barn, with their suggestions computed."""
    crm.post("/businesses/bulk", json={"businesses": [florist(), VENUE, BARN]})
    get_runner(app).run_queued()
    return people


def test_an_introduction_asks_each_side_first_and_moves_one_allowed_step_at_a_time(app, suggested, dana):
    made = dana.post("/introductions", json={"business_id": "F1", "other_id": "V1"})
    assert made.status_code == 201 and made.headers["Location"] == f"/api/v1/introductions/{made.json['id']}"
    intro = made.get_json()
    assert (intro["status"], intro["next"], intro["version"]) == ("proposed", ["asked", "declined", "closed"], 1)
    assert intro["message_to_business"].startswith("Hello Petal & Stem team,")
    assert "Lakeside Venue, a wedding venue in Lakewood" in intro["message_to_business"]
    assert "Petal & Stem, a florist in Denver" in intro["message_to_other"]
    assert all("only connect you if you both say yes" in intro[m] for m in ("message_to_business", "message_to_other"))
    assert intro["message_to_business"] != intro["message_to_other"].replace("Petal & Stem", "Lakeside Venue")
    # Made: the pair leaves both lists at once, and a second one is refused.
    assert "V1" not in [m["other"]["id"] for m in dana.get("/businesses/F1/matches").get_json()["items"]]
    assert "open introduction" in problem(dana.post("/introductions", json={"business_id": "V1", "other_id": "F1"}),
                                          409)["detail"]  # fmt: skip
    problem(dana.post("/introductions", json={"business_id": "F1", "other_id": "F1"}), 404)

    path = f"/introductions/{intro['id']}"
    tag = dana.get(path).headers["ETag"]
    asked = dana.post(f"{path}/status", json={"status": "asked", "note": "emailed both"}, headers={"If-Match": tag})
    assert asked.status_code == 200 and asked.get_json()["steps"][-1]["note"] == "emailed both"
    assert (
        "changed since you read it"
        in problem(dana.post(f"{path}/status", json={"status": "accepted"}, headers={"If-Match": tag}), 412)["detail"]
    )
    assert (
        "can move to accepted, declined, closed, not met"
        in problem(dana.post(f"{path}/status", json={"status": "met"}), 409)["detail"]
    )
    problem(dana.post(f"{path}/status", json={"status": "maybe"}), 422)
    assert "no outcome to rate" in problem(dana.post(f"{path}/feedback", json={"business_id": "V1", "rating": 5}),
                                           409)["detail"]  # fmt: skip
    for status in ("accepted", "introduced", "met", "won"):
        assert dana.post(f"{path}/status", json={"status": status}).get_json()["status"] == status
    rated = dana.post(f"{path}/feedback", json={"business_id": "V1", "rating": 5, "comment": "Two weddings booked"})
    final = rated.get_json()
    assert final["feedback"] == [
        {"business_id": "V1", "rating": 5, "comment": "Two weddings booked", "at": final["feedback"][0]["at"],
         "by": DANA}
    ]  # fmt: skip
    assert [s["status"] for s in final["steps"]] == ["proposed", "asked", "accepted", "introduced", "met", "won"]
    assert all(s["by"] == DANA for s in final["steps"])
    problem(dana.post(f"{path}/feedback", json={"business_id": "V1", "rating": 6}), 422)
    assert (
        "not a side" in problem(dana.post(f"{path}/feedback", json={"business_id": "V2", "rating": 3}), 422)["detail"]
    )
    assert [i["id"] for i in dana.get("/introductions?status=won").get_json()["items"]] == [intro["id"]]
    assert [i["id"] for i in dana.get("/introductions?business_id=V1").get_json()["items"]] == [intro["id"]]
    ken = Api(app.test_client(), token(suggested, TokenScope.WRITE, salesperson=KEN))
    problem(ken.get(path), 404)
    assert ken.get("/introductions").get_json()["items"] == []
    # What became of it feeds matching: the accepted and five-star verdicts are on record.
    kinds = {(f.kind.value, f.reason) for f in suggested.list_feedback(["F1"])}
    assert kinds == {("intro_made", ""), ("intro_accepted", ""), ("intro_accepted", "rated 5")}


def test_dismissals_and_snoozes_take_a_suggestion_out_and_blocks_come_and_go(app, suggested, dana, crm):
    listed = lambda: [m["other"]["id"] for m in dana.get("/businesses/F1/matches").get_json()["items"]]  # noqa: E731
    assert set(listed()) == {"V1", "V2"}
    problem(dana.post("/businesses/F1/matches/V2/dismiss", json={"reason": "bad_timing"}), 422)
    dismissed = dana.post("/businesses/F1/matches/V2/dismiss", json={"reason": "not_relevant"}).get_json()
    assert dismissed["done"] == "dismissed" and dismissed["refresh_job"]["kind"] == "refresh_changes"
    assert listed() == ["V1"]
    assert dana.post("/businesses/F1/matches/V1/snooze").get_json()["done"] == "snoozed"
    assert listed() == []
    problem(dana.post("/businesses/V2/matches/V2/snooze"), 422)  # a pair needs two businesses
    assert suggested.list_feedback(["F1"])[-1].reason == "bad_timing"

    blocked = dana.post("/blocks", json={"business_id": "F1", "other_id": "V2", "reason": "owners fell out"})
    assert blocked.get_json() == {"business_id": "F1", "other_id": "V2", "blocked": True, "changed": True}
    assert dana.post("/blocks", json={"business_id": "F1", "other_id": "V2"}).get_json()["changed"] is False
    assert suggested.is_do_not_introduce("F1", "V2")
    assert "does not manage 'V2'" in problem(dana.delete("/blocks/F1/V2"), 403)["detail"]
    assert crm.delete("/blocks/F1/V2").get_json() == {
        "business_id": "F1", "other_id": "V2", "blocked": False, "changed": True
    }  # fmt: skip
    problem(dana.post("/blocks", json={"business_id": "F1", "other_id": "ZZ"}), 404)


# Retries and concurrent writers


def test_a_retry_with_the_same_idempotency_key_gets_the_first_answer_and_writes_nothing(people, crm):
    key = {"Idempotency-Key": "3f2c6e0a-retry-1"}
    first = crm.post("/businesses", json=florist(), headers=key)
    again = crm.post("/businesses", json=florist(), headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json() == first.get_json() and again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert people.count_businesses() == 1
    assert "another request" in problem(crm.post("/businesses", json=florist(name="Other"), headers=key), 422)["detail"]
    refused = crm.post("/businesses", json={"name": "no id"}, headers={"Idempotency-Key": "k2"})
    replayed = crm.post("/businesses", json={"name": "no id"}, headers={"Idempotency-Key": "k2"})
    assert problem(replayed, 422) == problem(refused, 422) and replayed.headers["Idempotent-Replayed"] == "true"
    problem(crm.post("/businesses", json=florist("F2"), headers={"Idempotency-Key": "x" * 256}), 422)
    # Another token's key is its own.
    other = Api(crm.client, token(people, TokenScope.WRITE))
    assert other.post("/businesses", json=florist("F3"), headers=key).status_code == 201


def test_a_key_still_being_answered_asks_the_retry_to_wait(people, crm):
    me = crm.get("/me").get_json()["id"]
    claimed = IdempotentRequest(me, "busy", "a-fingerprint", datetime.now(UTC))
    people.write(lambda tx: tx.claim_idempotency_key(claimed, datetime.now(UTC) - timedelta(days=1)))
    answer = crm.post("/businesses", json=florist(), headers={"Idempotency-Key": "busy"})
    # The fingerprint differs from this request's, so it is refused as another request; with
    # the same one it would be asked to wait. Both write nothing.
    assert answer.status_code == 422
    body = florist("F9")
    fingerprint = hashlib.sha256(b"\0".join([b"POST", b"/api/v1/businesses", json.dumps(body).encode()])).hexdigest()
    people.write(lambda tx: tx.claim_idempotency_key(replace(claimed, key="busy-2", fingerprint=fingerprint),
                                                     datetime.now(UTC) - timedelta(days=1)))  # fmt: skip
    waiting = crm.post("/businesses", data=json.dumps(body), content_type="application/json",
                       headers={"Idempotency-Key": "busy-2"})  # fmt: skip
    assert "still being answered" in problem(waiting, 409)["detail"] and waiting.headers["Retry-After"] == "1"
    assert people.count_businesses() == 0


def test_a_key_left_unanswered_by_a_request_that_died_is_taken_over_by_its_retry(people, crm):
    me = crm.get("/me").get_json()["id"]
    body = florist("F8")
    fingerprint = hashlib.sha256(b"\0".join([b"POST", b"/api/v1/businesses", json.dumps(body).encode()])).hexdigest()
    long_ago = datetime.now(UTC) - timedelta(minutes=3)  # its process died, or the store went away
    stuck = IdempotentRequest(me, "stuck", fingerprint, long_ago)
    people.write(lambda tx: tx.claim_idempotency_key(stuck, long_ago - timedelta(days=1)))
    retried = crm.post("/businesses", data=json.dumps(body), content_type="application/json",
                       headers={"Idempotency-Key": "stuck"})  # fmt: skip
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert people.count_businesses() == 1


def test_an_update_from_a_stale_etag_is_refused(people, crm):
    crm.post("/businesses", json=florist())
    read = crm.get("/businesses/F1")
    tag = read.headers["ETag"]
    first = crm.patch("/businesses/F1", json={"needs": "caterers"}, headers={"If-Match": tag})
    assert first.status_code == 200 and first.headers["ETag"] != tag
    stale = crm.patch("/businesses/F1", json={"needs": "photographers"}, headers={"If-Match": tag})
    assert "changed since you read it" in problem(stale, 412)["detail"]
    assert people.get_business("F1").record.needs == "caterers"
    assert (
        crm.patch("/businesses/F1", json={"needs": "bakers"}, headers={"If-Match": first.headers["ETag"]}).status_code
        == 200
    )
    assert crm.get("/businesses/F1").headers["ETag"] == crm.get("/businesses/F1").headers["ETag"]


def test_over_the_rate_limit_a_token_gets_429_with_retry_after_and_others_go_on(app, people, crm):
    app.config["API_RATE_LIMIT"] = "3 per minute"
    assert [crm.get("/businesses").status_code for _ in range(3)] == [200, 200, 200]
    limited = crm.get("/businesses")
    assert problem(limited, 429)["title"] == "Too Many Requests"
    assert int(limited.headers["Retry-After"]) > 0
    other = Api(crm.client, token(people, TokenScope.READ))
    assert other.get("/businesses").status_code == 200  # another token has its own count
    assert app.test_client().get("/api/v1/openapi.json").status_code == 200  # the document is never limited
