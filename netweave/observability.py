"""Logs and metrics, configured once per process.

Logs go to stderr as plain text, or as JSON lines with NETWEAVE_LOG_FORMAT=json. Web log
lines carry the request's id (the caller's X-Request-ID, or a new one, echoed back).

Metrics use prometheus-client in multiprocess mode: gunicorn's web workers and the job
worker each write to NETWEAVE_METRICS_DIR, and `/metrics` (on any web worker) adds them up.
Queue depth, pending changes and the published generation are read from the store at
scrape time, so they are right whichever process answers.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, g, has_request_context, request
from flask.typing import ResponseReturnValue

if TYPE_CHECKING:  # imported for real only once the metrics folder is set (use_metrics_dir)
    from prometheus_client import CollectorRegistry

_configured = False
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def configure_logging(log_format: str = "text", level: str = "INFO") -> None:
    """Send every logger's records to stderr in one format (idempotent per process)."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("neo4j", "urllib3", "huey.consumer.Scheduler", "sentence_transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True


def use_metrics_dir(path: str) -> None:
    """Point prometheus-client's multiprocess mode at `path`; must run before it is imported."""
    if "prometheus_client" in sys.modules and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return  # already imported in single-process mode (a tool or a test): keep that
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", path)
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)


class Metrics:
    """The process's metric objects (prometheus-client keeps them per process by design)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import REGISTRY, Counter, Histogram

        registry = REGISTRY if registry is None else registry
        self.request_seconds = Histogram(
            "netweave_http_request_duration_seconds",
            "Time to answer a web or API request",
            ["method", "route", "status"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.job_seconds = Histogram(
            "netweave_job_duration_seconds",
            "Time a background job ran",
            ["kind", "outcome"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
            registry=registry,
        )
        self.refresh_lag_seconds = Histogram(
            "netweave_refresh_lag_seconds",
            "From the first change a refresh took in to the publication of the lists it reaches",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=registry,
        )
        self.jobs_total = Counter("netweave_jobs", "Background jobs finished", ["kind", "outcome"], registry=registry)
        self.shed_total = Counter(
            "netweave_shed_requests", "Requests answered 503 at once (waited too long)", registry=registry
        )


_metrics: Metrics | None = None
_metrics_lock = threading.Lock()


def metrics() -> Metrics:
    """The process's metrics, made on first use: a web worker's first requests arrive on
    several threads at once, and a second registration of the same names would fail them."""
    global _metrics
    if _metrics is None:
        with _metrics_lock:
            if _metrics is None:
                _metrics = Metrics()
    return _metrics


class StoreCollector:
    """Gauges read from the store when /metrics is scraped."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from graph.records import JobStatus
        from netweave.jobs import get_jobs
        from netweave.store import get_store

        with self.app.app_context():
            store = get_store()
            depth = GaugeMetricFamily("netweave_jobs_queued", "Jobs waiting for the worker", labels=["kind"])
            queued: dict[str, int] = {}
            for job in store.list_jobs(limit=1000, status=JobStatus.QUEUED):
                queued[job.kind] = queued.get(job.kind, 0) + 1
            for kind, count in sorted(queued.items()):
                depth.add_metric([kind], count)
            yield depth
            yield GaugeMetricFamily(
                "netweave_queue_messages", "Messages in the job queue", value=get_jobs().queue_depth()
            )
            yield GaugeMetricFamily(
                "netweave_pending_changes",
                "Businesses changed since the last refresh took them in",
                value=len(store.pending_changes()),
            )
            generation = store.published_generation()
            suggestions = GaugeMetricFamily(
                "netweave_generation_suggestions", "Suggestions in the published generation", labels=["kind"]
            )
            lists = GaugeMetricFamily("netweave_generation_lists", "Lists in the published generation", labels=["kind"])
            number = GaugeMetricFamily("netweave_generation", "Number of the published generation")
            if generation is not None:
                suggestions.add_metric([generation.kind.value], generation.suggestions)
                lists.add_metric([generation.kind.value], generation.lists)
                number.add_metric([], generation.id)
            yield suggestions
            yield lists
            yield number


# Paths whose last part is a credential: reset links, the weekly email's links. Matched on the
# path itself, so a request that matched no route (a 404, a trailing slash) is masked too.
_SECRET_IN_PATH = re.compile(r"^(/reset|/email/act|/email/unsubscribe)/[^/]+")


def loggable_path(path: str | None = None) -> str:
    """The request's path with a credential in it replaced by `<token>` (`/reset/<token>`)."""
    return _SECRET_IN_PATH.sub(r"\1/<token>", request.path if path is None else path)


def init_app(app: Flask) -> None:
    """Logging, request ids and request metrics for a web app."""
    configure_logging(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])
    access = logging.getLogger("netweave.web")

    def _request_id() -> str:
        given = request.headers.get("X-Request-ID", "")
        return given if _REQUEST_ID.match(given) else uuid.uuid4().hex

    @app.before_request
    def _start() -> None:
        g.request_id = _request_id()
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Any) -> ResponseReturnValue:
        if "request_id" not in g:  # answered before `_start` ran (shed under overload)
            g.request_id = _request_id()
        response.headers["X-Request-ID"] = g.request_id
        seconds = time.perf_counter() - g.started if "started" in g else 0.0
        route = request.url_rule.rule if request.url_rule else "unmatched"
        if route != "/metrics":
            metrics().request_seconds.labels(request.method, route, str(response.status_code)).observe(seconds)
        access.info("%s %s %s %.1f ms", request.method, loggable_path(), response.status_code, seconds * 1000)
        return response
