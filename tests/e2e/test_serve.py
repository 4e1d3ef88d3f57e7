"""The service as users run it: the Procfile's web and worker (started by honcho, as
`make run` does), over real HTTP."""

from __future__ import annotations

import html
import json
import re
import time
import urllib.error
from pathlib import Path
from urllib.parse import quote

import psutil
import pytest

from netweave import demo
from tests.support.service import SignedIn, flask, get, published_generation, wait_until

pytestmark = pytest.mark.e2e


def test_the_demo_is_served_by_web_and_worker(service, backend):
    base, _ = service
    status, body, _ = get(base + "/healthz")
    assert status == 200
    assert json.loads(body) == {"status": "ok"}
    status, body, _ = get(base + "/readyz")
    assert (status, json.loads(body)) == (200, {"status": "ready", "checks": {"store": "ok", "queue": "ok"}})

    status, page, headers = get(base + "/sign-in", {"X-Request-ID": "trace-me-42"})
    assert status == 200 and headers["X-Request-ID"] == "trace-me-42"
    manager = SignedIn(base, demo.DEMO_MANAGER[0], demo.DEMO_PASSWORD)  # the README's demo sign-in
    status, page, _ = manager.get("/customers")
    assert "320 customers" in page
    assert "Page 1 of 7" in page

    rows = demo.generate().rows
    dana = "dana.whitfield@netweave-demo.com"
    expected = [r["name"] for r in rows if "coffee" in r["name"].lower() and r["salesperson"] == dana]
    status, page, _ = manager.get(f"/customers?q=Coffee&salesperson={quote(dana)}")
    assert status == 200
    assert f"{len(expected)} customer" in page
    assert all(html.escape(name) in page for name in expected)
    status, page, _ = SignedIn(base, dana, demo.DEMO_PASSWORD).get("/")
    assert status == 200 and "Why now:" in page and page.count("Introduce</button>") >= 10

    status, page, _ = manager.get("/customers/ACC-10001")
    assert status == 200
    assert "CRM id ACC-10001" in page
    assert "Partners with" in page
    assert "Suggested introductions" in page
    assert page.count("Why The Grand Lakeside Ballroom gains") >= 1

    _, metrics, _ = get(base + "/metrics")
    assert re.search(
        r'netweave_http_request_duration_seconds_count\{method="GET",route="/customers",status="200"\} [1-9]', metrics
    )
    assert re.search(r'netweave_job_duration_seconds_count\{kind="refresh_\w+",outcome="done"\} [1-9]', metrics), (
        "the worker's job timings reach the web's /metrics"
    )
    assert re.search(r'netweave_generation_suggestions\{kind="full"\} [1-9]', metrics)


def test_unknown_customers_are_404(service):
    base, _ = service
    with pytest.raises(urllib.error.HTTPError) as caught:
        SignedIn(base, demo.DEMO_MANAGER[0], demo.DEMO_PASSWORD).get("/customers/NOPE-1")
    assert caught.value.code == 404


def test_an_import_while_it_runs_shows_refreshed_lists_without_a_restart(service, server_env, tmp_path):
    base, process = service
    newcomer = tmp_path / "newcomer.csv"
    newcomer.write_text(
        "id,name,owner,categories,description,customers,needs,city,region,metro,latitude,longitude\n"
        "NEW-1,Bluebird Blooms,dana.whitfield@netweave-demo.com,Florist,"
        "Wedding bouquets and reception flowers,engaged couples,referrals from wedding venues and planners,"
        "Minneapolis,MN,Twin Cities,44.97,-93.26\n"
    )
    before = published_generation(base)
    dana = SignedIn(base, "dana.whitfield@netweave-demo.com", demo.DEMO_PASSWORD)
    started = time.monotonic()
    imported = flask(server_env, "import", str(newcomer))
    assert imported.returncode == 0, imported.stderr
    assert "suggestions refresh in the background" in imported.stdout

    def newcomer_listed() -> str | None:
        status, page, _ = dana.get("/customers/NEW-1")
        return page if status == 200 and "Why Bluebird Blooms gains" in page else None

    page = wait_until(newcomer_listed, "the newcomer's suggestions", process, timeout=60)
    latency = time.monotonic() - started
    assert published_generation(base) > before
    assert "Wedding" in page or "Venue" in page or "Ballroom" in page
    # And the newcomer entered the lists it belongs in: some venue now suggests it.
    exported = json.loads(flask(server_env, "match", "export").stdout)
    assert any(s["id"] == "NEW-1" for entry in exported for s in entry["suggestions"])
    print(f"import to refreshed lists: {latency:.1f} s")


def test_web_processes_never_load_torch_or_the_model(service):
    base, process = service
    manager = SignedIn(base, demo.DEMO_MANAGER[0], demo.DEMO_PASSWORD)
    for path in ("/", "/customers", "/customers/ACC-10001", "/healthz", "/readyz", "/metrics", "/customers?archived=1"):
        manager.get(path)
    tree = psutil.Process(process.pid).children(recursive=True)
    web = [p for p in tree if any(part.endswith("/gunicorn") for part in p.cmdline()[:2])]
    worker = [p for p in tree if p.cmdline()[-1:] == ["worker"]]
    serving = [p for p in web if p.parent().pid in {w.pid for w in web}]
    assert len(serving) == 2 and len(worker) == 1, [p.cmdline() for p in tree]

    def maps(p: psutil.Process) -> str:
        return Path(f"/proc/{p.pid}/maps").read_text()

    assert "libtorch" in maps(worker[0]), "the worker holds the model (so the check below can fail)"
    for p in web:
        assert "libtorch" not in maps(p), f"gunicorn worker {p.pid} loaded torch"
