"""Errors as `application/problem+json` (RFC 9457): every failure of the API, whatever raised it.

A problem names its HTTP status, a title, a detail a person can act on, and for invalid
input the fields to blame (`errors`: where, which field, what is wrong). Nothing else leaks:
an unexpected error is logged with its traceback and answered with a plain 500 problem.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, json, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from graph.store import UnknownBusinessError, UnknownJobError, UnknownSalespersonError
from netweave.observability import loggable_path
from netweave.services.access import Conflict, Invalid, NotAllowed, NotFound
from netweave.web.errors import RETRY_AFTER_SECONDS, STORE_DOWN

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class ApiProblem(Exception):
    """Raised anywhere in a request to answer with this problem."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Sequence[dict[str, str]] = (),
        headers: dict[str, str] | None = None,
        title: str | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers or {}
        self.title = title or HTTPStatus(status).phrase


def problem_response(problem: ApiProblem) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.path,
    }
    if problem.errors:
        body["errors"] = problem.errors
    response = Response(json.dumps(body), status=problem.status, mimetype=PROBLEM_JSON)
    response.headers.update(problem.headers)
    return response


def field_errors(error: ValidationError, where: str) -> list[dict[str, str]]:
    """Pydantic's errors as {in, field, message}: `field` is a dotted path (`businesses.3.email`)."""
    return [
        {
            "in": where,
            "field": ".".join(str(part) for part in item["loc"]),
            "message": "not a field of this request (see /api/v1/docs)"
            if item["type"] == "extra_forbidden"
            else item["msg"].removeprefix("Value error, "),
        }
        for item in error.errors(include_url=False)
    ]


def http_problem(error: HTTPException) -> Response:
    """An HTTP error as a problem (also for /api/ paths no route matched: netweave/web/errors.py)."""
    headers = {}
    if error.code == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    detail = {
        404: f"no such resource: {request.path} (see /api/v1/docs)",
        405: f"{request.method} is not allowed on {request.path}",
        413: "the request body is too large",
    }.get(error.code or 500, error.description or "")
    return problem_response(ApiProblem(error.code or 500, detail, headers=headers))


def _not_found(error: Exception) -> Response:
    detail = "no such resource in your book" if isinstance(error, NotAllowed) else str(error)
    return problem_response(ApiProblem(404, detail))


def _conflict(error: Conflict) -> Response:
    return problem_response(ApiProblem(409, str(error)))


def _invalid(error: Invalid) -> Response:
    errors = [{"in": "body", "field": field, "message": message} for field, message in error.problems]
    return problem_response(ApiProblem(422, "the business is not valid: see errors", errors=errors))


def _bad_value(error: ValueError) -> Response:
    return problem_response(ApiProblem(422, str(error)))


def _store_down(error: Exception) -> Response:
    log.warning("graph store unreachable during API %s %s: %s", request.method, loggable_path(), error)
    detail = "the customer graph cannot be reached just now: retry shortly (a write with the same Idempotency-Key)"
    return problem_response(ApiProblem(503, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}))


def _unexpected(error: Exception) -> Response:
    log.exception("API request %s %s failed", request.method, request.path)
    return problem_response(ApiProblem(500, "something went wrong on our side; it has been logged"))


def handle_errors(bp: Blueprint) -> None:
    """Every error of the API's views as a problem (set up once, as the blueprint is made)."""
    bp.register_error_handler(ApiProblem, problem_response)
    bp.register_error_handler(HTTPException, http_problem)
    # Another book's data is not found: its existence is not told.
    for error in (NotFound, NotAllowed, UnknownBusinessError, UnknownSalespersonError, UnknownJobError):
        bp.register_error_handler(error, _not_found)
    bp.register_error_handler(Conflict, _conflict)
    bp.register_error_handler(Invalid, _invalid)
    bp.register_error_handler(ValueError, _bad_value)  # a service's refusal of a value, with its reason
    for down in STORE_DOWN:  # here too: the blueprint's own Exception handler would answer first
        bp.register_error_handler(down, _store_down)
    bp.register_error_handler(Exception, _unexpected)
