"""Error pages of the web app: a clear page for every status, never a stack trace; when the
graph store cannot be reached, 503 with Retry-After. (The API answers problems instead:
netweave/web/api/problems.py.)"""

from __future__ import annotations

import logging
import time

from flask import Flask, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_limiter import RateLimitExceeded
from neo4j.exceptions import ServiceUnavailable, SessionExpired
from werkzeug.exceptions import HTTPException, InternalServerError

from netweave.observability import loggable_path

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 10
STORE_DOWN = (ServiceUnavailable, SessionExpired)

_TITLES = {
    400: ("That request was not understood",
          "Something in the address or the form was not valid: go back and try again."),
    403: ("Not allowed", "This needs a fresh page: go back, reload, and try again."),
    404: ("Not found", "There is nothing here, or it is not in your book."),
    405: ("Not allowed", "This page does not take that kind of request."),
    429: ("Too many tries", "Wait a minute, then try again."),
    500: ("Something went wrong on our side", "It has been logged. Try again in a moment."),
    503: ("Netweave is briefly unavailable",
          "The customer graph cannot be reached just now. Try again in a few seconds."),
}  # fmt: skip


def page(error: HTTPException) -> ResponseReturnValue:
    """The error as a page (its status, a title and what to do)."""
    status = error.code or 500
    title, advice = _TITLES.get(status, (error.name, error.description or ""))
    if status == 400 and error.description and "CSRF" in error.description:
        advice = "The form had expired or came from elsewhere. Reload the page and send it again."
    headers = {}
    if isinstance(error, RateLimitExceeded):
        limit = current_app.extensions["netweave.api_limiter"].current_limit
        headers["Retry-After"] = str(max(int(limit.reset_at - time.time()), 1) if limit else 60)
    return render_template("error.html", status=status, title=title, advice=advice), status, headers


def _http(error: HTTPException) -> ResponseReturnValue:
    if request.path == "/api" or request.path.startswith("/api/"):
        from netweave.web.api.problems import http_problem

        return http_problem(error)
    return page(error)


def _store_down(error: Exception) -> ResponseReturnValue:
    log.warning("graph store unreachable during %s %s: %s", request.method, loggable_path(), error)
    title, advice = _TITLES[503]
    # Straight from the Jinja environment, `bare`: Flask's context processors (Flask-Login's
    # among them) would ask the store who is signed in.
    page = current_app.jinja_env.get_template("error.html")
    body = page.render(status=503, title=title, advice=advice, bare=True, request=request)
    return body, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def _unexpected(error: Exception) -> ResponseReturnValue:
    if isinstance(error, HTTPException):
        return _http(error)
    log.exception("request %s %s failed", request.method, loggable_path())
    return _http(InternalServerError())


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http)
    for down in STORE_DOWN:
        app.register_error_handler(down, _store_down)
    app.register_error_handler(Exception, _unexpected)
