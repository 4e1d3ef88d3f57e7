"""After any sequence of changes, the incrementally refreshed lists equal a full refresh.

Hypothesis draws a random book of a few hundred businesses (kinds from the demo catalog, in
markets that are the same, near, or far apart; some with vague or no categories, empty
needs, no place) and a random sequence of changes made through the service layer: imports of
new and edited accounts, archivals and restores, feedback, ties and blocks added and
removed, opt-outs, and time passing. Between changes the worker's refresh takes them in;
after each refresh the published lists must equal, suggestion for suggestion (ids, ranks,
scores and both sides' reasons), what a full refresh computes from the store at that
moment. A small deterministic embedder stands in for the model (the real one is exercised
by the rest of the contract suite).
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph import GraphStore, StoreSettings, TieKind, open_store
from graph.records import DismissReason, FeedbackKind
from netweave.demo.catalog import KINDS, VAGUE_CATEGORIES
from netweave.importer import prepare_rows
from netweave.importer.reader import RawRow
from netweave.jobs import JobQueue, build_huey
from netweave.matching.refresh import Matcher
from netweave.matching.rules import Rules
from netweave.services import customers, matches, network
from netweave.services.access import NotFound, Viewer
from tests.conftest import wipe_neo4j
from tests.support.embedder import HashingEmbedder

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SYSTEM = Viewer.system()
SALESPEOPLE = ("dana@example.com", "ken@example.com", "ava@example.com")
# (city, region, metro, lat, lon): two cities of one metro, a suburb 40 km off with no metro
# (near by distance), a far market, and a town 150 km away (not near).
PLACES = (
    ("Minneapolis", "MN", "Twin Cities", 44.98, -93.27),
    ("Saint Paul", "MN", "Twin Cities", 44.95, -93.09),
    ("Stillwater", "MN", "", 45.06, -92.81),
    ("Rochester", "MN", "", 44.02, -92.47),
    ("Austin", "TX", "Austin", 30.27, -97.74),
)
EMBEDDER = HashingEmbedder(32)
RULES = Rules.load()


def business_row(rng: random.Random, business_id: str) -> dict[str, str]:
    kind = rng.choice(KINDS)
    roll = rng.random()
    categories = kind.name if roll < 0.6 else (rng.choice(VAGUE_CATEGORIES) if roll < 0.8 else "")
    row = {
        "id": business_id,
        "name": f"{rng.choice(kind.names).format(surname='Olson', first='Maria', place='Lakeside')} {business_id}",
        "salesperson": rng.choice(SALESPEOPLE),
        "categories": categories,
        "description": rng.choice(kind.offers).format(first="Maria", surname="Olson", place="Lakeside"),
        "customers": rng.choice(kind.customers) if rng.random() < 0.8 else "",
        "needs": rng.choice(kind.needs) if rng.random() < 0.6 else "",
        "opted_out": "yes" if rng.random() < 0.03 else "",
    }
    if rng.random() < 0.95:
        city, region, metro, lat, lon = rng.choice(PLACES)
        row |= {"city": city, "region": region, "metro": metro}
        if rng.random() < 0.9:
            row |= {
                "latitude": f"{lat + rng.uniform(-0.05, 0.05):.4f}",
                "longitude": f"{lon + rng.uniform(-0.05, 0.05):.4f}",
            }
    return row


@dataclass
class World:
    """One example's store, queue, worker-side matcher and the rows as last imported."""

    store: GraphStore
    jobs: JobQueue
    matcher: Matcher
    rows: dict[str, dict[str, str]]
    now: datetime = T0

    def import_rows(self, rows: list[dict[str, str]]) -> None:
        prepared = prepare_rows([RawRow(n + 2, row) for n, row in enumerate(rows)])
        assert not prepared.rejected, prepared.rejected
        customers.import_customers(self.store, self.jobs, SYSTEM, prepared)
        self.rows.update({row["id"]: row for row in rows})

    def published(self) -> dict[str, list[tuple]]:
        lists: dict[str, list[tuple]] = {}
        for s in self.store.all_suggestions():
            lists.setdefault(s.business_id, []).append(s.ranked())
        return lists

    def computed(self) -> dict[str, list[tuple]]:
        fresh = Matcher(self.store, EMBEDDER, RULES, far_search=self.matcher.far_search)
        lists = fresh.compute_lists(self.now)
        return {i: [s.ranked() for s in item.suggestions] for i, item in lists.items() if item.suggestions}

    def drain_and_check(self) -> None:
        self.matcher.refresh_changes(now=self.now)
        assert self.store.pending_changes() == [], "every change was taken in"
        published, computed = self.published(), self.computed()
        differing = sorted(i for i in set(published) | set(computed) if published.get(i) != computed.get(i))
        assert not differing, (
            f"{len(differing)} lists differ from a full refresh, e.g. {differing[0]}:\n"
            f" incremental {published.get(differing[0])}\n full        {computed.get(differing[0])}"
        )


