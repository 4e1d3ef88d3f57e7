"""The salesperson web app's pages on a 10,000-business book: server-side render time.

    make bench-web                           (both backends: starts the test Neo4j)
    python -m bench.web [--businesses 10000] [--requests 200] [--backends embedded,neo4j] [--neo4j-url URL]

On each backend it makes the book (bench.matching's generator, imported and its suggestions
computed in this process, as bench.api does), lets one salesperson of the book and a manager
sign in, then asks the app for each page through Flask's test client, in this process: the
time measured is the app's own (routing, sign-in check, store reads, template), with no
network or browser. Each page is asked for `--requests` times (random accounts, books and
filters) after 20 unmeasured requests; it prints p50, p95 and max in ms. Before measuring, the
salesperson makes 40 introductions from their best suggestions and moves half of them on, so
the board, the ledgers and the dashboard have something to show. Baseline, measured in
the same run with the same client: GET /healthz (the framework's own cost) and the sign-in
page (a template, no store read). Target on each backend: every page's p95 under 300 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from flask.testing import FlaskClient

from bench.api.__main__ import SharedEncoder, on_each_backend, parse_backend_args, prepare
from bench.matching import report_targets, target
from graph import GraphStore, Role, StoreSettings
from graph.records import IntroStatus
from netweave import create_app
from netweave.jobs import JobQueue, get_jobs
from netweave.matching.embedder import Embedder
from netweave.services import accounts, introductions, matches
from netweave.services.access import Viewer
from netweave.store import get_store

P95_MS = 300
PASSWORD = "bench password 1"
WARMUP = 20


def signed_in(app, login: str) -> FlaskClient:
    client = app.test_client()
    page = client.get("/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    answer = client.post("/sign-in", data={"csrf_token": token, "login": login, "password": PASSWORD})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
    return client


def measure(name: str, client: FlaskClient, paths: Callable[[random.Random], str], count: int, baseline: bool) -> None:
    rng = random.Random(7)
    for _ in range(WARMUP):
        client.get(paths(rng))
    times = []
    for _ in range(count):
        path = paths(rng)
        began = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200, f"{path}: {answer.status_code}"
    times.sort()
    p50, p95 = statistics.median(times), times[int(0.95 * (len(times) - 1))]
    print(f"  {name:<44} p50 {p50:7.1f}  p95 {p95:7.1f}  max {times[-1]:7.1f} ms  ({count} requests)")
    if not baseline:
        target(f"{name} p95 < {P95_MS} ms", p95 < P95_MS, f"{p95:.1f} ms")


def seed_introductions(store: GraphStore, jobs: JobQueue, salesperson_id: str, count: int = 40) -> None:
    """Introductions from the salesperson's best suggestions, half of them moved on (the
    refreshes they ask for wait in the queue: no worker runs here)."""
    viewer = Viewer(salesperson_id)
    for n, view in enumerate(matches.best_for_salesperson(store, viewer, salesperson_id, count)):
        intro = introductions.propose(store, jobs, viewer, view.business.id, view.other.id)
        if n % 2:
            for status in (IntroStatus.ASKED, IntroStatus.ACCEPTED):
                introductions.advance(store, jobs, viewer, intro.id, status)


def bench_backend(label: str, settings: StoreSettings, args: argparse.Namespace, embedder: SharedEncoder,
                  folder: Path) -> None:  # fmt: skip
    print(f"\n[{label}, {args.businesses:,} businesses]")
    store, rows, _ = prepare(settings, args.businesses, args.seed, embedder)
    salespeople = sorted({row["salesperson"] for row in rows})
    mine = salespeople[0]
    own_ids = [row["id"] for row in rows if row["salesperson"] == mine]
    cities = sorted({row["city"] for row in rows if row.get("city")})
    accounts.set_password(store, mine, PASSWORD)
    manager = accounts.add_salesperson(store, "bench-manager@example.com", "Bench Manager", Role.MANAGER)
    accounts.set_password(store, manager.id, PASSWORD)
    store.close()
    app = create_app({
        "GRAPH_URL": settings.url, "NEO4J_PASSWORD": settings.password, "QUEUE_PATH": str(folder / "queue.sqlite3"),
        "METRICS_DIR": str(folder / "metrics"), "SIGN_IN_RATE_LIMIT": "1000000 per minute",
    })  # fmt: skip
    try:
        with app.app_context():
            seed_introductions(get_store(), get_jobs(), mine)
        anonymous = app.test_client()
        rep, boss = signed_in(app, mine), signed_in(app, manager.id)
        print(f"  salesperson {mine} ({len(own_ids)} accounts); manager over {len(salespeople)} books")
        measure("GET /healthz (baseline)", anonymous, lambda r: "/healthz", args.requests, True)
        measure("GET /sign-in (baseline: a template)", anonymous, lambda r: "/sign-in", args.requests, True)
        pages: list[tuple[str, FlaskClient, Callable[[random.Random], str]]] = [
            ("Today, salesperson", rep, lambda r: "/"),
            ("Today, filtered (city, minimum score)", rep,
             lambda r: f"/?city={quote(r.choice(cities))}&min_score={r.randint(30, 70)}"),
            ("Today, manager picking a book", boss, lambda r: f"/?book={quote(r.choice(salespeople))}"),
            ("Accounts, salesperson's book", rep, lambda r: f"/customers?page={r.randint(1, 8)}"),
            ("Accounts, manager: every book, searched", boss,
             lambda r: f"/customers?q={r.choice('aeiou')}&page={r.randint(1, 20)}"),
            ("Account page (with its ledger)", rep, lambda r: f"/customers/{quote(r.choice(own_ids))}"),
            ("Network view", rep, lambda r: f"/customers/{quote(r.choice(own_ids))}/network"),
            ("Network data (JSON)", rep, lambda r: f"/customers/{quote(r.choice(own_ids))}/network.json"),
            ("Introductions board", rep, lambda r: "/introductions"),
            ("Loyalty dashboard, salesperson", rep, lambda r: "/dashboard"),
            ("Loyalty dashboard, manager: the whole team", boss, lambda r: "/dashboard"),
            ("Settings", rep, lambda r: "/settings"),
        ]  # fmt: skip
        for name, client, paths in pages:
            measure(name, client, paths, args.requests, False)
    finally:
        app.extensions["netweave.store"].close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--businesses", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200, help="Measured requests per page.")
    args, backends = parse_backend_args(parser)
    print(f"machine: {os.cpu_count()} cores; pages asked in-process through Flask's test client")
    began = time.perf_counter()
    embedder = SharedEncoder(Embedder())
    on_each_backend(backends, args, embedder, bench_backend, "bench-web")
    print(f"\nwhole run: {time.perf_counter() - began:.0f} s")
    return report_targets()


if __name__ == "__main__":
    sys.exit(main())
