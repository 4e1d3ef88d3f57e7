"""Background jobs: refreshes of suggestions, webhook deliveries and the weekly emails, run by
the worker process.

One queue (huey) with one code path: a SQLite file with no server on the embedded default
(NETWEAVE_QUEUE_PATH), Redis when NETWEAVE_REDIS_URL is set. The queue carries only job
ids; each job's kind, status and outcome live in the graph store, so every process can
read them (`flask --app app jobs list|show`, later the API).

- Web processes and the CLI only enqueue and read jobs. `JobQueue.refresh_changes()` is
  called after every change: it coalesces with a refresh that is still waiting (ten edits in
  a second make one job) and runs it after a short debounce.
- The worker (`flask --app app worker`) alone loads the model and the book. Run exactly one:
  it runs one job at a time, so refreshes never overlap, and as it starts it takes back every
  job left running (by a worker that is gone: it goes back to the queue, or fails after
  MAX_ATTEMPTS, so the same job is not run a fourth time; the start's own full refresh is a
  new job). A job queued while no worker ran waits for one.
- Nothing is lost if the queue loses a message: the changes themselves are pending in the
  store (written with the change), and the worker's sweep requests a refresh for them and
  sends a queued job that has waited too long to the queue again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, current_app
from huey import Huey, RedisHuey, SqliteHuey, crontab

from graph import GraphStore
from graph.records import GenerationKind, Job, JobProgress, JobStatus, WebhookEvent
from graph.store import UnknownJobError
from netweave.config import queue_path

log = logging.getLogger(__name__)

_EXTENSION = "netweave.jobs"
REFRESH_ALL = "refresh_all"  # every list, one full generation
REFRESH_CHANGES = "refresh_changes"  # the lists pending changes reach
PARTS = "netweave-parts"  # the helpers' queue: calls for help with a split full refresh
_PROGRESS_EVERY_S = 1.0
MAX_ATTEMPTS = 3  # a job its worker died running this often is failed, not run again
RESEND_AFTER_S = 60.0  # a queued job waiting this long while the worker is idle lost its message


def build_huey(config: Mapping[str, Any], name: str = "netweave") -> Huey:
    """The queue: Redis when configured, else a SQLite file (no server). `netweave` carries
    the jobs (for the one worker), `netweave-parts` the calls for help with a split refresh
    (for helpers)."""
    if config.get("REDIS_URL"):
        return RedisHuey(name, url=config["REDIS_URL"], results=False)
    path = queue_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(name, filename=str(path), results=False, timeout=30)


class JobQueue:
    """Enqueue refreshes and read jobs; the same in every process."""

    def __init__(self, store: GraphStore, huey: Huey, debounce_seconds: float = 1.0, parts: Huey | None = None):
        self.store = store
        self.huey = huey
        self.parts = parts  # the helpers' queue
        self.debounce_seconds = debounce_seconds
        self._task: Any = None  # set by `register`
        self._delivery_task: Any = None
        self._help_task: Any = None

    def register(self, run: Callable[[str], None], deliver: Callable[[str], None] | None = None) -> None:
        """Name the functions that run a job and send a webhook delivery (in the worker;
        elsewhere they are never called)."""
        self._task = self.huey.task(name="netweave.run_job", retries=0)(run)
        if deliver is not None:
            self._delivery_task = self.huey.task(name="netweave.deliver_webhook", retries=0)(deliver)

    def register_helper(self, help: Callable[[int], None]) -> None:
        """Name the function a helper runs to rank parts of a split refresh."""
        if self.parts is not None:
            self._help_task = self.parts.task(name="netweave.help_refresh", retries=0)(help)

    def request_help(self, generation: int, helpers: int) -> None:
        """Ask up to `helpers` helpers to rank parts of the generation's refresh (a message
        nobody takes costs nothing: the worker that began it ranks what is left)."""
        if self._help_task is None:
            return
        for _ in range(helpers):
            self._help_task(generation)

    def send_deliveries(self, delivery_ids: Sequence[str], delay: float = 0.0) -> None:
        """Queue webhook deliveries for the worker. They are already in the store (pending), so
        a lost message only delays them: the sweep sends what is due."""
        for delivery_id in delivery_ids:
            if delay > 0:
                self._delivery_task.schedule(args=(delivery_id,), delay=delay)
            else:
                self._delivery_task(delivery_id)

    def refresh_changes(self, requested_by: str | None = None) -> Job:
        """Ask for the pending changes to be taken in; shares a refresh that is still waiting."""
        return self._request(REFRESH_CHANGES, requested_by, self.debounce_seconds)

    def refresh_all(self, requested_by: str | None = None) -> Job:
        """Ask for every list to be recomputed; shares a full refresh that is still waiting."""
        return self._request(REFRESH_ALL, requested_by, 0.0)

    def _request(self, kind: str, requested_by: str | None, delay: float) -> Job:
        job = Job(uuid.uuid4().hex, kind, JobStatus.QUEUED, datetime.now(UTC), requested_by)
        job, created = self.store.write(lambda tx: tx.create_job(job, coalesce_key=kind))
        if created:
            self.enqueue(job.id, delay)
        return job

    def enqueue(self, job_id: str, delay: float = 0.0) -> None:
        if self._task is None:
            raise RuntimeError("no job runner registered")
        if delay > 0:
            self._task.schedule(args=(job_id,), delay=delay)
        else:
            self._task(job_id)

    def get(self, job_id: str) -> Job | None:
        return self.store.get_job(job_id)

    def list(self, *, limit: int = 20, status: JobStatus | None = None) -> list[Job]:
        return self.store.list_jobs(limit=limit, status=status)

    def queue_depth(self) -> int:
        """Messages in the queue (ready or scheduled)."""
        return self.huey.pending_count() + self.huey.scheduled_count()

    def ping(self) -> None:
        """Raise if the queue's storage does not answer."""
        self.huey.pending_count()

    def wait(self, job_id: str, timeout: float | None = None, poll: float = 0.2) -> Job:
        """Block until the job is done or failed (or `timeout` passes); returns it as it is then."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.store.get_job(job_id)
            if job is None:
                raise UnknownJobError(job_id)
            if job.status in (JobStatus.DONE, JobStatus.FAILED):
                return job
            if deadline is not None and time.monotonic() > deadline:
                return job
            time.sleep(poll)


def init_app(app: Flask) -> None:
    huey = build_huey(app.config)
    from netweave.store import get_store

    with app.app_context():
        queue = JobQueue(get_store(), huey, float(app.config["JOB_DEBOUNCE_SECONDS"]), build_huey(app.config, PARTS))
    runner = JobRunner(app, queue)
    queue.register(runner.run, runner.deliver)
    queue.register_helper(runner.help)
    huey.periodic_task(crontab(minute="*"), name="netweave.sweep")(runner.sweep)
    # Each salesperson's weekly email at their own hour: every minute, send what has come due.
    huey.periodic_task(crontab(minute="*"), name="netweave.digests")(runner.send_digests)
    app.extensions[_EXTENSION] = (queue, runner)


def get_jobs(app: Flask | None = None) -> JobQueue:
    return (app or current_app).extensions[_EXTENSION][0]


def get_runner(app: Flask | None = None) -> JobRunner:
    return (app or current_app).extensions[_EXTENSION][1]


class JobRunner:
    """Runs jobs in the worker: holds the Matcher (model and loaded book), built on first use."""

    def __init__(self, app: Flask, queue: JobQueue):
        self.app = app
        self.queue = queue
        self.store = queue.store
        self._matcher: Any = None
        self._lock = threading.Lock()  # one job at a time, whatever the consumer does
        self._digests_lock = threading.Lock()  # one run of the weekly emails at a time
        self._new_suggestions: list[Any] = []  # suggestions.new deliveries of the job running, sent as it ends
        self._idle_since = datetime.now(UTC)  # when the last job ended (or the runner was made)
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def matcher(self) -> Any:
        if self._matcher is None:
            from netweave.matching.setup import build_matcher

            started = time.perf_counter()
            self._matcher = build_matcher(self.app.config, self.store)
            log.info("model %s loaded in %.1f s", self._matcher.embedder.name, time.perf_counter() - started)
        self._matcher.on_published = self._generation_published
        self._matcher.request_help = self.queue.request_help
        return self._matcher

    def help(self, generation: int) -> None:
        """As a helper (`flask worker --helper`): rank parts of another worker's split refresh."""
        with self._lock, self.app.app_context():
            started = time.perf_counter()
            ranked = self.matcher().help_refresh(generation)
            if ranked:
                seconds = time.perf_counter() - started
                log.info("generation %s: ranked %d part(s) in %.1f s", generation, ranked, seconds)

    def _generation_published(self, generation: Any) -> None:
        """While the lists it replaced still exist: the new suggestions, for suggestions.new."""
        from netweave.services import webhooks

        subscriptions = self.store.list_webhooks()
        if any(WebhookEvent.SUGGESTIONS_NEW in s.events for s in subscriptions):
            self._new_suggestions = webhooks.new_suggestions(
                self.store, subscriptions, generation.id, datetime.now(UTC)
            )

    def start(self) -> None:
        """What a worker does as it starts: take back jobs a dead worker left running, make
        sure every queued job is in the queue, and refresh what is out of date."""
        now = datetime.now(UTC)
        for job in self.store.write(lambda tx: tx.requeue_running_jobs(MAX_ATTEMPTS, now)):
            if job.status is JobStatus.FAILED:
                log.error("job %s (%s) was running when its worker stopped: %s", job.id, job.kind, job.error)
            else:
                log.warning("job %s (%s) was running when its worker stopped; queued again", job.id, job.kind)
        for job in self.store.list_jobs(limit=1000, status=JobStatus.QUEUED):
            self.queue.enqueue(job.id)  # a duplicate message finds the job claimed and does nothing
        # A worker's first refresh is full: the book it keeps must be the one its lists came from.
        self.queue.refresh_all(requested_by="worker start")

    def sweep(self) -> None:
        """Every minute: make sure pending changes (and 'bad timing' pauses that ended) get a
        refresh, and queued jobs run, even if a message to the queue was lost."""
        with self._lock, self.app.app_context():
            # The worker runs one thing at a time: a job queued long ago, while the worker has
            # been idle for a while, should have run. Send it again (a second message finds it
            # claimed and does nothing).
            now = datetime.now(UTC)
            stale = now - timedelta(seconds=RESEND_AFTER_S + self.queue.debounce_seconds)
            idle_long_enough = now - self._idle_since > timedelta(seconds=RESEND_AFTER_S)
            waiting = self.store.list_jobs(limit=1000, status=JobStatus.QUEUED) if idle_long_enough else []
            for job in sorted(waiting, key=lambda j: j.created_at)[:100]:
                if job.created_at < stale:
                    log.warning("job %s (%s) has waited since %s; sent to the queue again", job.id, job.kind,
                                job.created_at.isoformat(timespec="seconds"))  # fmt: skip
                    self.queue.enqueue(job.id)
            # Webhook deliveries due a while ago: their message was lost (or the worker was down).
            due = self.store.list_deliveries(due_before=now - timedelta(seconds=RESEND_AFTER_S), limit=500)
            if due:
                self.queue.send_deliveries([d.id for d in due])
            if self._matcher is None:
                return
            if self._matcher.due(datetime.now(UTC)):
                self.queue.refresh_changes(requested_by="sweep")
            if removed := self._matcher.prune():
                log.info("deleted %d replaced suggestion lists", removed)

    def send_digests(self) -> None:
        """Send the weekly emails that are due (and retry failed ones); a run still going when
        the next minute comes is not doubled. Nothing to do while email is not set up."""
        from netweave.services import digests

        if not self._digests_lock.acquire(blocking=False):
            return
        try:
            with self.app.app_context():
                settings = digests.DigestSettings.from_config(self.app.config)
                if settings.mail.configured:
                    digests.send_digests(self.store, settings)
        except Exception:
            log.exception("sending the weekly emails failed; the next minute tries again")
        finally:
            self._digests_lock.release()

    def run(self, job_id: str) -> bool:
        """Claim the job and run it; False if it was not queued (done already, or run by
        another message for the same job)."""
        with self._lock, self.app.app_context():
            job = self.store.write(lambda tx: tx.claim_job(job_id, datetime.now(UTC)))
            if job is None:
                return False
            try:
                self._run(job)
            finally:
                self._idle_since = datetime.now(UTC)
            return True

    def deliver(self, delivery_id: str) -> None:
        """One attempt at a webhook delivery; a retry is queued for when its next attempt is due.
        The consumer has two threads, so this goes on while a refresh runs (never inside one)."""
        from netweave.services import webhooks

        with self.app.app_context():
            try:
                outcome = webhooks.deliver(self.store, delivery_id, webhooks.Policy.from_config(self.app.config))
            except LookupError:  # delivered or failed already (a repeated message)
                return
            if outcome.next_attempt_at is not None:
                wait = (outcome.next_attempt_at - datetime.now(UTC)).total_seconds()
                self.queue.send_deliveries([delivery_id], delay=max(wait, 0.0))
            why = f": {outcome.last_error}" if outcome.last_error else ""
            log.info("webhook delivery %s (%s): %s after %d attempt(s)%s", delivery_id, outcome.event.value,
                     outcome.status.value, outcome.attempts, why)  # fmt: skip

    def _announce(self, job: Job, outcome: str, summary: str) -> None:
        """Tell the subscribers of refresh.finished (never failing the job over it)."""
        from netweave.services import webhooks

        try:
            subscriptions = self.store.list_webhooks()
            if not subscriptions:
                self._new_suggestions = []
                return
            now = datetime.now(UTC)
            data = {"job_id": job.id, "kind": job.kind, "status": outcome, "summary": summary}
            pending = webhooks.outbox(subscriptions, WebhookEvent.REFRESH_FINISHED, data, None, now)
            pending += self._new_suggestions
            if pending:
                self.store.write(lambda tx: tx.add_deliveries(pending))
                self.queue.send_deliveries([d.id for d in pending])
        except Exception:
            log.warning("could not announce job %s to webhooks", job.id, exc_info=True)
        finally:
            self._new_suggestions = []

    def _run(self, job: Job) -> None:
        from netweave.observability import metrics

        started = time.perf_counter()
        log.info("job %s (%s) started, attempt %d", job.id, job.kind, job.attempts)
        progress = _ProgressWriter(self.store, job.id)
        try:
            matcher = self.matcher()
            if job.kind == REFRESH_ALL:
                matcher.reload_rules()  # `match refresh` after editing the rules file applies them
                if (covered := self._covered(job, matcher)) is not None:
                    summary = f"covered by generation {covered}, a full refresh since this was asked for"
                    self.store.write(
                        lambda tx: tx.update_job(job.id, status=JobStatus.DONE, now=datetime.now(UTC), summary=summary)
                    )
                    log.info("job %s (%s): %s", job.id, job.kind, summary)
                    return
            refresh = matcher.refresh_all if job.kind == REFRESH_ALL else matcher.refresh_changes
            report = refresh(job_id=job.id, on_start=progress.start, on_progress=progress.advance)
        except Exception as error:
            seconds = time.perf_counter() - started
            log.exception("job %s (%s) failed after %.2f s", job.id, job.kind, seconds)
            message = f"{type(error).__name__}: {error}"
            self.store.write(
                lambda tx: tx.update_job(job.id, status=JobStatus.FAILED, now=datetime.now(UTC), error=message)
            )
            metrics().job_seconds.labels(job.kind, "failed").observe(seconds)
            metrics().jobs_total.labels(job.kind, "failed").inc()
            self._announce(job, "failed", message)
            return
        seconds = time.perf_counter() - started
        summary = report.summary()
        self.store.write(
            lambda tx: tx.update_job(job.id, status=JobStatus.DONE, now=datetime.now(UTC), summary=summary)
        )
        metrics().job_seconds.labels(job.kind, "done").observe(seconds)
        metrics().jobs_total.labels(job.kind, "done").inc()
        self._announce(job, "done", summary)
        if report.lag_seconds is not None:
            metrics().refresh_lag_seconds.observe(report.lag_seconds)
        log.info("job %s (%s) done in %.3f s: %s", job.id, job.kind, seconds, summary)

    def _covered(self, job: Job, matcher: Any) -> int | None:
        """A full generation this worker made (its book is that generation's) after the job was
        asked for, with the current model, rules and settings, already is what the job would make."""
        generation = self.store.published_generation()
        if (
            matcher.book is not None
            and generation is not None
            and generation.id == matcher.last_generation
            and generation.kind is GenerationKind.FULL
            and generation.started_at >= job.created_at
            and matcher.is_current(generation)
        ):
            return generation.id
        return None

    def run_queued(self) -> int:
        """Run every queued job in this process, oldest first, until none is left (a one-off
        worker, for scripts and `flask --app app jobs run`). Returns how many ran."""
        ran = 0
        while queued := self.store.list_jobs(limit=1000, status=JobStatus.QUEUED):
            for job in sorted(queued, key=lambda j: j.created_at):
                ran += self.run(job.id)
        return ran


