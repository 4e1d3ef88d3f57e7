"""The JSON API for CRMs and integrators, under /api/v1 (see docs/api.md).

Routes are thin: they check the token's scope, let spectree validate the request against
its pydantic model, call a service function (the same ones the CLI, web app and email
use) and shape the answer. The OpenAPI 3.1 document is generated from those models and
routes (`/api/v1/openapi.json`); `/api/v1/docs` browses it with Swagger UI, served from
the app's static folder (installed from npm by `make`, no CDN).

Every request but the document and its page carries `Authorization: Bearer <token>`.
No token or a bad one: 401; a scope the token lacks: 403; another salesperson's data: 404.
Every error is `application/problem+json` (see `problems`).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, current_app, g, render_template, request
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter, RateLimitExceeded
from pydantic import BaseModel, ValidationError
from spectree import Response as Answers
from spectree import SecurityScheme, SpecTree
from spectree.models import SecuritySchemeData
from werkzeug.exceptions import BadRequest

from graph.records import TokenScope
from netweave.services import tokens
from netweave.services.tokens import Caller
from netweave.store import get_store
from netweave.web.api import idempotency
from netweave.web.api.problems import (
    PROBLEM_JSON,
    ApiProblem,
    field_errors,
    handle_errors,
    problem_response,
)
from netweave.web.api.schemas import Problem

F = TypeVar("F", bound=Callable[..., Any])

bp = Blueprint("api", __name__, url_prefix="/api/v1")
handle_errors(bp)
PUBLIC = {"api.openapi", "api.docs"}
DESCRIPTION = """Netweave suggests introductions between a salesperson's customers. This API lets a CRM
import customers, read the suggested matches, and follow refreshes. A walkthrough: docs/api.md.

Every request carries `Authorization: Bearer <token>` (created with `flask --app app tokens create`).
A token has scopes (`read`, `write`, `admin`, each including the ones before it) and an owner: a
salesperson's token sees their book, a manager's every book, an integration's every book.
Another salesperson's data answers 404. Errors are `application/problem+json` (RFC 9457); invalid
input lists the fields at fault in `errors`. Writes return at once: the suggestions they change
are recomputed by a background job, which the answer names (`refresh_job`) and `/jobs/{id}` follows.
"""


def _invalid(request_: Any, response: Any, error: ValidationError | None, instance: Any, adapter: Any) -> None:
    """spectree's hook after request validation: an invalid request becomes a 422 problem."""
    if error is not None:
        where = "query" if error.title.endswith("Query") else "header" if error.title.endswith("Headers") else "body"
        raise ApiProblem(422, f"the request's {where} is not valid: see errors", errors=field_errors(error, where))


spec = SpecTree(
    "flask",
    title="Netweave API",
    version="1",
    description=DESCRIPTION,
    naming_strategy=lambda model: model.__name__,  # component names as the models are named
    nested_naming_strategy=lambda parent, child: child,
    mode="strict",  # only the routes below, never the web pages
    page_templates={},  # the docs page is ours, served without a CDN
    before=_invalid,
    validation_error_status=422,
    validation_error_model=Problem,
    security_schemes=[SecurityScheme(name="bearer", data=SecuritySchemeData(type="http", scheme="bearer"))],
    security={"bearer": []},
)


def responses(ok: dict[str, type[BaseModel] | None], *problems: int) -> Answers:
    """An operation's documented answers: its own, and the problems every API route can give."""
    codes = {401, 403, 429, *problems}
    return Answers(**ok, **{f"HTTP_{code}": Problem for code in sorted(codes)})


