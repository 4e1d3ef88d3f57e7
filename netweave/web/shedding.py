"""Load shedding: a request that waited too long for a thread is answered 503 at once.

Under overload gunicorn's threads fall behind and requests queue in each worker; left alone,
every answer comes later and later until clients time out without a word. `QueueTimedWorker`
(gunicorn's gthread worker, which the Procfile runs, plus one measurement) notes how long each
request waited for a thread. A request that waited over NETWEAVE_SHED_AFTER_MS is answered
503 with Retry-After before any work is done (problem+json on the API, a page elsewhere), so
the queue drains at the speed of a refusal and every client hears when to come back. Health
checks are never shed, nor static files: they cost next to nothing, and a page already
served must not lose its script or style sheet to a refusal. Without this worker class
(Flask's test client, another server) nothing is measured and nothing is shed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

from flask import Flask, current_app, request
from flask.typing import ResponseReturnValue
from gunicorn.workers.gthread import ThreadWorker

log = logging.getLogger(__name__)

NEVER_SHED = ("/healthz", "/readyz", "/metrics")
_wait = threading.local()  # the request this thread handles: seconds it waited for the thread
_last_warning = 0.0


def queue_wait() -> float | None:
    """How long the request this thread handles waited for it (None: not measured)."""
    return getattr(_wait, "seconds", None)


class QueueTimedWorker(ThreadWorker):
    """gunicorn's gthread worker that measures each request's wait for a thread."""

    def enqueue_req(self, conn: Any) -> None:
        conn.netweave_enqueued = time.monotonic()
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        enqueued = getattr(conn, "netweave_enqueued", None)
        _wait.seconds = None if enqueued is None else time.monotonic() - enqueued
        try:
            return super().handle(conn)
        finally:
            _wait.seconds = None


def _shed() -> ResponseReturnValue | None:
    waited = queue_wait()
    if waited is None or waited <= current_app.extensions["netweave.shed_after"]:
        return None
    if request.path in NEVER_SHED or request.endpoint == "static":
        return None
    from netweave.observability import metrics

    metrics().shed_total.inc()
    global _last_warning
    if time.monotonic() - _last_warning > 10:  # one line per 10 s, not one per refusal
        _last_warning = time.monotonic()
        log.warning("overloaded: a request waited %.0f ms for a thread; answering 503 until the queue drains",
                    waited * 1000)  # fmt: skip
    retry_after = str(max(1, math.ceil(waited)))
    if request.path == "/api" or request.path.startswith("/api/"):
        from netweave.web.api.problems import ApiProblem, problem_response

        detail = f"overloaded: this request waited {waited * 1000:.0f} ms for the server; retry after {retry_after} s"
        return problem_response(ApiProblem(503, detail, headers={"Retry-After": retry_after}))
    # Straight from the Jinja environment, `bare`: no context processor may touch the store.
    page = current_app.jinja_env.get_template("error.html")
    advice = "Netweave has more requests than it can answer just now. Try again in a few seconds."
    body = page.render(status=503, title="Netweave is busy", advice=advice, bare=True, request=request)
    return body, 503, {"Retry-After": retry_after}


def init_app(app: Flask) -> None:
    """Shed before any other hook runs (sessions, rate limits and the store all cost time)."""
    try:
        after_ms = float(app.config["SHED_AFTER_MS"])
    except ValueError:
        raise ValueError(f"NETWEAVE_SHED_AFTER_MS: {app.config['SHED_AFTER_MS']!r} is not a number of ms") from None
    if after_ms > 0:  # 0 turns shedding off
        app.extensions["netweave.shed_after"] = after_ms / 1000
        app.before_request_funcs.setdefault(None, []).insert(0, _shed)
