"""Liveness, readiness and metrics, for load balancers, monitoring and the test suite."""

from __future__ import annotations

import logging
import os

from flask import Blueprint, Response, current_app, jsonify
from flask.typing import ResponseReturnValue

from netweave.jobs import get_jobs
from netweave.store import get_store

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """The process answers (nothing else is checked: a slow store must not get web processes
    restarted; /readyz says whether they can serve)."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Ready to serve: the store and the job queue both answer."""
    checks = {}
    for name, ping in (("store", get_store().ping), ("queue", get_jobs().ping)):
        try:
            ping()
            checks[name] = "ok"
        except Exception as error:  # any failure means not ready; say which
            log.warning("readiness: %s is not answering: %s", name, error)
            checks[name] = f"error: {type(error).__name__}"
    ready = all(value == "ok" for value in checks.values())
    response = jsonify(status="ready" if ready else "not ready", checks=checks)
    if not ready:
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return response


@bp.get("/metrics")
def metrics() -> ResponseReturnValue:
    """Prometheus metrics of every process (multiprocess mode), plus gauges read from the store."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

    from netweave.observability import StoreCollector

    from_store = CollectorRegistry()
    from_store.register(StoreCollector(current_app._get_current_object()))  # type: ignore[attr-defined]
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
    else:  # one process (a tool that imported prometheus-client first): its own metrics
        processes = REGISTRY
    return Response(generate_latest(processes) + generate_latest(from_store), mimetype=CONTENT_TYPE_LATEST)