def requires(scope: TokenScope) -> Callable[[F], F]:
    """The token must have `scope` (checked before the request is validated)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if not caller().may(scope):
                raise ApiProblem(403, f"this token lacks the {scope.value!r} scope")
            return view(*args, **kwargs)

        checked.required_scope = scope  # type: ignore[attr-defined]  (read by openapi_document)
        return checked  # type: ignore[return-value]

    return decorate


def caller() -> Caller:
    return g.api_caller


def check_if_match(current_tag: str, what: str) -> None:
    """An `If-Match` that does not name the current tag: 412 (someone changed it since)."""
    tags = request.if_match
    if tags and not tags.star_tag and current_tag.strip('"') not in tags.as_set():
        raise ApiProblem(412, f"{what} changed since you read it (ETag {current_tag}): read it again")


@bp.before_request
def _authenticate_and_read_body() -> Response | None:
    request.max_content_length = int(current_app.config["API_MAX_BODY_BYTES"])
    if request.endpoint in PUBLIC:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    recent = current_app.extensions["netweave.api_callers"]
    found = recent.authenticate(get_store(), secret.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        detail = "a valid API token is required: Authorization: Bearer <token>"
        if header:
            detail = "the API token is not valid (malformed, unknown or revoked)"
        raise ApiProblem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="netweave"'})
    g.api_caller = found
    has_body = request.content_length or request.headers.get("Transfer-Encoding")
    if request.method in ("POST", "PUT", "PATCH") and has_body:
        if request.mimetype != "application/json":
            raise ApiProblem(415, f"send JSON (Content-Type: application/json), not {request.mimetype or 'nothing'}")
        try:
            request.get_json()
        except BadRequest:
            raise ApiProblem(400, "the body is not valid JSON") from None
    return idempotency.claim(found.token.id)


bp.after_request(idempotency.keep)
bp.teardown_request(idempotency.release_after_failure)


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI 3.1 document, generated from the routes and their models."""
    return current_app.json.response(openapi_document())


@bp.get("/docs")
def docs() -> ResponseReturnValue:
    return render_template("api/docs.html")


def openapi_document() -> dict[str, Any]:
    """spectree's document, made exact about problems: answered as application/problem+json;
    403 only where a token may lack the scope (every token reads); 422 only where there is
    input to refuse (a body, a query or a header; a path's ids are any text)."""
    document = spec.spec
    scopes = {
        (_openapi_path(rule.rule), method.lower()): getattr(current_app.view_functions[rule.endpoint],
                                                            "required_scope", None)
        for rule in current_app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in rule.methods or ()
    }  # fmt: skip
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            answers = operation.get("responses", {})
            if scopes.get((path, method)) is TokenScope.READ:
                answers.pop("403", None)
            has_input = "requestBody" in operation or any(p["in"] != "path" for p in operation.get("parameters", []))
            if not has_input:
                answers.pop("422", None)
            for answer in answers.values():
                content = answer.get("content", {})
                if content.get("application/json", {}).get("schema", {}).get("$ref", "").endswith("/Problem"):
                    content[PROBLEM_JSON] = content.pop("application/json")
    return document


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", rule)


@bp.errorhandler(RateLimitExceeded)
def _rate_limited(error: RateLimitExceeded) -> Response:
    """429 as a problem, with Retry-After: the seconds until the token's window has room again."""
    limit = current_app.extensions["netweave.api_limiter"].current_limit
    wait = max(int(limit.reset_at - time.time()), 1) if limit else 1
    detail = f"too many requests for this token ({error.description}); retry in {wait} s"
    return problem_response(ApiProblem(429, detail, headers={"Retry-After": str(wait)}))


def _rate_key() -> str:
    """Whose requests share a rate limit: a token's (by a hash of it, never the token), else an address's."""
    header = request.headers.get("Authorization", "")
    if header:
        return "token:" + hashlib.sha256(header.encode()).hexdigest()[:24]
    return "address:" + (request.remote_addr or "unknown")


def init_app(app: Flask) -> None:
    from netweave.web.api import (  # noqa: F401  (their routes)
        businesses,
        introductions,
        jobs,
        matches,
        salespeople,
        webhooks,
    )

    app.extensions["netweave.api_callers"] = tokens.RecentCallers(float(app.config["API_TOKEN_CACHE_SECONDS"]))
    # Per token (Redis when configured, so every web process shares the count; else each
    # process counts its own). Over the limit: 429 with Retry-After, as a problem.
    limiter = Limiter(
        _rate_key,
        app=app,
        storage_uri=app.config["REDIS_URL"] or "memory://",
        key_prefix="netweave-api",
        # Redis down: each process counts in memory until it is back, so the API stays up
        # (and limited) instead of failing every request.
        in_memory_fallback_enabled=True,
    )
    app.extensions["netweave.api_limiter"] = limiter
    # One count per token for the whole API (not one per route).
    limiter.shared_limit(
        lambda: app.config["API_RATE_LIMIT"], scope="api", exempt_when=lambda: request.endpoint in PUBLIC
    )(bp)
    app.register_blueprint(bp)
