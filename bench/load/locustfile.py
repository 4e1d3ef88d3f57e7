"""What real use looks like, for `python -m bench.load` (run by Locust, in its own process).

- Salespeople (3 in 4 users) sign in through the form, then read Today, open accounts and
  the accounts list, and now and then act on a suggestion ("not now", as the Today page's
  own form posts it);
- a CRM (1 in 4) on the API with an integration token: a business's matches, a
  salesperson's best, introductions created from suggestions and moved on, and a bulk upsert
  of five changed businesses now and then, whose refresh jobs the worker runs meanwhile.

Each answer is put in one of: ok; shed (429 or 503 with Retry-After, as overload should be
answered); shed without Retry-After; error (any other failure, a timeout included). The
counts go to the file NETWEAVE_LOAD_OUTCOMES names, per route, when Locust stops.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, constant_throughput, events, task

CONFIG = json.loads(Path(os.environ["NETWEAVE_LOAD_CONFIG"]).read_text())
PACE = float(os.environ.get("NETWEAVE_LOAD_PACE", "0.5"))  # requests/s per user; 0: flat out
OUTCOMES: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
_lock = threading.Lock()
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
_PAIR = re.compile(r'name="business_id" value="([^"]+)">\s*<input type="hidden" name="other_id" value="([^"]+)"')


def pace() -> Any:
    return constant_throughput(PACE) if PACE > 0 else constant(0)


@events.request.add_listener
def _judge(name: str, response: Any, exception: BaseException | None, **_: Any) -> None:
    status = getattr(response, "status_code", 0) or 0
    if status in (429, 503):
        outcome = "shed" if response.headers.get("Retry-After") else "shed without Retry-After"
    elif exception is not None or status >= 400 or status == 0:
        outcome = "error"
    else:
        outcome = "ok"
    with _lock:
        OUTCOMES[name][outcome] += 1


@events.quitting.add_listener
def _write_outcomes(**_: Any) -> None:
    Path(os.environ["NETWEAVE_LOAD_OUTCOMES"]).write_text(json.dumps(OUTCOMES))


class Salesperson(FastHttpUser):
    weight = 3
    wait_time = pace()
    network_timeout = connection_timeout = 10.0

    def on_start(self) -> None:
        self.email = random.choice(CONFIG["salespeople"])
        self.accounts = CONFIG["accounts"][self.email]
        self.today = ""
        page = self.client.get("/sign-in", name="GET /sign-in").text or ""
        form = {"csrf_token": _CSRF.search(page).group(1), "login": self.email, "password": CONFIG["password"]}
        self.client.post("/sign-in", data=form, name="POST /sign-in")

    @task(6)
    def read_today(self) -> None:
        self.today = self.client.get("/", name="GET / (Today)").text or ""

    @task(3)
    def open_account(self) -> None:
        self.client.get(f"/customers/{random.choice(self.accounts)}", name="GET /customers/[id]")

    @task(1)
    def list_accounts(self) -> None:
        self.client.get("/customers", name="GET /customers")

    @task(1)
    def not_now(self) -> None:
        pair, csrf = _PAIR.search(self.today), _CSRF.search(self.today)
        if pair is None or csrf is None:
            return
        form = {"csrf_token": csrf.group(1), "business_id": pair.group(1), "other_id": pair.group(2),
                "action": "snooze"}  # fmt: skip
        self.client.post("/today/act", data=form, headers={"HX-Request": "true"}, name="POST /today/act")
        self.today = ""  # that suggestion is gone: read Today again before the next


class Crm(FastHttpUser):
    weight = 1
    wait_time = pace()
    network_timeout = connection_timeout = 10.0

    default_headers = {"Authorization": f"Bearer {CONFIG['token']}"}  # noqa: RUF012  (Locust reads the class's)

    def on_start(self) -> None:
        self.businesses = CONFIG["businesses"]
        self.edits = 0

    @task(10)
    def business_matches(self) -> None:
        business = random.choice(self.businesses)
        self.client.get(f"/api/v1/businesses/{business['id']}/matches", name="GET /api/v1/businesses/[id]/matches")

    @task(6)
    def best_matches(self) -> None:
        email = random.choice(CONFIG["salespeople"])
        self.client.get(f"/api/v1/salespeople/{email}/matches?limit=20", name="GET /api/v1/salespeople/[id]/matches")

    @task(2)
    def introduce(self) -> None:
        business = random.choice(self.businesses)
        path = f"/api/v1/businesses/{business['id']}/matches"
        answer = self.client.get(path, name="GET /api/v1/businesses/[id]/matches")
        items = (answer.json() or {}).get("items", []) if answer.status_code == 200 else []
        if not items:
            return
        body = {"business_id": business["id"], "other_id": random.choice(items)["other"]["id"]}
        with self.client.post("/api/v1/introductions", json=body, name="POST /api/v1/introductions",
                              catch_response=True) as made:  # fmt: skip
            if made.status_code == 409:  # an introduction of that pair is open already: a normal answer
                made.success()
                return
        if made.status_code != 201:
            return
        introduction = made.json()
        self.client.post(f"/api/v1/introductions/{introduction['id']}/status", json={"status": "asked"},
                         headers={"If-Match": made.headers.get("ETag", "*")},
                         name="POST /api/v1/introductions/[id]/status")  # fmt: skip

    @task(1)
    def bulk_upsert(self) -> None:
        self.edits += 1
        chosen = random.sample(self.businesses, 5)
        items = [{**b, "description": f"{b['description']} (edit {self.edits})"} for b in chosen]
        self.client.post("/api/v1/businesses/bulk", json={"businesses": items}, name="POST /api/v1/businesses/bulk")


class Health(FastHttpUser):
    """The baseline (only when named on Locust's command line): the cheapest route of the same server."""

    wait_time = pace()
    network_timeout = connection_timeout = 10.0

    @task
    def healthz(self) -> None:
        self.client.get("/healthz", name="GET /healthz")
