"""The JSON API over real HTTP, as a CRM uses it: gunicorn and the worker running (the
Procfile, as `make run` starts it), tokens made with the CLI, on both backends."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from standardwebhooks import Webhook

from tests.support.receiver import webhook_receiver
from tests.support.service import flask, wait_until

pytestmark = pytest.mark.e2e

DANA = "dana.whitfield@netweave-demo.com"  # a demo salesperson


def call(method: str, url: str, secret: str | None = None, body: Any = None) -> tuple[int, dict[str, str], Any]:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


@pytest.fixture
def server_env(server_env: dict[str, str]) -> dict[str, str]:
    return {**server_env, "NETWEAVE_WEBHOOK_ALLOWLIST": "127.0.0.1"}  # the test's receiver is on loopback


def create_token(env: dict[str, str], *args: str) -> str:
    made = flask(env, "tokens", "create", *args)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def test_a_crm_imports_customers_follows_the_refresh_and_reads_matches(service, server_env):
    base, process = service
    api = base + "/api/v1"
    crm = create_token(server_env, "CRM sync", "--scope", "write")
    dana = create_token(server_env, "Dana's phone", "--scope", "read", "--salesperson", DANA)
    listed = flask(server_env, "tokens", "list")
    assert "CRM sync" in listed.stdout and crm not in listed.stdout

    status, headers, body = call("GET", api + "/businesses")
    assert status == 401 and headers["Content-Type"] == "application/problem+json"
    assert headers["WWW-Authenticate"].startswith("Bearer") and body["status"] == 401

    with webhook_receiver() as receiver:
        status, _, hook = call("POST", api + "/webhooks", crm, {"url": receiver.url, "events": ["refresh.finished"]})
        assert status == 201, hook
        _import_and_read(api, process, crm, dana, receiver, hook)


def _import_and_read(api: str, process, crm: str, dana: str, receiver, hook: dict) -> None:
    newcomers = [
        {"id": "API-F1", "name": "Bluebird Blooms", "salesperson": DANA, "categories": "Florist",
         "description": "Wedding bouquets and reception flowers", "customers": "engaged couples",
         "needs": "referrals from wedding venues and planners", "city": "Minneapolis", "region": "MN"},
        {"id": "API-X1", "salesperson": DANA, "city": "Minneapolis"},
    ]  # fmt: skip
    status, _, body = call("POST", api + "/businesses/bulk", crm, {"businesses": newcomers})
    assert status == 200, body
    assert [(i["id"], i["result"]) for i in body["items"]] == [("API-F1", "created"), ("API-X1", "rejected")]
    assert body["items"][1]["errors"] == [{"field": "name", "message": "missing (required)"}]

    job = body["refresh_job"]
    started = time.monotonic()

    def refreshed() -> dict | None:
        _, _, current = call("GET", f"{api}/jobs/{job['id']}", crm)
        return current if current["status"] in ("done", "failed") else None

    finished = wait_until(refreshed, "the refresh job", process, timeout=60)
    assert finished["status"] == "done", finished
    print(f"bulk upsert to refreshed lists over HTTP: {time.monotonic() - started:.1f} s")

    # The worker told the CRM, signed: its delivery job ran beside the refreshes.
    def announced() -> object:
        return next((r for r in receiver.requests if json.loads(r.body)["data"]["job_id"] == job["id"]), None)

    delivered = wait_until(announced, "the refresh.finished webhook", process, timeout=30)
    payload = Webhook(hook["secret"]).verify(delivered.body, delivered.headers)
    assert (payload["type"], payload["data"]["status"]) == ("refresh.finished", "done")

    status, _, matches = call("GET", api + "/businesses/API-F1/matches", dana)
    assert status == 200 and matches["items"], matches
    first = matches["items"][0]
    assert first["business"]["id"] == "API-F1" and first["reasons"] and first["other_reasons"]
    status, _, best = call("GET", f"{api}/salespeople/{DANA}/matches?limit=5", dana)
    assert status == 200 and len(best["items"]) == 5

    someone_else = next(
        b["id"] for b in call("GET", api + "/businesses?limit=200", crm)[2]["items"] if b["salesperson"] != DANA
    )
    status, headers, body = call("GET", f"{api}/businesses/{someone_else}", dana)
    assert status == 404 and headers["Content-Type"] == "application/problem+json"
    status, _, body = call("POST", api + "/businesses/API-F1/archive", dana)
    assert status == 403 and "'write' scope" in body["detail"]

    status, _, accepted = call("POST", api + "/businesses/API-F1/matches/refresh", crm)
    assert status == 202 and accepted["job"]["status"] in ("queued", "running", "done")

    status, _, document = call("GET", api + "/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.1")
