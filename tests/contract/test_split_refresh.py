"""A full refresh split by market across workers publishes the lists one worker would, and
the beginner's book afterwards takes changes in exactly, on both backends: with a helper that
ranks every part, with none, with one whose store moved, and with one that stopped mid-part."""

from __future__ import annotations

import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from graph import GraphStore, TieKind
from graph.records import BusinessStatus, PartStatus, RefreshPart
from netweave.jobs import JobQueue, build_huey
from netweave.matching.parts import split_by_market
from netweave.matching.refresh import Matcher
from netweave.services import network
from tests.contract.test_incremental_property import EMBEDDER, RULES, SYSTEM, T0, World, apply, business_row

PARTS = 3


@pytest.fixture
def world(store: GraphStore) -> Iterator[World]:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as folder:
        jobs = JobQueue(store, build_huey({"QUEUE_PATH": str(Path(folder) / "queue.sqlite3")}), debounce_seconds=0)
        jobs.register(lambda job_id: None)  # the test is the worker
        world = World(store, jobs, split_matcher(store), {})
        world.import_rows([business_row(rng, f"B{n:04d}") for n in range(160)])
        ids = sorted(world.rows)
        for _ in range(8):
            network.add_tie(store, jobs, SYSTEM, *rng.sample(ids, 2), rng.choice(list(TieKind)), T0)
        network.block(store, jobs, SYSTEM, *rng.sample(ids, 2), "from the start", T0)
        yield world


def split_matcher(store: GraphStore) -> Matcher:
    return Matcher(store, EMBEDDER, RULES, parts=PARTS, split_min_rows=0)


def refresh(world: World) -> None:
    report = world.matcher.refresh_all(now=world.now)
    assert report.refreshed == len(world.store.all_businesses(BusinessStatus.ACTIVE))
    assert world.store.refresh_parts(report.generation) == [], "the parts are forgotten once published"


def check_then_take_changes_in(world: World) -> None:
    """Equal to one worker's full refresh now, and after changes taken in by the beginner."""
    published, computed = world.published(), world.computed()
    assert published == computed
    rng = random.Random(3)
    for change in [("import", 4, 6), ("feedback",), ("tie",), ("archive", 3), ("block",), ("time", 91)]:
        apply(world, change, rng)
        world.drain_and_check()  # incremental, from the beginner's book with the helper's rows installed


def test_the_parts_are_whole_markets_in_a_stable_order():
    rows = [10, 11, 12, 13, 14, 15, 16]
    markets = [0, 0, 0, 1, 2, 2, -1]
    split = split_by_market(np.array(rows), np.array(markets), 3)
    assert [part.tolist() for part in split] == [[10, 11, 12], [14, 15], [13, 16]]
    assert len(split_by_market(np.array(rows), np.array(markets), 9)) == 4, "no empty parts"


def with_helper(world: World, helper: Callable[[int], object]) -> tuple[list[object], threading.Event]:
    """Answer the worker's call for help with `helper(generation)` in a thread, as a helper
    process would, and let the worker claim parts only once that helper is done (so what the
    helper does, it does for sure)."""
    done, results = threading.Event(), []

    def run(generation: int) -> None:
        try:
            results.append(helper(generation))
        finally:
            done.set()

    world.matcher.request_help = lambda generation, wanted: threading.Thread(target=run, args=(generation,)).start()
    claim = world.matcher._claim_part

    def claim_after_the_helper(generation: int) -> RefreshPart | None:
        assert done.wait(120), "the helper finished"
        return claim(generation)

    world.matcher._claim_part = claim_after_the_helper
    return results, done


def test_a_helper_that_ranks_every_part_gives_the_lists_of_one_worker(world):
    helper = split_matcher(world.store)
    helped, _ = with_helper(world, helper.help_refresh)
    refresh(world)
    assert helped == [PARTS], "the helper took every part; the worker installed what its rankings saw"
    check_then_take_changes_in(world)


def test_without_a_helper_the_beginner_ranks_every_part(world):
    world.matcher.request_help = None
    refresh(world)
    check_then_take_changes_in(world)


def test_a_change_while_the_books_load_means_no_split_and_no_help(world):
    helper = split_matcher(world.store)

    def help_after_a_change(generation: int) -> int:
        apply(world, ("tie",), random.Random(1))  # written after the worker took the pending changes in
        return helper.help_refresh(generation)

    helped, done = with_helper(world, help_after_a_change)
    refresh(world)
    assert done.wait(60)
    assert helped == [0]
    assert world.store.pending_changes(), "the change waits for the next refresh"
    world.drain_and_check()
    check_then_take_changes_in(world)


def test_a_part_whose_helper_stopped_is_taken_over(world):
    def claim_and_stop(generation: int) -> RefreshPart:
        while not world.store.refresh_parts(generation):
            time.sleep(0.05)
        now = datetime.now(UTC)
        ended = now - timedelta(seconds=1)
        part = world.store.write(lambda tx: tx.claim_refresh_part(generation, "gone:1", now, ended))
        assert part is not None and part.status is PartStatus.RUNNING
        return part

    stopped, _ = with_helper(world, claim_and_stop)
    refresh(world)
    assert [part.part for part in stopped] == [0]
    check_then_take_changes_in(world)


def test_a_part_claimed_is_not_claimed_again_until_its_lease_ends(store):
    store.write(lambda tx: tx.add_refresh_parts(42, 2, "snapshot"))
    now = datetime.now(UTC)
    later = now + timedelta(minutes=2)
    first = store.write(lambda tx: tx.claim_refresh_part(42, "a", now, later))
    second = store.write(lambda tx: tx.claim_refresh_part(42, "b", now, later))
    assert (first.part, second.part) == (0, 1)
    assert store.write(lambda tx: tx.claim_refresh_part(42, "c", now, later)) is None
    assert not store.write(lambda tx: tx.renew_refresh_part(42, 0, "b", later)), "not b's part"
    assert store.write(lambda tx: tx.finish_refresh_part(42, 1, "b", b"state"))
    taken = store.write(
        lambda tx: tx.claim_refresh_part(42, "c", later + timedelta(seconds=1), later + timedelta(minutes=5))
    )
    assert (taken.part, taken.claimed_by) == (0, "c"), "a's lease ended: c takes part 0 over"
    assert not store.write(lambda tx: tx.finish_refresh_part(42, 0, "a", None)), "a lost it"
    assert store.write(lambda tx: tx.finish_refresh_part(42, 0, "c", None, done=False)), "c gives it back"
    parts = store.refresh_parts(42)
    assert [(p.part, p.status, p.state) for p in parts] == [
        (0, PartStatus.QUEUED, None),
        (1, PartStatus.DONE, b"state"),
    ]
    assert [p.state for p in store.refresh_parts(42, states=False)] == [None, None], "polled without the states"
    store.write(lambda tx: tx.add_refresh_parts(41, 1, "left by a worker that stopped"))
    store.write(lambda tx: tx.add_refresh_parts(43, 1, "a newer refresh's"))
    store.write(lambda tx: tx.delete_refresh_parts(42))
    assert (store.refresh_parts(41), store.refresh_parts(42)) == ([], []), "older ones go too"
    assert len(store.refresh_parts(43)) == 1