class _ProgressWriter:
    """Job progress in the store, at most once a second (and at each new stage)."""

    def __init__(self, store: GraphStore, job_id: str):
        self.store = store
        self.job_id = job_id
        self.stage = ""
        self.total = 0
        self.done = 0
        self._written = 0.0

    def start(self, stage: str, total: int) -> None:
        self.stage, self.total, self.done = stage, total, 0
        self._write(force=True)

    def advance(self, done: int) -> None:
        self.done += done
        self._write(force=self.done >= self.total)

    def _write(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._written < _PROGRESS_EVERY_S:
            return
        self._written = now
        progress = JobProgress(self.stage, min(self.done, self.total), self.total)
        self.store.write(lambda tx: tx.update_job(self.job_id, progress=progress))


def run_worker(app: Flask, *, helper: bool = False) -> None:
    """The worker process: recover, then run jobs until SIGINT/SIGTERM (a job in progress
    finishes first). A helper runs no jobs: it ranks parts of the worker's split full
    refreshes (NETWEAVE_REFRESH_PARTS), as many helpers as there are machines to spare."""
    queue, runner = get_jobs(app), get_runner(app)
    if helper:
        if queue.parts is None:
            raise RuntimeError("no helpers' queue configured")
        with app.app_context():
            runner.matcher()  # the model, loaded before the first call for help
        consumer = queue.parts.create_consumer(workers=1, worker_type="thread", periodic=False, initial_delay=0.05,
                                               max_delay=0.5, backoff=1.15)  # fmt: skip
        log.info("helper %s ready: queue %s", runner.name, "redis" if app.config.get("REDIS_URL") else "sqlite")
        consumer.run()
        return
    with app.app_context():
        runner.start()
        runner.matcher()  # load the model now, not in the first job
    # Two threads: webhook deliveries go on while a refresh runs (refreshes still run one at a time).
    consumer = queue.huey.create_consumer(
        workers=2, worker_type="thread", periodic=True, initial_delay=0.05, max_delay=0.5, backoff=1.15
    )
    log.info("worker %s ready: queue %s", runner.name, "redis" if app.config.get("REDIS_URL") else "sqlite")
    consumer.run()