def apply(world: World, op: tuple, rng: random.Random) -> None:
    """One change through the service layer (a no-op when it makes no sense for the book)."""
    ids = sorted(world.rows)
    pick = rng.choice
    name = op[0]
    try:
        if name == "import":
            fresh = [business_row(rng, f"N{len(world.rows) + n:04d}") for n in range(op[1])]
            edited = []
            for business_id in rng.sample(ids, min(op[2], len(ids))):
                row = dict(world.rows[business_id])
                donor = business_row(rng, business_id)
                for column in rng.sample(["description", "needs", "customers", "categories", "salesperson",
                                          "city", "opted_out"], 2):  # fmt: skip
                    if column == "city":
                        for key in ("city", "region", "metro", "latitude", "longitude"):
                            row.pop(key, None)
                            if key in donor:
                                row[key] = donor[key]
                    else:
                        row[column] = donor[column]
                edited.append(row)
            world.import_rows(fresh + edited)
        elif name == "archive":
            customers.archive(world.store, world.jobs, SYSTEM, rng.sample(ids, op[1]), world.now)
        elif name == "restore":
            customers.restore(world.store, world.jobs, SYSTEM, rng.sample(ids, op[1]), world.now)
        elif name == "feedback":
            kind = pick(list(FeedbackKind))
            reason = pick(list(DismissReason)).value if kind is FeedbackKind.DISMISSED else ""
            viewer = Viewer(pick(SALESPEOPLE))
            a, b = rng.sample(ids, 2)
            business = world.store.get_business(a)
            viewer = viewer if viewer.manages(business) else SYSTEM
            matches.record_feedback(world.store, world.jobs, viewer, a, b, kind, reason, now=world.now)
        elif name == "tie":
            network.add_tie(world.store, world.jobs, SYSTEM, *rng.sample(ids, 2), pick(list(TieKind)), world.now)
        elif name == "untie":
            ties = world.store.all_ties()
            if ties:
                tie = pick(ties)
                network.remove_tie(world.store, world.jobs, SYSTEM, tie.a, tie.b, tie.kind, world.now)
        elif name == "block":
            network.block(world.store, world.jobs, SYSTEM, *rng.sample(ids, 2), "test", world.now)
        elif name == "unblock":
            pairs = sorted(world.store.do_not_introduce_pairs())
            if pairs:
                network.unblock(world.store, world.jobs, SYSTEM, *pick(pairs), world.now)
        elif name == "opt_out":
            customers.opt_out(world.store, world.jobs, SYSTEM, pick(ids), "asked", world.now)
        elif name == "opt_in":
            customers.opt_in(world.store, world.jobs, SYSTEM, pick(ids), world.now)
        elif name == "time":
            world.now += timedelta(days=op[1])
    except NotFound:  # feedback on an archived customer: refused, nothing written
        pass


CHANGE = st.one_of(
    st.tuples(st.just("import"), st.integers(0, 12), st.integers(0, 12)),
    st.tuples(st.just("archive"), st.integers(1, 6)),
    st.tuples(st.just("restore"), st.integers(1, 6)),
    st.tuples(st.just("feedback")),
    st.tuples(st.just("tie")),
    st.tuples(st.just("untie")),
    st.tuples(st.just("block")),
    st.tuples(st.just("unblock")),
    st.tuples(st.just("opt_out")),
    st.tuples(st.just("opt_in")),
    st.tuples(st.just("time"), st.sampled_from([1, 30, 89, 91, 200])),
)
# A refresh after every change, or several changes taken in together.
STEPS = st.lists(st.lists(CHANGE, min_size=1, max_size=4), min_size=1, max_size=5)


@contextmanager
def embedded_store() -> Iterator[GraphStore]:
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(StoreSettings(url=str(Path(folder) / "graph.sqlite3")))
        store.migrate()
        try:
            yield store
        finally:
            store.close()


@contextmanager
def neo4j_store_wiped(shared: GraphStore) -> Iterator[GraphStore]:
    wipe_neo4j(shared)
    shared.migrate()
    yield shared


def run_example(store: GraphStore, far_search: str, size: int, seed: int, steps: list[list[tuple]]) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as folder:
        jobs = JobQueue(store, build_huey({"QUEUE_PATH": str(Path(folder) / "queue.sqlite3")}), debounce_seconds=0)
        jobs.register(lambda job_id: None)  # the test is the worker
        world = World(store, jobs, Matcher(store, EMBEDDER, RULES, far_search=far_search), {})
        world.import_rows([business_row(rng, f"B{n:04d}") for n in range(size)])
        ids = sorted(world.rows)
        for _ in range(size // 20):  # some ties and blocks from the start
            network.add_tie(store, jobs, SYSTEM, *rng.sample(ids, 2), rng.choice(list(TieKind)), T0)
        network.block(store, jobs, SYSTEM, *rng.sample(ids, 2), "from the start", T0)
        world.matcher.refresh_all(now=world.now)
        for changes in steps:
            for change in changes:
                apply(world, change, rng)
            world.drain_and_check()


COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}


@settings(max_examples=200, **COMMON)
@given(size=st.integers(150, 300), seed=st.integers(0, 2**32 - 1), steps=STEPS)
def test_incremental_equals_full_on_the_embedded_store(size, seed, steps):
    with embedded_store() as store:
        run_example(store, "exhaustive", size, seed, steps)


@settings(max_examples=40, **COMMON)
@given(size=st.integers(150, 300), seed=st.integers(0, 2**32 - 1), steps=STEPS)
def test_incremental_equals_full_with_far_candidates_from_a_vector_search(size, seed, steps):
    """The index strategy (as on Neo4j), over an exact in-memory nearest-neighbour scan."""
    with embedded_store() as store:
        run_example(store, "memory", size, seed, steps)


@pytest.mark.neo4j
@settings(max_examples=25, **COMMON)
@given(size=st.integers(150, 300), seed=st.integers(0, 2**32 - 1), steps=STEPS)
def test_incremental_equals_full_on_neo4j(neo4j_store, size, seed, steps):
    """Neo4j, with far candidates proposed by its vector indexes."""
    with neo4j_store_wiped(neo4j_store) as store:
        run_example(store, "auto", size, seed, steps)
