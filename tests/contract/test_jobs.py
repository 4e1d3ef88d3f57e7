"""Background jobs on both backends and both queues (a SQLite file, a real Redis)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from flask import Flask

from graph import BusinessRecord, Place
from graph.records import Job, JobStatus
from netweave import create_app
from netweave.jobs import REFRESH_ALL, REFRESH_CHANGES, get_jobs, get_runner
from netweave.matching.refresh import Matcher
from netweave.matching.rules import Rules
from netweave.services import customers
from netweave.services.access import Viewer
from tests.conftest import app_config
from tests.support.embedder import HashingEmbedder
from tests.support.redis import RedisServer

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
MPLS = Place("Minneapolis", "MN", "US", "Twin Cities", 44.98, -93.27)
SYSTEM = Viewer.system()


def seed(app: Flask) -> None:
    store = app.extensions["netweave.store"]
    store.upsert_businesses(
        [
            BusinessRecord("F1", "Petal & Stem", "dana@example.com", "Wedding flowers", "engaged couples",
                           "venue referrals", categories=("Florist",), place=MPLS),
            BusinessRecord("V1", "Lakeside Venue", "dana@example.com", "Wedding venue", "engaged couples",
                           "a florist", categories=("Wedding Venue",), place=MPLS),
        ],
        T0,
    )  # fmt: skip
    get_runner(app)._matcher = Matcher(store, HashingEmbedder(), Rules.load())


@pytest.fixture
def make_app(store_settings, tmp_path):
    made = []

    def make(**overrides: str) -> Flask:
        app = create_app({**app_config(store_settings, tmp_path), **overrides})
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["netweave.store"].close()


def test_ten_edits_in_a_second_make_one_refresh(make_app):
    app = make_app(JOB_DEBOUNCE_SECONDS="1")
    seed(app)
    store, jobs = app.extensions["netweave.store"], get_jobs(app)
    with app.app_context():
        for n in range(10):  # ten edits to one business
            customers.opt_out(store, jobs, SYSTEM, "F1", f"reason {n}")
    queued = store.list_jobs(status=JobStatus.QUEUED)
    assert [job.kind for job in queued] == [REFRESH_CHANGES], "one refresh for all ten"
    assert get_runner(app).run_queued() == 1
    [done] = store.list_jobs()
    assert done.status is JobStatus.DONE and "full refresh" in done.summary
    assert store.pending_changes() == []
    assert store.get_business("F1").opt_out.reason == "reason 9"


def test_a_request_made_while_a_refresh_runs_gets_a_job_of_its_own(make_app):
    app = make_app()
    seed(app)
    store, jobs = app.extensions["netweave.store"], get_jobs(app)
    first = jobs.refresh_changes()
    store.write(lambda tx: tx.claim_job(first.id, datetime.now(UTC)))
    second = jobs.refresh_changes()
    assert second.id != first.id
    assert jobs.refresh_all().kind == REFRESH_ALL, "a full refresh is its own request"


def test_jobs_have_ids_status_progress_and_outcome(make_app, runner_for):
    app = make_app()
    seed(app)
    jobs = get_jobs(app)
    job = jobs.refresh_all(requested_by="dana@example.com")
    assert (job.status, job.requested_by) == (JobStatus.QUEUED, "dana@example.com")
    get_runner(app).run_queued()
    done = jobs.get(job.id)
    assert done.status is JobStatus.DONE and done.attempts == 1
    assert done.started_at <= done.finished_at
    assert done.progress.stage == "matching" and done.progress.done == done.progress.total == 2
    cli = runner_for(app)
    assert f"{job.id}  refresh_all      done" in cli.invoke(args=["jobs", "list"]).stdout
    assert "status        done" in cli.invoke(args=["jobs", "show", job.id]).stdout


def test_a_failing_job_is_recorded_and_its_changes_stay_pending(make_app):
    app = make_app()
    seed(app)
    store, runner = app.extensions["netweave.store"], get_runner(app)

    def broken(**_: object) -> None:
        raise RuntimeError("the model went away")

    runner._matcher.refresh_changes = broken
    job = get_jobs(app).refresh_changes()
    runner.run_queued()
    failed = store.get_job(job.id)
    assert failed.status is JobStatus.FAILED and failed.error == "RuntimeError: the model went away"
    assert {c.business_id for c in store.pending_changes()} == {"F1", "V1"}, "nothing is lost"


def test_a_worker_starting_takes_back_what_a_dead_worker_left_and_queued_jobs_wait_for_it(make_app):
    app = make_app()
    seed(app)
    store, jobs, runner = app.extensions["netweave.store"], get_jobs(app), get_runner(app)
    waiting = jobs.refresh_changes()
    interrupted = store.write(lambda tx: tx.create_job(waiting.__class__("dead-1", REFRESH_CHANGES,
                                                                         JobStatus.QUEUED, T0), None))[0]  # fmt: skip
    store.write(lambda tx: tx.claim_job(interrupted.id, T0))  # its worker was killed here
    jobs.huey.flush()  # even if the queue lost every message
    with app.app_context():
        runner.start()
    consumer = jobs.huey.create_consumer(workers=1, periodic=False, initial_delay=0.01, max_delay=0.1)
    thread = threading.Thread(target=consumer.run, daemon=True)
    consumer._set_signal_handlers = lambda: None  # not the main thread
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
            job.status in (JobStatus.QUEUED, JobStatus.RUNNING) for job in store.list_jobs()
        ):
            time.sleep(0.05)
    finally:
        consumer.stop(graceful=True)  # lets the job in hand finish
        thread.join(10)
    statuses = {job.id: (job.status, job.attempts) for job in store.list_jobs()}
    assert statuses[interrupted.id] == (JobStatus.DONE, 2), "run again, once"
    assert statuses[waiting.id][0] is JobStatus.DONE
    assert store.pending_changes() == [] and store.published_generation() is not None


def test_the_queue_runs_on_redis_with_the_same_code(make_app, redis_server):
    app = make_app(REDIS_URL=redis_server)
    seed(app)
    store, jobs = app.extensions["netweave.store"], get_jobs(app)
    jobs.huey.flush()
    assert type(jobs.huey).__name__ == "RedisHuey"
    job = jobs.refresh_changes()
    assert jobs.queue_depth() == 1
    with app.app_context():
        task = jobs.huey.dequeue()
        jobs.huey.execute(task)
    assert store.get_job(job.id).status is JobStatus.DONE
    assert store.suggestions_for("F1")[0].other_id == "V1"
    client = app.test_client()
    assert client.get("/readyz").get_json() == {"status": "ready", "checks": {"store": "ok", "queue": "ok"}}


def test_with_redis_down_a_change_is_kept_and_the_app_says_it_is_not_ready(make_app, tmp_path):
    with RedisServer(tmp_path) as redis:
        app = make_app(REDIS_URL=redis.url)
        seed(app)
        store, jobs = app.extensions["netweave.store"], get_jobs(app)
        redis.stop()
        with app.app_context():
            assert customers.archive(store, jobs, SYSTEM, ["V1"]) == ["V1"]  # acknowledged: written
        assert "V1" in {c.business_id for c in store.pending_changes()}, "kept for the worker's sweep"
        response = app.test_client().get("/readyz")
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert response.get_json()["checks"] == {"store": "ok", "queue": "error: ConnectionError"}
        redis.start()
        assert app.test_client().get("/readyz").status_code == 200


@pytest.fixture
def runner_for():
    return lambda app: app.test_cli_runner()


def test_a_full_refresh_asked_for_before_one_that_ran_is_covered_by_it(make_app):
    app = make_app()
    seed(app)
    store, jobs, runner = app.extensions["netweave.store"], get_jobs(app), get_runner(app)
    changes = jobs.refresh_changes()  # the worker has no book yet: this one refreshes everything
    full = jobs.refresh_all(requested_by="worker start")
    assert runner.run_queued() == 2
    assert store.get_job(changes.id).summary.startswith("full refresh")
    assert store.get_job(full.id).summary == "covered by generation 1, a full refresh since this was asked for"
    later = jobs.refresh_all(requested_by="cli")
    runner.run_queued()
    assert store.get_job(later.id).summary.startswith("full refresh"), "asked for after it: runs"


def test_the_sweep_sends_a_job_whose_message_was_lost_to_the_queue_again(make_app):
    app = make_app()
    seed(app)
    store, jobs, runner = app.extensions["netweave.store"], get_jobs(app), get_runner(app)
    lost = Job("lost-1", REFRESH_CHANGES, JobStatus.QUEUED, T0)
    old = store.write(lambda tx: tx.create_job(lost, REFRESH_CHANGES))[0]
    jobs.huey.flush()  # its message is gone
    assert jobs.refresh_changes().id == old.id, "new requests share the waiting job"
    runner.sweep()
    assert jobs.queue_depth() == 0, "the worker just became free: its message may still come"
    runner._idle_since = T0  # ...but it has been idle for long since it was queued
    runner.sweep()
    assert jobs.queue_depth() == 1
    with app.app_context():
        jobs.huey.execute(jobs.huey.dequeue())
    assert store.get_job(old.id).status is JobStatus.DONE
    assert store.pending_changes() == []


def test_a_full_refresh_reads_an_edited_rules_file_again(make_app, tmp_path):
    from netweave.matching.rules import DEFAULT_RULES_PATH

    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(DEFAULT_RULES_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    app = make_app(RULES_PATH=str(rules_file))
    seed(app)
    store, jobs, runner = app.extensions["netweave.store"], get_jobs(app), get_runner(app)
    runner._matcher = Matcher(store, HashingEmbedder(), Rules.load(rules_file), rules_path=rules_file)
    jobs.refresh_all(requested_by="cli")
    runner.run_queued()
    before = store.published_generation().rules_digest
    rules_file.write_text(rules_file.read_text(encoding="utf-8").replace("weight: 0.9", "weight: 0.8", 1))
    edited = Rules.load(rules_file).digest
    assert edited != before
    job = jobs.refresh_all(requested_by="cli")
    runner.run_queued()
    assert store.get_job(job.id).summary.startswith("full refresh")
    assert store.published_generation().rules_digest == edited
    rules_file.write_text("kinds: [", encoding="utf-8")
    broken = jobs.refresh_all(requested_by="cli")
    runner.run_queued()
    assert store.get_job(broken.id).error.startswith(f"RulesError: {rules_file}: not valid YAML")
    assert store.published_generation().rules_digest == edited, "the lists stay as they were"
