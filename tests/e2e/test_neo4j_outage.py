"""Neo4j stopped in the middle of API and web traffic, for real (a Neo4j of the test's own,
stopped and started with graph/neo4j-server): the API answers 503 problem+json and the web app
a clear page, both with Retry-After, never a 500; when Neo4j is back the same app recovers
within 10 s without a restart; every acknowledged write is there, and a refused write retried
with its Idempotency-Key lands once."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from graph import Salesperson, StoreSettings
from graph.records import TokenScope
from netweave import create_app
from netweave.services import accounts
from tests.conftest import app_config
from tests.support.api import DANA, Api, florist, token
from tests.support.service import free_port
from tests.support.web import PASSWORD, Session

pytestmark = [pytest.mark.e2e, pytest.mark.neo4j]

SCRIPT = Path(__file__).resolve().parents[2] / "graph" / "neo4j-server"
RECOVERY_S = 10.0


def test_the_app_answers_503_while_neo4j_is_down_and_recovers_without_a_restart(tmp_path: Path):
    port = free_port()
    env = {**os.environ, "NETWEAVE_NEO4J_DIR": str(tmp_path / "neo4j"), "NETWEAVE_NEO4J_PORT": str(port),
           "NETWEAVE_NEO4J_PASSWORD": "outage-test"}  # fmt: skip

    def neo4j(command: str) -> None:
        done = subprocess.run([str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr

    neo4j("start")
    try:
        app = create_app(app_config(StoreSettings(url=f"bolt://127.0.0.1:{port}", password="outage-test"), tmp_path))
        store = app.extensions["netweave.store"]
        store.upsert_salespeople([Salesperson(DANA, "Dana Reyes", DANA)])
        accounts.set_password(store, DANA, PASSWORD)
        crm = Api(app.test_client(), token(store, TokenScope.WRITE, salesperson=DANA))
        acknowledged = []
        for n in range(3):
            assert crm.post("/businesses", json=florist(f"F{n}")).status_code == 201
            acknowledged.append(f"F{n}")
        web = Session(app.test_client())
        assert web.sign_in(DANA).status_code == 302

        neo4j("stop")
        refused = crm.post("/businesses", json=florist("F9"), headers={"Idempotency-Key": "outage-1"})
        assert refused.status_code == 503 and refused.mimetype == "application/problem+json"
        assert int(refused.headers["Retry-After"]) > 0 and "retry" in refused.get_json()["detail"]
        listing = crm.get("/businesses")
        assert listing.status_code == 503 and listing.headers["Retry-After"]
        page = web.get("/customers")
        assert page.status_code == 503 and page.headers["Retry-After"]
        assert "briefly unavailable" in page.get_data(as_text=True)

        neo4j("start")
        back = time.monotonic()
        while crm.get("/businesses").status_code != 200:
            assert time.monotonic() - back < RECOVERY_S, f"not recovered within {RECOVERY_S:.0f} s"
            time.sleep(0.2)
        assert web.get("/customers").status_code == 200  # the same session, the same app
        retried = crm.post("/businesses", json=florist("F9"), headers={"Idempotency-Key": "outage-1"})
        again = crm.post("/businesses", json=florist("F9"), headers={"Idempotency-Key": "outage-1"})
        assert retried.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        stored = {b.id for b in store.list_businesses(limit=100)}
        assert stored == {*acknowledged, "F9"}
        store.close()
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)
